"""Numerically stable kernels on plain numpy arrays, shared by activations, losses and models.

Each takes and returns numpy arrays (no graph): the differentiable operations built on them
live in :mod:`tinytorch.core.activations` and :mod:`tinytorch.core.losses`.
"""
from __future__ import annotations

import numpy as np

__all__ = ["stable_sigmoid", "stable_log_softmax", "stable_softmax"]


def stable_sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + exp(-x)) without overflow, in x's floating dtype.

    From e = exp(-|x|) <= 1: s = 1/(1+e) for x >= 0 and e/(1+e) for x < 0, the same value
    written two ways so that no branch ever exponentiates a large positive number.
    """
    e = np.exp(-np.abs(x))
    return np.where(x >= 0, 1 / (1 + e), e / (1 + e)).astype(e.dtype, copy=False)


def stable_log_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """log(softmax(x)) along ``axis`` as z - log(sum(exp(z))), z = x - max(x): finite even
    where softmax underflows to 0."""
    z = x - np.maximum.reduce(x, axis=axis, keepdims=True)  # the ufunc skips x.max's wrapper
    return z - np.log(np.add.reduce(np.exp(z), axis=axis, keepdims=True))


def stable_softmax(x: np.ndarray, axis: int = -1) -> np.ndarray:
    """exp(x) / sum(exp(x)) along ``axis``, computed from x - max(x) so nothing overflows."""
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    e /= e.sum(axis=axis, keepdims=True)
    return e
