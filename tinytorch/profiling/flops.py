"""FLOPs of a forward pass, counted from the operations the engine records (chapter 14).

``count_flops(model, *inputs)`` runs ``model(*inputs)`` once, under ``no_grad``, while
watching two things: the engine's observer (:func:`tinytorch.observe`), which reports every
operation with the shape of its output, and forward hooks on every module, which say which
module is running when an operation is recorded. The output shape alone prices most
operations; a matrix product also needs its inner dimension, which the running module holds
(a ``linear`` op inside a ``Linear`` has ``in_features`` of them). Nothing is estimated:
every count comes from the shapes this forward pass produced.

Conventions (one FLOP is one multiplication or one addition; N is every leading dimension
of the output, batch and sequence alike):

=============================  ==========================================================
``linear`` in a Linear          matmul 2·N·in·out; bias N·out
``conv2d`` in a Conv2d          matmul 2·N·OH·OW·F·C·kh·kw; bias N·F·OH·OW
``scaled_dot_product_attention``  matmul 2·B·H·T·S·d for Q Kᵀ plus 2·B·H·T·S·d for the
                                weights times V; softmax 1 per score (B·H·T·S). Counted as
                                self-attention: S = T keys, value width = d. (With a
                                key/value cache the keys outnumber the queries and this
                                count is too low.)
``max_pool2d`` / ``avg_pool2d``  kh·kw - 1 comparisons / kh·kw additions and a division, per
in a pooling module             output element
pointwise ops                   1 per output element: ``+ - * /``, powers, ``neg exp log
                                sqrt tanh relu sigmoid gelu softmax log_softmax layer_norm
                                dropout masked_fill where``. A fused op that does several
                                things per element (GELU, LayerNorm) still counts one: its
                                cost on a CPU is memory traffic, which the breakdown times.
views, copies and lookups       0: ``reshape permute transpose getitem embedding cat stack``
anything else                   not counted, and listed in ``FlopCount.uncounted``
                                (reductions, losses, a bare ``@`` whose inner size the
                                output does not show, an op outside its module)
=============================  ==========================================================
"""
from __future__ import annotations

import math
from collections import Counter, defaultdict
from typing import NamedTuple

from ..core.autograd import no_grad, observe
from ..core.layers import Linear
from ..core.module import Module
from ..core.spatial import AvgPool2d, Conv2d, MaxPool2d

__all__ = ["FlopRecord", "FlopCount", "count_flops", "named_modules", "POINTWISE_OPS",
           "ZERO_FLOP_OPS"]

POINTWISE_OPS = frozenset({"+", "-", "*", "/", "neg", "exp", "log", "sqrt", "tanh", "relu",
                           "sigmoid", "gelu", "softmax", "log_softmax", "layer_norm",
                           "dropout", "masked_fill", "where"})
ZERO_FLOP_OPS = frozenset({"reshape", "permute", "transpose", "getitem", "embedding", "cat",
                           "stack"})


class FlopRecord(NamedTuple):
    """FLOPs of one recorded operation, or of one part of it: ``kind`` is ``"matmul"``,
    ``"bias"``, ``"softmax"``, ``"pool"`` or ``"pointwise"``. ``module`` is the dotted name
    of the module that was running ("" for the model itself); ``shape`` the op's output."""

    module: str
    op: str
    kind: str
    shape: tuple
    flops: int


class FlopCount:
    """The FLOPs of one forward pass: ``records`` (one per op and part, in execution
    order), ``total``, sums ``by("op" | "kind" | "module")``, and ``uncounted``, the
    ``{op name: calls}`` this count could not price (empty for the course's models)."""

    def __init__(self, records: list, uncounted: dict):
        self.records = list(records)
        self.uncounted = dict(uncounted)

    @property
    def total(self) -> int:
        return sum(r.flops for r in self.records)

    def by(self, field: str) -> dict:
        """``{value of field: FLOPs}``, largest first."""
        if field not in FlopRecord._fields or field in ("flops", "shape"):
            raise ValueError(f"FlopCount.by: field must be 'op', 'kind' or 'module'; got "
                             f"{field!r}")
        sums = defaultdict(int)
        for record in self.records:
            sums[getattr(record, field)] += record.flops
        return dict(sorted(sums.items(), key=lambda item: -item[1]))

    def __repr__(self) -> str:
        return (f"FlopCount(total={self.total:,}, records={len(self.records)}, "
                f"uncounted={self.uncounted})")


def named_modules(model: Module, prefix: str = ""):
    """(dotted name, module) for ``model`` ("") and every module inside it, depth first,
    each module once (a shared module keeps its first name)."""
    seen = set()

    def walk(module, name):
        if id(module) in seen:
            return
        seen.add(id(module))
        yield name, module
        for child_name, child in module.named_children():
            yield from walk(child, f"{name}.{child_name}" if name else child_name)

    yield from walk(model, prefix)


def _op_flops(op: str, shape: tuple, module) -> list | None:
    """``[(kind, flops), ...]`` for one op with output ``shape`` recorded while ``module``
    ran; ``None`` when the conventions above do not price it."""
    size = math.prod(shape)
    if op == "linear" and isinstance(module, Linear):
        parts = [("matmul", 2 * size * module.in_features)]
        return parts + [("bias", size)] if module.bias is not None else parts
    if op == "conv2d" and isinstance(module, Conv2d):
        kh, kw = module.kernel_size
        parts = [("matmul", 2 * size * module.in_channels * kh * kw)]
        return parts + [("bias", size)] if module.bias is not None else parts
    if op == "scaled_dot_product_attention":
        queries, width = shape[-2], shape[-1]      # (..., T, d): S = T keys of width d
        scores = size // width * queries           # B·H·T·S
        return [("matmul", 4 * scores * width), ("softmax", scores)]
    if op in ("max_pool2d", "avg_pool2d") and isinstance(module, (MaxPool2d, AvgPool2d)):
        kernel = module.kernel_size
        kh, kw = kernel if isinstance(kernel, (tuple, list)) else (kernel, kernel)
        per_output = kh * kw - 1 if op == "max_pool2d" else kh * kw
        return [("pool", size * per_output)]
    if op in POINTWISE_OPS or op.startswith("**"):
        return [("pointwise", size)]
    if op in ZERO_FLOP_OPS:
        return []
    return None


def count_flops(model: Module, *inputs, **kwargs) -> FlopCount:
    """The FLOPs of ``model(*inputs, **kwargs)``, one forward pass in the model's current
    mode (dropout runs in training mode), computed from the shapes it produces (see the
    module docstring for the conventions). The model's own hooks still run; the counting
    hooks are removed afterwards, also when the forward pass raises."""
    if not isinstance(model, Module):
        raise TypeError(f"count_flops: expected a Module; got {type(model).__name__}")
    running = []                      # names of the modules whose forward is running
    modules = dict(named_modules(model))
    by_name = {id(m): name for name, m in modules.items()}
    records, uncounted = [], Counter()

    def enter(module, args):
        running.append(module)

    def leave(module, args, output):
        running.pop()

    def on_event(event):
        if event.phase != "forward":
            return
        module = running[-1] if running else None
        parts = _op_flops(event.op, tuple(event.shape), module)
        if parts is None:
            uncounted[event.op] += 1
            return
        name = by_name.get(id(module), "")
        records.extend(FlopRecord(name, event.op, kind, tuple(event.shape), int(flops))
                       for kind, flops in parts)

    handles = []
    try:
        for module in modules.values():
            handles.append(module.register_forward_pre_hook(enter))
            handles.append(module.register_forward_hook(leave))
        with no_grad(), observe(on_event):
            model(*inputs, **kwargs)
    finally:
        for handle in handles:
            handle.remove()
    return FlopCount(records, uncounted)
