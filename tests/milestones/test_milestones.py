"""Milestone tests: each historical experiment reaches its target, and each script runs.

Targets (held-out test split, SPEC section 4), checked with the milestones' full settings,
which all train in seconds:

- 01 Perceptron: 100 % on the separable 2-D points, >= 99 % on digits 0 vs 1.
- 02 XOR: a single layer never exceeds 75 % on the four points; the two-layer MLP gets all
  four, and >= 95 % of the noisy cloud's test points.
- 03 MLP: >= 97 % on the 8x8 digits, >= 90 % on MNIST 5k.
- 04 CNN: >= 96 % on MNIST 5k and >= 3 points above the 03 MLP on the same split; >= 98 % on
  the 8x8 digits. The quick modes (fewer epochs, used by the command-line tests) must reach
  95 % on both. CIFAR-10 is checked offline, on a tiny file in the real batch format.

The command-line tests run each script with ``--quick`` from the repository root.
"""
import hashlib
import io
import itertools
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

import tinytorch as tt
from tinytorch import datasets as ds
from tinytorch.notebook import load_milestone

ROOT = Path(__file__).resolve().parents[2]
perceptron = load_milestone("01_1958_perceptron")
xor = load_milestone("02_1969_xor")
mlp = load_milestone("03_1986_mlp")
cnn = load_milestone("04_1998_cnn")
common = sys.modules["common"]  # the milestones' shared helpers, imported by the scripts


# ----------------------------------------------------------------------------- 01 Perceptron

def test_perceptron_separates_the_2d_points_perfectly():
    result = perceptron.train_perceptron("blobs", verbose=False)
    assert result.test_accuracy == 1.0, result.test_accuracy


def test_perceptron_reaches_99_percent_on_digits_zero_vs_one():
    result = perceptron.train_perceptron("digits01", verbose=False)
    assert result.test_accuracy >= 0.99, result.test_accuracy


def test_perceptron_is_one_linear_layer_and_a_sigmoid():
    model = perceptron.train_perceptron("blobs", epochs=1, verbose=False).model
    assert [type(layer) for layer in model.layers] == [tt.Linear, tt.Sigmoid]
    assert model.layers[0].weight.shape == (1, 2)


def test_perceptron_quick_mode_meets_the_same_targets():
    for dataset in ("blobs", "digits01"):
        result = perceptron.train_perceptron(dataset, quick=True, verbose=False)
        assert result.passed and result.epochs < perceptron.CONFIGS[dataset]["epochs"]


# ----------------------------------------------------------------------------- 02 XOR

def test_no_straight_line_classifies_more_than_three_xor_points():
    """The ceiling the single layer hits, checked by brute force over many lines."""
    X, y = ds.make_xor()
    angles = np.linspace(0, 2 * np.pi, 360, endpoint=False)
    normals = np.stack([np.cos(angles), np.sin(angles)], axis=1)       # (360, 2)
    offsets = np.linspace(-2, 2, 401)                                   # (401,)
    sides = (X @ normals.T)[None, :, :] + offsets[:, None, None] >= 0  # (401, 4, 360)
    accuracy = (sides == y[None, :, None].astype(bool)).mean(axis=1)
    assert accuracy.max() == 0.75


def test_single_layer_never_exceeds_75_percent_on_the_four_points():
    result = xor.train_xor("single", "points", verbose=False)
    assert max(result.history["eval_accuracy"]) <= 0.75
    assert result.passed


def test_two_layer_mlp_classifies_all_four_xor_points():
    result = xor.train_xor("mlp", "points", verbose=False)
    assert result.test_accuracy == 1.0
    np.testing.assert_array_equal(result.predict(result.split.X_test), [0, 1, 1, 0])


def test_two_layer_mlp_reaches_95_percent_on_the_noisy_cloud_test_split():
    result = xor.train_xor("mlp", "cloud", verbose=False)
    assert len(result.split.X_test) == 50
    assert result.test_accuracy >= 0.95, result.test_accuracy


def test_xor_quick_mode_meets_the_same_targets():
    for model, dataset in itertools.product(("single", "mlp"), ("points", "cloud")):
        assert xor.train_xor(model, dataset, quick=True, verbose=False).passed, (model, dataset)


# ----------------------------------------------------------------------------- 03 MLP

def test_mlp_reaches_97_percent_on_the_8x8_digits():
    result = mlp.train_mlp("digits", verbose=False)
    assert result.test_accuracy >= 0.97, result.test_accuracy


def test_mlp_reaches_90_percent_on_mnist_5k():
    result = mlp.train_mlp("mnist5k", verbose=False)
    assert result.test_accuracy >= 0.90, result.test_accuracy


def test_mlp_quick_mode_reaches_95_percent_on_digits_and_90_on_mnist_5k():
    assert mlp.train_mlp("digits", quick=True, verbose=False).test_accuracy >= 0.95
    assert mlp.train_mlp("mnist5k", quick=True, verbose=False).test_accuracy >= 0.90


def test_mlp_for_mnist_is_the_package_mlp_784_128_10():
    model = mlp.train_mlp("mnist5k", epochs=1, verbose=False).model
    assert isinstance(model, tt.MLP) and model.sizes == [784, 128, 10]


def test_mlp_predict_takes_raw_pixels_and_agrees_with_the_test_accuracy():
    result = mlp.train_mlp("digits", quick=True, verbose=False)
    predicted = result.predict(result.split.X_test)
    assert np.mean(predicted == result.split.y_test) == pytest.approx(result.test_accuracy)


# ----------------------------------------------------------------------------- 04 CNN

@pytest.fixture(scope="module")
def cnn_and_mlp_on_mnist():
    return cnn.train_cnn("mnist5k", verbose=False), cnn.train_mlp_baseline(verbose=False)


def test_cnn_reaches_96_percent_on_mnist_5k(cnn_and_mlp_on_mnist):
    result, _ = cnn_and_mlp_on_mnist
    assert result.test_accuracy >= 0.96, result.test_accuracy


def test_cnn_beats_the_03_mlp_by_3_points_on_the_same_mnist_split(cnn_and_mlp_on_mnist):
    result, baseline = cnn_and_mlp_on_mnist
    assert baseline.name == mlp.NAME and baseline.dataset == "mnist5k"
    gap, passed = cnn.compare_with_mlp(result, baseline)
    assert gap == pytest.approx(result.test_accuracy - baseline.test_accuracy)
    assert passed and gap >= 0.03, (result.test_accuracy, baseline.test_accuracy)


def test_cnn_reaches_98_percent_on_the_8x8_digits():
    result = cnn.train_cnn("digits", verbose=False)
    assert result.test_accuracy >= 0.98, result.test_accuracy


def test_cnn_quick_mode_reaches_95_percent_on_the_8x8_digits():
    result = cnn.train_cnn("digits", quick=True, verbose=False)
    assert result.test_accuracy >= 0.95, result.test_accuracy


def test_cnn_is_lenet_style():
    model = cnn.build_lenet(1, 28)
    kinds = [type(layer) for layer in model.layers]
    assert kinds == [tt.Conv2d, tt.ReLU, tt.MaxPool2d, tt.Conv2d, tt.ReLU, tt.MaxPool2d,
                     tt.Flatten, tt.Linear, tt.ReLU, tt.Dropout, tt.Linear]
    assert model(tt.Tensor(np.zeros((2, 1, 28, 28), np.float32))).shape == (2, 10)


def test_cnn_for_8x8_digits_keeps_feature_maps_larger_than_2x2():
    model = cnn.build_lenet(1, 8, channels=(16, 32), kernels=(3, 3), paddings=(1, 1),
                            pool_stride=1)
    x = tt.Tensor(np.zeros((1, 1, 8, 8), np.float32))
    for layer in model.layers[:6]:
        x = layer(x)
    assert x.shape == (1, 32, 6, 6)


def test_shifted_copies_move_a_pixel_one_step_each_way():
    X = np.zeros((1, 1, 5, 5), np.float32)
    X[0, 0, 2, 2] = 1.0
    shifted, labels = cnn.shifted_copies(X, np.array([7]))
    assert shifted.shape == (5, 1, 5, 5)
    np.testing.assert_array_equal(labels, [7] * 5)
    positions = {tuple(np.argwhere(image[0])[0]) for image in shifted}
    assert positions == {(2, 2), (3, 2), (1, 2), (2, 3), (2, 1)}


def test_compare_with_mlp_rejects_results_from_different_splits():
    def fake(y_test):
        split = ds.Split(np.zeros((2, 4)), np.zeros(2), np.zeros((2, 4)), np.array(y_test))
        return common.MilestoneResult("fake", "mnist5k", None, {}, 0.9, 0.9, 1, 0.0, split, None)

    with pytest.raises(ValueError, match="different splits"):
        cnn.compare_with_mlp(fake([0, 1]), fake([1, 0]))


# ----------------------------------------------------------------------------- CIFAR-10, offline

def cifar_batch(rng, n: int) -> bytes:
    """A batch as CIFAR-10's binary version ships it: per image a label byte, 3,072 pixels."""
    labels = rng.integers(0, 10, (n, 1), dtype=np.uint8)
    pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    return np.concatenate([labels, pixels], axis=1).tobytes()


@pytest.fixture
def tiny_cifar_root(tmp_path, monkeypatch):
    """A 2-images-per-batch cifar-10-binary.tar.gz under ``tmp_path/cifar10``, checksum patched."""
    rng = np.random.default_rng(0)
    members = {f"data_batch_{i}.bin": cifar_batch(rng, 2) for i in range(1, 6)}
    members["test_batch.bin"] = cifar_batch(rng, 3)
    blob = io.BytesIO()
    with tarfile.open(fileobj=blob, mode="w:gz") as tar:
        for name, data in members.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    (tmp_path / "cifar10").mkdir()
    (tmp_path / "cifar10" / "cifar-10-binary.tar.gz").write_bytes(blob.getvalue())
    monkeypatch.setattr(ds, "CIFAR10_FILES",
                        {"cifar-10-binary.tar.gz": hashlib.md5(blob.getvalue()).hexdigest()})
    return tmp_path


def test_cnn_trains_one_step_on_cifar10_offline(tiny_cifar_root):
    result = cnn.train_cnn("cifar10", epochs=1, verbose=False, data_root=tiny_cifar_root,
                           download=False)
    assert result.trainer.step == 1  # 10 training images, batch size 64: one step
    assert result.split.X_train.shape == (10, 3, 32, 32)
    assert result.model.layers[0].weight.shape[1] == 3
    assert np.isfinite(result.history["train_loss"][0])
    assert result.threshold is None and result.passed  # CIFAR-10 is report-only
    assert result.predict(result.split.X_test).shape == (3,)


# ----------------------------------------------------------------------------- summaries, CLI

def test_report_returns_exit_status_1_when_a_target_is_missed(capsys):
    result = perceptron.train_perceptron("blobs", epochs=1, verbose=False)
    result.threshold = 1.01  # unreachable
    assert common.report([result]) == 1
    out = capsys.readouterr().out
    assert "FAIL" in out and "RESULT: FAIL" in out


def test_report_returns_exit_status_1_when_a_check_fails(capsys):
    result = perceptron.train_perceptron("blobs", verbose=False)
    assert common.report([result]) == 0
    assert common.report([result], [("CNN beats MLP", False)]) == 1


@pytest.mark.parametrize("script, args", [
    ("01_1958_perceptron/perceptron.py", []),
    ("01_1958_perceptron/perceptron.py", ["--dataset", "digits01"]),
    ("02_1969_xor/xor.py", []),
    ("03_1986_mlp/mlp.py", []),
    ("04_1998_cnn/cnn.py", []),
])
def test_script_runs_quick_from_the_repository_root_and_passes(script, args):
    run = subprocess.run([sys.executable, f"milestones/{script}", "--quick", *args], cwd=ROOT,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "test accuracy" in run.stdout and "RESULT: PASS" in run.stdout
    assert "parameters" in run.stdout and "epochs" in run.stdout
    assert "training" in run.stderr  # the Trainer's progress bar


def test_script_rejects_an_unknown_dataset():
    run = subprocess.run([sys.executable, "milestones/01_1958_perceptron/perceptron.py",
                          "--dataset", "imagenet"], cwd=ROOT, capture_output=True, text=True)
    assert run.returncode == 2 and "invalid choice" in run.stderr
