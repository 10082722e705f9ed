"""Trainer: the training loop, once, with everything a real run needs (chapter 08).

One epoch is: forward, loss, backward, (clip), step — for every batch. Around that loop the
Trainer adds what turns a toy into a tool: a learning-rate schedule, gradient accumulation,
gradient clipping, a NaN guard, evaluation, a history for learning curves, and checkpoints
that resume a run exactly.

Exact resume rests on one rule: everything random or time-dependent is a function of the
Trainer's counters. The learning rate of epoch ``e`` is ``scheduler.get_lr(e)``; a DataLoader
with ``set_epoch`` is told ``e`` before each epoch, so its shuffle order depends on ``e`` only;
the Trainer's :meth:`~Trainer.state_dict` holds the counters, the history, the schedule and
the generator that Dropout draws its masks from, and a checkpoint stores it next to the
model's and the optimizer's state dicts.
"""
from __future__ import annotations

import copy
import math
import numbers
import os

import numpy as np

from .. import random
from ..checks import check_int, is_int, is_real
from ..core.autograd import no_grad
from ..core.tensor import Tensor
from . import checkpoint
from .checkpoint import CheckpointError
from .clipping import clip_grad_norm
from .metrics import correct_predictions, decision_threshold

__all__ = ["Trainer"]

HISTORY_KEYS = ("train_loss", "train_accuracy", "eval_loss", "eval_accuracy", "learning_rates")
STATE_KEYS = ("epoch", "step", "grad_clip_norm", "history", "scheduler", "generator")


def _as_input(x) -> Tensor:
    return x if isinstance(x, Tensor) else Tensor(x)


def _as_target(y) -> Tensor:
    # np.asarray keeps a list of ints integral (Tensor([0, 1]) would make it float32).
    return y if isinstance(y, Tensor) else Tensor(np.asarray(y))


def _unpack(batch, index: int) -> tuple:
    if isinstance(batch, (tuple, list)) and len(batch) == 2:
        return _as_input(batch[0]), _as_target(batch[1])
    what = f"a {type(batch).__name__}"
    if isinstance(batch, (tuple, list)):
        what += f" of length {len(batch)}"
    raise TypeError(f"Trainer: batch {index} must be an (inputs, targets) pair; got {what}")


def _check_not_empty(inputs: Tensor, targets: Tensor, where: str) -> None:
    """An empty batch would give a loss of 0.0 (or nan) and still move Adam's weights."""
    if any(t.ndim and t.shape[0] == 0 for t in (inputs, targets)):
        raise ValueError(f"Trainer.{where} is empty: inputs of shape {inputs.shape}, targets "
                         f"of shape {targets.shape}; every batch needs at least one sample")


def _non_finite(grad: np.ndarray) -> bool:
    """Whether ``grad`` holds a NaN or an inf; one sum decides in the usual, finite case."""
    with np.errstate(all="ignore"):
        if math.isfinite(float(grad.sum())):
            return False
    return not np.isfinite(grad).all()  # the sum may have overflowed on finite values


def _describe(grad: np.ndarray) -> str:
    nans = int(np.isnan(grad).sum())
    infs = int(np.isinf(grad).sum())
    return f"{nans} NaN and {infs} infinite of {grad.size} entries"


def _check_grad_clip_norm(value, prefix: str = "Trainer: "):
    """None, or a positive finite number."""
    if value is None:
        return None
    if not is_real(value):
        raise TypeError(f"{prefix}grad_clip_norm must be a number or None; got {value!r}")
    if not (value > 0 and math.isfinite(value)):
        raise ValueError(f"{prefix}grad_clip_norm must be a finite number > 0; got {value}")
    return float(value)


class _AccuracyCounter:
    """Accumulates correct/total over batches; the accuracy is NaN if any batch has none."""

    def __init__(self, threshold: float):
        self.threshold, self.correct, self.total, self.defined = threshold, 0, 0, True

    def add(self, outputs: Tensor, targets: Tensor) -> None:
        counts = correct_predictions(outputs.data, targets.data, self.threshold)
        if counts is None:
            self.defined = False
        else:
            self.correct += counts[0]
            self.total += counts[1]

    @property
    def accuracy(self) -> float:
        return self.correct / self.total if self.defined and self.total else math.nan


class Trainer:
    """Train ``model`` with ``optimizer`` on ``loss_fn(model(inputs), targets)``.

    Counters: ``epoch`` (epochs completed) and ``step`` (optimizer steps taken).
    ``history`` holds one value per epoch under ``train_loss``, ``train_accuracy``,
    ``learning_rates`` (appended by :meth:`train_epoch`) and ``eval_loss``,
    ``eval_accuracy`` (appended by :meth:`fit`; NaN when it has no ``val_loader``).

    ``scheduler`` is anything with ``get_lr(epoch)``, e.g. :class:`CosineSchedule`; without
    one the optimizer's ``lr`` is left alone. ``grad_clip_norm``: when set, gradients are
    clipped to that global norm before every optimizer step (:func:`clip_grad_norm`).
    """

    def __init__(self, model, optimizer, loss_fn, scheduler=None, grad_clip_norm=None):
        self.model = model
        self.optimizer = optimizer
        self.loss_fn = loss_fn
        self.scheduler = scheduler
        self.grad_clip_norm = _check_grad_clip_norm(grad_clip_norm)
        self.epoch = 0
        self.step = 0
        self.history = {key: [] for key in HISTORY_KEYS}

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, dataloader, accumulation_steps: int = 1) -> float:
        """Train for one epoch; return the mean of the batch losses.

        ``dataloader`` is any iterable of ``(inputs, targets)`` pairs (Tensors, numpy arrays,
        or lists), a plain list included. If it has ``set_epoch``, it is called with
        ``self.epoch`` first, so its shuffle order depends only on the Trainer's epoch.
        The learning rate of the epoch, ``scheduler.get_lr(self.epoch)``, is set on the
        optimizer before the first step and recorded in ``history['learning_rates']``.

        Accumulation: with ``accumulation_steps = k`` the optimizer steps once every k
        batches, on the mean of their gradients (each batch loss is scaled by 1/k before
        ``backward``), so k batches of size b update exactly like one batch of k*b. A last,
        incomplete group of r < k batches still steps, on the mean over its r batches: its
        accumulated gradients, scaled by 1/k, are multiplied by k/r before the step (this
        works for any iterable, whether or not its length is known in advance).

        NaN guard: a NaN or infinite loss raises ``FloatingPointError`` naming the epoch, the
        step and the value, before ``backward``; a NaN or infinite gradient (a finite loss
        can have one, e.g. through ``sqrt`` at 0) raises it before the optimizer step, naming
        the parameter (its name in ``model.named_parameters()``). Either way the parameters
        keep the values of the last good step; the bad gradients stay in ``.grad`` to look at.
        An empty batch (no samples in its inputs or targets) raises ValueError.
        """
        k = check_int("Trainer", "accumulation_steps", accumulation_steps, 1)
        self.model.train()
        if hasattr(dataloader, "set_epoch"):
            dataloader.set_epoch(self.epoch)
        lr = self._start_epoch_learning_rate()
        self.optimizer.zero_grad()

        losses = []
        accuracy = _AccuracyCounter(decision_threshold(self.loss_fn))
        pending = 0  # batches whose gradients are accumulated but not yet applied
        for index, batch in enumerate(dataloader):
            inputs, targets = _unpack(batch, index)
            _check_not_empty(inputs, targets, f"train_epoch: batch {index} of epoch {self.epoch}")
            outputs = self.model(inputs)
            loss = self.loss_fn(outputs, targets)
            value = float(loss.item())
            if not math.isfinite(value):
                raise FloatingPointError(
                    f"Trainer: loss is {value} at epoch {self.epoch}, step {self.step} "
                    f"(batch {index}); stopped before the optimizer step, so the parameters "
                    f"are still those after step {self.step}")
            (loss if k == 1 else loss * (1.0 / k)).backward()
            losses.append(value)
            accuracy.add(outputs, targets)
            pending += 1
            if pending == k:
                self._optimizer_step(index)
                pending = 0
        if not losses:
            raise ValueError(f"Trainer.train_epoch: the dataloader yielded no batches "
                             f"(epoch {self.epoch})")
        if pending:  # the last group is incomplete: turn its 1/k scaling into 1/pending
            for p in self.model.parameters():
                if p.grad is not None:
                    p.grad *= np.asarray(k / pending, dtype=p.grad.dtype)
            self._optimizer_step(index)

        mean_loss = float(np.mean(losses))
        self.history["train_loss"].append(mean_loss)
        self.history["train_accuracy"].append(accuracy.accuracy)
        self.history["learning_rates"].append(lr)
        self.epoch += 1
        return mean_loss

    def _start_epoch_learning_rate(self) -> float:
        if self.scheduler is not None:
            self.optimizer.lr = self.scheduler.get_lr(self.epoch)
        return float(self.optimizer.lr)

    def _optimizer_step(self, index: int) -> None:
        """Check the gradients, clip them if asked, step; ``index`` is the last batch's."""
        self._check_gradients(index)
        if self.grad_clip_norm is not None:
            norm = clip_grad_norm(self.model.parameters(), self.grad_clip_norm)
            if not math.isfinite(norm):
                raise FloatingPointError(
                    f"Trainer: gradient norm is {norm} at epoch {self.epoch}, step {self.step}; "
                    f"stopped before the optimizer step")
        self.optimizer.step()
        self.optimizer.zero_grad()
        self.step += 1

    def _check_gradients(self, index: int) -> None:
        """FloatingPointError naming every parameter whose gradient is not finite."""
        bad = [p for p in self.optimizer.params if p.grad is not None and _non_finite(p.grad)]
        if not bad:
            return
        names = {id(p): name for name, p in self.model.named_parameters()}
        named = [f"'{names[id(p)]}'" if id(p) in names else f"optimizer parameter "
                 f"{self.optimizer.params.index(p)} (not in the model)" for p in bad]
        raise FloatingPointError(
            f"Trainer: the gradient of {', '.join(named)} is not finite "
            f"({_describe(bad[0].grad)} in {named[0]}) at epoch {self.epoch}, step "
            f"{self.step} (batch {index}), although the loss was finite; stopped before the "
            f"optimizer step, so the parameters are still those after step {self.step}")

    # ------------------------------------------------------------------ evaluation
    def evaluate(self, dataloader) -> tuple:
        """``(loss, accuracy)`` of the model on ``dataloader``, as Python floats.

        Runs in eval mode (Dropout off) under ``no_grad``, changes no parameter, and restores
        every sub-module's training flag afterwards. The loss is averaged over samples (each
        batch weighted by its size). Accuracy: see :mod:`tinytorch.training.metrics` (argmax
        for integer or one-hot targets; a threshold for one output column, at 0.5 for
        probabilities, at 0 when ``loss_fn`` is a BCEWithLogits-style loss); NaN when the
        targets are not classes (a regression). An empty batch raises ValueError.
        """
        modes = [(m, m.training) for m in self.model.modules()]
        self.model.eval()
        total_loss, samples = 0.0, 0
        accuracy = _AccuracyCounter(decision_threshold(self.loss_fn))
        try:
            with no_grad():
                for index, batch in enumerate(dataloader):
                    inputs, targets = _unpack(batch, index)
                    _check_not_empty(inputs, targets, f"evaluate: batch {index}")
                    outputs = self.model(inputs)
                    size = outputs.shape[0] if outputs.ndim else 1
                    total_loss += float(self.loss_fn(outputs, targets).item()) * size
                    samples += size
                    accuracy.add(outputs, targets)
        finally:
            for module, mode in modes:
                module.training = mode
        if samples == 0:
            raise ValueError("Trainer.evaluate: the dataloader yielded no batches")
        return total_loss / samples, accuracy.accuracy

    # ------------------------------------------------------------------ many epochs
    def fit(self, train_loader, val_loader=None, epochs: int = 10, verbose: bool = True,
            checkpoint_path=None, save_best: bool = False, accumulation_steps: int = 1) -> dict:
        """Train ``epochs`` more epochs, evaluating on ``val_loader`` after each; return history.

        ``verbose`` shows a tqdm progress bar over epochs with the latest losses and accuracy.
        With ``checkpoint_path``, a checkpoint is saved after every epoch, or, with
        ``save_best=True``, only when the validation accuracy improves on the best so far
        (when accuracy is undefined, as for a regression, when the validation loss drops).
        """
        epochs = check_int("Trainer", "epochs", epochs, 0)
        if save_best and (checkpoint_path is None or val_loader is None):
            raise ValueError("Trainer.fit: save_best=True needs both a checkpoint_path and a "
                             f"val_loader; got checkpoint_path={checkpoint_path!r}, "
                             f"val_loader={'None' if val_loader is None else 'given'}")
        best = self._best_so_far()
        bar = _ProgressBar(epochs) if verbose else None
        try:
            for _ in range(epochs):
                train_loss = self.train_epoch(train_loader, accumulation_steps)
                eval_loss, eval_accuracy = (self.evaluate(val_loader) if val_loader is not None
                                            else (math.nan, math.nan))
                self.history["eval_loss"].append(eval_loss)
                self.history["eval_accuracy"].append(eval_accuracy)
                if checkpoint_path is not None and (
                        not save_best or _improves(eval_accuracy, eval_loss, best)):
                    best = (eval_accuracy, eval_loss)
                    self.save_checkpoint(checkpoint_path)
                if bar is not None:
                    bar.report(self.epoch, train_loss, self.history["train_accuracy"][-1],
                               eval_loss, eval_accuracy)
        finally:
            if bar is not None:
                bar.close()
        return self.history

    def _best_so_far(self) -> tuple:
        """Best (accuracy, loss) among the epochs already in the history (for save_best)."""
        accuracies = [a for a in self.history["eval_accuracy"] if not math.isnan(a)]
        losses = [v for v in self.history["eval_loss"] if not math.isnan(v)]
        return (max(accuracies, default=-math.inf), min(losses, default=math.inf))

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict:
        """What resuming needs besides the model and the optimizer, as a new dict of
        JSON-able values: the counters ``epoch`` and ``step``, ``grad_clip_norm``, a copy
        of ``history``, the scheduler (``None``, or its class name and state dict) and the
        state of the shared random generator (:func:`tinytorch.get_rng_state`)."""
        scheduler = self.scheduler
        return {
            "epoch": self.epoch,
            "step": self.step,
            "grad_clip_norm": self.grad_clip_norm,
            "history": {key: [float(v) for v in values] for key, values in self.history.items()},
            "scheduler": None if scheduler is None else {
                "type": type(scheduler).__name__,
                "state": scheduler.state_dict() if hasattr(scheduler, "state_dict") else None},
            "generator": random.get_rng_state(),
        }

    def load_state_dict(self, state: dict) -> None:
        """Restore a :meth:`state_dict`: counters, clipping, history, the scheduler's settings
        and the shared random generator. Everything is checked before anything changes: a
        bad entry raises ValueError naming it, and the trainer is left as it was."""
        try:
            plan = self._checked_state(state)
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"Trainer.load_state_dict: {_message(error)}") from error
        self._assign(plan)

    def _assign(self, plan: dict) -> None:
        self.epoch, self.step = plan["epoch"], plan["step"]
        self.grad_clip_norm = plan["grad_clip_norm"]
        self.history = plan["history"]
        if plan["scheduler"] is not None:
            self.scheduler.load_state_dict(plan["scheduler"])
        random.set_rng_state(plan["generator"])

    def _checked_state(self, state) -> dict:
        """``state`` checked against this trainer; the values :meth:`load_state_dict` assigns."""
        if not isinstance(state, dict):
            raise TypeError(f"expected a dict from Trainer.state_dict(); got a "
                            f"{type(state).__name__}")
        missing = [key for key in STATE_KEYS if key not in state]
        unexpected = [key for key in state if key not in STATE_KEYS]
        if missing or unexpected:
            raise KeyError(f"missing keys {missing}, unexpected keys {unexpected}")
        counters = {}
        for name in ("epoch", "step"):
            value = state[name]
            if not is_int(value) or value < 0:
                raise ValueError(f"counter '{name}' must be a non-negative int; got {value!r}")
            counters[name] = int(value)
        history = state["history"]
        if not isinstance(history, dict) or not set(HISTORY_KEYS) <= set(history) or not all(
                isinstance(v, list) and all(isinstance(x, numbers.Real) and not isinstance(x, bool)
                                            for x in v)
                for v in history.values()):
            raise ValueError(f"'history' must map {list(HISTORY_KEYS)} to lists of numbers")
        return {
            **counters,
            "grad_clip_norm": _check_grad_clip_norm(state["grad_clip_norm"], prefix=""),
            "history": {key: [float(x) for x in values] for key, values in history.items()},
            "scheduler": self._checked_scheduler_state(state["scheduler"]),
            "generator": random.check_rng_state(state["generator"]),
        }

    def _checked_scheduler_state(self, saved):
        """The scheduler's state dict to load (None when there is nothing to load)."""
        scheduler = self.scheduler
        if saved is not None and not (isinstance(saved, dict) and set(saved) == {"type", "state"}):
            raise ValueError(f"'scheduler' must be None or a dict with the keys 'type' and "
                             f"'state'; got {saved!r}")
        if (saved is None) != (scheduler is None):
            was = "no scheduler" if saved is None else f"a {saved['type']}"
            ours = "none" if scheduler is None else f"a {type(scheduler).__name__}"
            raise ValueError(f"the state was saved with {was}; this trainer has {ours}")
        if scheduler is None:
            return None
        if saved["type"] != type(scheduler).__name__:
            raise ValueError(f"the state's scheduler is a {saved['type']}; this trainer's is a "
                             f"{type(scheduler).__name__}")
        if saved["state"] is None or not hasattr(scheduler, "load_state_dict"):
            return None
        try:
            copy.deepcopy(scheduler).load_state_dict(saved["state"])  # raises if invalid
        except (KeyError, TypeError, ValueError) as error:
            raise ValueError(f"'scheduler' state is invalid: {_message(error)}") from error
        return saved["state"]

    # ------------------------------------------------------------------ checkpoints
    def save_checkpoint(self, path) -> None:
        """Write the model's, the optimizer's and this trainer's state dicts to one ``.npz``
        file at exactly ``path``, atomically (see :mod:`tinytorch.training.checkpoint`)."""
        checkpoint.save_checkpoint({"model": self.model.state_dict(),
                                    "optimizer": self.optimizer.state_dict(),
                                    "trainer": self.state_dict()}, path)

    def load_checkpoint(self, path) -> None:
        """Restore model, optimizer, scheduler, counters, history and the random generator.

        A truncated, corrupt or mismatched file raises ``CheckpointError`` and changes nothing.
        """
        path = os.fspath(path)
        state = checkpoint.load_checkpoint(path)
        try:
            model_state = _matching_model_state(self.model, state["model"])
            saved = state["optimizer"].get("optimizer")
            if saved != type(self.optimizer).__name__:
                raise ValueError(f"the checkpoint was saved with a {saved} optimizer; this "
                                 f"trainer has a {type(self.optimizer).__name__}")
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"checkpoint '{path}' cannot be loaded: "
                                  f"{_message(error)}") from error
        try:
            trainer_state = self._checked_state(state["trainer"])
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"checkpoint '{path}' cannot be loaded: the trainer's state: "
                                  f"{_message(error)}") from error
        try:
            # The optimizer validates its whole state before changing anything, so it goes
            # first: if it refuses, nothing has been assigned yet. The rest was checked above.
            self.optimizer.load_state_dict(state["optimizer"])
        except (KeyError, TypeError, ValueError) as error:
            raise CheckpointError(f"checkpoint '{path}' does not match the optimizer: "
                                  f"{_message(error)}") from error
        self.model.load_state_dict(model_state)
        self._assign(trainer_state)

    def __repr__(self) -> str:
        return (f"Trainer(epoch={self.epoch}, step={self.step}, "
                f"optimizer={type(self.optimizer).__name__}, "
                f"loss_fn={type(self.loss_fn).__name__}, scheduler={self.scheduler!r}, "
                f"grad_clip_norm={self.grad_clip_norm})")


def _message(error: Exception) -> str:
    """An exception's text; a KeyError's without the quotes ``str`` adds around it."""
    return str(error.args[0]) if isinstance(error, KeyError) and error.args else str(error)


def _matching_model_state(model, stored: dict) -> dict:
    """``stored`` if it has exactly the model's parameter names, shapes and kinds of dtype."""
    own = model.state_dict()
    missing = [name for name in own if name not in stored]
    unexpected = [name for name in stored if name not in own]
    problems = []
    if missing:
        problems.append(f"parameters missing from the checkpoint: {missing}")
    if unexpected:
        problems.append(f"parameters the model does not have: {unexpected}")
    for name in own:
        if name not in stored:
            continue
        theirs, ours = np.asarray(stored[name]), np.asarray(own[name])
        if theirs.shape != ours.shape:
            problems.append(f"'{name}' has shape {theirs.shape} in the checkpoint but "
                            f"{ours.shape} in the model")
        elif not np.can_cast(theirs.dtype, ours.dtype, casting="same_kind"):
            problems.append(f"'{name}' holds {theirs.dtype} values, not numbers the model's "
                            f"{ours.dtype} can take")
    if problems:
        raise ValueError("the model's architecture differs from the checkpoint's: "
                         + "; ".join(problems))
    return {name: stored[name] for name in own}


def _improves(accuracy: float, loss: float, best: tuple) -> bool:
    if not math.isnan(accuracy):
        return accuracy > best[0]
    return loss < best[1]


class _ProgressBar:
    """A tqdm bar over epochs (tqdm is optional: without it, one printed line per epoch)."""

    def __init__(self, epochs: int):
        try:
            from tqdm.auto import tqdm  # imported here: numpy is the only required dependency
        except ImportError:
            self.bar = None
        else:
            self.bar = tqdm(total=epochs, desc="training", unit="epoch")

    def report(self, epoch, train_loss, train_accuracy, eval_loss, eval_accuracy) -> None:
        values = {"loss": train_loss, "acc": train_accuracy,
                  "val_loss": eval_loss, "val_acc": eval_accuracy}
        shown = {name: f"{v:.4f}" for name, v in values.items() if not math.isnan(v)}
        if self.bar is None:
            print(f"epoch {epoch}: " + ", ".join(f"{n}={v}" for n, v in shown.items()))
        else:
            self.bar.set_postfix(shown)
            self.bar.update(1)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()
