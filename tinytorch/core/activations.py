"""Activations: the nonlinearities between layers (chapter 02).

Each activation is one fused operation: the forward value is computed with numpy and the
backward rule is its analytic derivative, so ``y = relu(x); y.sum().backward()`` leaves
relu'(x) in ``x.grad`` — that is how the chapter plots each function and its derivative.

The functional forms (``relu``, ``sigmoid``, ``tanh``, ``gelu``, ``softmax``,
``log_softmax``) take a Tensor (or anything ``Tensor()`` accepts) and return a Tensor of the
same shape and dtype; the Module classes (``ReLU()``, ``Softmax(dim=-1)``, …) call them, so
they can sit inside a ``Sequential``.

Numerical care, which is the point of the chapter's stability demo:
  * ``sigmoid`` only ever exponentiates ``-|x|``, so ±1000 gives 0 and 1 with no overflow.
  * ``softmax`` and ``log_softmax`` subtract the row maximum before exponentiating; the
    result is unchanged (softmax is shift-invariant) but exp never overflows.
"""
from __future__ import annotations

import math

import numpy as np

from .module import Module
from .autograd import make_op
from .tensor import Tensor

__all__ = ["ReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax",
           "relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715


def _as_tensor(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _axis(dim: int, shape: tuple, name: str) -> int:
    """``dim`` as a non-negative axis of ``shape``, or a ValueError naming both."""
    ndim = len(shape)
    if not -ndim <= dim < ndim:
        raise ValueError(f"{name}: dim {dim} is out of range for a tensor of shape {shape}")
    return dim % ndim


# --------------------------------------------------------------------------- functional
def relu(x) -> Tensor:
    """max(x, 0); derivative 1 where x > 0, else 0 (0 at x = 0, as in PyTorch).

    NaN stays NaN (np.maximum propagates it), so a corrupt input reaches the loss, where the
    Trainer's NaN guard stops training, instead of silently becoming 0.
    """
    x = _as_tensor(x)
    positive = x.data > 0
    out = np.maximum(x.data, np.zeros((), dtype=x.dtype))
    return make_op(out, (x,), lambda g: (g * positive,), "relu")


def sigmoid(x) -> Tensor:
    """1 / (1 + exp(-x)); derivative s * (1 - s).

    Computed from e = exp(-|x|) <= 1: s = 1/(1+e) for x >= 0 and e/(1+e) for x < 0, the same
    value written two ways so that no branch ever overflows.
    """
    x = _as_tensor(x)
    e = np.exp(-np.abs(x.data))
    s = np.where(x.data >= 0, 1 / (1 + e), e / (1 + e)).astype(e.dtype, copy=False)
    return make_op(s, (x,), lambda g: (g * s * (1 - s),), "sigmoid")


def tanh(x) -> Tensor:
    """Hyperbolic tangent; derivative 1 - tanh(x)^2."""
    x = _as_tensor(x)
    t = np.tanh(x.data)
    return make_op(t, (x,), lambda g: (g * (1 - t * t),), "tanh")


def gelu(x) -> Tensor:
    """GELU, tanh approximation (PyTorch's ``approximate='tanh'``):

        gelu(x) = 0.5 x (1 + tanh(u)),   u = sqrt(2/pi) (x + 0.044715 x^3)

    The backward rule is the exact derivative of this formula:

        gelu'(x) = 0.5 (1 + tanh(u)) + 0.5 x (1 - tanh(u)^2) sqrt(2/pi) (1 + 3 * 0.044715 x^2)

    (numpy has no erf, so the exact erf form is not offered; the two differ by < 1e-3.)
    """
    x = _as_tensor(x)
    v = x.data
    t = np.tanh(_SQRT_2_OVER_PI * (v + _GELU_CUBIC * v ** 3))
    out = 0.5 * v * (1 + t)

    def backward(g):
        du_dx = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * v * v)
        return (g * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du_dx),)

    return make_op(out, (x,), backward, "gelu")


def softmax(x, dim: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``; every slice along ``dim`` sums to 1.

    Backward (the Jacobian-vector product of softmax): s * (g - sum(g * s, dim)).
    """
    x = _as_tensor(x)
    axis = _axis(dim, x.shape, "softmax")
    e = np.exp(x.data - x.data.max(axis=axis, keepdims=True))
    s = e / e.sum(axis=axis, keepdims=True)
    return make_op(s, (x,), lambda g: (s * (g - (g * s).sum(axis=axis, keepdims=True)),),
                   "softmax")


def log_softmax(x, dim: int = -1) -> Tensor:
    """log(softmax(x)) along ``dim``, computed as z - log(sum(exp(z))) with z = x - max(x).

    Finite even where softmax underflows to 0 (log of that would be -inf).
    Backward: g - softmax(x) * sum(g, dim).
    """
    x = _as_tensor(x)
    axis = _axis(dim, x.shape, "log_softmax")
    z = x.data - x.data.max(axis=axis, keepdims=True)
    out = z - np.log(np.exp(z).sum(axis=axis, keepdims=True))
    return make_op(out, (x,),
                   lambda g: (g - np.exp(out) * g.sum(axis=axis, keepdims=True),),
                   "log_softmax")


# --------------------------------------------------------------------------- modules
class ReLU(Module):
    """Module form of :func:`relu`."""

    def forward(self, x) -> Tensor:
        return relu(x)


class Sigmoid(Module):
    """Module form of :func:`sigmoid`."""

    def forward(self, x) -> Tensor:
        return sigmoid(x)


class Tanh(Module):
    """Module form of :func:`tanh`."""

    def forward(self, x) -> Tensor:
        return tanh(x)


class GELU(Module):
    """Module form of :func:`gelu` (tanh approximation; the only one offered)."""

    def __init__(self, approximate: str = "tanh"):
        super().__init__()
        if approximate != "tanh":
            raise ValueError(f"GELU: approximate={approximate!r} is not supported; tinytorch "
                             f"implements only approximate='tanh' (numpy has no erf)")
        self.approximate = approximate

    def forward(self, x) -> Tensor:
        return gelu(x)

    def extra_repr(self) -> str:
        return f"approximate={self.approximate!r}"


class Softmax(Module):
    """Module form of :func:`softmax` along ``dim``."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x) -> Tensor:
        return softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"


class LogSoftmax(Module):
    """Module form of :func:`log_softmax` along ``dim``."""

    def __init__(self, dim: int = -1):
        super().__init__()
        self.dim = dim

    def forward(self, x) -> Tensor:
        return log_softmax(x, self.dim)

    def extra_repr(self) -> str:
        return f"dim={self.dim}"
