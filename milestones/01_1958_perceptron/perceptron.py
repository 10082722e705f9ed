"""Milestone 01 · The perceptron (Rosenblatt, 1958): one neuron learns to separate two classes.

The model is the smallest the package can build: one ``Linear`` layer followed by a
``Sigmoid``, so it computes ``p = sigmoid(w . x + b)`` and predicts class 1 when ``p >= 0.5``,
i.e. on one side of the line (hyperplane) ``w . x + b = 0``. It is trained with ``BCELoss``,
``SGD`` and the ``Trainer``, on

- ``blobs``: 200 linearly separable 2-D points (a line separates them with a margin), and
- ``digits01``: the 8x8 digits 0 and 1 (64 pixel features): also separable by a hyperplane.

Targets (held-out test split): 100 % on ``blobs``, at least 99 % on ``digits01``.

Run from the repository root::

    python milestones/01_1958_perceptron/perceptron.py                 # 2-D points
    python milestones/01_1958_perceptron/perceptron.py --dataset digits01
    python milestones/01_1958_perceptron/perceptron.py --quick         # fewer epochs

The exit status is 0 when the target is met, 1 when it is missed.
"""
import sys
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # milestones/, for common.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinytorch as tt  # noqa: E402

from common import (  # noqa: E402
    MilestoneResult,
    binary_targets,
    milestone_parser,
    pick_config,
    report,
    train_and_report,
)

NAME = "Milestone 01 · Perceptron (1958)"

# Per dataset: how to train, and the test accuracy a run must reach (quick runs too).
CONFIGS = {
    "blobs": dict(epochs=30, quick_epochs=10, lr=0.5, batch_size=16, threshold=1.0),
    "digits01": dict(epochs=10, quick_epochs=5, lr=0.1, batch_size=16, threshold=0.99),
}


def load_data(dataset: str, seed: int = 0):
    """The seeded train/test ``Split`` of ``dataset`` ('blobs' or 'digits01'), labels 0/1."""
    if dataset == "blobs":
        return tt.datasets.make_linearly_separable(n=200, margin=0.5, seed=seed)
    if dataset == "digits01":
        return tt.datasets.load_digits(classes=(0, 1), seed=seed)
    raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(CONFIGS)}")


def build_perceptron(in_features: int) -> tt.Sequential:
    """One neuron: ``sigmoid(w . x + b)``, the probability of class 1."""
    return tt.Sequential(tt.Linear(in_features, 1), tt.Sigmoid())


def train_perceptron(dataset: str = "blobs", epochs: int | None = None, quick: bool = False,
                     seed: int = 0, verbose: bool = True) -> MilestoneResult:
    """Train the perceptron on ``dataset``; return the model, its history and test accuracy.

    ``epochs`` defaults to the dataset's setting in ``CONFIGS`` (fewer with ``quick``).
    ``seed`` fixes the data split, the initial weights and the batch order.
    """
    config, epochs = pick_config(CONFIGS, dataset, epochs, quick)
    split = load_data(dataset, seed)

    tt.manual_seed(seed)
    model = build_perceptron(split.X_train.shape[1])
    optimizer = tt.SGD(model.parameters(), lr=config["lr"])
    return train_and_report(
        NAME, dataset, model, optimizer, tt.BCELoss(), split,
        (split.X_train, binary_targets(split.y_train)),
        (split.X_test, binary_targets(split.y_test)),
        threshold=config["threshold"], epochs=epochs, batch_size=config["batch_size"],
        seed=seed, verbose=verbose)


def main(argv=None) -> int:
    parser = milestone_parser(__doc__.splitlines()[0], datasets=list(CONFIGS))
    args = parser.parse_args(argv)
    result = train_perceptron(args.dataset, args.epochs, args.quick, args.seed, verbose=True)
    return report([result])


if __name__ == "__main__":
    sys.exit(main())
