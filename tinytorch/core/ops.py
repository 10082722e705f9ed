"""Joining and selecting tensors: cat, stack and where (chapter 11).

Sequence models assemble tensors out of pieces (heads side by side, positions one after
another) and choose between values elementwise (a mask over attention scores). These are
the free functions for it, with PyTorch's names and semantics:

  * ``cat(tensors, dim=0)`` joins tensors along an existing dimension;
  * ``stack(tensors, dim=0)`` joins same-shaped tensors along a new dimension;
  * ``where(condition, input, other)`` picks ``input`` where ``condition`` is True and
    ``other`` elsewhere, broadcasting all three.

Their gradients route each part of the output gradient back to the tensor it came from:
``cat`` and ``stack`` split it, ``where`` sends it to the branch that was chosen (and zero to
the other). ``Tensor.masked_fill`` is the method form of one ``where`` with a constant.
"""
from __future__ import annotations

import numbers

import numpy as np

from .autograd import make_op
from .tensor import Tensor

__all__ = ["cat", "stack", "where"]


def _check_dim(function: str, dim, ndim: int) -> int:
    """``dim`` (negative counts from the end) as an axis in 0 .. ndim-1."""
    if isinstance(dim, bool) or not isinstance(dim, numbers.Integral):
        raise TypeError(f"{function}(): dim must be an int; got {dim!r}")
    if not -ndim <= dim < ndim:
        raise IndexError(f"{function}(): dim {dim} is out of range for {ndim}-dimensional "
                         f"tensors (valid: {-ndim} to {ndim - 1})")
    return int(dim) % ndim


def _as_tensors(function: str, tensors) -> list:
    if isinstance(tensors, Tensor) or not isinstance(tensors, (list, tuple)):
        raise TypeError(f"{function}() takes a list or tuple of tensors; got "
                        f"{type(tensors).__name__}")
    if len(tensors) == 0:
        raise ValueError(f"{function}() needs at least one tensor; got an empty sequence")
    return [t if isinstance(t, Tensor) else Tensor(t) for t in tensors]


# --------------------------------------------------------------------------- cat
def cat(tensors, dim: int = 0) -> Tensor:
    """Join ``tensors`` along the existing dimension ``dim``.

    All tensors have the same number of dimensions and the same size in every dimension but
    ``dim``; the output's size along ``dim`` is the sum of theirs. Backward: the output
    gradient is cut back into pieces of the inputs' sizes along ``dim``.
    """
    tensors = _as_tensors("cat", tensors)
    first = tensors[0]
    if first.ndim == 0:
        raise ValueError("cat(): zero-dimensional tensors cannot be concatenated; "
                         "use stack() to join them along a new dimension")
    axis = _check_dim("cat", dim, first.ndim)
    for i, t in enumerate(tensors):
        rest_t = t.shape[:axis] + t.shape[axis + 1:]
        rest_0 = first.shape[:axis] + first.shape[axis + 1:]
        if t.ndim != first.ndim or rest_t != rest_0:
            raise ValueError(f"cat(): tensor {i} has shape {t.shape} but tensor 0 has shape "
                             f"{first.shape}; they must match in every dimension except "
                             f"dim={dim}")
    out = np.concatenate([t.data for t in tensors], axis=axis)
    cuts = np.cumsum([t.shape[axis] for t in tensors])[:-1]

    def backward(g):
        return tuple(np.split(g, cuts, axis=axis))

    return make_op(out, tuple(tensors), backward, "cat")


# --------------------------------------------------------------------------- stack
def stack(tensors, dim: int = 0) -> Tensor:
    """Join same-shaped ``tensors`` along a new dimension inserted at position ``dim``.

    For inputs of shape S the output has shape S with len(tensors) inserted at ``dim``
    (``dim`` ranges over -(len(S) + 1) .. len(S), as in PyTorch). Backward: input i receives
    the slice i of the output gradient along ``dim``.
    """
    tensors = _as_tensors("stack", tensors)
    shape = tensors[0].shape
    for i, t in enumerate(tensors):
        if t.shape != shape:
            raise ValueError(f"stack(): tensor {i} has shape {t.shape} but tensor 0 has shape "
                             f"{shape}; stack needs tensors of equal shape")
    axis = _check_dim("stack", dim, len(shape) + 1)
    out = np.stack([t.data for t in tensors], axis=axis)

    def backward(g):
        return tuple(np.moveaxis(g, axis, 0))   # iterating the moved axis gives the slices

    return make_op(out, tuple(tensors), backward, "stack")


# --------------------------------------------------------------------------- where
def _condition(function: str, condition) -> np.ndarray:
    data = condition.data if isinstance(condition, Tensor) else np.asarray(condition)
    if data.dtype != np.bool_:
        raise TypeError(f"{function}(): the condition must be a boolean array or Tensor; got "
                        f"dtype {data.dtype} (compare first, e.g. x > 0)")
    return data


def where(condition, input, other) -> Tensor:
    """``input`` where ``condition`` is True, ``other`` elsewhere, elementwise.

    ``condition`` is a boolean array or Tensor; ``input`` and ``other`` are Tensors, arrays or
    Python numbers (a number takes the dtype of the other operand when that is a floating
    Tensor). The three broadcast together to the output's shape. Backward: each branch
    receives the output gradient where it was chosen and 0 elsewhere (summed back over
    broadcast dimensions).
    """
    cond = _condition("where", condition)
    if isinstance(input, Tensor) and not isinstance(other, Tensor):
        other = input._lift(other)
    elif isinstance(other, Tensor) and not isinstance(input, Tensor):
        input = other._lift(input)
    else:
        input = input if isinstance(input, Tensor) else Tensor(input)
        other = other if isinstance(other, Tensor) else Tensor(other)
    try:
        np.broadcast_shapes(cond.shape, input.shape, other.shape)
    except ValueError:
        raise ValueError(f"where(): condition {cond.shape}, input {input.shape} and other "
                         f"{other.shape} cannot be broadcast together") from None
    out = np.where(cond, input.data, other.data)
    chosen = cond.astype(out.dtype)    # a 0/1 factor: faster than np.where on the way back

    def backward(g):
        return (g * chosen if input.requires_grad else None,
                g * (1 - chosen) if other.requires_grad else None)

    return make_op(out, (input, other), backward, "where")
