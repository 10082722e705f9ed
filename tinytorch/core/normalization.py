"""LayerNorm: rescale every feature vector to zero mean and unit variance (chapter 13).

For each position of a sequence (each vector along the last ``len(normalized_shape)``
dimensions), with ``n`` the number of normalised elements::

    mean = sum(x) / n
    var  = sum((x - mean)^2) / n                 (biased: divided by n, as PyTorch)
    xhat = (x - mean) / sqrt(var + eps)
    y    = xhat * weight + bias                  (weight starts at ones, bias at zeros)

It is one fused operation: the forward pass keeps ``xhat`` and ``1/sqrt(var + eps)``, and the
backward pass is the closed form (derived on chapter 13's page), with ``gx = g * weight``::

    dx      = (gx - mean(gx) - xhat * mean(gx * xhat)) / sqrt(var + eps)
    dweight = sum of g * xhat over the leading dimensions
    dbias   = sum of g over the leading dimensions

Composed from ``mean``, ``-``, ``*`` and ``sqrt`` the same layer records about ten graph
nodes and allocates a gradient for each; fused it records one.
"""
from __future__ import annotations

import numbers

import numpy as np

from .autograd import make_op
from .module import Module, Parameter
from .tensor import Tensor, as_tensor

__all__ = ["LayerNorm", "layer_norm"]


def _normalized_shape(normalized_shape) -> tuple:
    """An int or a sequence of positive ints, as a tuple."""
    if isinstance(normalized_shape, numbers.Integral):
        shape = (normalized_shape,)
    elif isinstance(normalized_shape, (tuple, list)):
        shape = tuple(normalized_shape)
    else:
        shape = ()
    if not shape or any(isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1
                        for n in shape):
        raise ValueError(f"LayerNorm: normalized_shape must be a positive int or a non-empty "
                         f"sequence of them; got {normalized_shape!r}")
    return tuple(int(n) for n in shape)


def layer_norm(x, normalized_shape, weight=None, bias=None, eps: float = 1e-5) -> Tensor:
    """Normalise ``x`` over its last ``len(normalized_shape)`` dimensions (see the module
    docstring); ``weight`` and ``bias`` (Tensors of shape ``normalized_shape``, or None) scale
    and shift the result. Same semantics as ``torch.nn.functional.layer_norm``."""
    x = as_tensor(x)
    shape = _normalized_shape(normalized_shape)
    k = len(shape)
    if x.shape[x.ndim - k:] != shape or x.ndim < k:
        raise ValueError(f"LayerNorm({shape}): the last {k} dimension(s) of the input must be "
                         f"{shape}; got input of shape {x.shape}")
    for name, p in (("weight", weight), ("bias", bias)):
        if p is not None and p.shape != shape:
            raise ValueError(f"LayerNorm: {name} must have shape {shape}; got {p.shape}")
    axes = tuple(range(x.ndim - k, x.ndim))
    lead = tuple(range(x.ndim - k))
    data = x.data
    mean = data.mean(axis=axes, keepdims=True)
    centred = data - mean
    var = (centred * centred).mean(axis=axes, keepdims=True)
    rstd = 1.0 / np.sqrt(var + eps)
    xhat = centred * rstd
    out = xhat
    if weight is not None:
        out = out * weight.data
    if bias is not None:
        out = out + bias.data

    affine = [p for p in (weight, bias) if p is not None]

    def backward(g):
        gx = g * weight.data if weight is not None else g
        grads = [None]
        if x.requires_grad:
            grad_x = gx - gx.mean(axis=axes, keepdims=True)
            grad_x -= xhat * (gx * xhat).mean(axis=axes, keepdims=True)
            grad_x *= rstd
            grads[0] = grad_x
        if weight is not None:
            grads.append((g * xhat).sum(axis=lead))
        if bias is not None:
            grads.append(g.sum(axis=lead))
        return grads

    parents = (x, *affine)
    return make_op(out, parents, backward, "layer_norm")


class LayerNorm(Module):
    """Layer normalisation over the last ``len(normalized_shape)`` dimensions, as
    ``torch.nn.LayerNorm``: ``.weight`` (ones) and ``.bias`` (zeros) of shape
    ``normalized_shape``, biased variance, ``eps`` added to it inside the square root.

    ``LayerNorm(64)`` on an input of shape (B, T, 64) normalises each of the B*T vectors of
    64 features on its own: unlike batch normalisation, nothing is shared across the batch
    or the sequence, so training and evaluation compute the same thing.
    """

    def __init__(self, normalized_shape, eps: float = 1e-5, elementwise_affine: bool = True,
                 bias: bool = True):
        """``weight`` (ones) and ``bias`` (zeros) of shape ``normalized_shape``, float32;
        ``elementwise_affine=False`` keeps neither, ``bias=False`` only the weight."""
        super().__init__()
        self.normalized_shape = _normalized_shape(normalized_shape)
        if not eps > 0:
            raise ValueError(f"LayerNorm: eps must be positive; got {eps!r}")
        self.eps = float(eps)
        self.weight = (Parameter(np.ones(self.normalized_shape, dtype=np.float32))
                       if elementwise_affine else None)
        self.bias = (Parameter(np.zeros(self.normalized_shape, dtype=np.float32))
                     if elementwise_affine and bias else None)

    def forward(self, x) -> Tensor:
        """:func:`layer_norm` of x with this layer's shape, weight, bias and eps."""
        return layer_norm(x, self.normalized_shape, self.weight, self.bias, self.eps)

    def extra_repr(self) -> str:
        return (f"{self.normalized_shape}, eps={self.eps:g}, "
                f"elementwise_affine={self.weight is not None}")
