"""``Profiler``: every measurement of chapter 14 for one model and one batch.

    prof = Profiler(model, x, y, loss_fn=tt.CrossEntropyLoss(), optimizer=tt.Adam(...))
    prof.parameters()        # {"count": ..., "bytes": ...}
    prof.flops()             # FlopCount of one forward pass
    prof.latency()           # {"forward": Timing, "backward": Timing}
    prof.peak_memory()       # MemoryReport of one training step
    prof.breakdown()         # Breakdown of a training step by (phase, op)

A *training step* is: clear the gradients, forward pass and loss, ``loss.backward()``, and
the optimizer's ``step()`` when an optimizer is given (so profiling trains the model: give
it a copy if that matters). Without ``loss_fn`` the loss is the sum of the outputs.
"""
from __future__ import annotations

from typing import NamedTuple

from .breakdown import op_breakdown
from .counts import count_parameters, parameter_bytes
from .flops import count_flops
from .memory import activation_bytes, peak_memory
from .timing import _as_args, measure_latency, training_loss

__all__ = ["Profiler", "MemoryReport"]


class MemoryReport(NamedTuple):
    """Bytes of one training step. ``peak``: tracemalloc's peak above what was allocated
    before the step (measured). ``activations``: the arrays the graph held for the backward
    pass (from their ``nbytes``: a lower bound of ``peak``). ``parameters``,
    ``gradients`` and ``optimizer_state``: the arrays that outlive the step, from
    ``nbytes`` (gradients as stored after a backward pass)."""

    peak: int
    activations: int
    parameters: int
    gradients: int
    optimizer_state: int


class Profiler:
    """Measurements of ``model`` on one batch (see the module docstring)."""

    def __init__(self, model, inputs, targets=None, loss_fn=None, optimizer=None):
        if not hasattr(model, "parameters") or not callable(model):
            raise TypeError(f"Profiler: expected a Module; got {type(model).__name__}")
        if loss_fn is not None and targets is None:
            raise ValueError("Profiler: a loss_fn needs targets (the loss is "
                             "loss_fn(model(inputs), targets))")
        self.model, self.inputs, self.targets = model, inputs, targets
        self.loss_fn, self.optimizer = loss_fn, optimizer

    # ---------------------------------------------------------------- one training step
    def _zero_grad(self) -> None:
        (self.optimizer or self.model).zero_grad()

    def loss(self):
        """The forward pass and its loss (recording the graph)."""
        return training_loss(self.model, self.inputs, self.targets, self.loss_fn)

    def step(self):
        """One training step; returns the loss Tensor."""
        self._zero_grad()
        loss = self.loss()
        loss.backward()
        if self.optimizer is not None:
            self.optimizer.step()
        return loss

    # ---------------------------------------------------------------- measurements
    def parameters(self) -> dict:
        return {"count": count_parameters(self.model), "bytes": parameter_bytes(self.model)}

    def flops(self):
        """FLOPs of one forward pass on the batch (:func:`count_flops`)."""
        return count_flops(self.model, *_as_args(self.inputs))

    def latency(self, repeats: int = 20, warmup: int = 3, **kwargs) -> dict:
        """Forward and backward latency (:func:`measure_latency`)."""
        return measure_latency(self.model, self.inputs, self.targets, self.loss_fn,
                               repeats=repeats, warmup=warmup, **kwargs)

    def breakdown(self, repeats: int = 5, warmup: int = 1, **kwargs):
        """Time and bytes of a training step by (phase, op) (:func:`op_breakdown`)."""
        return op_breakdown(self.step, repeats=repeats, warmup=warmup, **kwargs)

    def peak_memory(self) -> MemoryReport:
        """Peak memory of a training step, with the lower bound and the lasting arrays."""
        peak = peak_memory(self.step, warmup=1).peak
        self._zero_grad()
        loss = self.loss()
        activations = activation_bytes(loss)
        loss.backward()
        del loss
        params = list(self.model.parameters())
        gradients = sum(int(p.grad.nbytes) for p in params if p.grad is not None)
        state = self.optimizer.state_nbytes() if hasattr(self.optimizer, "state_nbytes") else 0
        self._zero_grad()
        return MemoryReport(int(peak), int(activations), parameter_bytes(params),
                            int(gradients), int(state))
