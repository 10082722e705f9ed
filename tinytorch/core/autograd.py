"""The autograd engine: how operations are recorded, and how gradients flow back.

Every differentiable operation computes its value with numpy and hands it to :func:`make_op`
together with its parents and a *backward rule*: a function from the gradient of the output
to one gradient per parent. :func:`backward` visits the recorded graph in reverse topological
order, applying each rule once, and accumulates the results into the ``.grad`` of the leaves
(tensors created with ``requires_grad=True``).

Conventions (as in PyTorch):
  * Broadcasting is undone on the way back: each gradient is summed back to the shape of the
    tensor it belongs to (:func:`_unbroadcast`).
  * Gradients accumulate across ``backward()`` calls until you reset them (``.grad = None``,
    or an optimizer's ``zero_grad()``).
  * Inside ``with no_grad():`` no graph is recorded.

Observation: ``with observe(callback):`` makes the engine call ``callback(event)`` with an
:class:`OpEvent` for every operation as it is recorded and for every backward rule as it runs.
The profiler of Chapter 14 is built on it. When no observer is installed the engine only
tests one global for ``None``.
"""
from __future__ import annotations

import contextlib
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from . import tensor as _tensor  # the module, not the class: tensor.py imports this file

__all__ = ["make_op", "backward", "topological_order", "no_grad", "enable_grad",
           "is_grad_enabled", "observe", "OpEvent"]

_grad_enabled = True
_observer = None           # callable(OpEvent), installed by observe()
_last_event_time = 0.0     # perf_counter() of the observer's previous event


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


def make_op(data: np.ndarray, parents: tuple, backward, op: str):
    """Wrap the result of a numpy computation as a Tensor in the graph.

    ``backward(grad_out)`` must return one gradient (or None) per parent, each either of the
    parent's shape or broadcastable to it; it must not modify ``grad_out`` in place, and it
    must not return an array it keeps for later (the engine may store a returned array as a
    leaf's ``.grad``; it copies views, and arrays the caller or another ``.grad`` holds, so
    returning ``grad_out`` itself is fine). When no parent requires a gradient, or inside
    ``no_grad()``, no graph is recorded.
    """
    out = _tensor.Tensor._from_array(data)
    if _grad_enabled:
        for parent in parents:
            if parent.requires_grad:
                out.requires_grad = True
                out._parents = parents
                out._backward = backward
                out._op = op
                break
    if _observer is not None:
        _report("forward", op, out.data)
    return out


def topological_order(root) -> list:
    """Every tensor ``root`` depends on, each after all of its parents (iterative DFS)."""
    order, visited = [], set()
    stack = [(root, False)]
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


def backward(root, grad: np.ndarray) -> None:
    """Accumulate d(root)/d(leaf), given d(loss)/d(root) = ``grad``, into every leaf's ``.grad``.

    A tensor used by several operations must receive the sum of their gradients before its
    own rule runs. So the engine first counts, for every tensor that needs a gradient, how
    many operations of the graph consume it; then it runs rules from the root down, and a
    tensor becomes ready once all of its consumers have sent their share. That visits the
    graph in reverse topological order, each rule once, without sorting it.
    """
    consumers = _count_consumers(root)
    pending = {root: grad}   # tensors hash by identity, so they key the dicts directly
    held = {id(grad)}        # arrays the caller or a .grad holds: a leaf gets a copy of these
    ready = [root]
    while ready:
        node = ready.pop()
        g = pending.pop(node, None)  # None: no gradient reached this node
        rule = node._backward
        if g is not None and (rule is None or node._retains_grad):
            node.grad = _accumulate(node.grad, g, node.data.dtype, held)
        if rule is None:
            continue
        if g is None:
            parent_grads = (None,) * len(node._parents)  # still tell the parents we are done
        else:
            parent_grads = rule(g) if _observer is None else _timed_rule(node, g)
        for parent, parent_grad in zip(node._parents, parent_grads):
            if not parent.requires_grad:
                continue
            if parent_grad is not None:
                if type(parent_grad) is not np.ndarray or parent_grad.shape != parent.data.shape:
                    parent_grad = _unbroadcast(np.asarray(parent_grad), parent.data.shape)
                earlier = pending.get(parent)
                pending[parent] = parent_grad if earlier is None else earlier + parent_grad
            left = consumers[parent] - 1
            consumers[parent] = left
            if left:
                continue
            if parent._backward is not None:
                ready.append(parent)
            elif parent in pending:  # a leaf: its total is complete, store it right away
                parent.grad = _accumulate(parent.grad, pending.pop(parent), parent.data.dtype,
                                          held)


def _accumulate(grad, g: np.ndarray, dtype, held: set) -> np.ndarray:
    """``grad + g``, or ``g`` itself when ``grad`` is None. A leaf's ``.grad`` must be its own
    array (optimizers and clipping change it in place), so ``g`` is copied when it is a view,
    of another dtype, read-only, or already held: by the caller (the seed) or by another
    ``.grad`` (a rule that hands one array to two parents). ``held`` keeps only the ids of
    arrays that stay alive during the walk, so an id is never mistaken for a freed one's."""
    if grad is not None:
        return grad + g
    if g.base is not None or g.dtype != dtype or id(g) in held or not g.flags.writeable:
        return np.array(g, dtype=dtype)
    held.add(id(g))
    return g


def _count_consumers(root) -> dict:
    """For every tensor below ``root`` that requires a gradient: how many uses it has."""
    consumers = {}
    stack = [root]
    while stack:
        node = stack.pop()
        for parent in node._parents:
            if parent.requires_grad:
                if parent in consumers:
                    consumers[parent] += 1
                else:
                    consumers[parent] = 1
                    if parent._backward is not None:
                        stack.append(parent)
    return consumers


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


# ------------------------------------------------------------------ observation
class OpEvent(NamedTuple):
    """One observed step of the engine.

    ``phase`` is ``"forward"`` (an operation was recorded; ``seconds`` is the time since the
    observer's previous event, which is when the operation's numpy work ran) or
    ``"backward"`` (a backward rule ran; ``seconds`` is its own duration). ``shape`` and
    ``nbytes`` describe the operation's output.
    """

    phase: str
    op: str
    shape: tuple
    nbytes: int
    seconds: float


@contextlib.contextmanager
def observe(callback: Callable[[OpEvent], None]):
    """Inside the block, call ``callback(event)`` for every operation the engine records
    (under ``no_grad`` too) and for every backward rule it runs. Blocks nest: the inner
    observer replaces the outer one until it exits."""
    global _observer, _last_event_time
    if not callable(callback):
        raise TypeError(f"observe() needs a callable; got {type(callback).__name__}")
    previous = _observer, _last_event_time
    _observer, _last_event_time = callback, time.perf_counter()
    try:
        yield callback
    finally:
        _observer, _last_event_time = previous


def _report(phase: str, op: str, data: np.ndarray, seconds: float | None = None) -> None:
    global _last_event_time
    now = time.perf_counter()
    if seconds is None:
        seconds = now - _last_event_time
    _observer(OpEvent(phase, op, data.shape, data.nbytes, seconds))
    _last_event_time = time.perf_counter()  # the callback's own time is nobody's op


def _timed_rule(node, g):
    start = time.perf_counter()
    parent_grads = node._backward(g)
    _report("backward", node._op, node.data, time.perf_counter() - start)
    return parent_grads
