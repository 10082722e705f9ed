"""Memoization for generation: the key/value cache (chapter 18).

A GPT generating token by token recomputes, at every step, the keys and values of every
earlier position, although they have not changed: position j's key depends on tokens 0..j
only (causal attention). A cache keeps them. Each step then computes the query, key and
value of the *one* new position, appends the key and value to the cache and attends over
all of them::

    step cost without a cache:  a forward pass over all S positions   O(S) rows per layer
    step cost with a cache:     a forward pass over 1 position        O(1) rows per layer
                                + attention of 1 query over S keys    O(S) dot products

:class:`KVCache` holds one attention layer's keys and values, shape (B, H, S, D), in
arrays allocated once for ``max_length`` positions (or grown by doubling when no maximum
is given). It is what :class:`~tinytorch.core.attention.MultiHeadAttention`'s ``kv_cache``
argument expects: ``update(k, v)`` appends the new positions and returns the keys and
values of all positions so far. :class:`ModelKVCache` holds one per transformer block;
``GPT.forward(idx, kv_cache=...)`` reads the position of the first new token from its
``length``.

The cache stores arrays, not graph nodes: it is for inference, so ``update`` refuses keys
that require a gradient (run it under ``tt.no_grad()``, as ``GPT.generate`` does).

Memory: a cache of S positions costs ``2 (keys and values) x layers x B x H x S x D x
itemsize`` bytes; ``nbytes`` counts the filled part, ``allocated_nbytes`` the arrays.
"""
from __future__ import annotations

import numpy as np

from .checks import check_int
from .core.tensor import Tensor

__all__ = ["KVCache", "ModelKVCache"]


class KVCache:
    """The keys and values of one attention layer: ``update(k, v) -> (k_all, v_all)``.

    ``k`` and ``v`` are the new positions' keys and values, (B, H, T, D); the returned
    Tensors are (B, H, S, D) with S = the previous length + T, cached positions first.
    ``max_length`` (e.g. the model's ``block_size``) preallocates that many positions and
    makes a longer cache an error; ``None`` grows the arrays by doubling.
    ``length`` is S, ``nbytes`` the bytes of the S stored keys and values, ``reset()``
    empties the cache (the arrays are kept for reuse).
    """

    def __init__(self, max_length: int | None = None):
        self.max_length = None if max_length is None else check_int(
            "KVCache", "max_length", max_length, 1)
        self._keys: np.ndarray | None = None
        self._values: np.ndarray | None = None
        self.length = 0

    def update(self, k, v) -> tuple[Tensor, Tensor]:
        """Append keys ``k`` and values ``v`` (B, H, T, D); return those of all positions."""
        k_new = k.data if isinstance(k, Tensor) else np.asarray(k)
        v_new = v.data if isinstance(v, Tensor) else np.asarray(v)
        if getattr(k, "requires_grad", False) or getattr(v, "requires_grad", False):
            raise RuntimeError("KVCache.update: the keys or values require a gradient, but "
                               "the cache stores plain arrays and no gradient flows through "
                               "it; run cached inference under tt.no_grad()")
        if k_new.ndim != 4 or k_new.shape != v_new.shape:
            raise ValueError(f"KVCache.update: keys and values must both have shape "
                             f"(B, H, T, D); got keys {k_new.shape}, values {v_new.shape}")
        t = k_new.shape[2]
        if t == 0:
            raise ValueError(f"KVCache.update: no new positions (keys of shape {k_new.shape})")
        if self._keys is not None and (k_new.shape[:2] != self._keys.shape[:2]
                                       or k_new.shape[3] != self._keys.shape[3]):
            expected = self._keys.shape
            raise ValueError(f"KVCache.update: the cache holds (B, H, S, D) = "
                             f"({expected[0]}, {expected[1]}, {self.length}, {expected[3]}); "
                             f"new keys of shape {k_new.shape} do not match it (reset() "
                             f"before a new batch)")
        end = self.length + t
        if self.max_length is not None and end > self.max_length:
            raise ValueError(f"KVCache.update: {self.length} cached + {t} new positions exceed "
                             f"max_length {self.max_length}")
        self._reserve(k_new, end)
        self._keys[:, :, self.length:end] = k_new
        self._values[:, :, self.length:end] = v_new
        self.length = end
        return (Tensor._from_array(self._keys[:, :, :end]),
                Tensor._from_array(self._values[:, :, :end]))

    def _reserve(self, like: np.ndarray, needed: int) -> None:
        """Make the arrays hold at least ``needed`` positions (allocated on first use)."""
        capacity = 0 if self._keys is None else self._keys.shape[2]
        if needed <= capacity and self._keys.dtype == like.dtype:
            return
        if self.max_length is not None:
            new_capacity = self.max_length
        else:
            new_capacity = max(needed, 2 * capacity, 16)
        b, h, _, d = like.shape
        keys = np.empty((b, h, new_capacity, d), dtype=like.dtype)
        values = np.empty_like(keys)
        if self.length:                                  # growing: keep what is cached
            keys[:, :, :self.length] = self._keys[:, :, :self.length]
            values[:, :, :self.length] = self._values[:, :, :self.length]
        self._keys, self._values = keys, values

    @property
    def keys(self) -> np.ndarray | None:
        """The cached keys (B, H, length, D), a view; None before the first update."""
        return None if self._keys is None else self._keys[:, :, :self.length]

    @property
    def values(self) -> np.ndarray | None:
        """The cached values (B, H, length, D), a view; None before the first update."""
        return None if self._values is None else self._values[:, :, :self.length]

    @property
    def nbytes(self) -> int:
        """Bytes of the stored keys and values: 2 x B x H x length x D x itemsize."""
        if self._keys is None:
            return 0
        return int(self.keys.nbytes + self.values.nbytes)

    @property
    def allocated_nbytes(self) -> int:
        """Bytes of the arrays as allocated (``max_length`` positions when preallocated)."""
        if self._keys is None:
            return 0
        return int(self._keys.nbytes + self._values.nbytes)

    def reset(self) -> None:
        """Forget every cached position (the arrays stay allocated)."""
        self.length = 0

    def crop(self, length: int) -> None:
        """Keep the first ``length`` positions and forget the rest (as Hugging Face's
        ``DynamicCache.crop``): the next update writes after them."""
        length = check_int("KVCache.crop", "length", length, 0)
        if length > self.length:
            raise ValueError(f"KVCache.crop: cannot keep {length} positions of {self.length}")
        self.length = length

    def __repr__(self) -> str:
        return f"KVCache(length={self.length}, max_length={self.max_length})"


class ModelKVCache:
    """One :class:`KVCache` per transformer block: ``ModelKVCache(n_layer, max_length)``.

    Index it (``cache[i]``) to get layer i's cache; ``length`` is the number of cached
    positions (the same in every layer), ``nbytes`` the bytes of all layers, ``reset()``
    empties every layer.
    """

    def __init__(self, n_layer: int, max_length: int | None = None):
        n_layer = check_int("ModelKVCache", "n_layer", n_layer, 1)
        self.layers = [KVCache(max_length) for _ in range(n_layer)]
        self.max_length = self.layers[0].max_length

    def __getitem__(self, i: int) -> KVCache:
        return self.layers[i]

    def __len__(self) -> int:
        return len(self.layers)

    @property
    def length(self) -> int:
        return self.layers[0].length

    @property
    def nbytes(self) -> int:
        return sum(layer.nbytes for layer in self.layers)

    @property
    def allocated_nbytes(self) -> int:
        return sum(layer.allocated_nbytes for layer in self.layers)

    def reset(self) -> None:
        for layer in self.layers:
            layer.reset()

    def crop(self, length: int) -> None:
        """Keep the first ``length`` positions of every layer."""
        for layer in self.layers:
            layer.crop(length)

    def __repr__(self) -> str:
        return (f"ModelKVCache(n_layer={len(self)}, length={self.length}, "
                f"max_length={self.max_length})")
