"""The capstone's tasks (chapter 20): what a submission optimises, and the data it is judged on.

A :class:`Task` fixes everything a learner does not choose: the data and its split, how the
inputs are prepared (standardised with statistics of the training split only), the family of
architectures a submission may use, and the task's official budget. Two tasks, both on the
8x8 digits (1,437 training images, 360 held out, ``load_digits(seed=0)``):

* ``"digits-cnn"``: Milestone 04's LeNet-style network in its 8x8 geometry (3x3
  convolutions padded by one, overlapping 2x2 poolings of stride 1); a submission chooses its
  ``channels`` (two) and ``hidden`` width.
* ``"digits-mlp"``: Milestone 03's MLP on the 64 pixels; a submission chooses its ``hidden``
  widths (one or more layers).

``task.train()`` hands out the training split; only the scorer calls ``task.held_out()``.
"""
from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .. import datasets
from ..core.activations import ReLU
from ..core.layers import Dropout, Flatten, Linear, Sequential
from ..core.spatial import Conv2d, MaxPool2d

__all__ = ["Task", "TASKS", "get_task", "build_digits_cnn", "build_digits_mlp"]

SPLIT_SEED = 0      # the split every submission is judged on
IMAGE_SIZE = 8


def build_digits_cnn(channels=(16, 32), hidden: int = 128, dropout: float = 0.25) -> Sequential:
    """Milestone 04's network for 8x8 digits: Conv2d(1, c1, 3, padding=1) -> ReLU ->
    MaxPool2d(2, stride=1) -> Conv2d(c1, c2, 3, padding=1) -> ReLU -> MaxPool2d(2, stride=1)
    -> Flatten -> Linear(c2 * 6 * 6, hidden) -> ReLU -> Dropout -> Linear(hidden, 10)."""
    c1, c2 = channels
    size = IMAGE_SIZE - 2           # each stride-1 pooling of a same-size convolution: -1
    return Sequential(
        Conv2d(1, c1, 3, padding=1), ReLU(), MaxPool2d(2, stride=1),
        Conv2d(c1, c2, 3, padding=1), ReLU(), MaxPool2d(2, stride=1),
        Flatten(), Linear(c2 * size * size, hidden), ReLU(), Dropout(dropout),
        Linear(hidden, 10))


def build_digits_mlp(hidden=(64,)) -> Sequential:
    """Milestone 03's MLP: Linear(64, h1) -> ReLU -> ... -> Linear(h_last, 10)."""
    widths = [IMAGE_SIZE * IMAGE_SIZE, *hidden]
    layers = []
    for a, b in zip(widths, widths[1:]):
        layers += [Linear(a, b), ReLU()]
    return Sequential(*layers, Linear(widths[-1], 10))


def _weight(state: dict, index: int) -> np.ndarray:
    """The (float or integer) weight of layer ``index`` in a state dict."""
    for key in (f"{index}.weight", f"{index}.weight_q"):
        if key in state:
            return np.asarray(state[key])
    raise KeyError(f"the state dict has no weight for layer {index} "
                   f"(neither '{index}.weight' nor '{index}.weight_q')")


def _cnn_architecture(state: dict) -> dict:
    return {"channels": [int(_weight(state, 0).shape[0]), int(_weight(state, 3).shape[0])],
            "hidden": int(_weight(state, 7).shape[0])}


def _mlp_architecture(state: dict) -> dict:
    indices = sorted({int(key.split(".")[0]) for key in state})
    return {"hidden": [int(_weight(state, i).shape[0]) for i in indices[:-1]]}


@dataclass(frozen=True)
class Task:
    """One capstone task: ``build(**architecture)`` makes its network, ``flatten`` says
    whether inputs are (N, 64) or (N, 1, 8, 8), ``budget`` is the official budget (a
    submission may state a stricter one, never a looser one), ``default_architecture`` the
    milestone's own network, ``architecture_schema`` the JSON Schema of an architecture and
    ``architecture_of(state)`` reads the architecture back from a state dict's shapes."""

    name: str
    description: str
    build_fn: Callable
    flatten: bool
    budget: dict
    default_architecture: dict
    architecture_schema: dict
    architecture_of: Callable = field(repr=False)

    def build(self, architecture: dict | None = None) -> Sequential:
        """The task's network with ``architecture`` (default: the milestone's own)."""
        spec = {**self.default_architecture, **(architecture or {})}
        return self.build_fn(**{k: tuple(v) if isinstance(v, list) else v
                                for k, v in spec.items()})

    def train(self) -> tuple:
        """``(X_train, y_train)``, prepared: what a learner trains and fine-tunes on."""
        split = _prepared(self.flatten)
        return split[0], split[1]

    def held_out(self) -> tuple:
        """``(X_test, y_test)``, prepared: the 360 images only the scorer judges on."""
        split = _prepared(self.flatten)
        return split[2], split[3]


@functools.lru_cache(maxsize=2)
def _prepared(flatten: bool) -> tuple:
    """The digits split, standardised with one mean and deviation of the training split."""
    X_train, y_train, X_test, y_test = datasets.load_digits(seed=SPLIT_SEED, flatten=flatten)
    mean, std = np.float32(X_train.mean()), np.float32(X_train.std())
    arrays = ((X_train - mean) / std, y_train, (X_test - mean) / std, y_test)
    for array in arrays:
        array.setflags(write=False)    # cached: a caller cannot change what the scorer sees
    return arrays


_WIDTH = {"type": "integer", "minimum": 1, "maximum": 4096}

TASKS: dict[str, Task] = {task.name: task for task in (
    Task("digits-cnn", "Milestone 04's LeNet-style CNN on the 8x8 digits", build_digits_cnn,
         flatten=False,
         budget={"max_bytes": 100_000, "max_latency_ms": 100.0, "min_accuracy": 0.95},
         default_architecture={"channels": [16, 32], "hidden": 128},
         architecture_schema={
             "type": "object", "required": ["channels", "hidden"], "additionalProperties": False,
             "properties": {"channels": {"type": "array", "items": _WIDTH, "minItems": 2,
                                         "maxItems": 2},
                            "hidden": _WIDTH}},
         architecture_of=_cnn_architecture),
    Task("digits-mlp", "Milestone 03's MLP on the 8x8 digits (64 pixels)", build_digits_mlp,
         flatten=True,
         budget={"max_bytes": 8_000, "max_latency_ms": 50.0, "min_accuracy": 0.93},
         default_architecture={"hidden": [128]},
         architecture_schema={
             "type": "object", "required": ["hidden"], "additionalProperties": False,
             "properties": {"hidden": {"type": "array", "items": _WIDTH, "minItems": 1,
                                       "maxItems": 4}}},
         architecture_of=_mlp_architecture),
)}


def get_task(name: str) -> Task:
    """The task called ``name``; an unknown name raises KeyError listing the tasks."""
    if name not in TASKS:
        raise KeyError(f"unknown capstone task {name!r}; the tasks are {sorted(TASKS)}")
    return TASKS[name]
