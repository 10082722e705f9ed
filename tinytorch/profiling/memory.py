"""Peak memory of a training step, measured with tracemalloc (chapter 14).

``tracemalloc`` records every allocation Python makes, and numpy reports the data buffers
of its arrays to it too, so the traced peak is what the step's Python objects and arrays
really took at their highest: a measurement, not a sum of sizes. It does not see memory
allocated outside Python's and numpy's allocators (BLAS's private work buffers, the
interpreter itself).

:func:`activation_bytes` gives a lower bound to check it against: the bytes of the arrays
that the recorded graph holds for the backward pass, read from their ``nbytes``.
"""
from __future__ import annotations

import gc
import tracemalloc
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..checks import check_int
from ..core.autograd import topological_order

__all__ = ["MemoryPeak", "peak_memory", "activation_bytes"]


class MemoryPeak(NamedTuple):
    """Bytes above what was allocated before the step: ``peak`` at its highest point, and
    ``retained`` still allocated when it returned (what the step left behind)."""

    peak: int
    retained: int


def peak_memory(step: Callable[[], object], warmup: int = 1) -> MemoryPeak:
    """Run ``step()`` ``warmup`` times untraced (so lazily created optimizer state and caches
    exist before measuring), then once under tracemalloc, and return its peak. Works when
    tracemalloc is already tracing (it is then left running)."""
    warmup = check_int("peak_memory", "warmup", warmup, 0)
    for _ in range(warmup):
        step()
    gc.collect()
    was_tracing = tracemalloc.is_tracing()
    if not was_tracing:
        tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        baseline = tracemalloc.get_traced_memory()[0]
        step()
        current, peak = tracemalloc.get_traced_memory()
    finally:
        if not was_tracing:
            tracemalloc.stop()
    return MemoryPeak(peak - baseline, current - baseline)


def _owner(array):
    """The array that owns ``array``'s buffer (itself, or the base at the end of its
    views), or None when the buffer belongs to something else (a strided window view)."""
    while array.base is not None:
        if not isinstance(array.base, np.ndarray):
            return None
        array = array.base
    return array


def activation_bytes(root) -> int:
    """Bytes of the arrays the graph under ``root`` keeps for the backward pass: the buffer
    behind the data of every recorded (non-leaf) tensor, each buffer once. A view
    (reshape, transpose, ...) adds its base's buffer only if nothing counted it yet, and
    buffers of leaves (parameters, inputs) are never counted: they existed before the step.
    Every buffer counted is alive until ``backward`` runs, so the step's peak memory is at
    least this."""
    nodes = topological_order(root)
    seen = {id(_owner(node.data)) for node in nodes if node.is_leaf}
    total = 0
    for node in nodes:
        owner = _owner(node.data)
        if node.is_leaf or owner is None or id(owner) in seen:
            continue
        seen.add(id(owner))
        total += int(owner.nbytes)
    return total
