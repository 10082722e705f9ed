"""TinyTorch: a small PyTorch-like deep-learning framework in numpy.

Everything a chapter teaches is importable from here, under PyTorch's names::

    import tinytorch as tt
    model = tt.Sequential(tt.Linear(64, 32), tt.ReLU(), tt.Linear(32, 10))

Each submodule declares ``__all__``; this file re-exports them in course order.
"""
from .core.tensor import *          # 01 Tensor
from .core.ops import *             # 11 cat, stack, where
from .core.autograd import (        # 06 Autograd
    OpEvent, enable_grad, is_grad_enabled, make_op, no_grad, observe, topological_order)
from .core.module import *          # 03 Layers (base class)
from .core.activations import *     # 02 Activations
from .core.layers import *          # 03 Layers
from .random import *               # 03 the shared random generator (manual_seed)
from .core.losses import *          # 04 Losses
from .data import *                 # 05 DataLoader
from .optim import *                # 07 Optimizers
from .training import *             # 08 Training
from .core.spatial import *         # 09 Convolutions
from .text import *                 # 10 Tokenization
from .core.embedding import *       # 11 Embeddings
from .core.attention import *       # 12 Attention
from .core.normalization import *   # 13 Transformers (LayerNorm)
from .models import *               # 13 Transformers (TransformerBlock, GPT)
from .gradcheck import gradcheck, numerical_gradient, rule_gradients
from . import datasets, profiling
from . import quantization        # 15 Quantization
from . import prune, compress     # 16 Compression
from .kv_cache import *            # 18 Memoization (KVCache, ModelKVCache)
from . import benchmark           # 19 Benchmarking
from . import capstone            # 20 Capstone (jsonschema only when a submission is checked)

__version__ = "0.1.0"
