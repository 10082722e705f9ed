"""Milestone 02 · XOR (Minsky & Papert, 1969): one layer cannot learn it, two layers can.

XOR labels the corners of the unit square 0, 1, 1, 0: (0,0) and (1,1) are class 0, (0,1)
and (1,0) class 1. A single layer (``Linear`` + ``Sigmoid``, the perceptron of Milestone 01)
draws one straight line, and no line puts both class-1 corners on one side and both class-0
corners on the other: the best any line does is 3 of 4 points, 75 %. Adding a hidden layer
(``Linear(2, 8)`` + ``Tanh`` + ``Linear(8, 1)`` + ``Sigmoid``) bends the boundary, and the
network gets all four right. Both are trained with ``BCELoss``, ``SGD`` (momentum) and the
``Trainer`` on

- ``points``: the four corners themselves (the whole problem: train and test are the same
  four points), and
- ``cloud``: 50 noisy points around each corner (Gaussian jitter, standard deviation 0.15),
  split into a training set and a held-out test set.

Targets: on ``points`` the single layer never exceeds 75 % (in any epoch) and the two-layer
network reaches 100 %; on ``cloud`` the two-layer network reaches at least 95 % of the test
points (the noise pushes a few points across the true boundary now and then, so 100 % is not
guaranteed); the single layer's score there is only reported.

Run from the repository root::

    python milestones/02_1969_xor/xor.py                   # the four points
    python milestones/02_1969_xor/xor.py --dataset cloud   # the noisy cloud
    python milestones/02_1969_xor/xor.py --quick           # fewer epochs

The exit status is 0 when every target is met, 1 otherwise.
"""
import sys
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # milestones/, for common.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import tinytorch as tt  # noqa: E402
from tinytorch.datasets import Split  # noqa: E402

from common import (  # noqa: E402
    MilestoneResult,
    binary_targets,
    milestone_parser,
    pick_config,
    report,
    train_and_report,
)

NAMES = {"single": "Milestone 02 · XOR (1969): one layer",
         "mlp": "Milestone 02 · XOR (1969): two layers"}
HIDDEN = 8
CLOUD_NOISE = 0.15
CLOUD_POINTS_PER_CORNER = 50

# Per dataset: how to train (both models alike), and the targets.
CONFIGS = {
    "points": dict(epochs=300, quick_epochs=150, lr=0.5, batch_size=4,
                   single_at_most=0.75, mlp_threshold=1.0),
    "cloud": dict(epochs=100, quick_epochs=50, lr=0.1, batch_size=16,
                  single_at_most=None, mlp_threshold=0.95),
}


def load_data(dataset: str, seed: int = 0) -> Split:
    """The four XOR points (train = test), or a seeded split of the noisy cloud."""
    if dataset == "points":
        X, y = tt.datasets.make_xor()
        return Split(X, y, X, y)
    if dataset == "cloud":
        X, y = tt.datasets.make_xor(CLOUD_POINTS_PER_CORNER, noise=CLOUD_NOISE, seed=seed)
        return tt.datasets.train_test_split(X, y, test_size=0.25, seed=seed)
    raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(CONFIGS)}")


def build_model(kind: str, hidden: int = HIDDEN) -> tt.Sequential:
    """'single': one Linear + Sigmoid (one line); 'mlp': 2 -> hidden -> 1 with Tanh between."""
    if kind == "single":
        return tt.Sequential(tt.Linear(2, 1), tt.Sigmoid())
    if kind == "mlp":
        return tt.Sequential(tt.Linear(2, hidden), tt.Tanh(), tt.Linear(hidden, 1), tt.Sigmoid())
    raise ValueError(f"unknown model {kind!r}; choose 'single' or 'mlp'")


def train_xor(model: str = "mlp", dataset: str = "points", epochs: int | None = None,
              quick: bool = False, seed: int = 0, verbose: bool = True) -> MilestoneResult:
    """Train the one-layer ('single') or two-layer ('mlp') network on ``dataset``.

    The single layer's result has ``at_most=True``: it passes when no epoch exceeded 75 %.
    ``seed`` fixes the cloud's noise and split, the initial weights and the batch order.
    """
    config, epochs = pick_config(CONFIGS, dataset, epochs, quick)
    split = load_data(dataset, seed)

    tt.manual_seed(seed)
    network = build_model(model)
    optimizer = tt.SGD(network.parameters(), lr=config["lr"], momentum=0.9)
    single = model == "single"
    return train_and_report(
        NAMES[model], dataset, network, optimizer, tt.BCELoss(), split,
        (split.X_train, binary_targets(split.y_train)),
        (split.X_test, binary_targets(split.y_test)),
        threshold=config["single_at_most"] if single else config["mlp_threshold"],
        at_most=single, epochs=epochs, batch_size=config["batch_size"], seed=seed,
        verbose=verbose)


def main(argv=None) -> int:
    parser = milestone_parser(__doc__.splitlines()[0], datasets=list(CONFIGS))
    args = parser.parse_args(argv)
    results = [train_xor(kind, args.dataset, args.epochs, args.quick, args.seed, verbose=True)
               for kind in ("single", "mlp")]
    return report(results)


if __name__ == "__main__":
    sys.exit(main())
