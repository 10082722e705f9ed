"""Tensor: a numpy array that remembers how it was made, so gradients can flow back.

Chapter 01 builds the array side (shapes, dtypes, broadcasting, matmul); chapter 06 the
engine. Every operation returns a new Tensor that records its parents and a backward rule:
a function from the gradient of the output to the gradients of the parents. ``backward()``
visits the graph in reverse topological order, applying each rule once, and accumulates
the results into the ``.grad`` of the leaves (tensors created with ``requires_grad=True``).

Conventions (as in PyTorch):
  * Python numbers and lists become float32; numpy arrays keep their dtype, so float64
    gradient checks and integer class labels work.
  * Broadcasting is undone in the backward pass: each gradient is summed back to the shape
    of the tensor it belongs to.
  * Gradients accumulate across ``backward()`` calls until you reset them (``.grad = None``,
    or an optimizer's ``zero_grad()``).
  * Inside ``with no_grad():`` no graph is recorded.

To add an operation, compute the forward value with numpy and call :func:`make_op` with a
backward rule; :mod:`tinytorch.core.activations` and :mod:`tinytorch.core.spatial` do so.
"""
from __future__ import annotations

import contextlib

import numpy as np

__all__ = ["Tensor", "no_grad", "enable_grad", "is_grad_enabled", "make_op"]

_grad_enabled = True


@contextlib.contextmanager
def no_grad():
    """Context manager (and decorator) inside which operations record no graph."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, False
    try:
        yield
    finally:
        _grad_enabled = previous


@contextlib.contextmanager
def enable_grad():
    """Turn graph recording back on inside a ``no_grad`` block."""
    global _grad_enabled
    previous, _grad_enabled = _grad_enabled, True
    try:
        yield
    finally:
        _grad_enabled = previous


def is_grad_enabled() -> bool:
    return _grad_enabled


def _to_array(data) -> np.ndarray:
    if isinstance(data, Tensor):
        return data.data
    if isinstance(data, np.ndarray):
        return data
    if isinstance(data, np.generic):
        return np.asarray(data)
    return np.asarray(data, dtype=np.float32)


def _unbroadcast(grad: np.ndarray, shape: tuple) -> np.ndarray:
    """Sum ``grad`` over the axes that broadcasting stretched, so it has ``shape``."""
    if grad.shape == shape:
        return grad
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    stretched = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if stretched:
        grad = grad.sum(axis=stretched, keepdims=True)
    return grad


def _normalize_axes(axis, ndim: int) -> tuple:
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    return tuple(a % ndim for a in axes)


def make_op(data: np.ndarray, parents: tuple, backward, op: str) -> "Tensor":
    """Wrap the result of a numpy computation as a Tensor in the graph.

    ``backward(grad_out)`` must return one gradient (or None) per parent, each either of the
    parent's shape or broadcastable to it; it must not modify ``grad_out`` in place. When no
    parent requires a gradient, or inside ``no_grad()``, no graph is recorded.
    """
    out = Tensor(data)
    if _grad_enabled and any(p.requires_grad for p in parents):
        out.requires_grad = True
        out._parents = parents
        out._backward = backward
        out._op = op
    return out


class Tensor:
    """An n-dimensional array with reverse-mode automatic differentiation."""

    __array_priority__ = 1000  # so ndarray (op) Tensor calls Tensor's reflected method

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

    def detach(self) -> "Tensor":
        """The same data, cut off from the graph."""
        return Tensor(self.data)

    def retain_grad(self) -> "Tensor":
        """Keep this non-leaf tensor's gradient in ``.grad`` after ``backward()``."""
        self._retains_grad = True
        return self

    def zero_grad(self) -> None:
        self.grad = None

    def _lift(self, other) -> "Tensor":
        """Turn a Python number or array into a Tensor; numbers take this tensor's dtype."""
        if isinstance(other, Tensor):
            return other
        if isinstance(other, (int, float)) and self.data.dtype.kind == "f":
            return Tensor(np.asarray(other, dtype=self.data.dtype))
        return Tensor(other)

    # ----------------------------------------------------------------- elementwise
    def _broadcast_check(self, other: "Tensor", op: str) -> None:
        try:
            np.broadcast_shapes(self.shape, other.shape)
        except ValueError:
            raise ValueError(
                f"{op}: shapes {self.shape} and {other.shape} cannot be broadcast together") from None

    def __add__(self, other) -> "Tensor":
        other = self._lift(other)
        self._broadcast_check(other, "add")
        return make_op(self.data + other.data, (self, other), lambda g: (g, g), "+")

    def __sub__(self, other) -> "Tensor":
        other = self._lift(other)
        self._broadcast_check(other, "sub")
        return make_op(self.data - other.data, (self, other), lambda g: (g, -g), "-")

    def __mul__(self, other) -> "Tensor":
        other = self._lift(other)
        self._broadcast_check(other, "mul")
        a, b = self.data, other.data
        return make_op(a * b, (self, other), lambda g: (g * b, g * a), "*")

    def __truediv__(self, other) -> "Tensor":
        other = self._lift(other)
        self._broadcast_check(other, "div")
        a, b = self.data, other.data
        return make_op(a / b, (self, other), lambda g: (g / b, -g * a / (b * b)), "/")

    def __pow__(self, exponent) -> "Tensor":
        if isinstance(exponent, Tensor):
            raise TypeError("Tensor ** Tensor is not supported; the exponent must be a number")
        x = self.data
        p = exponent
        return make_op(x ** p, (self,), lambda g: (g * p * x ** (p - 1),), f"**{p}")

    def __neg__(self) -> "Tensor":
        return make_op(-self.data, (self,), lambda g: (-g,), "neg")

    def __radd__(self, other) -> "Tensor":
        return self._lift(other) + self

    def __rsub__(self, other) -> "Tensor":
        return self._lift(other) - self

    def __rmul__(self, other) -> "Tensor":
        return self._lift(other) * self

    def __rtruediv__(self, other) -> "Tensor":
        return self._lift(other) / self

    def exp(self) -> "Tensor":
        out = np.exp(self.data)
        return make_op(out, (self,), lambda g: (g * out,), "exp")

    def log(self) -> "Tensor":
        x = self.data
        return make_op(np.log(x), (self,), lambda g: (g / x,), "log")

    def sqrt(self) -> "Tensor":
        out = np.sqrt(self.data)
        return make_op(out, (self,), lambda g: (g / (2 * out),), "sqrt")

    def tanh(self) -> "Tensor":
        out = np.tanh(self.data)
        return make_op(out, (self,), lambda g: (g * (1 - out * out),), "tanh")

    # ----------------------------------------------------------------- matmul
    def __matmul__(self, other) -> "Tensor":
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

        def backward(g):
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

        return make_op(a @ b, (self, other), backward, "@")

    def __rmatmul__(self, other) -> "Tensor":
        return self._lift(other) @ self

    # ----------------------------------------------------------------- reductions
    def sum(self, axis=None, keepdims: bool = False) -> "Tensor":
        x = self.data
        axes = _normalize_axes(axis, x.ndim)

        def backward(g):
            if not keepdims:
                g = np.expand_dims(g, axes)
            return (np.broadcast_to(g, x.shape),)

        return make_op(x.sum(axis=axes, keepdims=keepdims), (self,), backward, "sum")

    def mean(self, axis=None, keepdims: bool = False) -> "Tensor":
        axes = _normalize_axes(axis, self.ndim)
        count = int(np.prod([self.shape[a] for a in axes]))
        return self.sum(axis=axis, keepdims=keepdims) * (1.0 / count)

    def max(self, axis=None, keepdims: bool = False) -> "Tensor":
        """Largest value along ``axis``; ties share the gradient equally."""
        x = self.data
        axes = _normalize_axes(axis, x.ndim)
        top = x.max(axis=axes, keepdims=True)

        def backward(g):
            if not keepdims:
                g = np.expand_dims(g, axes)
            mask = x == top
            return (g * mask / mask.sum(axis=axes, keepdims=True),)

        out = top if keepdims else np.squeeze(top, axis=axes)
        return make_op(out, (self,), backward, "max")

    def argmax(self, axis=None) -> "Tensor":
        """Index of the largest value (not differentiable)."""
        return Tensor(np.argmax(self.data, axis=axis))

    # ----------------------------------------------------------------- shape
    def reshape(self, *shape) -> "Tensor":
        if len(shape) == 1 and isinstance(shape[0], (tuple, list)):
            shape = tuple(shape[0])
        original = self.shape
        try:
            out = self.data.reshape(shape)
        except ValueError:
            raise ValueError(f"reshape: cannot reshape shape {original} "
                             f"({self.size} elements) into {shape}") from None
        return make_op(out, (self,), lambda g: (g.reshape(original),), "reshape")

    def transpose(self, *axes) -> "Tensor":
        if len(axes) == 1 and isinstance(axes[0], (tuple, list)):
            axes = tuple(axes[0])
        axes = axes or tuple(reversed(range(self.ndim)))
        if len(axes) == 2 and self.ndim > 2:  # PyTorch style: swap two dims
            perm = list(range(self.ndim))
            perm[axes[0]], perm[axes[1]] = perm[axes[1]], perm[axes[0]]
            axes = tuple(perm)
        inverse = tuple(np.argsort(axes))
        return make_op(self.data.transpose(axes), (self,),
                       lambda g: (g.transpose(inverse),), "transpose")

    @property
    def T(self) -> "Tensor":
        return self.transpose()

    def __getitem__(self, index) -> "Tensor":
        if isinstance(index, Tensor):
            index = index.data
        elif isinstance(index, tuple):
            index = tuple(i.data if isinstance(i, Tensor) else i for i in index)
        x = self.data
        advanced = isinstance(index, (list, np.ndarray)) or (
            isinstance(index, tuple) and any(isinstance(i, (list, np.ndarray)) for i in index))

        def backward(g):
            grad = np.zeros_like(x, dtype=g.dtype)
            if advanced:  # repeated indices must add up, which plain assignment would not do
                np.add.at(grad, index, g)
            else:
                grad[index] = g
            return (grad,)

        return make_op(x[index], (self,), backward, "getitem")

    # ----------------------------------------------------------------- engine
    def backward(self, grad=None) -> None:
        """Accumulate d(self)/d(leaf) into the ``.grad`` of every leaf that requires it.

        ``grad`` is the gradient flowing in from above; it defaults to 1 for a scalar.
        """
        if not self.requires_grad:
            raise RuntimeError("backward(): this tensor does not require a gradient "
                               "(no input had requires_grad=True, or it was built under no_grad)")
        if grad is None:
            if self.data.size != 1:
                raise RuntimeError(f"backward() without an argument needs a scalar output; "
                                   f"got shape {self.shape}; pass the output gradient")
            grad = np.ones_like(self.data)
        grad = _to_array(grad)
        if grad.shape != self.shape:
            raise ValueError(f"backward(): gradient shape {grad.shape} does not match "
                             f"tensor shape {self.shape}")

        pending = {id(self): grad}
        for node in reversed(self._topological_order()):
            g = pending.pop(id(node), None)
            if g is None:
                continue
            if node.is_leaf or node._retains_grad:
                g_own = np.array(g, dtype=node.data.dtype)  # a copy, never a view of another's
                node.grad = g_own if node.grad is None else node.grad + g_own
            if node.is_leaf:
                continue
            for parent, parent_grad in zip(node._parents, node._backward(g)):
                if parent_grad is None or not parent.requires_grad:
                    continue
                parent_grad = _unbroadcast(np.asarray(parent_grad), parent.shape)
                key = id(parent)
                pending[key] = parent_grad if key not in pending else pending[key] + parent_grad

    def _topological_order(self) -> list:
        """Every tensor this one depends on, each after all of its parents (iterative DFS)."""
        order, visited = [], set()
        stack = [(self, False)]
        while stack:
            node, parents_done = stack.pop()
            if parents_done:
                order.append(node)
                continue
            if id(node) in visited:
                continue
            visited.add(id(node))
            stack.append((node, True))
            stack.extend((p, False) for p in node._parents if id(p) not in visited)
        return order
