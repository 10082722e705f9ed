"""Milestone 04 · The convolutional network (LeCun, Bottou, Bengio & Haffner, 1998).

A LeNet-style network reads digits with small learned filters that slide over the image
(``Conv2d``), keeps the strongest response of each neighbourhood (``MaxPool2d``), twice, and
only then classifies with ``Linear`` layers::

    Conv2d -> ReLU -> MaxPool2d -> Conv2d -> ReLU -> MaxPool2d -> Flatten
           -> Linear -> ReLU -> Dropout -> Linear

It is trained with ``CrossEntropyLoss``, ``Adam``, a ``CosineSchedule`` and the ``Trainer`` on

- ``mnist5k``: 5,000 real 28x28 MNIST digits (4,000 training / 1,000 test). The MLP of
  Milestone 03 is trained on the very same split, with the same un-augmented images, so the
  difference between the two is the architecture.
- ``digits``: the 8x8 digits. The first convolution pads by one pixel so 8x8 stays 8x8, and
  both poolings use stride 1 (overlapping windows): two stride-2 poolings would shrink an
  8x8 image to 2x2. The training images are augmented with their four copies shifted by
  one pixel (up, down, left, right).
- ``cifar10``: CIFAR-10 (32x32 colour images, downloaded on first use, about 170 MB), with a
  3-channel variant of the network. No target: the score is only reported.

Targets (held-out test split): at least 96 % on ``mnist5k`` and at least 3 points above the
Milestone 03 MLP on the same split; at least 98 % on ``digits``. With ``--quick`` (fewer
epochs): at least 95 % on ``mnist5k`` (no MLP comparison) and 95 % on ``digits``.

Run from the repository root::

    python milestones/04_1998_cnn/cnn.py                      # MNIST 5k, and the MLP to beat
    python milestones/04_1998_cnn/cnn.py --dataset digits
    python milestones/04_1998_cnn/cnn.py --dataset cifar10    # downloads CIFAR-10 once
    python milestones/04_1998_cnn/cnn.py --quick

The exit status is 0 when every target is met, 1 otherwise.
"""
import sys
from pathlib import Path

if str(Path(__file__).resolve().parents[1]) not in sys.path:  # milestones/, for common.py
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import numpy as np  # noqa: E402

import tinytorch as tt  # noqa: E402
from tinytorch.datasets import Split  # noqa: E402

from common import (  # noqa: E402
    MilestoneResult,
    adam_with_cosine,
    load_sibling,
    milestone_parser,
    pick_config,
    report,
    standardizer,
    train_and_report,
)

NAME = "Milestone 04 · CNN (1998)"
MNIST_MARGIN = 0.03  # the CNN must beat the Milestone 03 MLP by this much on MNIST 5k

# Per dataset: the network, how to train it, and the targets.
CONFIGS = {
    "mnist5k": dict(channels=(8, 16), kernels=(5, 5), paddings=(2, 0), pool_stride=2,
                    hidden=128, dropout=0.25, shifted_copies=False, lr=2e-3, batch_size=32,
                    epochs=12, threshold=0.96, quick_epochs=3, quick_threshold=0.95),
    "digits": dict(channels=(16, 32), kernels=(3, 3), paddings=(1, 1), pool_stride=1,
                   hidden=128, dropout=0.25, shifted_copies=True, lr=2e-3, batch_size=32,
                   epochs=12, threshold=0.98, quick_epochs=3, quick_threshold=0.95),
    "cifar10": dict(channels=(16, 32), kernels=(5, 5), paddings=(2, 0), pool_stride=2,
                    hidden=128, dropout=0.25, shifted_copies=False, lr=2e-3, batch_size=64,
                    epochs=5, threshold=None, quick_epochs=1, quick_threshold=None,
                    quick_train_size=5000, quick_test_size=1000),
}


def load_data(dataset: str, seed: int = 0, data_root=None, download: bool = True) -> Split:
    """The ``Split`` of ``dataset`` as NCHW images in [0, 1].

    MNIST 5k and the 8x8 digits are split with ``seed``; CIFAR-10 has its official split and is
    read from ``data_root`` (default: ``tt.datasets.data_home()``), downloaded if missing and
    ``download`` is true.
    """
    if dataset == "mnist5k":
        return tt.datasets.load_mnist_5k(seed=seed, flatten=False)
    if dataset == "digits":
        return tt.datasets.load_digits(seed=seed, flatten=False)
    if dataset == "cifar10":
        return tt.datasets.load_cifar10(root=data_root, download=download)
    raise ValueError(f"unknown dataset {dataset!r}; choose one of {sorted(CONFIGS)}")


def shifted_copies(X: np.ndarray, y: np.ndarray, pixels: int = 1) -> tuple:
    """``X`` followed by its four copies shifted ``pixels`` up, down, left and right.

    Pixels that enter the frame are 0 (the background); labels are repeated to match.
    """
    n, c, h, w = X.shape
    p = pixels
    padded = np.pad(X, ((0, 0), (0, 0), (p, p), (p, p)))
    copies = [X] + [padded[:, :, p + dy:p + dy + h, p + dx:p + dx + w]
                    for dy, dx in ((p, 0), (-p, 0), (0, p), (0, -p))]
    return np.concatenate(copies), np.tile(y, len(copies))


def build_lenet(in_channels: int, image_size: int, channels=(8, 16), kernels=(5, 5),
                paddings=(2, 0), pool_stride: int = 2, hidden: int = 128,
                dropout: float = 0.25, classes: int = 10) -> tt.Sequential:
    """The LeNet-style network for square ``image_size`` inputs with ``in_channels`` channels.

    Conv2d -> ReLU -> MaxPool2d(2) -> Conv2d -> ReLU -> MaxPool2d(2) -> Flatten -> Linear ->
    ReLU -> Dropout -> Linear. The first Linear layer's input size follows from the geometry.
    """
    size = image_size
    for kernel, padding in zip(kernels, paddings):
        size = tt.conv_output_shape(size, size, kernel, padding=padding)[0]   # convolution
        size = tt.conv_output_shape(size, size, 2, stride=pool_stride)[0]     # pooling
    c1, c2 = channels
    return tt.Sequential(
        tt.Conv2d(in_channels, c1, kernels[0], padding=paddings[0]), tt.ReLU(),
        tt.MaxPool2d(2, stride=pool_stride),
        tt.Conv2d(c1, c2, kernels[1], padding=paddings[1]), tt.ReLU(),
        tt.MaxPool2d(2, stride=pool_stride),
        tt.Flatten(),
        tt.Linear(c2 * size * size, hidden), tt.ReLU(), tt.Dropout(dropout),
        tt.Linear(hidden, classes),
    )


def train_cnn(dataset: str = "mnist5k", epochs: int | None = None, quick: bool = False,
              seed: int = 0, verbose: bool = True, data_root=None,
              download: bool = True) -> MilestoneResult:
    """Train the LeNet-style network of ``CONFIGS[dataset]``; return model, history, accuracy.

    ``quick`` trains fewer epochs (on CIFAR-10 also a subset of the images) and checks the
    lower quick target. ``seed`` fixes the data split, the initial weights, the dropout masks
    and the batch order. ``data_root`` and ``download`` are passed to the CIFAR-10 loader.
    """
    config, epochs = pick_config(CONFIGS, dataset, epochs, quick)
    split = load_data(dataset, seed, data_root, download)
    if quick and "quick_train_size" in config:
        split = Split(split.X_train[:config["quick_train_size"]],
                      split.y_train[:config["quick_train_size"]],
                      split.X_test[:config["quick_test_size"]],
                      split.y_test[:config["quick_test_size"]])
    prepare = standardizer(split.X_train, per_feature=False)
    X_train, y_train = split.X_train, split.y_train
    if config["shifted_copies"]:
        X_train, y_train = shifted_copies(X_train, y_train)

    tt.manual_seed(seed)
    _, in_channels, image_size, _ = split.X_train.shape
    model = build_lenet(in_channels, image_size, config["channels"], config["kernels"],
                        config["paddings"], config["pool_stride"], config["hidden"],
                        config["dropout"])
    optimizer, schedule = adam_with_cosine(model, config["lr"], epochs)
    return train_and_report(
        NAME, dataset, model, optimizer, tt.CrossEntropyLoss(), split,
        (prepare(X_train), y_train), (prepare(split.X_test), split.y_test),
        threshold=config["quick_threshold" if quick else "threshold"], epochs=epochs,
        batch_size=config["batch_size"], seed=seed, verbose=verbose, scheduler=schedule,
        prepare=prepare)


def train_mlp_baseline(seed: int = 0, verbose: bool = True) -> MilestoneResult:
    """Milestone 03's MLP, trained on the same MNIST 5k split as ``train_cnn('mnist5k', seed)``."""
    return load_sibling("03_1986_mlp").train_mlp("mnist5k", seed=seed, verbose=verbose)


def compare_with_mlp(cnn: MilestoneResult, mlp: MilestoneResult) -> tuple:
    """``(gap, passed)``: the CNN's test accuracy minus the MLP's, and gap >= MNIST_MARGIN.

    Raises ValueError unless both were tested on the same images with the same labels.
    """
    same_split = (np.array_equal(cnn.split.y_test, mlp.split.y_test) and np.array_equal(
        cnn.split.X_test.reshape(len(cnn.split.X_test), -1), mlp.split.X_test))
    if not same_split:
        raise ValueError(f"the CNN ({cnn.dataset}, seed {cnn.seed}) and the MLP "
                         f"({mlp.dataset}, seed {mlp.seed}) were tested on different splits")
    gap = cnn.test_accuracy - mlp.test_accuracy
    return gap, bool(gap >= MNIST_MARGIN)


def main(argv=None) -> int:
    parser = milestone_parser(__doc__.splitlines()[0], datasets=list(CONFIGS))
    parser.add_argument("--data-root", default=None,
                        help="folder of the CIFAR-10 cache (default: the tinytorch data folder)")
    args = parser.parse_args(argv)
    try:
        cnn = train_cnn(args.dataset, args.epochs, args.quick, args.seed, verbose=True,
                        data_root=args.data_root)
    except OSError as error:  # CIFAR-10 not cached and the download failed (no network...)
        print(f"could not load {args.dataset}: {error}", file=sys.stderr)
        return 1
    results, checks = [cnn], []
    if args.dataset == "mnist5k" and args.quick:
        print("(--quick: the comparison with the Milestone 03 MLP is skipped)")
    elif args.dataset == "mnist5k":
        mlp = train_mlp_baseline(args.seed, verbose=True)
        gap, ok = compare_with_mlp(cnn, mlp)
        results.append(mlp)
        checks.append((f"CNN - MLP on the same split: {100 * gap:+.2f} points "
                       f"(target >= {100 * MNIST_MARGIN:+.2f})", ok))
    return report(results, checks)


if __name__ == "__main__":
    sys.exit(main())
