"""Numerical gradients by central finite differences, to check the analytic ones.

``numerical_gradient`` perturbs one input element at a time: (f(x+h) - f(x-h)) / 2h has
error O(h^2), so in float64 with h = 1e-6 it agrees with a correct analytic gradient to
about 1e-8. ``gradcheck`` compares the two for every input of a function of Tensors.

Before chapter 06 there is no engine to walk a graph, but every operation already records
its own backward rule. ``rule_gradients`` applies the rule of one recorded operation, and
``gradcheck(..., rule_only=True)`` checks a one-operation function through it: that is how
chapters 02–04 test the rules they write.
"""
from __future__ import annotations

import numpy as np

from .core.tensor import Tensor

__all__ = ["numerical_gradient", "gradcheck", "rule_gradients"]


def numerical_gradient(f, arrays: list, index: int, eps: float = 1e-6) -> np.ndarray:
    """d f(*arrays) / d arrays[index], for ``f`` returning a scalar (float or size-1 array)."""
    x = arrays[index]
    grad = np.zeros_like(x, dtype=np.float64)
    for i in np.ndindex(x.shape):
        original = x[i]
        x[i] = original + eps
        up = float(np.sum(f(*arrays)))
        x[i] = original - eps
        down = float(np.sum(f(*arrays)))
        x[i] = original
        grad[i] = (up - down) / (2 * eps)
    return grad


def rule_gradients(out: Tensor, grad) -> tuple:
    """What the backward rule of the operation that produced ``out`` sends to each of its
    inputs (``out._parents``, in order) for the output gradient ``grad``: one array of the
    input's shape, or None. Only that one rule runs, never the engine's walk."""
    if out._backward is None:
        raise ValueError(f"rule_gradients: this tensor (shape {out.shape}) was not produced by a "
                         f"recorded operation: none of its inputs required a gradient")
    grad = np.asarray(grad, dtype=out.data.dtype)
    if grad.shape != out.shape:
        raise ValueError(f"rule_gradients: gradient shape {grad.shape} does not match the output "
                         f"shape {out.shape}")
    grads = []
    for parent, g in zip(out._parents, out._backward(grad)):
        if g is not None:
            g = np.asarray(g)
            extra = g.ndim - parent.ndim  # a rule may leave broadcasting to the engine
            g = g.sum(axis=tuple(range(extra))) if extra > 0 else g
            stretched = tuple(i for i, n in enumerate(parent.shape) if n == 1 and g.shape[i] != 1)
            g = g.sum(axis=stretched, keepdims=True) if stretched else g
        grads.append(g)
    return tuple(grads)


def gradcheck(fn, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4,
              seed: int = 0, rule_only: bool = False) -> bool:
    """Check the autograd gradients of ``fn(*tensors)`` against finite differences.

    ``inputs`` are float64 numpy arrays (they are not modified). The output of ``fn`` may have
    any shape: it is reduced with a fixed random weighting, so every output element counts.
    With ``rule_only=True``, ``fn`` must be a single recorded operation on the inputs, and the
    analytic gradients come from its backward rule alone (:func:`rule_gradients`), without
    the engine. Raises AssertionError naming the input and the largest difference when they
    disagree.
    """
    arrays = [np.array(a, dtype=np.float64) for a in inputs]
    tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    if rule_only:
        analytic = _rule_gradients_of_inputs(out, weights, tensors)
    else:
        (out * Tensor(weights)).sum().backward()
        analytic = [t.grad for t in tensors]

    def scalar(*xs):
        return np.sum(fn(*[Tensor(x) for x in xs]).data * weights)

    for k, (t, grad) in enumerate(zip(tensors, analytic)):
        expected = numerical_gradient(scalar, arrays, k, eps)
        actual = np.zeros_like(expected) if grad is None else grad
        if not np.allclose(actual, expected, atol=atol, rtol=rtol):
            worst = np.max(np.abs(actual - expected))
            raise AssertionError(
                f"gradient of input {k} (shape {t.shape}) differs from finite differences "
                f"by up to {worst:.3g}\nanalytic:\n{actual}\nnumerical:\n{expected}")
    return True


def _rule_gradients_of_inputs(out: Tensor, weights: np.ndarray, tensors: list) -> list:
    """Each input's gradient from ``out``'s own rule; the inputs must be its direct parents."""
    by_parent = {}
    for parent, g in zip(out._parents, rule_gradients(out, weights)):
        if g is not None:
            by_parent[id(parent)] = by_parent.get(id(parent), 0) + g
    stray = [p.shape for p in out._parents if p._backward is not None]  # not leaves
    if stray:
        raise ValueError(f"gradcheck(rule_only=True): the function must be one operation on its "
                         f"inputs; its output came from a rule whose inputs include "
                         f"intermediate tensors of shapes {stray}")
    return [by_parent.get(id(t)) for t in tensors]
