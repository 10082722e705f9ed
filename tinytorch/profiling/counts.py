"""Counting: what a model costs in parameters, memory and arithmetic, from its sizes
(chapters 03, 07, 08). Chapter 14 measures the same costs on a running model.

Units: bytes are counted exactly; :func:`format_bytes` and the chapters quote them in
decimal units, 1 kB = 10^3 bytes, 1 MB = 10^6 bytes, 1 GB = 10^9 bytes (as disk and
memory vendors do), so 10 M float32 parameters take 40 MB.

FLOPs count one multiplication and one addition as two operations. A dense layer with
``n_in * n_out`` weights costs, per sample, ``2 * n_in * n_out`` in the forward pass
(one multiply-add per weight) and twice that in the backward pass (one matrix product for
the gradient of the input, one for the gradient of the weights): 6 FLOPs per weight per
sample in all, the ``6 * N * D`` rule of thumb for N parameters and D samples.
"""
from __future__ import annotations

import math

from ..checks import check_int, is_real

__all__ = ["count_parameters", "parameter_bytes", "training_memory", "training_memory_for",
           "format_bytes", "iterations_per_epoch", "total_iterations", "linear_flops",
           "mlp_flops", "training_flops", "OPTIMIZER_STATE_ARRAYS"]

#: Arrays of a parameter's size each optimizer keeps per parameter (Adam: two moments).
OPTIMIZER_STATE_ARRAYS = {"sgd": 0, "sgd_momentum": 1, "adam": 2, "adamw": 2}


def _parameters(model) -> list:
    """The parameters of a Module, or the Tensors of an iterable."""
    return list(model.parameters()) if hasattr(model, "parameters") else list(model)


# ---------------------------------------------------------------------------- parameters
def count_parameters(model) -> int:
    """Number of learnable values (elements of every parameter) of a Module or iterable."""
    return sum(int(p.size) for p in _parameters(model))


def parameter_bytes(model) -> int:
    """Bytes the parameter arrays occupy, from their real dtypes."""
    return sum(int(p.nbytes) for p in _parameters(model))


# ---------------------------------------------------------------------------- memory
def training_memory(model, optimizer) -> dict:
    """Bytes training ``model`` with ``optimizer`` needs, apart from activations.

    ``parameters``: the parameter arrays. ``gradients``: one array per parameter, of its
    shape and dtype (counted whether or not ``.grad`` is currently set: it will be during a
    step). ``optimizer_state``: the optimizer's buffers, measured with ``state_nbytes()``;
    for an optimizer that has not allocated them yet (lazily, before its first step),
    ``state_arrays_per_param`` times the parameter bytes. ``total``: their sum.
    """
    params = parameter_bytes(model)
    state = int(optimizer.state_nbytes()) if hasattr(optimizer, "state_nbytes") else 0
    if state == 0:
        state = int(getattr(optimizer, "state_arrays_per_param", 0)) * params
    return {"parameters": params, "gradients": params, "optimizer_state": state,
            "total": 2 * params + state}


def training_memory_for(num_parameters: int, optimizer: str = "adam",
                        bytes_per_value: int = 4) -> dict:
    """The same breakdown as :func:`training_memory`, for a hypothetical model size.

    ``optimizer`` is one of ``'sgd'`` (no state), ``'sgd_momentum'`` (one buffer),
    ``'adam'`` or ``'adamw'`` (two moments); ``bytes_per_value`` is 4 for float32.
    Example: 10 M float32 parameters with Adam need 40 + 40 + 80 = 160 MB.
    """
    num_parameters = check_int("training_memory_for", "num_parameters", num_parameters, 0)
    bytes_per_value = check_int("training_memory_for", "bytes_per_value", bytes_per_value, 1)
    key = optimizer.lower() if isinstance(optimizer, str) else optimizer
    if key not in OPTIMIZER_STATE_ARRAYS:
        raise ValueError(f"training_memory_for: unknown optimizer {optimizer!r}; "
                         f"choose one of {sorted(OPTIMIZER_STATE_ARRAYS)}")
    params = num_parameters * bytes_per_value
    state = OPTIMIZER_STATE_ARRAYS[key] * params
    return {"parameters": params, "gradients": params, "optimizer_state": state,
            "total": 2 * params + state}


def format_bytes(n) -> str:
    """``n`` bytes in decimal units with one decimal, trailing ".0" dropped: 160 MB, 1.5 GB."""
    if not is_real(n) or not math.isfinite(n) or n < 0:
        raise ValueError(f"format_bytes: expected a byte count >= 0; got {n!r}")
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            text = f"{n / size:.1f}"
            return f"{text[:-2] if text.endswith('.0') else text} {unit}"
    return f"{int(n)} B"


# ---------------------------------------------------------------------------- iterations
def iterations_per_epoch(num_samples: int, batch_size: int, drop_last: bool = False) -> int:
    """Optimizer steps per epoch: ceil(num_samples / batch_size), or floor with ``drop_last``.

    1.2 M images in batches of 256 take 4,688 iterations (the last batch holds 128).
    """
    num_samples = check_int("iterations_per_epoch", "num_samples", num_samples, 0)
    batch_size = check_int("iterations_per_epoch", "batch_size", batch_size, 1)
    return num_samples // batch_size if drop_last else -(-num_samples // batch_size)


def total_iterations(num_samples: int, batch_size: int, epochs: int,
                     drop_last: bool = False) -> int:
    """Iterations of a whole run: ``epochs * iterations_per_epoch(...)`` (90 epochs of
    1.2 M images at batch 256: 421,920)."""
    epochs = check_int("total_iterations", "epochs", epochs, 0)
    return epochs * iterations_per_epoch(num_samples, batch_size, drop_last)


# ---------------------------------------------------------------------------- FLOPs
def linear_flops(in_features: int, out_features: int, num_samples: int = 1,
                 backward: bool = True) -> int:
    """FLOPs of a dense layer on ``num_samples`` samples: ``2 * in * out`` per sample forward,
    ``6 * in * out`` forward + backward (the bias's ``out`` additions are neglected)."""
    in_features = check_int("linear_flops", "in_features", in_features, 1)
    out_features = check_int("linear_flops", "out_features", out_features, 1)
    num_samples = check_int("linear_flops", "num_samples", num_samples, 0)
    per_weight = 6 if backward else 2
    return per_weight * in_features * out_features * num_samples


def mlp_flops(sizes, num_samples: int = 1, backward: bool = True) -> int:
    """FLOPs of an MLP with layer ``sizes`` (as ``MLP(sizes)``) on ``num_samples`` samples:
    the sum of :func:`linear_flops` over its layers."""
    sizes = list(sizes)
    if len(sizes) < 2:
        raise ValueError(f"mlp_flops: needs at least two sizes (input and output); got {sizes}")
    return sum(linear_flops(n_in, n_out, num_samples, backward)
               for n_in, n_out in zip(sizes[:-1], sizes[1:]))


def training_flops(num_parameters: int, num_samples: int) -> int:
    """The ``6 * N * D`` estimate: training FLOPs for N parameters seeing D samples."""
    num_parameters = check_int("training_flops", "num_parameters", num_parameters, 0)
    num_samples = check_int("training_flops", "num_samples", num_samples, 0)
    return 6 * num_parameters * num_samples
