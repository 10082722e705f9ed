"""Accuracy: how many predictions of a batch are right, for the three usual output shapes.

* class indices: logits (N, C) and integer targets (N,) -> argmax of the logits;
* one-hot: logits (N, C) and targets (N, C) -> argmax of both;
* binary: one output per sample, (N,) or (N, 1), and targets in {0, 1} -> threshold. The
  output is a probability (a model ending in Sigmoid, trained with BCELoss), thresholded at
  0.5, or a logit (trained with BCEWithLogitsLoss), thresholded at 0, the same decision.

Anything else (a regression, say) has no accuracy: ``correct_predictions`` returns None.
"""
from __future__ import annotations

import numpy as np

__all__ = ["correct_predictions", "decision_threshold"]


def decision_threshold(loss_fn) -> float:
    """0 for a loss that takes logits (its ``takes_logits`` attribute is true), else 0.5."""
    return 0.0 if getattr(loss_fn, "takes_logits", False) else 0.5


def correct_predictions(outputs: np.ndarray, targets: np.ndarray, threshold: float = 0.5):
    """``(number correct, number of samples)`` for one batch, or None if accuracy is undefined."""
    outputs, targets = np.asarray(outputs), np.asarray(targets)
    if outputs.ndim == 0:
        return None
    n = outputs.shape[0]
    single_column = outputs.ndim == 1 or (outputs.ndim == 2 and outputs.shape[1] == 1)
    if single_column:
        if targets.size != n or not np.isin(targets, (0, 1)).all():
            return None
        predicted = outputs.reshape(n) >= threshold
        return int(np.sum(predicted == targets.reshape(n).astype(bool))), n
    if outputs.ndim != 2:
        return None
    if targets.shape == outputs.shape:
        return int(np.sum(outputs.argmax(axis=1) == targets.argmax(axis=1))), n
    if targets.shape == (n,) and np.array_equal(targets, np.round(targets)):
        return int(np.sum(outputs.argmax(axis=1) == targets)), n
    return None
