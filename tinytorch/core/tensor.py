"""Tensor: a numpy array that remembers how it was made, so gradients can flow back.

Chapter 01 builds the array side: shapes, dtypes, broadcasting, reductions, reshaping and
matmul. Each operation computes its value with numpy and hands it to ``make_op`` with a
backward rule; Chapter 06 opens that engine (:mod:`tinytorch.core.autograd`), which records
the graph and runs the rules in reverse.

Conventions (as in PyTorch):
  * Python numbers and lists become float32; numpy arrays keep their dtype, so float64
    gradient checks and integer class labels work.
  * Dimensions are named ``dim`` (``keepdim``); numpy's ``axis`` (``keepdims``) is accepted
    as an alias.
"""
from __future__ import annotations

import numpy as np

from . import autograd
from .autograd import make_op

__all__ = ["Tensor", "as_tensor"]


def _to_array(data) -> np.ndarray:
    """The numpy array behind ``data``: a Tensor's own array, an ndarray or numpy scalar as
    it is (its dtype kept), anything else (numbers, nested lists) converted to float32.
    """
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, np.generic):
        return np.asarray(data)
    return np.asarray(data, dtype=np.float32)


def as_tensor(x) -> Tensor:
    """``x`` itself if it is a Tensor, else a new Tensor of it (as ``torch.as_tensor``)."""
    return x if isinstance(x, Tensor) else Tensor(x)


def _resolve_dim(dim, axis, name: str = "dim"):
    """PyTorch's ``dim`` with numpy's ``axis`` as an alias (give one, not both)."""
    if axis is not None:
        if dim is not None:
            raise TypeError(f"give {name}= or axis=, not both (got dim={dim!r}, axis={axis!r})")
        return axis
    return dim


def _normalize_dims(dim, ndim: int) -> tuple:
    """``dim`` (None, an int or a sequence of ints) as a tuple of non-negative axes.

    An empty sequence means every dimension, like None: PyTorch 2.x reduces everything for
    ``sum(dim=())``, where numpy's ``sum(axis=())`` reduces nothing.
    """
    dims = tuple(dim) if isinstance(dim, (tuple, list)) else (dim,)
    if dim is None or not dims:
        return tuple(range(ndim))
    for d in dims:
        if not isinstance(d, (int, np.integer)) or isinstance(d, bool):
            raise TypeError(f"dimension must be an int; got {d!r}")
        if not -max(ndim, 1) <= d < max(ndim, 1):
            raise IndexError(f"dimension {d} is out of range for a tensor with {ndim} dims")
    return tuple(sorted({int(d) % max(ndim, 1) for d in dims})) if ndim else ()


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation."""

    __array_priority__ = 1000  # so ndarray (op) Tensor calls Tensor's reflected method
    __hash__ = object.__hash__  # by identity, as the engine keys its dicts by tensor

    def __init__(self, data, requires_grad: bool = False):
        self.data = _to_array(data)
        if requires_grad and self.data.dtype.kind != "f":
            raise TypeError(
                f"only floating-point tensors can require gradients; got dtype {self.data.dtype}")
        self.requires_grad = requires_grad
        self.grad = None
        self._parents: tuple = ()
        self._backward = None
        self._op = ""
        self._retains_grad = False

    @classmethod
    def _from_array(cls, data: np.ndarray) -> Tensor:
        """A graph-free Tensor around a numpy result (the engine's fast path, no checks)."""
        t = object.__new__(cls)
        t.data = data if type(data) is np.ndarray else np.asarray(data)
        t.requires_grad = False
        t.grad = None
        t._parents = ()
        t._backward = None
        t._op = ""
        t._retains_grad = False
        return t

    # ----------------------------------------------------------------- array facts
    @property
    def shape(self) -> tuple:
        return self.data.shape

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def ndim(self) -> int:
        return self.data.ndim

    @property
    def size(self) -> int:
        return self.data.size

    @property
    def nbytes(self) -> int:
        return self.data.nbytes

    @property
    def is_leaf(self) -> bool:
        return self._backward is None

    def __len__(self) -> int:
        return len(self.data)

    def __repr__(self) -> str:
        body = np.array2string(self.data, separator=", ", prefix="Tensor(")
        suffix = ", requires_grad=True" if self.requires_grad else ""
        return f"Tensor({body}{suffix})"

    def numpy(self) -> np.ndarray:
        return self.data

    def item(self) -> float:
        if self.data.size != 1:
            raise ValueError(f"item() needs a tensor with one element; got shape {self.shape}")
        return self.data.item()

    def detach(self) -> Tensor:
        """The same data, cut off from the graph."""
        return Tensor(self.data)

    def retain_grad(self) -> Tensor:
        """Keep this non-leaf tensor's gradient in ``.grad`` after ``backward()``."""
        self._retains_grad = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def _lift(self, other) -> Tensor:
        """Turn a Python number or array into a Tensor; numbers take this tensor's dtype."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (int, float)) and self.data.dtype.kind == "f":
            return Tensor(np.asarray(other, dtype=self.data.dtype))
        return Tensor(other)

    # ----------------------------------------------------------------- elementwise
    def _broadcast_error(self, other: Tensor, op: str) -> ValueError:
        return ValueError(
            f"{op}: shapes {self.shape} and {other.shape} cannot be broadcast together")

    def __add__(self, other) -> Tensor:
        other = self._lift(other)
        try:
            out = self.data + other.data
        except ValueError:
            raise self._broadcast_error(other, "add") from None
        return make_op(out, (self, other), lambda g: (g, g), "+")

    def __sub__(self, other) -> Tensor:
        other = self._lift(other)
        try:
            out = self.data - other.data
        except ValueError:
            raise self._broadcast_error(other, "sub") from None
        return make_op(out, (self, other), lambda g: (g, -g), "-")

    def __mul__(self, other) -> Tensor:
        other = self._lift(other)
        a, b = self.data, other.data
        try:
            out = a * b
        except ValueError:
            raise self._broadcast_error(other, "mul") from None
        return make_op(out, (self, other), lambda g: (g * b, g * a), "*")

    def __truediv__(self, other) -> Tensor:
        other = self._lift(other)
        a, b = self.data, other.data
        try:
            out = a / b
        except ValueError:
            raise self._broadcast_error(other, "div") from None
        return make_op(out, (self, other), lambda g: (g / b, -g * a / (b * b)), "/")

    def __pow__(self, exponent) -> Tensor:
        if isinstance(exponent, Tensor):
            raise TypeError("Tensor ** Tensor is not supported; the exponent must be a number")
        x, p = self.data, exponent
        if p == 2:  # numpy's float32 power is slow; x*x is exact and fast
            return make_op(x * x, (self,), lambda g: (g * 2 * x,), "**2")
        if p == 0:  # d/dx x**0 = 0 everywhere, including x = 0 (PyTorch)
            return make_op(np.ones_like(x), (self,), lambda g: (np.zeros_like(g),), "**0")
        return make_op(x ** p, (self,), lambda g: (g * p * x ** (p - 1),), f"**{p}")

    def __neg__(self) -> Tensor:
        return make_op(-self.data, (self,), lambda g: (-g,), "neg")

    def __radd__(self, other) -> Tensor:
        return self._lift(other) + self

    def __rsub__(self, other) -> Tensor:
        return self._lift(other) - self

    def __rmul__(self, other) -> Tensor:
        return self._lift(other) * self

    def __rtruediv__(self, other) -> Tensor:
        return self._lift(other) / self

    def exp(self) -> Tensor:
        out = np.exp(self.data)
        return make_op(out, (self,), lambda g: (g * out,), "exp")

    def log(self) -> Tensor:
        x = self.data
        return make_op(np.log(x), (self,), lambda g: (g / x,), "log")

    def sqrt(self) -> Tensor:
        out = np.sqrt(self.data)
        return make_op(out, (self,), lambda g: (g / (2 * out),), "sqrt")

    def tanh(self) -> Tensor:
        out = np.tanh(self.data)
        return make_op(out, (self,), lambda g: (g * (1 - out * out),), "tanh")

    def masked_fill(self, mask, value) -> Tensor:
        """A copy with ``value`` wherever the boolean ``mask`` is True (PyTorch's semantics).

        ``mask`` broadcasts to this tensor's shape (e.g. a (T, T) causal mask over (B, H, T, T)
        scores); ``value`` is a number, such as ``float("-inf")``. The gradient is 0 at the
        filled places and passes through elsewhere. Both passes avoid numpy's slow paths:
        ``copyto(where=)`` instead of ``np.where`` or boolean-index assignment, and a
        precomputed 0/1 mask multiplied into the gradient.
        """
        m = mask.data if isinstance(mask, Tensor) else np.asarray(mask)
        if m.dtype != np.bool_:
            raise TypeError(f"masked_fill: the mask must be boolean; got dtype {m.dtype}")
        if isinstance(value, Tensor) or not isinstance(value, (int, float, bool, np.generic)):
            raise TypeError(f"masked_fill: value must be a number; got {type(value).__name__}")
        try:
            fits = np.broadcast_shapes(m.shape, self.shape) == self.shape
        except ValueError:
            fits = False
        if not fits:
            raise ValueError(f"masked_fill: mask of shape {m.shape} does not broadcast to the "
                             f"tensor's shape {self.shape}")
        out = self.data.copy()
        np.copyto(out, np.asarray(value, dtype=out.dtype), where=m)
        keep = (~m).astype(out.dtype)
        return make_op(out, (self,), lambda g: (g * keep,), "masked_fill")

    # ----------------------------------------------------------------- matmul
    def __matmul__(self, other) -> Tensor:
        """``self @ other`` with numpy's matmul rules (1-D operands are vectors, leading
        dimensions broadcast); the backward pass returns each operand's gradient in its own shape.
        A 0-d operand, inner dimensions that differ or batch dimensions that do not broadcast raise
        ValueError naming the shapes.
        """
        other = self._lift(other)
        a, b = self.data, other.data
        if a.ndim == 0 or b.ndim == 0:
            raise ValueError(f"matmul: both operands need at least 1 dimension; got shapes "
                             f"{a.shape} and {b.shape}")
        inner_a = a.shape[-1]
        inner_b = b.shape[0] if b.ndim == 1 else b.shape[-2]
        if inner_a != inner_b:
            raise ValueError(f"matmul: shapes {a.shape} and {b.shape} are not aligned: "
                             f"{inner_a} (last dim of left) != {inner_b} "
                             f"({'first' if b.ndim == 1 else 'second-to-last'} dim of right)")
        if a.ndim > 2 and b.ndim > 2:
            try:
                np.broadcast_shapes(a.shape[:-2], b.shape[:-2])
            except ValueError:
                raise ValueError(f"matmul: batch dimensions {a.shape[:-2]} and {b.shape[:-2]} "
                                 f"of shapes {a.shape} and {b.shape} cannot be broadcast "
                                 f"together") from None
        return make_op(a @ b, (self, other), lambda g: _matmul_backward(a, b, g), "@")

    def __rmatmul__(self, other) -> Tensor:
        return self._lift(other) @ self

    # ----------------------------------------------------------------- reductions
    def sum(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
        """Sum over ``dim`` (an int, a tuple of ints, or None for every dimension).

        As in PyTorch, an empty tuple ``dim=()`` also sums over every dimension (numpy's
        ``axis=()`` would sum over none); the same holds for ``mean``, ``var`` and ``max``.
        """
        keepdim = keepdim if keepdims is None else keepdims
        x = self.data
        dims = _normalize_dims(_resolve_dim(dim, axis), x.ndim)
        out = x.sum(axis=dims, keepdims=keepdim)
        return make_op(out, (self,), lambda g: _sum_backward(g, x.shape, dims, keepdim), "sum")

    def mean(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
        """Average over ``dim``; the mean of no elements is an error, not a silent 0/0."""
        keepdim = keepdim if keepdims is None else keepdims
        dims = _normalize_dims(_resolve_dim(dim, axis), self.ndim)
        count = 1
        for d in dims:
            count *= self.shape[d]
        if count == 0:
            raise ValueError(f"mean() of an empty selection: shape {self.shape}, dims {dims}")
        return self.sum(dims, keepdim) * (1.0 / count)

    def var(self, dim=None, keepdim: bool = False, *, correction: int = 1, unbiased=None,
            axis=None, keepdims=None) -> Tensor:
        """Variance over ``dim``: sum of squared deviations / (count - correction).

        ``correction=1`` (the default, as in PyTorch) is the unbiased estimate; LayerNorm
        uses ``correction=0``. ``unbiased=False`` is PyTorch's older spelling of it.
        """
        keepdim = keepdim if keepdims is None else keepdims
        if unbiased is not None:
            correction = 1 if unbiased else 0
        dims = _normalize_dims(_resolve_dim(dim, axis), self.ndim)
        count = 1
        for d in dims:
            count *= self.shape[d]
        if count - correction <= 0:
            raise ValueError(f"var(): {count} element(s) over dims {dims} of shape {self.shape} "
                             f"with correction={correction} leaves no degrees of freedom")
        centred = self - self.mean(dims, keepdim=True)
        return (centred * centred).sum(dims, keepdim) * (1.0 / (count - correction))

    def max(self, dim=None, keepdim: bool = False, *, axis=None, keepdims=None) -> Tensor:
        """Largest value along ``dim``; ties share the gradient equally."""
        keepdim = keepdim if keepdims is None else keepdims
        x = self.data
        dims = _normalize_dims(_resolve_dim(dim, axis), x.ndim)
        if x.size == 0:
            raise ValueError(f"max() of an empty tensor of shape {x.shape}")
        top = x.max(axis=dims, keepdims=True)
        out = top if keepdim else np.squeeze(top, axis=dims)
        return make_op(out, (self,), lambda g: _max_backward(g, x, top, dims, keepdim), "max")

    def argmax(self, dim=None, keepdim: bool = False, *, axis=None) -> Tensor:
        """Index of the largest value (not differentiable)."""
        dim = _resolve_dim(dim, axis)
        return Tensor(np.argmax(self.data, axis=dim, keepdims=keepdim))

    # ----------------------------------------------------------------- shape
    def reshape(self, *shape) -> Tensor:
        """The same elements in ``shape`` (given as separate ints or one tuple; one entry may be
        -1), like ``torch.Tensor.reshape``. The gradient is reshaped back to this tensor's shape.
        A shape with another number of elements raises ValueError naming both shapes.
        """
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        original = self.shape
        try:
            out = self.data.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape shape {original} "
                             f"({self.size} elements) into {shape}") from None
        return make_op(out, (self,), lambda g: (g.reshape(original),), "reshape")

    def view(self, *shape) -> Tensor:
        return self.reshape(*shape)

    def permute(self, *dims) -> Tensor:
        """Reorder the dimensions: output dimension i is input dimension ``dims[i]``."""
        if len(dims) == 1 and isinstance(dims[0], (tuple, list)):
            dims = tuple(dims[0])
        if sorted(d % max(self.ndim, 1) for d in dims) != list(range(self.ndim)):
            raise ValueError(f"permute: {dims} is not a permutation of the {self.ndim} dims "
                             f"of shape {self.shape}")
        dims = tuple(d % self.ndim for d in dims)
        inverse = tuple(np.argsort(dims))
        return make_op(self.data.transpose(dims), (self,),
                       lambda g: (g.transpose(inverse),), "permute")

    def transpose(self, dim0=None, dim1=None) -> Tensor:
        """Swap dimensions ``dim0`` and ``dim1`` (PyTorch); with neither, reverse them all."""
        if dim0 is None and dim1 is None:
            return self.permute(tuple(reversed(range(self.ndim))))
        if dim0 is None or dim1 is None:
            raise TypeError(f"transpose() takes two dims to swap, or none; got {dim0}, {dim1}")
        d0, d1 = _normalize_dims(dim0, self.ndim)[0], _normalize_dims(dim1, self.ndim)[0]
        perm = list(range(self.ndim))
        perm[d0], perm[d1] = perm[d1], perm[d0]
        return make_op(self.data.transpose(perm), (self,),
                       lambda g: (g.transpose(perm),), "transpose")

    @property
    def T(self) -> Tensor:
        return self.transpose()

    def __getitem__(self, index) -> Tensor:
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        x = self.data
        advanced = isinstance(index, (list, np.ndarray)) or (
            isinstance(index, tuple) and any(isinstance(i, (list, np.ndarray)) for i in index))
        return make_op(x[index], (self,),
                       lambda g: _getitem_backward(g, x, index, advanced), "getitem")

    # ----------------------------------------------------------------- engine entry point
    def backward(self, grad=None, retain_graph=None) -> None:
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf that requires it.

        ``grad`` is the gradient flowing in from above; it defaults to 1 for a scalar. The
        walk itself is the engine's (:func:`tinytorch.core.autograd.backward`).

        The graph is never freed, so calling ``backward()`` again on the same graph runs it
        again and adds the same gradients a second time. (PyTorch frees the graph and raises
        on the second call unless the first passed ``retain_graph=True``.) ``retain_graph``
        is accepted so that PyTorch code runs unchanged; tinytorch always retains the graph.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require a gradient "
                               "(no input had requires_grad=True, or it was built under no_grad)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without an argument needs a scalar output; "
                                   f"got shape {self.shape}; pass the output gradient")
            # np.ones is a Python wrapper; this is two C calls
            grad = np.array(1, self.data.dtype).reshape(self.data.shape)
        else:
            grad = _to_array(grad)
        if grad.shape != self.data.shape:
            raise ValueError(f"backward(): gradient shape {grad.shape} does not match "
                             f"tensor shape {self.shape}")
        autograd.backward(self, grad)


# --------------------------------------------------------------------- backward rules
# Chapter 06 teaches these: each maps the gradient of an output to its inputs' gradients.
def _sum_backward(g: np.ndarray, shape: tuple, dims: tuple, keepdim: bool) -> tuple:
    """Every summed element receives the output's gradient: broadcast it back."""
    if not keepdim:
        g = np.expand_dims(g, dims)
    return (np.broadcast_to(g, shape),)


def _max_backward(g, x, top, dims, keepdim) -> tuple:
    """The gradient goes to the maximal elements, shared equally between ties."""
    if not keepdim:
        g = np.expand_dims(g, dims)
    mask = x == top
    return (g * mask / mask.sum(axis=dims, keepdims=True),)


def _matmul_backward(a: np.ndarray, b: np.ndarray, g: np.ndarray) -> tuple:
    """For C = A @ B: dA = dC @ B^T and dB = A^T @ dC, with 1-D operands as row/column."""
    if a.ndim == 1 and b.ndim == 1:
        return g * b, g * a
    a2 = a[None, :] if a.ndim == 1 else a
    b2 = b[:, None] if b.ndim == 1 else b
    g2 = g
    if a.ndim == 1:
        g2 = np.expand_dims(g2, -2)
    if b.ndim == 1:
        g2 = np.expand_dims(g2, -1)
    ga = g2 @ np.swapaxes(b2, -1, -2)
    gb = np.swapaxes(a2, -1, -2) @ g2
    if a.ndim == 1:
        ga = ga.squeeze(-2)
    if b.ndim == 1:
        gb = gb.squeeze(-1)
    return ga, gb


def _getitem_backward(g: np.ndarray, x: np.ndarray, index, advanced: bool) -> tuple:
    """Scatter the gradient back to the selected places; repeated indices add up."""
    grad = np.zeros_like(x, dtype=g.dtype)
    if advanced:  # an index array may repeat a place: plain assignment would not add
        np.add.at(grad, index, g)
    else:
        grad[index] = g
    return (grad,)
