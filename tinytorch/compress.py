"""Compression beyond masks (chapter 16): smaller layers, low rank, distillation.

* :func:`prune_channels` really removes the output neurons (Linear) or filters (Conv2d) of
  smallest norm from a Sequential, and the matching inputs of the next layer: the arrays
  shrink, so the arithmetic does too (a mask only zeroes entries of a full-size matrix).
* :func:`low_rank_linear` replaces a Linear by two thinner ones through the truncated SVD of
  its weight, the best approximation of that rank (Eckart-Young).
* :func:`distillation_loss`, :func:`teacher_logits` and :func:`distill` train a small student
  on the softened outputs of a trained teacher (Hinton, Vinyals & Dean, 2015, "Distilling
  the Knowledge in a Neural Network").
"""
from __future__ import annotations

import contextlib
import copy

import numpy as np

from . import random
from .checks import check_int, check_real
from .core.activations import GELU, ReLU, Sigmoid, Tanh, log_softmax
from .core.autograd import no_grad
from .core.layers import Dropout, Flatten, Linear, Sequential
from .core.losses import cross_entropy
from .core.module import Module, Parameter
from .core.spatial import AvgPool2d, Conv2d, MaxPool2d
from .core.tensor import Tensor, as_tensor
from .prune import _count

__all__ = ["prune_channels", "low_rank_linear", "distillation_loss", "teacher_logits",
           "distill"]

# Layers that may sit between a pruned layer and the next one: they act on each channel
# separately (or, for Flatten, only move the channels' values), so dropping a channel drops
# exactly its values.
_PER_CHANNEL = (ReLU, Tanh, Sigmoid, GELU, Dropout, MaxPool2d, AvgPool2d, Flatten)


@contextlib.contextmanager
def _no_draws():
    """Build layers whose weights are overwritten without using up the shared generator."""
    state = random.get_rng_state()
    try:
        yield
    finally:
        random.set_rng_state(state)


def _linear(weight: np.ndarray, bias) -> Linear:
    with _no_draws():
        layer = Linear(weight.shape[1], weight.shape[0], bias=bias is not None)
    layer.weight = Parameter(np.ascontiguousarray(weight, dtype=np.float32))
    if bias is not None:
        layer.bias = Parameter(np.array(bias, dtype=np.float32))
    return layer


def _conv(like: Conv2d, weight: np.ndarray, bias) -> Conv2d:
    with _no_draws():
        layer = Conv2d(weight.shape[1], weight.shape[0], like.kernel_size, like.stride,
                       like.padding, bias=bias is not None)
    layer.weight = Parameter(np.ascontiguousarray(weight, dtype=np.float32))
    if bias is not None:
        layer.bias = Parameter(np.array(bias, dtype=np.float32))
    return layer


def _weights(layer) -> tuple:
    """The effective (weight, bias) arrays: a masked weight if the layer is pruned."""
    return layer.weight.data, (None if layer.bias is None else layer.bias.data)


# ----------------------------------------------------------------------------- structured
def prune_channels(model: Sequential, index: int, amount, n: float = 2) -> Sequential:
    """A copy of ``model`` in which layer ``index`` (a Linear or Conv2d) has lost the
    ``amount`` of its outputs whose weights have the smallest L``n`` norm, and the next
    Linear or Conv2d the inputs that read them. ``model`` is not changed.

    ``amount`` is a fraction in [0, 1) or a count, as in :mod:`tinytorch.prune`; at least one
    output must remain. Between the two layers only per-channel layers may sit (activations,
    Dropout, pooling, Flatten); after a Flatten each channel owns a block of consecutive
    inputs of the Linear. The copy computes exactly what ``model`` computes once those
    outputs (their weights and bias) are set to zero.
    """
    if not isinstance(model, Sequential):
        raise TypeError(f"prune_channels works on a Sequential; got {type(model).__name__}")
    layers = model.layers
    index = check_int("prune_channels", "index", index)
    if not -len(layers) <= index < len(layers):
        raise ValueError(f"prune_channels: index {index} is out of range for "
                         f"{len(layers)} layers")
    index %= len(layers)
    layer = layers[index]
    if not isinstance(layer, (Linear, Conv2d)):
        raise TypeError(f"prune_channels: layer {index} is a {type(layer).__name__}, not a "
                        f"Linear or Conv2d")
    after = next((j for j in range(index + 1, len(layers))
                  if not isinstance(layers[j], _PER_CHANNEL)), None)
    if after is None or not isinstance(layers[after], (Linear, Conv2d)):
        what = "the model's output" if after is None else f"a {type(layers[after]).__name__}"
        raise ValueError(f"prune_channels: the outputs of layer {index} feed {what}, not a "
                         f"Linear or Conv2d whose inputs could shrink with them")
    successor = layers[after]

    weight, bias = _weights(layer)
    outputs = weight.shape[0]
    norms = (np.abs(weight.reshape(outputs, -1).astype(np.float64)) ** n).sum(axis=1) ** (1 / n)
    drop = _count(amount, outputs)
    if drop >= outputs:
        raise ValueError(f"prune_channels: removing {drop} of the {outputs} outputs of layer "
                         f"{index} would leave none")
    keep = np.sort(np.argsort(norms, kind="stable")[drop:])

    next_weight, next_bias = _weights(successor)
    if isinstance(successor, Conv2d):
        if not isinstance(layer, Conv2d):
            raise ValueError(f"prune_channels: layer {index} (Linear) cannot feed the "
                             f"Conv2d at {after}")
        columns = keep
    else:
        group, extra = divmod(successor.in_features, outputs)
        if extra:
            raise ValueError(f"prune_channels: the Linear at {after} has "
                             f"{successor.in_features} inputs, not a multiple of the "
                             f"{outputs} outputs of layer {index}")
        columns = (keep[:, None] * group + np.arange(group)).reshape(-1)
    smaller = (_linear(weight[keep], None if bias is None else bias[keep])
               if isinstance(layer, Linear) else
               _conv(layer, weight[keep], None if bias is None else bias[keep]))
    narrower = (_linear(next_weight[:, columns], next_bias) if isinstance(successor, Linear)
                else _conv(successor, next_weight[:, columns], next_bias))
    copies = [copy.deepcopy(other) for other in layers]
    copies[index], copies[after] = smaller, narrower
    return Sequential(copies)


# ----------------------------------------------------------------------------- low rank
def low_rank_linear(layer: Linear, rank: int) -> Sequential:
    """``Sequential(Linear(in, rank, bias=False), Linear(rank, out))`` computing
    x @ W_r.T + b, where W_r is the truncated SVD of ``layer.weight`` of ``rank``: the
    closest matrix of that rank in the Frobenius norm, off by sqrt(sum of the dropped
    squared singular values). Stores rank * (in + out) weights instead of in * out.
    """
    if not isinstance(layer, Linear):
        raise TypeError(f"low_rank_linear factorises a Linear; got {type(layer).__name__}")
    weight, bias = _weights(layer)
    full = min(weight.shape)
    rank = check_int("low_rank_linear", "rank", rank, 1)
    if rank > full:
        raise ValueError(f"low_rank_linear: rank {rank} exceeds the rank {full} a weight of "
                         f"shape {weight.shape} can have")
    u, s, vt = np.linalg.svd(weight.astype(np.float64), full_matrices=False)
    root = np.sqrt(s[:rank])                  # split each singular value between the factors
    first = _linear(root[:, None] * vt[:rank], None)
    second = _linear(u[:, :rank] * root, bias)
    return Sequential(first, second)


# ----------------------------------------------------------------------------- distillation
def distillation_loss(student_logits, teacher_logits, targets, temperature: float = 4.0,
                      alpha: float = 0.9) -> Tensor:
    """Hinton et al.'s loss for a student learning from a teacher, a batch mean::

        alpha * T^2 * KL(softmax(teacher / T) || softmax(student / T))
          + (1 - alpha) * cross_entropy(student, targets)

    A temperature T > 1 softens both distributions, so the student also learns how the
    teacher ranks the wrong classes; the T^2 keeps the soft term's gradients the same size
    whatever T is. ``teacher_logits`` are constants (no gradient flows into the teacher).
    ``alpha = 0`` is plain cross-entropy on the labels.
    """
    student = as_tensor(student_logits)
    teacher = np.asarray(teacher_logits.data if isinstance(teacher_logits, Tensor)
                         else teacher_logits, dtype=student.dtype)
    if student.ndim != 2 or teacher.shape != student.shape:
        raise ValueError(f"distillation_loss: student logits {student.shape} and teacher "
                         f"logits {teacher.shape} must both be (batch, classes)")
    temperature = check_real("distillation_loss", "temperature", temperature, 0, low_open=True)
    alpha = check_real("distillation_loss", "alpha", alpha, 0)
    if alpha > 1:
        raise ValueError(f"distillation_loss: alpha must be in [0, 1]; got {alpha}")
    soft_teacher = log_softmax(Tensor(teacher / temperature), dim=-1).data   # log p, fixed
    soft_student = log_softmax(student / temperature, dim=-1)                # log q
    kl = (Tensor(np.exp(soft_teacher)) * (Tensor(soft_teacher) - soft_student)).sum()
    soft = kl * (temperature ** 2 / student.shape[0])
    return soft * alpha + cross_entropy(student, targets) * (1 - alpha)


def teacher_logits(teacher: Module, inputs, batch_size: int = 500) -> np.ndarray:
    """``teacher``'s logits for every row of ``inputs``, in eval mode and without gradients:
    computed once, since a trained teacher does not change while the student learns."""
    teacher.eval()
    inputs = inputs.data if isinstance(inputs, Tensor) else np.asarray(inputs)
    with no_grad():
        return np.concatenate([teacher(Tensor(inputs[i:i + batch_size])).data
                               for i in range(0, len(inputs), batch_size)])


def distill(student: Module, loader, optimizer, epochs: int, teacher: Module | None = None,
            temperature: float = 4.0, alpha: float = 0.9) -> list:
    """Train ``student`` for ``epochs`` with :func:`distillation_loss`; return the mean
    training loss of each epoch.

    Each batch of ``loader`` is ``(inputs, labels, teacher_logits)``, the logits precomputed
    by :func:`teacher_logits` (e.g. a ``TensorDataset(X, y, logits)``), or ``(inputs,
    labels)`` with a ``teacher`` module that is then run on every batch. ``alpha = 0`` is the
    control: plain cross-entropy on the labels, with the very same loop, batches and
    optimizer.
    """
    epochs = check_int("distill", "epochs", epochs, 1)
    if teacher is not None:
        teacher.eval()
    student.train()
    losses = []
    for epoch in range(epochs):
        if hasattr(loader, "set_epoch"):
            loader.set_epoch(epoch)
        total, batches = 0.0, 0
        for batch in loader:
            inputs, labels, soft = _distillation_batch(batch, teacher)
            loss = distillation_loss(student(inputs), soft, labels, temperature, alpha)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            total, batches = total + loss.item(), batches + 1
        losses.append(total / batches)
    return losses


def _distillation_batch(batch, teacher) -> tuple:
    """``(inputs, labels, teacher logits)`` of one batch."""
    if len(batch) == 3:
        if teacher is not None:
            raise ValueError("distill: the batches carry teacher logits already; pass no "
                             "teacher")
        inputs, labels, soft = batch
        return as_tensor(inputs), labels, soft
    if len(batch) != 2 or teacher is None:
        raise ValueError("distill: each batch must be (inputs, labels, teacher_logits), or "
                         "(inputs, labels) with a teacher module")
    inputs, labels = as_tensor(batch[0]), batch[1]
    with no_grad():
        return inputs, labels, teacher(inputs).data
