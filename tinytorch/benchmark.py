"""Benchmarking: measurements another person can trust and repeat (chapter 19).

A benchmark number means little without three things next to it:

1. **How it was measured**: warm-up runs thrown away (caches, lazy allocation), then
   repeated runs summarised by the median (robust to the odd slow run) and the interquartile
   range (the middle half of the runs). The quantiles are numpy's default, linear
   interpolation between order statistics (``np.percentile(x, 25)``), as in
   :class:`~tinytorch.profiling.Timing`, which holds every timing here.
2. **Where**: the machine's facts, :func:`machine_info` (CPU model, cores, Python, numpy, the
   BLAS library and its threads).
3. **How sure**: a comparison of two candidates reports the ratio of their medians with a
   bootstrap confidence interval (:func:`bootstrap_ratio_ci`), so "1.3x faster" comes with
   "between 1.1x and 1.5x, 95 %".

:class:`Benchmark` runs all of this with an injectable clock (a test drives it with a fake
one); :class:`Report` collects results and comparisons and writes them as JSON.
"""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .checks import check_int, check_real
from .profiling.timing import Timing, time_call

__all__ = ["Result", "Comparison", "Benchmark", "Report", "bootstrap_ratio_ci",
           "machine_info", "pareto_front"]


# --------------------------------------------------------------------------- results
@dataclass
class Result:
    """One candidate's measurement: ``name``, ``samples`` (seconds, run order, warm-up
    excluded) and what was measured (``params``: any JSON-able facts, e.g. a batch size).
    ``timing`` summarises the samples (median, q1, q3, iqr, min, max)."""

    name: str
    samples: tuple
    params: dict = field(default_factory=dict)

    def __post_init__(self):
        self.samples = tuple(float(s) for s in self.samples)
        self.timing = Timing(self.samples)

    @property
    def median(self) -> float:
        return self.timing.median

    @property
    def iqr(self) -> float:
        return self.timing.iqr

    def to_dict(self) -> dict:
        t = self.timing
        return {"name": self.name, "samples": list(self.samples), "params": self.params,
                "median": t.median, "q1": t.q1, "q3": t.q3, "iqr": t.iqr,
                "min": t.min, "max": t.max, "n": len(t)}

    @classmethod
    def from_dict(cls, d: dict) -> Result:
        return cls(d["name"], d["samples"], d.get("params", {}))


@dataclass
class Comparison:
    """``baseline`` against ``candidate``: ``ratio`` = median(baseline) / median(candidate)
    (above 1: the candidate is faster), with the bootstrap interval ``low``..``high`` at
    ``confidence``, from ``n_resamples`` resamples drawn with ``seed``."""

    baseline: Result
    candidate: Result
    ratio: float
    low: float
    high: float
    confidence: float
    n_resamples: int
    seed: int

    @property
    def significant(self) -> bool:
        """True when the interval excludes 1 (no difference)."""
        return self.low > 1.0 or self.high < 1.0

    def to_dict(self) -> dict:
        return {"baseline": self.baseline.to_dict(), "candidate": self.candidate.to_dict(),
                "ratio": self.ratio, "low": self.low, "high": self.high,
                "confidence": self.confidence, "n_resamples": self.n_resamples,
                "seed": self.seed}

    @classmethod
    def from_dict(cls, d: dict) -> Comparison:
        return cls(Result.from_dict(d["baseline"]), Result.from_dict(d["candidate"]),
                   d["ratio"], d["low"], d["high"], d["confidence"], d["n_resamples"],
                   d["seed"])

    def __str__(self) -> str:
        return (f"{self.baseline.name} / {self.candidate.name}: {self.ratio:.3g}x "
                f"[{self.low:.3g}, {self.high:.3g}] ({self.confidence:.0%} bootstrap)")


# --------------------------------------------------------------------------- statistics
def bootstrap_ratio_ci(baseline, candidate, n_resamples: int = 2000,
                       confidence: float = 0.95, seed: int = 0) -> tuple[float, float, float]:
    """(ratio, low, high): the ratio of medians median(baseline) / median(candidate) and its
    percentile-bootstrap confidence interval.

    The algorithm, so a test can redo it by hand: ``rng = np.random.default_rng(seed)``;
    draw the indices of all ``n_resamples`` resamples of ``baseline`` at once,
    ``rng.integers(0, len(baseline), size=(n_resamples, len(baseline)))``, then those of
    ``candidate`` the same way; each resample's ratio is the median of its baseline row over
    the median of its candidate row; ``low`` and ``high`` are the ``(1 - confidence) / 2``
    and ``(1 + confidence) / 2`` quantiles of those ratios (numpy's linear method). The two
    samples are resampled independently (two separate sets of runs).
    """
    a = np.asarray(baseline, dtype=np.float64)
    b = np.asarray(candidate, dtype=np.float64)
    for name, x in (("baseline", a), ("candidate", b)):
        if x.ndim != 1 or x.size == 0:
            raise ValueError(f"bootstrap_ratio_ci: {name} must be a non-empty 1-D sequence of "
                             f"times; got shape {x.shape}")
        if not np.all(np.isfinite(x)) or np.any(x <= 0):
            raise ValueError(f"bootstrap_ratio_ci: {name} times must be finite and positive; "
                             f"got min {x.min()!r}")
    n_resamples = check_int("bootstrap_ratio_ci", "n_resamples", n_resamples, 1)
    confidence = check_real("bootstrap_ratio_ci", "confidence", confidence)
    if not 0 < confidence < 1:
        raise ValueError(f"bootstrap_ratio_ci: confidence must be in (0, 1); got {confidence}")
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, a.size, size=(n_resamples, a.size))
    ib = rng.integers(0, b.size, size=(n_resamples, b.size))
    ratios = np.median(a[ia], axis=1) / np.median(b[ib], axis=1)
    alpha = (1.0 - confidence) / 2.0
    low, high = np.quantile(ratios, [alpha, 1.0 - alpha])
    return float(np.median(a) / np.median(b)), float(low), float(high)


def pareto_front(points, minimize=(), maximize=()) -> list[int]:
    """Indices (in input order) of the points no other point dominates.

    ``points`` is a sequence of mappings (e.g. rows of measurements); ``minimize`` and
    ``maximize`` name their keys. Point p dominates q when p is at least as good as q in
    every key and strictly better in one; equal points do not dominate each other, so
    both stay on the front.
    """
    keys = [(k, 1.0) for k in minimize] + [(k, -1.0) for k in maximize]
    if not keys:
        raise ValueError("pareto_front: name at least one key to minimize or maximize")
    costs = np.array([[sign * float(p[k]) for k, sign in keys] for p in points])
    front = []
    for i, c in enumerate(costs):
        dominated = np.any(np.all(costs <= c, axis=1) & np.any(costs < c, axis=1))
        if not dominated:
            front.append(i)
    return front


# --------------------------------------------------------------------------- the machine
def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine() or "unknown"


def _blas_info() -> list[dict]:
    """The BLAS/OpenMP libraries numpy loaded, with their thread counts (threadpoolctl), or
    what numpy was built against (``numpy.show_config``) when threadpoolctl is missing."""
    try:
        from threadpoolctl import threadpool_info
        return [{"library": p.get("internal_api"), "version": p.get("version"),
                 "threads": p.get("num_threads"), "user_api": p.get("user_api")}
                for p in threadpool_info()]
    except ImportError:
        pass
    try:
        config = np.show_config(mode="dicts")
        blas = config.get("Build Dependencies", {}).get("blas", {})
        return [{"library": blas.get("name"), "version": blas.get("version"),
                 "threads": None, "user_api": "blas"}]
    except (TypeError, AttributeError):   # numpy < 1.25 has no mode="dicts"
        return []


def machine_info() -> dict:
    """Facts about this machine that decide its speed: CPU model, logical cores (and those
    this process may use), OS, Python, numpy, the BLAS libraries and their threads, and the
    thread-count environment variables that were set."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:          # not on Linux
        usable = os.cpu_count()
    threads_env = {k: os.environ[k] for k in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                              "MKL_NUM_THREADS") if k in os.environ}
    return {"cpu": _cpu_model(), "cores": os.cpu_count(), "usable_cores": usable,
            "platform": platform.platform(), "python": sys.version.split()[0],
            "numpy": np.__version__, "blas": _blas_info(), "threads_env": threads_env}


# --------------------------------------------------------------------------- the harness
class Benchmark:
    """``Benchmark(warmup=3, repeats=20, clock=time.perf_counter)``.

    ``run(name, fn)`` times ``fn()``: ``warmup`` untimed calls, then ``repeats`` timed
    ones (``time_call`` of chapter 14) -> :class:`Result`. ``compare(baseline, candidate)``
    times two candidates in interleaved rounds (A, B, A, B …, so slow phases of a shared
    machine hit both) and returns a :class:`Comparison` with the bootstrap interval of the
    ratio of medians. ``clock`` is any function returning seconds; a fake one makes the
    timings exact.
    """

    def __init__(self, warmup: int = 3, repeats: int = 20,
                 clock: Callable[[], float] = time.perf_counter):
        self.warmup = check_int("Benchmark", "warmup", warmup, 0)
        self.repeats = check_int("Benchmark", "repeats", repeats, 1)
        self.clock = clock

    def run(self, name: str, fn: Callable[[], object], **params) -> Result:
        """Time ``fn()`` after the warm-up; ``params`` are stored with the result."""
        timing = time_call(fn, repeats=self.repeats, warmup=self.warmup, clock=self.clock)
        return Result(name, timing.samples, params)

    def compare(self, baseline: tuple[str, Callable], candidate: tuple[str, Callable],
                confidence: float = 0.95, n_resamples: int = 2000, seed: int = 0) -> Comparison:
        """Time two ``(name, fn)`` candidates in interleaved rounds, after ``warmup`` calls of
        each; the ratio is baseline / candidate (> 1: the candidate is faster)."""
        (name_a, fn_a), (name_b, fn_b) = baseline, candidate
        for _ in range(self.warmup):
            fn_a()
            fn_b()
        a, b = [], []
        for _ in range(self.repeats):
            a += time_call(fn_a, repeats=1, warmup=0, clock=self.clock).samples
            b += time_call(fn_b, repeats=1, warmup=0, clock=self.clock).samples
        ratio, low, high = bootstrap_ratio_ci(a, b, n_resamples, confidence, seed)
        return Comparison(Result(name_a, a), Result(name_b, b), ratio, low, high,
                          confidence, n_resamples, seed)


class Report:
    """Results and comparisons with the machine they were measured on, as JSON:
    ``to_json()``, ``save(path)``, ``Report.from_json(text)``, ``Report.load(path)``."""

    def __init__(self, results=(), comparisons=(), machine: dict | None = None,
                 notes: dict | None = None):
        self.results = list(results)
        self.comparisons = list(comparisons)
        self.machine = machine_info() if machine is None else dict(machine)
        self.notes = dict(notes or {})

    def add(self, item) -> None:
        """Append a :class:`Result` or a :class:`Comparison`."""
        if isinstance(item, Result):
            self.results.append(item)
        elif isinstance(item, Comparison):
            self.comparisons.append(item)
        else:
            raise TypeError(f"Report.add: expected a Result or a Comparison; got "
                            f"{type(item).__name__}")

    def to_dict(self) -> dict:
        return {"machine": self.machine, "notes": self.notes,
                "results": [r.to_dict() for r in self.results],
                "comparisons": [c.to_dict() for c in self.comparisons]}

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent)

    def save(self, path) -> Path:
        path = Path(path)
        path.write_text(self.to_json() + "\n")
        return path

    @classmethod
    def from_json(cls, text: str) -> Report:
        d = json.loads(text)
        return cls([Result.from_dict(r) for r in d["results"]],
                   [Comparison.from_dict(c) for c in d["comparisons"]],
                   machine=d["machine"], notes=d.get("notes"))

    @classmethod
    def load(cls, path) -> Report:
        return cls.from_json(Path(path).read_text())

    def table(self) -> list[dict]:
        """One row per result: name, params, median, IQR and n (milliseconds)."""
        return [{"name": r.name, **r.params, "median ms": r.median * 1e3,
                 "IQR ms": r.iqr * 1e3, "n": len(r.samples)} for r in self.results]
