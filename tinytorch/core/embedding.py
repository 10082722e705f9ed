"""Embeddings: token ids to vectors, and where each token sits in the sequence (chapter 11).

``Embedding`` is a learned table with one row per id; looking ids up is indexing the table
(``weight[ids]``), which gives the same result as multiplying one-hot rows by it without ever
building them. Its backward pass adds up the gradient of every occurrence of an id into that
id's row. Attention (chapter 12) ignores order, so a sequence model also adds a vector per
*position*: a fixed table of sines and cosines (``SinusoidalPositionalEncoding``, Vaswani et
al., 2017) or a learned one (``LearnedPositionalEmbedding``, as in GPT-2).
"""
from __future__ import annotations

import numpy as np

from ..checks import check_int
from ..random import default_generator
from .autograd import make_op
from .module import Module, Parameter
from .tensor import Tensor

__all__ = ["embedding", "Embedding", "sinusoidal_encoding", "SinusoidalPositionalEncoding",
           "LearnedPositionalEmbedding"]


def _check_ids(ids: np.ndarray, num_embeddings: int) -> np.ndarray:
    if ids.dtype.kind not in "iu":
        raise TypeError(f"Embedding: ids must be integers; got dtype {ids.dtype} (a Tensor "
                        f"made from a Python list is float32: build it from an int array)")
    if ids.size and (ids.min() < 0 or ids.max() >= num_embeddings):
        bad = ids[(ids < 0) | (ids >= num_embeddings)].flat[0]
        raise IndexError(f"Embedding: id {bad} is out of range for a table of "
                         f"{num_embeddings} embeddings (valid ids: 0 to {num_embeddings - 1})")
    return ids


def _scatter_add_rows(ids: np.ndarray, rows: np.ndarray, num_rows: int) -> np.ndarray:
    """A (num_rows, D) array whose row i is the sum of ``rows[k]`` over every k with
    ``ids[k] == i`` (zero for ids that do not occur).

    Sorting groups equal ids, ``np.add.reduceat`` sums each group in one vectorised pass, and
    each distinct id's row is written once: two to four times faster than ``np.add.at``.
    """
    grad = np.zeros((num_rows, rows.shape[1]), dtype=rows.dtype)
    if ids.size == 0:
        return grad
    order = np.argsort(ids, kind="stable")
    sorted_ids = ids[order]
    starts = np.flatnonzero(np.r_[True, sorted_ids[1:] != sorted_ids[:-1]])
    grad[sorted_ids[starts]] = np.add.reduceat(rows[order], starts, axis=0)
    return grad


def embedding(input, weight: Tensor) -> Tensor:
    """Rows of ``weight`` (num_embeddings, D) picked by the integer ids ``input``.

    ``input`` is an int array or Tensor of any shape S; the result has shape S + (D,).
    Backward: the gradient of each output row goes to the row of its id, and an id that
    occurs several times receives the sum of their gradients. The ids get no gradient.
    """
    ids = input.data if isinstance(input, Tensor) else np.asarray(input)
    num_embeddings, dim = weight.shape
    ids = _check_ids(ids, num_embeddings)
    flat = ids.reshape(-1)

    def backward(g):
        return (_scatter_add_rows(flat, g.reshape(-1, dim), num_embeddings),)

    return make_op(weight.data[ids], (weight,), backward, "embedding")


class Embedding(Module):
    """A learned lookup table: ``Embedding(num_embeddings, embedding_dim)(ids)``.

    ``weight`` has shape (num_embeddings, embedding_dim), float32, drawn from N(0, 1) by the
    shared generator (PyTorch's default for ``nn.Embedding``). Ids of shape S give vectors of
    shape S + (embedding_dim,). See :func:`embedding`.
    """

    def __init__(self, num_embeddings: int, embedding_dim: int):
        """A lookup table: ``weight``, a Parameter of shape (num_embeddings, embedding_dim)
        drawn from the standard normal with tinytorch's default generator, as PyTorch.
        """
        super().__init__()
        self.num_embeddings = check_int("Embedding", "num_embeddings", num_embeddings, 1)
        self.embedding_dim = check_int("Embedding", "embedding_dim", embedding_dim, 1)
        self.weight = Parameter(default_generator.standard_normal(
            (self.num_embeddings, self.embedding_dim)).astype(np.float32))

    def forward(self, input) -> Tensor:
        return embedding(input, self.weight)

    def extra_repr(self) -> str:
        return f"{self.num_embeddings}, {self.embedding_dim}"


# --------------------------------------------------------------------------- positions
def sinusoidal_encoding(max_len: int, embedding_dim: int) -> np.ndarray:
    """The (max_len, embedding_dim) float32 table of Vaswani et al. (2017):

        PE[pos, 2i]     = sin(pos / 10000^(2i / embedding_dim))
        PE[pos, 2i + 1] = cos(pos / 10000^(2i / embedding_dim))

    Each pair of columns is a sine and cosine of one frequency; the frequencies fall
    geometrically from 1 to about 1/10000 radians per position. An odd embedding_dim ends on
    a sine column.
    """
    max_len = check_int("sinusoidal_encoding", "max_len", max_len, 1)
    embedding_dim = check_int("sinusoidal_encoding", "embedding_dim", embedding_dim, 1)
    positions = np.arange(max_len, dtype=np.float64)[:, None]
    even = np.arange(0, embedding_dim, 2, dtype=np.float64)
    angles = positions / 10000.0 ** (even / embedding_dim)      # (max_len, ceil(dim / 2))
    table = np.empty((max_len, embedding_dim))
    table[:, 0::2] = np.sin(angles)
    table[:, 1::2] = np.cos(angles[:, :embedding_dim // 2])
    return table.astype(np.float32)


def _check_positions(name: str, x: Tensor, max_len: int, embedding_dim: int) -> int:
    """The sequence length T of ``x`` (..., T, embedding_dim), checked against the table."""
    if x.ndim < 2 or x.shape[-1] != embedding_dim:
        raise ValueError(f"{name}: expected input of shape (..., T, {embedding_dim}); got "
                         f"{x.shape}")
    length = x.shape[-2]
    if length > max_len:
        raise ValueError(f"{name}: the input has {length} positions but the table holds "
                         f"max_len={max_len}")
    return length


class SinusoidalPositionalEncoding(Module):
    """Adds the fixed table :func:`sinusoidal_encoding` to an input of shape
    (..., T, embedding_dim): position t gets row t. Nothing is learned (no parameters); the
    table is computed once, in ``pe``. T may not exceed ``max_len``."""

    def __init__(self, max_len: int, embedding_dim: int):
        super().__init__()
        self.pe = sinusoidal_encoding(max_len, embedding_dim)
        self.max_len, self.embedding_dim = self.pe.shape

    def forward(self, x) -> Tensor:
        """``x`` (batch, length, embedding_dim) plus the first ``length`` rows of the fixed
        sinusoidal table (in x's float dtype). A length beyond ``max_len`` or another last
        dimension raises ValueError.
        """
        x = x if isinstance(x, Tensor) else Tensor(x)
        length = _check_positions("SinusoidalPositionalEncoding", x, self.max_len,
                                  self.embedding_dim)
        table = self.pe[:length]
        return x + (table.astype(x.dtype) if x.dtype.kind == "f" else table)

    def extra_repr(self) -> str:
        return f"{self.max_len}, {self.embedding_dim}"


class LearnedPositionalEmbedding(Module):
    """Adds a learned row per position to an input of shape (..., T, embedding_dim).

    ``weight`` has shape (max_len, embedding_dim), drawn from N(0, 1) like ``Embedding``
    (GPT-2 implementations usually rescale it to std 0.02). Only rows 0 .. T-1 are used, so
    only they receive gradient: the sum of the input's gradient over the leading dimensions.
    """

    def __init__(self, max_len: int, embedding_dim: int):
        super().__init__()
        self.max_len = check_int("LearnedPositionalEmbedding", "max_len", max_len, 1)
        self.embedding_dim = check_int("LearnedPositionalEmbedding", "embedding_dim",
                                       embedding_dim, 1)
        self.weight = Parameter(default_generator.standard_normal(
            (self.max_len, self.embedding_dim)).astype(np.float32))

    def forward(self, x) -> Tensor:
        """``x`` (batch, length, embedding_dim) plus the first ``length`` rows of the learned
        ``weight`` (so they receive gradients). A length beyond ``max_len`` or another last
        dimension raises ValueError.
        """
        x = x if isinstance(x, Tensor) else Tensor(x)
        length = _check_positions("LearnedPositionalEmbedding", x, self.max_len,
                                  self.embedding_dim)
        return x + self.weight[:length]

    def extra_repr(self) -> str:
        return f"{self.max_len}, {self.embedding_dim}"
