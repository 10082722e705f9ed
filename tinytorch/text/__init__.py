"""Chapter 10: tokenization — text to integer ids and back.

- ``CharTokenizer``: one id per character of a fixed alphabet (``CharTokenizer.from_text``).
- ``BPETokenizer``: byte-level byte-pair encoding. Ids 0-255 are the bytes of the UTF-8
  encoding, every merge learned by ``train`` adds one id, and any string round-trips.
- ``pair_counts`` and ``merge_pair``: the two steps of BPE on a list of ids, in their
  simplest form (the chapter traces them; the trainer does the same incrementally).

Tokenizers are saved as JSON (``save`` / ``load``), never as pickles.
"""
from .base import Tokenizer, TokenizerFileError
from .char import CharTokenizer
from .bpe import GPT2_SPLIT_PATTERN, BPETokenizer, merge_pair, pair_counts, split_text
from .bpe_train import learn_merges

__all__ = ["Tokenizer", "TokenizerFileError", "CharTokenizer", "BPETokenizer",
           "GPT2_SPLIT_PATTERN", "pair_counts", "merge_pair", "split_text", "learn_merges"]
