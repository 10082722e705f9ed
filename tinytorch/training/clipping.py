"""Gradient clipping: keep one bad batch from throwing the weights far away (chapter 08).

Two ways to bound a gradient, compared in the chapter:

* ``clip_grad_norm`` rescales *all* gradients together when their global L2 norm is too large.
  The direction of the update is kept; only its length shrinks.
* ``clip_grad_value`` clamps every element to ``[-clip_value, clip_value]`` on its own. Large
  components are cut more than small ones, so the direction changes.
"""
from __future__ import annotations

import math

import numpy as np

from ..checks import check_real
from ..core.tensor import Tensor

__all__ = ["clip_grad_norm", "clip_grad_value"]


def _gradients(parameters) -> list:
    """The ``.grad`` arrays of ``parameters`` (one Tensor or an iterable), skipping None."""
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    return [p.grad for p in parameters if p.grad is not None]


def clip_grad_norm(parameters, max_norm: float = 1.0) -> float:
    """Scale every gradient in place so that their global L2 norm is at most ``max_norm``.

    The global norm is ``sqrt(sum of squares of every gradient element)``, accumulated in
    float64 so that squaring large float32 gradients cannot overflow. When it exceeds
    ``max_norm``, every gradient is multiplied by ``max_norm / (norm + 1e-6)`` (the 1e-6 guards
    a division by zero, as in PyTorch). Parameters whose ``.grad`` is None are skipped.

    Returns the norm *before* clipping, as a Python float. A non-finite norm (an inf or NaN
    gradient) is returned without touching the gradients: no scaling can repair them.
    """
    max_norm = check_real("clip_grad_norm", "max_norm", max_norm, 0, low_open=True, finite=False)
    grads = _gradients(parameters)
    total = sum(float(np.sum(np.square(g, dtype=np.float64))) for g in grads)
    norm = math.sqrt(total)
    if norm > max_norm and math.isfinite(norm):
        scale = max_norm / (norm + 1e-6)
        for g in grads:
            g *= np.asarray(scale, dtype=g.dtype)
    return norm


def clip_grad_value(parameters, clip_value: float) -> None:
    """Clamp every gradient element, in place, to ``[-clip_value, clip_value]``.

    Parameters whose ``.grad`` is None are skipped.
    """
    clip_value = check_real("clip_grad_value", "clip_value", clip_value, 0, low_open=True,
                            finite=False)
    for g in _gradients(parameters):
        np.clip(g, -clip_value, clip_value, out=g)
