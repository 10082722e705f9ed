"""Learning-rate schedules: how the step size changes from one epoch to the next (chapter 08).

A schedule is a pure function of the epoch number, so a resumed run asks it for the same
learning rate the uninterrupted run would have used: nothing but its settings needs saving.
"""
from __future__ import annotations

import math

from ..checks import check_int, check_real, is_real

__all__ = ["CosineSchedule"]


class CosineSchedule:
    """Cosine annealing from ``max_lr`` at epoch 0 down to ``min_lr`` at ``total_epochs``::

        lr(e) = min_lr + (max_lr - min_lr) * (1 + cos(pi * e / total_epochs)) / 2

    Epochs past ``total_epochs`` keep ``min_lr``. Fractional epochs are allowed (the curve is
    continuous); a negative epoch raises ValueError, as do ``total_epochs < 1`` and
    ``min_lr > max_lr``.
    """

    def __init__(self, max_lr: float = 0.1, min_lr: float = 0.01, total_epochs: int = 100):
        self._configure(max_lr, min_lr, total_epochs)

    def _configure(self, max_lr, min_lr, total_epochs) -> None:
        max_lr = check_real("CosineSchedule", "max_lr", max_lr, 0)
        min_lr = check_real("CosineSchedule", "min_lr", min_lr, 0)
        if min_lr > max_lr:
            raise ValueError(f"CosineSchedule: min_lr ({min_lr}) must not exceed max_lr ({max_lr})")
        total_epochs = check_int("CosineSchedule", "total_epochs", total_epochs, 1)
        self.max_lr, self.min_lr, self.total_epochs = max_lr, min_lr, total_epochs

    def get_lr(self, epoch) -> float:
        """The learning rate to use throughout epoch ``epoch`` (counted from 0)."""
        if not is_real(epoch) or math.isnan(epoch):
            raise TypeError(f"CosineSchedule.get_lr: epoch must be a number; got {epoch!r}")
        if epoch < 0:
            raise ValueError(f"CosineSchedule.get_lr: epoch must be >= 0; got {epoch}")
        if epoch >= self.total_epochs:
            return self.min_lr
        progress = epoch / self.total_epochs
        return self.min_lr + (self.max_lr - self.min_lr) * (1 + math.cos(math.pi * progress)) / 2

    __call__ = get_lr

    def state_dict(self) -> dict:
        """The settings, as a JSON-able dict (the schedule has no other state)."""
        return {"max_lr": self.max_lr, "min_lr": self.min_lr, "total_epochs": self.total_epochs}

    def load_state_dict(self, state: dict) -> None:
        """Restore settings from :meth:`state_dict`; validates everything before changing."""
        expected = {"max_lr", "min_lr", "total_epochs"}
        if not isinstance(state, dict) or set(state) != expected:
            got = sorted(state) if isinstance(state, dict) else type(state).__name__
            raise ValueError(f"CosineSchedule.load_state_dict: expected keys {sorted(expected)}; "
                             f"got {got}")
        self._configure(state["max_lr"], state["min_lr"], state["total_epochs"])

    def __repr__(self) -> str:
        return (f"CosineSchedule(max_lr={self.max_lr}, min_lr={self.min_lr}, "
                f"total_epochs={self.total_epochs})")
