"""Timing on a shared, noisy machine: repeat, discard a warm-up, report the median and the
spread (chapter 14).

One run tells little: the first calls pay for caches and lazy allocations, and another
process can steal the core at any moment. So every time here is a :class:`Timing` of
several runs after a warm-up, summarised by its median (robust to the odd slow run) and its
interquartile range (the middle half of the runs). The clock is a parameter, so a test can
drive the arithmetic with a fake one; by default it is ``time.perf_counter``.
"""
from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from ..checks import check_int

__all__ = ["Timing", "time_call", "measure_latency"]


class Timing:
    """Seconds of repeated runs: ``samples`` (in run order), ``median``, quartiles ``q1`` and
    ``q3`` (numpy's linear interpolation), ``iqr = q3 - q1``, ``min``, ``max``."""

    def __init__(self, samples):
        self.samples = tuple(float(s) for s in samples)
        if not self.samples:
            raise ValueError("Timing needs at least one sample")

    @property
    def median(self) -> float:
        return float(np.median(self.samples))

    @property
    def q1(self) -> float:
        return float(np.percentile(self.samples, 25))

    @property
    def q3(self) -> float:
        return float(np.percentile(self.samples, 75))

    @property
    def iqr(self) -> float:
        return self.q3 - self.q1

    @property
    def min(self) -> float:
        return min(self.samples)

    @property
    def max(self) -> float:
        return max(self.samples)

    def __len__(self) -> int:
        return len(self.samples)

    def __repr__(self) -> str:
        return (f"Timing(median={self.median * 1e3:.3g} ms, IQR {self.q1 * 1e3:.3g}-"
                f"{self.q3 * 1e3:.3g} ms, n={len(self)})")


def time_call(fn: Callable[[], object], repeats: int = 20, warmup: int = 3,
              clock: Callable[[], float] = time.perf_counter) -> Timing:
    """Call ``fn()`` ``warmup`` times untimed, then ``repeats`` times, each timed alone."""
    repeats = check_int("time_call", "repeats", repeats, 1)
    warmup = check_int("time_call", "warmup", warmup, 0)
    for _ in range(warmup):
        fn()
    samples = []
    for _ in range(repeats):
        start = clock()
        fn()
        samples.append(clock() - start)
    return Timing(samples)


def _as_args(inputs) -> tuple:
    """A tuple of inputs is unpacked into ``model(*inputs)``; anything else is one input."""
    return inputs if isinstance(inputs, tuple) else (inputs,)


def training_loss(model, inputs, targets=None, loss_fn=None):
    """The loss a training step backpropagates: ``loss_fn(model(*inputs), targets)``, or
    with no ``loss_fn`` the sum of the outputs (its gradient is all ones)."""
    output = model(*_as_args(inputs))
    if loss_fn is None:
        return output.sum()
    return loss_fn(output, targets)


def measure_latency(model, inputs, targets=None, loss_fn=None, repeats: int = 20,
                    warmup: int = 3, clock: Callable[[], float] = time.perf_counter) -> dict:
    """Forward and backward latency of a training step, timed separately.

    Each run clears the gradients (untimed), then times the forward pass with its loss
    (recording the graph, as training does) and then ``loss.backward()``. Returns
    ``{"forward": Timing, "backward": Timing}`` of ``repeats`` runs after ``warmup``
    untimed ones.
    """
    repeats = check_int("measure_latency", "repeats", repeats, 1)
    warmup = check_int("measure_latency", "warmup", warmup, 0)
    forward, backward = [], []
    for run in range(warmup + repeats):
        model.zero_grad()
        start = clock()
        loss = training_loss(model, inputs, targets, loss_fn)
        middle = clock()
        loss.backward()
        end = clock()
        if run >= warmup:
            forward.append(middle - start)
            backward.append(end - middle)
    model.zero_grad()
    return {"forward": Timing(forward), "backward": Timing(backward)}
