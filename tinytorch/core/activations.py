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

from ..checks import check_dim
from .autograd import make_op
from .module import Module
from .numerics import stable_log_softmax, stable_sigmoid, stable_softmax
from .tensor import Tensor, as_tensor

__all__ = ["ReLU", "Sigmoid", "Tanh", "GELU", "Softmax", "LogSoftmax",
           "relu", "sigmoid", "tanh", "gelu", "softmax", "log_softmax"]

_SQRT_2_OVER_PI = math.sqrt(2.0 / math.pi)
_GELU_CUBIC = 0.044715
_ONE_OVER_SQRT_2 = 1 / math.sqrt(2.0)
_ONE_OVER_SQRT_2PI = 1 / math.sqrt(2.0 * math.pi)
_TWO_OVER_SQRT_PI = 2 / math.sqrt(math.pi)


# --------------------------------------------------------------------------- functional
def relu(x) -> Tensor:
    """max(x, 0); derivative 1 where x > 0, else 0 (0 at x = 0, as in PyTorch).

    NaN stays NaN (np.maximum propagates it), so a corrupt input reaches the loss, where the
    Trainer's NaN guard stops training, instead of silently becoming 0.
    """
    x = as_tensor(x)
    positive = x.data > 0
    out = np.maximum(x.data, 0)  # a Python 0 keeps x's dtype
    return make_op(out, (x,), lambda g: (_relu_backward(g, positive),), "relu")


def _relu_backward(g: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """g where x > 0, else 0, even where g is infinite or NaN (as PyTorch)."""
    out = g * positive
    # 0 * inf is NaN, but the slope is exactly 0 there. Any NaN or inf in the product shows
    # in its dot product with itself (so may a huge finite value, which is harmless), and only
    # then is the exact (three times slower) selection paid for.
    flat = out.reshape(-1)
    if not math.isfinite(flat @ flat):
        out = np.where(positive, g, 0)
    return out


def sigmoid(x) -> Tensor:
    """1 / (1 + exp(-x)); derivative s * (1 - s).

    Computed without overflow for any x (see :func:`~tinytorch.core.numerics.stable_sigmoid`).
    """
    x = as_tensor(x)
    s = stable_sigmoid(x.data)
    return make_op(s, (x,), lambda g: (g * s * (1 - s),), "sigmoid")


def tanh(x) -> Tensor:
    """Hyperbolic tangent; derivative 1 - tanh(x)^2 (the Tensor method ``x.tanh()``)."""
    return as_tensor(x).tanh()


def erf(x: np.ndarray) -> np.ndarray:
    """The error function, elementwise, to float32 precision (numpy has none).

    Small |x| (< 0.5): its Taylor series to x^11 (the next term is below 2e-8 of the value).
    Otherwise from erfc(|x|) = t exp(-x^2 + P(t)), t = 1 / (1 + |x|/2), the Chebyshev-fitted
    polynomial of Numerical Recipes (2nd ed., section 6.2), whose relative error is below
    1.2e-7 everywhere. Computed in float64; returned in the input's floating dtype.
    """
    v = np.asarray(x, dtype=np.float64)
    z = np.abs(v)
    t = 1.0 / (1.0 + 0.5 * z)
    poly = -1.26551223 + t * (1.00002368 + t * (0.37409196 + t * (0.09678418 + t * (
        -0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587 + t * (
            -0.82215223 + t * 0.17087277))))))))
    erfc = t * np.exp(-z * z + poly)
    large = np.sign(v) * (1.0 - erfc)
    s = v * v
    small = _TWO_OVER_SQRT_PI * v * (1 + s * (-1 / 3 + s * (1 / 10 + s * (-1 / 42 + s * (
        1 / 216 + s * (-1 / 1320))))))
    out = np.where(z < 0.5, small, large)
    dtype = x.dtype if isinstance(x, np.ndarray) and x.dtype.kind == "f" else np.float64
    return out.astype(dtype, copy=False)


def gelu(x, approximate: str = "none") -> Tensor:
    """GELU, x * Phi(x) with Phi the standard normal CDF, as PyTorch's ``nn.GELU``.

    ``approximate="none"`` (the default, PyTorch's too) is the exact form::

        gelu(x) = 0.5 x (1 + erf(x / sqrt(2))),   gelu'(x) = Phi(x) + x phi(x)

    with phi the normal density. ``approximate="tanh"`` is the cheaper formula of GPT-2::

        gelu(x) = 0.5 x (1 + tanh(u)),   u = sqrt(2/pi) (x + 0.044715 x^3)

    whose backward rule is the exact derivative of that formula. The two differ by < 5e-4.
    """
    x = as_tensor(x)
    v = x.data
    if approximate == "none":
        cdf = 0.5 * (1 + erf(v * _ONE_OVER_SQRT_2))
        out = v * cdf
        return make_op(out, (x,),
                       lambda g: (g * (cdf + v * _ONE_OVER_SQRT_2PI * np.exp(-0.5 * v * v)),),
                       "gelu")
    if approximate != "tanh":
        raise ValueError(f"gelu: approximate must be 'none' or 'tanh'; got {approximate!r}")
    t = np.tanh(_SQRT_2_OVER_PI * (v + _GELU_CUBIC * v * v * v))  # v*v*v: numpy's ** is slow
    out = 0.5 * v * (1 + t)

    def backward(g):
        du_dx = _SQRT_2_OVER_PI * (1 + 3 * _GELU_CUBIC * v * v)
        return (g * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du_dx),)

    return make_op(out, (x,), backward, "gelu")


def softmax(x, dim: int = -1) -> Tensor:
    """exp(x) / sum(exp(x)) along ``dim``; every slice along ``dim`` sums to 1.

    Backward (the Jacobian-vector product of softmax): s * (g - sum(g * s, dim)).
    """
    x = as_tensor(x)
    axis = check_dim("softmax", dim, x.shape)
    s = stable_softmax(x.data, axis)
    return make_op(s, (x,), lambda g: (s * (g - (g * s).sum(axis=axis, keepdims=True)),),
                   "softmax")


def log_softmax(x, dim: int = -1) -> Tensor:
    """log(softmax(x)) along ``dim``, computed as z - log(sum(exp(z))) with z = x - max(x).

    Finite even where softmax underflows to 0 (log of that would be -inf).
    Backward: g - softmax(x) * sum(g, dim).
    """
    x = as_tensor(x)
    axis = check_dim("log_softmax", dim, x.shape)
    out = stable_log_softmax(x.data, axis)
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
    """Module form of :func:`gelu`: ``approximate="none"`` (exact, the default) or ``"tanh"``."""

    def __init__(self, approximate: str = "none"):
        super().__init__()
        if approximate not in ("none", "tanh"):
            raise ValueError(f"GELU: approximate must be 'none' or 'tanh'; got {approximate!r}")
        self.approximate = approximate

    def forward(self, x) -> Tensor:
        return gelu(x, self.approximate)

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
