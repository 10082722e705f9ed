"""What every milestone script shares: one training run with the Trainer, its result, the CLI.

A milestone script (``milestones/NN_YEAR_name/name.py``) builds a model from the package's
layers, picks a loss and an optimizer, and calls :func:`train_classifier`; it returns a
:class:`MilestoneResult`, which the book page plots and the tests check. Run as a script, it
parses the flags of :func:`milestone_parser` and ends with :func:`report`, which prints a
summary and returns the exit status: 0 when every target is met, 1 otherwise (scriptable).

The scripts import this file by putting ``milestones/`` on ``sys.path``; nothing here is part
of the ``tinytorch`` package.
"""
from __future__ import annotations

import argparse
import importlib.util
import math
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import tinytorch as tt
from tinytorch.datasets import Split

MILESTONES_DIR = Path(__file__).resolve().parent


def _identity(X: np.ndarray) -> np.ndarray:
    return X


def pick_config(configs: dict, dataset: str, epochs: int | None, quick: bool) -> tuple:
    """``(configs[dataset], epochs)``: the epochs default to the config's (``quick_epochs``
    in quick mode); an unknown dataset raises naming the valid ones."""
    if dataset not in configs:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(configs)}")
    config = configs[dataset]
    return config, (epochs if epochs is not None else config["quick_epochs" if quick else "epochs"])


@dataclass
class MilestoneResult:
    """One trained model and how it scored on the held-out test split.

    ``split`` holds the data as loaded (raw pixels or points, for plots); ``prepare`` maps
    those raw inputs to what the model was trained on (e.g. standardization), so
    ``result.predict(result.split.X_test)`` works on raw data. ``history`` is
    ``Trainer.history`` (one value per epoch; ``eval_*`` measured on the test split, for the
    learning curves only: no choice depends on it).

    ``passed``: with ``at_most=False`` the final test accuracy must reach ``threshold``; with
    ``at_most=True`` (a model that must fail) no epoch's test accuracy may exceed it.
    ``threshold=None`` means report only. ``metric`` names the score in the summary (e.g.
    "exact-sequence test accuracy").
    """
    name: str
    dataset: str
    model: tt.Module
    history: dict
    test_accuracy: float
    threshold: float | None
    epochs: int
    seconds: float
    split: Split
    trainer: tt.Trainer
    prepare: Callable[[np.ndarray], np.ndarray] = _identity
    seed: int = 0
    at_most: bool = False
    metric: str = "test accuracy"

    @property
    def best_test_accuracy(self) -> float:
        """The highest test accuracy any epoch reached."""
        return max(self.history["eval_accuracy"], default=math.nan)

    @property
    def passed(self) -> bool:
        if self.threshold is None:
            return True
        if self.at_most:
            return self.best_test_accuracy <= self.threshold
        return self.test_accuracy >= self.threshold

    @property
    def num_parameters(self) -> int:
        return tt.profiling.count_parameters(self.model)

    def outputs(self, X: np.ndarray) -> np.ndarray:
        """The model's outputs (probabilities or logits) for raw inputs ``X``, in eval mode."""
        was_training = self.model.training
        self.model.eval()
        with tt.no_grad():
            out = self.model(tt.Tensor(np.asarray(self.prepare(X), dtype=np.float32))).data
        self.model.train(was_training)
        return out

    def predict(self, X: np.ndarray) -> np.ndarray:
        """Predicted class of each row of ``X``: argmax of the logits, or probability >= 0.5."""
        out = self.outputs(X)
        if out.ndim == 2 and out.shape[1] > 1:
            return out.argmax(axis=1)
        return (out.reshape(len(out)) >= 0.5).astype(np.int64)


def binary_targets(y: np.ndarray) -> np.ndarray:
    """Labels 0/1 of shape (N,) as the float32 column (N, 1) that BCELoss compares with."""
    return np.asarray(y, dtype=np.float32).reshape(-1, 1)


def standardizer(X_train: np.ndarray, per_feature: bool) -> Callable[[np.ndarray], np.ndarray]:
    """A function mapping inputs to zero mean, unit variance, with statistics of ``X_train``.

    ``per_feature=True``: one mean and standard deviation per column (pixels that are always 0
    get a floor of 0.1 on their deviation, so they stay 0 instead of dividing by zero);
    ``False``: one mean and deviation for all values, which keeps images looking like images.
    Only the training split is looked at, so nothing about the test split leaks into training.
    """
    if per_feature:
        mean, std = X_train.mean(axis=0), X_train.std(axis=0) + np.float32(0.1)
    else:
        mean, std = X_train.mean(keepdims=True), X_train.std(keepdims=True)
    mean, std = mean.astype(np.float32), std.astype(np.float32)

    def prepare(X: np.ndarray) -> np.ndarray:
        return ((np.asarray(X, dtype=np.float32) - mean) / std).astype(np.float32)

    return prepare


def train_classifier(model, optimizer, loss_fn, train: tuple, test: tuple, *, epochs: int,
                     batch_size: int, seed: int, verbose: bool, scheduler=None) -> tuple:
    """Fit ``model`` on ``train = (X, y)`` with the package's Trainer; evaluate on ``test``.

    Batches are shuffled with ``seed``; the test split is evaluated after every epoch so the
    history holds learning curves. Returns ``(trainer, test accuracy after the last epoch)``.
    """
    train_loader = tt.DataLoader(tt.TensorDataset(*train), batch_size=batch_size, shuffle=True,
                                 seed=seed)
    test_loader = tt.DataLoader(tt.TensorDataset(*test), batch_size=1000)
    trainer = tt.Trainer(model, optimizer, loss_fn, scheduler=scheduler)
    trainer.fit(train_loader, test_loader, epochs=epochs, verbose=verbose)
    return trainer, trainer.history["eval_accuracy"][-1]  # evaluated after the last epoch


def adam_with_cosine(model, lr: float, epochs: int) -> tuple:
    """``(Adam, CosineSchedule from lr down to lr/20 over epochs)``: the MLP's and CNN's recipe."""
    optimizer = tt.Adam(model.parameters(), lr=lr)
    return optimizer, tt.CosineSchedule(max_lr=lr, min_lr=lr / 20, total_epochs=epochs)


def train_and_report(name: str, dataset: str, model, optimizer, loss_fn, split: Split,
                     train: tuple, test: tuple, *, threshold, epochs: int, batch_size: int,
                     seed: int, verbose: bool, scheduler=None,
                     prepare: Callable[[np.ndarray], np.ndarray] = _identity,
                     at_most: bool = False) -> MilestoneResult:
    """Train with :func:`train_classifier`, timed, and package the run as a MilestoneResult."""
    (trainer, accuracy), seconds = timed(
        train_classifier, model, optimizer, loss_fn, train, test, epochs=epochs,
        batch_size=batch_size, seed=seed, verbose=verbose, scheduler=scheduler)
    return MilestoneResult(name=name, dataset=dataset, model=model, history=trainer.history,
                           test_accuracy=accuracy, threshold=threshold, epochs=epochs,
                           seconds=seconds, split=split, trainer=trainer, prepare=prepare,
                           seed=seed, at_most=at_most)


def timed(function, *args, **kwargs):
    """``(function(*args, **kwargs), seconds it took)``."""
    start = time.perf_counter()
    value = function(*args, **kwargs)
    return value, time.perf_counter() - start


def load_sibling(folder: str, script: str | None = None):
    """Import another milestone, e.g. ``load_sibling("03_1986_mlp")`` from the CNN milestone."""
    script = script or folder.split("_", 2)[-1]
    path = MILESTONES_DIR / folder / f"{script}.py"
    name = f"milestone_{script}"
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.util.spec_from_file_location(name, path)
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


# ----------------------------------------------------------------------------- command line

def milestone_parser(description: str,
                     datasets: list[str] | None = None) -> argparse.ArgumentParser:
    """The flags every milestone takes: --epochs, --quick, --seed (and --dataset if given)."""
    parser = argparse.ArgumentParser(description=description)
    if datasets:
        parser.add_argument("--dataset", choices=datasets, default=datasets[0],
                            help=f"which data to train on (default: {datasets[0]})")
    parser.add_argument("--epochs", type=int, default=None,
                        help="number of epochs (default: the milestone's own setting)")
    parser.add_argument("--quick", action="store_true",
                        help="a fast run with fewer epochs and a lower target (for tests)")
    parser.add_argument("--seed", type=int, default=0,
                        help="seed of the data split, the initial weights and the batch order")
    return parser


def describe(model) -> str:
    """One line naming the layers of a Sequential model in order, e.g. 'Linear(...) -> ReLU()'."""
    layers = getattr(model, "layers", None)
    if not layers:
        text = repr(model)
        if "\n" in text:  # a model built of named parts: its class and settings only
            return f"{type(model).__name__}({model.extra_repr()})"
        return text
    return " -> ".join(" ".join(line.strip() for line in repr(layer).splitlines())
                       for layer in layers)


def _percent(value: float) -> str:
    return f"{100 * value:6.2f} %"


def summary(result: MilestoneResult) -> str:
    """A few lines describing one run: data, model, size, time, score against the target."""
    X_train, X_test = result.split.X_train, result.split.X_test
    lines = [
        f"{result.name}",
        f"  dataset        {result.dataset}: {len(X_train)} train / {len(X_test)} test, "
        f"input shape {tuple(X_train.shape[1:])}",
        f"  model          {describe(result.model)}",
        f"  parameters     {result.num_parameters:,}",
        f"  epochs         {result.epochs}  ({result.seconds:.1f} s)",
    ]
    status = "PASS" if result.passed else "FAIL"
    score = f"  {result.metric:<14} {_percent(result.test_accuracy)}"
    if result.threshold is None:
        lines.append(f"{score}   (no target: report only)")
    elif result.at_most:
        lines.append(f"{score}   best epoch {_percent(result.best_test_accuracy).strip()}, "
                     f"must stay <= {_percent(result.threshold).strip()}   {status}")
    else:
        lines.append(f"{score}   target >= {_percent(result.threshold).strip()}   {status}")
    return "\n".join(lines)


def report(results: Sequence[MilestoneResult], checks: Sequence[tuple[str, bool]] = ()) -> int:
    """Print the summary of every run and extra ``(description, passed)`` checks.

    Returns the exit status: 0 if every result and check passed, else 1.
    """
    rule = "=" * 72
    print(rule)
    for result in results:
        print(summary(result))
        print("-" * 72)
    for description, ok in checks:
        print(f"  {description}   {'PASS' if ok else 'FAIL'}")
    ok = all(r.passed for r in results) and all(ok for _, ok in checks)
    print(f"RESULT: {'PASS' if ok else 'FAIL'}")
    print(rule)
    return 0 if ok else 1
