"""Numerical gradients by central finite differences, to check the analytic ones.

``numerical_gradient`` perturbs one input element at a time: (f(x+h) - f(x-h)) / 2h has
error O(h^2), so in float64 with h = 1e-6 it agrees with a correct analytic gradient to
about 1e-8. ``gradcheck`` compares the two for every input of a function of Tensors.
"""
from __future__ import annotations

import numpy as np

from .core.tensor import Tensor

__all__ = ["numerical_gradient", "gradcheck"]


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


def gradcheck(fn, *inputs, eps: float = 1e-6, atol: float = 1e-5, rtol: float = 1e-4,
              seed: int = 0) -> bool:
    """Check the autograd gradients of ``fn(*tensors)`` against finite differences.

    ``inputs`` are float64 numpy arrays (they are not modified). The output of ``fn`` may have
    any shape: it is reduced with a fixed random weighting, so every output element counts.
    Raises AssertionError naming the input and the largest difference when they disagree.
    """
    arrays = [np.array(a, dtype=np.float64) for a in inputs]
    tensors = [Tensor(a.copy(), requires_grad=True) for a in arrays]
    out = fn(*tensors)
    weights = np.random.default_rng(seed).standard_normal(out.shape)
    (out * Tensor(weights)).sum().backward()

    def scalar(*xs):
        return np.sum(fn(*[Tensor(x) for x in xs]).data * weights)

    for k, t in enumerate(tensors):
        expected = numerical_gradient(scalar, arrays, k, eps)
        actual = np.zeros_like(expected) if t.grad is None else t.grad
        if not np.allclose(actual, expected, atol=atol, rtol=rtol):
            worst = np.max(np.abs(actual - expected))
            raise AssertionError(
                f"gradient of input {k} (shape {t.shape}) differs from finite differences "
                f"by up to {worst:.3g}\nanalytic:\n{actual}\nnumerical:\n{expected}")
    return True
