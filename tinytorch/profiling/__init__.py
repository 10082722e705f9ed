"""Profiling: what a model costs in parameters, memory, arithmetic and time.

Counted from sizes (chapters 03, 07, 08), in :mod:`.counts`: parameter counts and bytes,
the memory training needs, iterations of a run, FLOP formulas of dense layers.

Measured on a running model (chapter 14):

* :mod:`.flops`: ``count_flops(model, x)``, the FLOPs of a forward pass from the shapes the
  engine records (Linear, Conv2d, attention, pooling, pointwise ops);
* :mod:`.timing`: ``Timing`` (median and IQR of repeated runs), ``time_call``,
  ``measure_latency`` (forward and backward separately);
* :mod:`.memory`: ``peak_memory(step)`` with tracemalloc, ``activation_bytes(loss)``;
* :mod:`.breakdown`: ``op_breakdown(step)``, time and bytes by op, from the engine's
  observer;
* :mod:`.profiler`: ``Profiler``, all of them for one model and one batch.
"""
from . import breakdown, counts, flops, memory, profiler, timing
from .counts import *
from .flops import *
from .timing import *
from .memory import *
from .breakdown import *
from .profiler import *

__all__ = (counts.__all__ + flops.__all__ + timing.__all__ + memory.__all__
           + breakdown.__all__ + profiler.__all__)
