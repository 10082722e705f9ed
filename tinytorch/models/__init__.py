"""Models assembled from the package's layers: the transformer block and GPT (chapter 13)."""
from .transformer import *
from .gpt import *
