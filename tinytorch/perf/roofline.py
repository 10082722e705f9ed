"""The roofline of a machine, measured (chapter 17).

An operation that does F FLOPs while moving B bytes between memory and the processor has
*arithmetic intensity* I = F / B. It cannot run faster than the processor computes (the
peak, P FLOP/s) nor faster than memory delivers its bytes (bandwidth W bytes/s times I)::

    attainable(I) = min(P, I * W)

Below the *ridge point* I = P / W an operation is memory-bound: only moving fewer bytes
speeds it up. Above it, it is compute-bound. Both ceilings are measured here, on this
machine: P as the FLOP/s of a large float32 matrix product, W as the bytes per second of a
large array addition (``c = a + b`` reads two arrays and writes one: three arrays' bytes).

The bytes of an operation are its compulsory traffic: each input read once and the output
written once. Real kernels move more (im2col's copy, a product's reloaded tiles), so a
measured point lands below the roof for that reason as well as for overheads.
"""
from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from ..checks import check_int
from ..core.spatial import conv_output_shape
from ..profiling.timing import Timing, time_call

__all__ = ["Rate", "matmul_cost", "conv2d_cost", "elementwise_cost", "arithmetic_intensity",
           "attainable", "ridge_point", "measure_rate", "measure_matmul", "measure_bandwidth"]


class Rate(NamedTuple):
    """``work`` units (FLOPs or bytes) done per call, ``timing`` of the calls, and
    ``per_second`` = work / median seconds."""

    work: int
    timing: Timing

    @property
    def per_second(self) -> float:
        return self.work / self.timing.median

    @property
    def spread(self) -> tuple:
        """(low, high) per second over the middle half of the runs: work / q3, work / q1."""
        return self.work / self.timing.q3, self.work / self.timing.q1


# ------------------------------------------------------------------------ costs
def matmul_cost(m: int, k: int, n: int, itemsize: int = 4) -> tuple:
    """(FLOPs, bytes) of an (m, k) @ (k, n) product: 2·m·k·n, (m·k + k·n + m·n)·itemsize."""
    m, k, n = (check_int("matmul_cost", name, v, 1) for name, v in (("m", m), ("k", k),
                                                                      ("n", n)))
    return 2 * m * k * n, (m * k + k * n + m * n) * itemsize


def conv2d_cost(x_shape, weight_shape, stride=1, padding=0, itemsize: int = 4) -> tuple:
    """(FLOPs, bytes) of a convolution without bias: 2·N·OH·OW·F·C·kh·kw FLOPs; the input,
    the weight and the output each moved once."""
    n, c, h, w = x_shape
    f, weight_c, kh, kw = weight_shape
    if c != weight_c:
        raise ValueError(f"conv2d_cost: input {tuple(x_shape)} has {c} channels, the weight "
                         f"{tuple(weight_shape)} expects {weight_c}")
    oh, ow = conv_output_shape(h, w, (kh, kw), stride, padding)
    flops = 2 * n * oh * ow * f * c * kh * kw
    return flops, (math.prod(x_shape) + math.prod(weight_shape) + n * f * oh * ow) * itemsize


def elementwise_cost(size: int, inputs: int = 2, itemsize: int = 4) -> tuple:
    """(FLOPs, bytes) of an elementwise op on ``size`` elements with ``inputs`` operands:
    one FLOP per element, ``inputs`` arrays read and one written."""
    size = check_int("elementwise_cost", "size", size, 1)
    return size, (inputs + 1) * size * itemsize


def arithmetic_intensity(flops: float, nbytes: float) -> float:
    """FLOPs per byte moved."""
    if not nbytes > 0:
        raise ValueError(f"arithmetic_intensity: bytes must be positive; got {nbytes!r}")
    return flops / nbytes


def attainable(intensity, peak: float, bandwidth: float):
    """The roof at ``intensity`` (FLOPs/byte): min(peak, intensity × bandwidth), in the
    units of ``peak`` (FLOP/s) when ``bandwidth`` is in bytes/s. Works on arrays too."""
    return np.minimum(peak, np.asarray(intensity, dtype=float) * bandwidth)


def ridge_point(peak: float, bandwidth: float) -> float:
    """The intensity where the two roofs meet: peak / bandwidth FLOPs per byte."""
    return peak / bandwidth


# ------------------------------------------------------------------------ measurements
def measure_rate(fn, work: int, repeats: int = 5, warmup: int = 1) -> Rate:
    """Time ``fn()`` (median of ``repeats`` after ``warmup``) as a rate of ``work``/call."""
    return Rate(int(work), time_call(fn, repeats=repeats, warmup=warmup))


def measure_matmul(m: int, k: int, n: int, dtype=np.float32, repeats: int = 5,
                   warmup: int = 1, seed: int = 0) -> Rate:
    """FLOP/s of ``a @ b`` (BLAS) for random (m, k) and (k, n) matrices of ``dtype``; the
    output buffer is reused so only the product is timed."""
    rng = np.random.default_rng(seed)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    out = np.empty((m, n), dtype=dtype)
    return measure_rate(lambda: np.matmul(a, b, out=out), matmul_cost(m, k, n, a.itemsize)[0],
                        repeats, warmup)


def measure_bandwidth(nbytes: int = 64_000_000, dtype=np.float32, repeats: int = 5,
                      warmup: int = 1) -> Rate:
    """Bytes/s of ``np.add(a, b, out=c)`` on arrays of ``nbytes`` each (far larger than
    the caches), counted as three arrays' bytes per call (two read, one written)."""
    size = check_int("measure_bandwidth", "nbytes", nbytes, 1) // np.dtype(dtype).itemsize
    a, b = np.ones(size, dtype=dtype), np.ones(size, dtype=dtype)
    c = np.empty_like(a)
    return measure_rate(lambda: np.add(a, b, out=c), 3 * a.nbytes, repeats, warmup)
