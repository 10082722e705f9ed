"""Losses: one number that says how wrong the predictions are (chapter 04).

Each loss is a Module, callable as ``loss_fn(pred, target)`` (or ``.forward(pred, target)``),
and a function (``mse_loss``, ``cross_entropy``, ``binary_cross_entropy``,
``binary_cross_entropy_with_logits``). ``reduction`` is 'mean' (the default), 'sum' or
'none' (one loss per element, or per sample for cross-entropy), as in PyTorch.

Predictions and targets must have matching shapes: a (N, 1) prediction against a (N,) target
would silently broadcast to (N, N) and train on nonsense, so it raises instead. An empty
batch raises too, whatever the reduction: the mean of no losses is 0/0 (PyTorch returns nan),
and a loop that feeds a loss no samples has a bug upstream.

Cross-entropy and the logit form of binary cross-entropy are single fused operations whose
forward pass is numerically stable (max subtraction, log-sum-exp) and whose backward pass is
the short closed form (softmax - target, sigmoid - target); BCELoss clamps its logarithms at
-100, as PyTorch does, so probabilities of exactly 0 or 1 give finite losses and gradients.
"""
from __future__ import annotations

import math

import numpy as np

from .autograd import make_op
from .module import Module
from .numerics import stable_log_softmax, stable_sigmoid
from .tensor import Tensor, as_tensor

__all__ = ["MSELoss", "CrossEntropyLoss", "BCELoss", "BCEWithLogitsLoss",
           "mse_loss", "cross_entropy", "binary_cross_entropy",
           "binary_cross_entropy_with_logits"]

_REDUCTIONS = ("mean", "sum", "none")
_LOG_FLOOR = -100.0          # PyTorch's clamp for log(p) in BCELoss
_BCE_GRAD_EPS = 1e-12        # PyTorch's floor for p (1 - p) in BCELoss's gradient


def _check_reduction(reduction: str) -> None:
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}; got {reduction!r}")


def _check_same_shape(name: str, pred: Tensor, target: Tensor) -> None:
    if pred.shape != target.shape:
        raise ValueError(f"{name}: prediction shape {pred.shape} and target shape "
                         f"{target.shape} differ; they must match exactly (no broadcasting)")
    if pred.size == 0:
        _empty_batch(name, pred.shape, target.shape)


def _empty_batch(name: str, pred_shape: tuple, target_shape: tuple):
    raise ValueError(f"{name}: empty batch: prediction shape {pred_shape} and target shape "
                     f"{target_shape} hold no samples, and the loss of no samples is undefined")


def _reduce(values: np.ndarray, reduction: str):
    """Apply ``reduction`` to per-element losses; also return d(result)/d(values) scaled by g."""
    if reduction == "none":
        return values, lambda g: g
    total = np.add.reduce(values, axis=None)  # values.sum() without its Python wrapper
    if reduction == "sum":
        return np.asarray(total), lambda g: g
    count = max(values.size, 1)
    return np.asarray(total / count), lambda g: g / count


# --------------------------------------------------------------------------- MSE
def mse_loss(pred, target, reduction: str = "mean") -> Tensor:
    """(pred - target)^2, reduced; pred and target must have the same shape."""
    _check_reduction(reduction)
    pred, target = as_tensor(pred), as_tensor(target)
    _check_same_shape("MSELoss", pred, target)
    diff = pred.data - target.data
    out, spread = _reduce(diff * diff, reduction)

    def backward(g):
        grad = 2 * diff * spread(g)
        return grad, -grad

    return make_op(out, (pred, target), backward, "mse_loss")


# --------------------------------------------------------------------------- cross-entropy
def _class_indices(target: np.ndarray, classes: int) -> np.ndarray:
    """Validate (N,) class indices (integers, or floats holding whole numbers)."""
    if target.dtype.kind not in "iu":
        if target.dtype.kind != "f" or not np.all(target == np.round(target)):
            bad = target if target.dtype.kind != "f" else target[target != np.round(target)]
            raise ValueError(f"CrossEntropyLoss: class-index targets must be integers; got "
                             f"dtype {target.dtype} with value {bad.flat[0].item()!r}")
        target = target.astype(np.int64)
    if target.size and 0 <= target.min() and target.max() < classes:
        return target  # the usual case, checked with two reductions
    out_of_range = (target < 0) | (target >= classes)
    if out_of_range.any():
        raise ValueError(f"CrossEntropyLoss: target class {target[out_of_range][0]} is out of "
                         f"range for {classes} classes (valid: 0 to {classes - 1})")
    return target


def cross_entropy(logits, target, reduction: str = "mean", ignore_index: int = -100) -> Tensor:
    """Cross-entropy of raw scores ``logits`` (N, C) against ``target``.

    ``target`` is either class indices of shape (N,) (any integer dtype) or a row of class
    probabilities per sample, shape (N, C) (one-hot or soft). Per sample the loss is
    -sum_c target_c * log_softmax(logits)_c; 'mean' divides the total by N.

    Sequences: logits (..., C) are read as one sample per leading position, against targets
    of shape (...) or (..., C); a language model's (B, T, C) logits take (B, T) targets, and
    'none' returns losses of shape (B, T). The classes are always the *last* dimension.
    (PyTorch puts them in dimension 1, (N, C, d1, ...); there, reshape to (B*T, C) and
    (B*T,) first, as nanoGPT does. Both give the same numbers for 2-D logits.)

    Class-index targets equal to ``ignore_index`` contribute nothing (as in PyTorch): their
    loss is 0, their gradient is 0, and 'mean' divides by the number of targets kept, so a
    batch with every target ignored has a mean of nan (0/0). It does not apply to
    probability targets.

    Stable for any logits: log_softmax is z - log(sum(exp(z))) with z = logits - row max.
    Gradient with respect to the logits: (softmax * sum(target) - target) / N (softmax - onehot
    for hard targets); with respect to probability targets: -log_softmax / N.
    """
    _check_reduction(reduction)
    logits = as_tensor(logits)
    shape = logits.data.shape
    if len(shape) < 2:
        raise ValueError(f"CrossEntropyLoss: logits must have shape (N, C); got {shape}")
    lead, classes = shape[:-1], shape[-1]
    n = math.prod(lead)
    target_tensor = target if isinstance(target, Tensor) else None
    target_data = target.data if isinstance(target, Tensor) else np.asarray(target)
    if n == 0:
        _empty_batch("CrossEntropyLoss", logits.shape, target_data.shape)
    if classes == 0:
        raise ValueError(f"CrossEntropyLoss: logits of shape {logits.shape} have no classes "
                         f"(the last dimension is 0)")

    scores = logits.data.reshape(n, classes)
    log_probs = stable_log_softmax(scores, axis=1)
    kept = None                                    # None: every sample counts

    if target_data.shape == lead:
        flat = target_data.reshape(n)
        if (flat.dtype.kind in "iu" and not 0 <= ignore_index < classes
                and 0 <= np.minimum.reduce(flat) and np.maximum.reduce(flat) < classes):
            indices = flat  # the usual case: all valid classes, so none is ignore_index
        else:
            ignored = flat == ignore_index
            if ignored.any():
                kept = ~ignored
                flat = np.where(kept, flat, 0)     # any valid class: its loss is zeroed below
            indices = _class_indices(flat, classes)
        rows = np.arange(n)
        per_sample = -log_probs[rows, indices]
        if kept is not None:
            per_sample = np.where(kept, per_sample, 0.0).astype(log_probs.dtype)

        def grad_logits(scale):
            grad = np.exp(log_probs)
            grad *= scale
            grad[rows, indices] -= scale if scale.ndim == 0 else scale[:, 0]
            return grad

        parents = (logits,)
    elif target_data.shape == logits.shape:
        probs = target_data.astype(logits.dtype if logits.dtype.kind == "f" else np.float64,
                                   copy=False).reshape(n, classes)
        per_sample = -(probs * log_probs).sum(axis=1)

        def grad_logits(scale):
            return (np.exp(log_probs) * probs.sum(axis=1, keepdims=True) - probs) * scale

        if target_tensor is None or not target_tensor.requires_grad:
            parents = (logits,)
        else:
            parents = (logits, target_tensor)
    else:
        raise ValueError(f"CrossEntropyLoss: for logits of shape {logits.shape} the target must "
                         f"have shape {lead} (class indices) or {logits.shape} (class "
                         f"probabilities); got {target_data.shape}")

    if reduction == "mean" and kept is not None:
        count = int(kept.sum())                     # all ignored: nan (0/0), as in PyTorch
        out = np.asarray(per_sample.sum() / count if count else np.nan, dtype=per_sample.dtype)

        def spread(g):
            return g / max(count, 1)
    else:
        out, spread = _reduce(per_sample.reshape(lead), reduction)

    def backward(g):
        scale = np.asarray(spread(g))       # d loss / d per-sample loss: one number, or one each
        if scale.ndim:
            scale = scale.reshape(n, 1)
        if kept is not None:
            scale = scale * kept[:, None]
        grads = (grad_logits(scale).reshape(shape),)
        if len(parents) == 2:
            grads += ((-log_probs * scale).reshape(shape),)
        return grads

    return make_op(out, parents, backward, "cross_entropy")


# --------------------------------------------------------------------------- binary CE
def binary_cross_entropy(pred, target, reduction: str = "mean") -> Tensor:
    """-(t log p + (1 - t) log(1 - p)) for probabilities ``pred`` in [0, 1].

    Each log is clamped below at -100 (as in PyTorch), so p = 0 or 1 gives a finite loss;
    the gradient (p - t) / max(p (1 - p), 1e-12) stays finite there too. Targets must lie in
    [0, 1] as well: outside it the loss is no longer a cross-entropy and has no minimum.
    """
    _check_reduction(reduction)
    pred, target = as_tensor(pred), as_tensor(target)
    _check_same_shape("BCELoss", pred, target)
    p, t = pred.data, target.data
    outside = (p < 0) | (p > 1) | np.isnan(p)
    if outside.any():
        raise ValueError(f"BCELoss: predictions must be probabilities in [0, 1]; got "
                         f"{p[outside][0]} (apply sigmoid first, or use BCEWithLogitsLoss)")
    outside = (t < 0) | (t > 1) | np.isnan(t)
    if outside.any():
        where = f" at index {tuple(np.argwhere(outside)[0].tolist())}" if t.ndim else ""
        raise ValueError(f"BCELoss: targets must be probabilities in [0, 1]; got "
                         f"{t[outside][0]}{where}")
    with np.errstate(divide="ignore"):          # log(0) = -inf, clamped just below
        log_p = np.maximum(np.log(p), _LOG_FLOOR)
        log_1mp = np.maximum(np.log(1 - p), _LOG_FLOOR)
    out, spread = _reduce(-(t * log_p + (1 - t) * log_1mp), reduction)

    def backward(g):
        s = spread(g)
        grad_p = s * (p - t) / np.maximum(p * (1 - p), _BCE_GRAD_EPS)
        grad_t = s * (log_1mp - log_p)
        return grad_p, grad_t

    return make_op(out, (pred, target), backward, "binary_cross_entropy")


def binary_cross_entropy_with_logits(logits, target, reduction: str = "mean") -> Tensor:
    """Binary cross-entropy of sigmoid(logits), computed stably from the logits x:

        loss = max(x, 0) - x t + log(1 + exp(-|x|)),   d loss / dx = sigmoid(x) - t
    """
    _check_reduction(reduction)
    logits, target = as_tensor(logits), as_tensor(target)
    _check_same_shape("BCEWithLogitsLoss", logits, target)
    x, t = logits.data, target.data
    e = np.exp(-np.abs(x))
    out, spread = _reduce(np.maximum(x, 0) - x * t + np.log1p(e), reduction)

    def backward(g):
        s = spread(g)
        return s * (stable_sigmoid(x) - t), -s * x

    return make_op(out, (logits, target), backward, "binary_cross_entropy_with_logits")


# --------------------------------------------------------------------------- modules
class _Loss(Module):
    #: True when the loss takes raw scores (logits) rather than probabilities; the Trainer's
    #: accuracy thresholds a single output at 0 for logits and at 0.5 for probabilities.
    takes_logits = False

    def __init__(self, reduction: str = "mean"):
        super().__init__()
        _check_reduction(reduction)
        self.reduction = reduction

    def extra_repr(self) -> str:
        return "" if self.reduction == "mean" else f"reduction={self.reduction!r}"


class MSELoss(_Loss):
    """Mean squared error: mean((pred - target)^2). See :func:`mse_loss`."""

    def forward(self, pred, target) -> Tensor:
        return mse_loss(pred, target, self.reduction)


class CrossEntropyLoss(_Loss):
    """Cross-entropy on logits, integer or one-hot/probability targets; targets equal to
    ``ignore_index`` are left out. See :func:`cross_entropy`."""

    takes_logits = True

    def __init__(self, reduction: str = "mean", *, ignore_index: int = -100):
        super().__init__(reduction)
        self.ignore_index = ignore_index

    def forward(self, logits, target) -> Tensor:
        return cross_entropy(logits, target, self.reduction, self.ignore_index)

    def extra_repr(self) -> str:
        parts = [super().extra_repr()]
        if self.ignore_index != -100:
            parts.append(f"ignore_index={self.ignore_index}")
        return ", ".join(p for p in parts if p)


class BCELoss(_Loss):
    """Binary cross-entropy on probabilities, logs clamped at -100. See
    :func:`binary_cross_entropy`."""

    def forward(self, pred, target) -> Tensor:
        return binary_cross_entropy(pred, target, self.reduction)


class BCEWithLogitsLoss(_Loss):
    """Binary cross-entropy on logits (sigmoid folded in, stable). See
    :func:`binary_cross_entropy_with_logits`."""

    takes_logits = True

    def forward(self, logits, target) -> Tensor:
        return binary_cross_entropy_with_logits(logits, target, self.reduction)
