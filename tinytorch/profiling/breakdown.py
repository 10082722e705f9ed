"""Where a training step spends its time, op by op, from the engine's observer (chapter 14).

``op_breakdown(step)`` runs ``step()`` inside :func:`tinytorch.observe` and adds up the
events the engine reports, by phase and op name: how many calls, how many seconds, how many
bytes of output. Nothing in the package is patched or wrapped: the engine itself reports
each operation as it is recorded (forward) and each backward rule as it runs.

What an event's seconds cover (see :class:`tinytorch.OpEvent`): a forward event, the time
since the previous event, which is the op's numpy work plus the Python that ran between
the two ops (module calls, argument checks); a backward event, the rule's own run. The rest
of the step's wall time, the engine's bookkeeping between rules (summing gradients that
meet, storing ``.grad``) and whatever the step does outside the engine (the optimizer's
update), is reported as ``unattributed_seconds``.

Times are medians over ``repeats`` steps after ``warmup`` untimed ones, per row and for
the step's wall time; calls and bytes are those of the last step.
"""
from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from ..checks import check_int
from ..core.autograd import observe
from .timing import Timing

__all__ = ["OpStat", "Breakdown", "op_breakdown"]


class OpStat(NamedTuple):
    """One row: ``phase`` ("forward" or "backward"), ``op``, ``calls`` and output ``bytes``
    per step, and ``seconds`` per step (the median over the observed steps)."""

    phase: str
    op: str
    calls: int
    seconds: float
    bytes: int


class Breakdown:
    """The rows of :func:`op_breakdown`, slowest first, with the step's wall time."""

    def __init__(self, rows: list, step: Timing):
        self.rows = sorted(rows, key=lambda r: -r.seconds)
        self.step = step

    @property
    def op_seconds(self) -> float:
        """The seconds the engine's events account for, per step."""
        return sum(r.seconds for r in self.rows)

    @property
    def unattributed_seconds(self) -> float:
        """Median step time minus :attr:`op_seconds` (bookkeeping, optimizer, ...)."""
        return self.step.median - self.op_seconds

    def by_op(self) -> dict:
        """``{op: seconds}``, both phases added, slowest first."""
        sums = defaultdict(float)
        for r in self.rows:
            sums[r.op] += r.seconds
        return dict(sorted(sums.items(), key=lambda item: -item[1]))

    def by_phase(self) -> dict:
        sums = defaultdict(float)
        for r in self.rows:
            sums[r.phase] += r.seconds
        return dict(sums)

    def table(self) -> list:
        """The rows as dicts (``pandas.DataFrame(breakdown.table())``)."""
        return [r._asdict() for r in self.rows]

    def __repr__(self) -> str:
        return (f"Breakdown({len(self.rows)} rows, step {self.step.median * 1e3:.3g} ms, "
                f"ops {self.op_seconds * 1e3:.3g} ms)")


def op_breakdown(step: Callable[[], object], repeats: int = 5, warmup: int = 1,
                 clock: Callable[[], float] = time.perf_counter) -> Breakdown:
    """Run ``step()`` ``warmup`` times unobserved, then ``repeats`` times observed, and
    break each observed step down by (phase, op) from the engine's events."""
    repeats = check_int("op_breakdown", "repeats", repeats, 1)
    warmup = check_int("op_breakdown", "warmup", warmup, 0)
    for _ in range(warmup):
        step()
    steps, walls = [], []
    for _ in range(repeats):
        totals = defaultdict(lambda: [0, 0.0, 0])    # (phase, op) -> [calls, seconds, bytes]

        def record(event, totals=totals):
            row = totals[(event.phase, event.op)]
            row[0] += 1
            row[1] += event.seconds
            row[2] += event.nbytes

        start = clock()
        with observe(record):
            step()
        walls.append(clock() - start)
        steps.append(totals)
    last = steps[-1]
    keys = dict.fromkeys(key for totals in steps for key in totals)   # first-seen order
    rows = [OpStat(phase, op, last[(phase, op)][0] if (phase, op) in last else 0,
                   float(np.median([t[(phase, op)][1] if (phase, op) in t else 0.0
                                    for t in steps])),
                   last[(phase, op)][2] if (phase, op) in last else 0)
            for phase, op in keys]
    return Breakdown(rows, Timing(walls))
