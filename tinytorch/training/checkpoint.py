"""Checkpoints: the file format, one ``.npz`` file holding the state dicts of a run (chapter 08).

A checkpoint is the dictionary ``{"model": ..., "optimizer": ..., "trainer": ...}`` of the
three state dicts a run resumes from: ``model.state_dict()``, ``optimizer.state_dict()`` and
``Trainer.state_dict()`` (nested dicts, lists and tuples of numbers, strings and numpy
arrays). This module writes and reads that dictionary and knows nothing else about training;
``Trainer.save_checkpoint`` and ``Trainer.load_checkpoint`` compose and check it.

Format (version 1). An ``.npz`` file is a zip archive of ``.npy`` arrays; ours holds

* ``model/<name>``: every entry of the model's state dict (``model/0.weight``, ...);
* ``optim/<path>``: every numpy array inside the optimizer's state dict
  (``optim/buffers/exp_avg.0``, ...);
* ``meta``: one string array holding JSON: format name and version, the model's parameter
  names, the optimizer's state dict with each array replaced by ``{"__array__": "optim/..."}``,
  and the trainer's state dict — its ``scheduler`` and ``generator`` entries stored beside it,
  under ``meta["scheduler"]`` and ``meta["generator"]``.

No pickle anywhere: loading uses ``np.load(path, allow_pickle=False)`` and ``json.loads``,
so opening a checkpoint runs no code.

Saving is atomic: the archive is written to a temporary file in the same folder, flushed
and fsync'ed, then renamed onto ``path`` with ``os.replace``. A crash mid-save leaves the
previous checkpoint intact (and the temporary file is removed on any exception).

A save that is killed (SIGKILL, power loss) cannot remove its temporary file, so the next
save or load of the same ``path`` does. The temporary file of ``NAME`` is named
``.NAME.pid<PID>@<HOST>.<random>.tmp``, after the process writing it, and is *stale*

* when ``<HOST>`` is this machine and process ``<PID>`` no longer exists (POSIX), or
* when nothing has written to it for 24 hours (``STALE_AFTER_SECONDS``), whatever its name
  says: another machine's save on a shared folder, a reused PID, or a temporary file of the
  older ``.NAME.<random>.tmp`` form.

Only stale temporaries of ``NAME`` itself are removed, so a save in progress — its writer is
alive, or it was written to within the day — is never touched.

Loading checks the file — the archive, the JSON, the format version, every array the metadata
refers to — and raises :class:`CheckpointError` naming the path and the problem. Whether the
state fits a given model, optimizer and trainer is for their ``load_state_dict`` to check.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import socket
import tempfile
import time

import numpy as np

__all__ = ["CheckpointError", "save_checkpoint", "load_checkpoint", "read_checkpoint",
           "remove_stale_temporaries", "STALE_AFTER_SECONDS", "write_atomically",
           "write_text_atomically"]

FORMAT = "tinytorch-checkpoint"
VERSION = 1
SECTIONS = ("model", "optimizer", "trainer")
_BESIDE_TRAINER = ("scheduler", "generator")  # trainer entries version 1 keeps at the top level
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first record, or an empty zip
STALE_AFTER_SECONDS = 24 * 60 * 60  # a temporary file untouched this long is an orphan


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded: unreadable, corrupt, or made for another setup."""


# ---------------------------------------------------------------------------- encoding
def _split_arrays(value, prefix: str, arrays: dict):
    """``value`` with every numpy array moved into ``arrays[key]`` and replaced by a reference.

    What is left is JSON-able. Tuples and dicts with non-string keys are tagged so that
    :func:`_join_arrays` rebuilds them exactly.
    """
    if isinstance(value, np.ndarray):
        if value.dtype.hasobject:  # would need pickle to store
            raise TypeError(f"save_checkpoint: array '{prefix}' has dtype object; only "
                            f"numeric arrays can be stored without pickle")
        arrays[prefix] = value
        return {"__array__": prefix}
    if isinstance(value, dict):
        if all(isinstance(k, str) for k in value):
            return {k: _split_arrays(v, f"{prefix}/{k}", arrays) for k, v in value.items()}
        return {"__items__": [[k, _split_arrays(v, f"{prefix}/{k}", arrays)]
                              for k, v in value.items()]}
    if isinstance(value, tuple):
        return {"__tuple__": [_split_arrays(v, f"{prefix}/{i}", arrays)
                              for i, v in enumerate(value)]}
    if isinstance(value, list):
        return [_split_arrays(v, f"{prefix}/{i}", arrays) for i, v in enumerate(value)]
    if isinstance(value, np.generic):
        return value.item()
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    raise TypeError(f"save_checkpoint: cannot store a {type(value).__name__} (at '{prefix}') "
                    f"in a checkpoint; state dicts may hold numbers, strings, lists, dicts "
                    f"and numpy arrays")


def _join_arrays(value, arrays: dict):
    """Inverse of :func:`_split_arrays`; a missing array raises KeyError naming it."""
    if isinstance(value, dict):
        if set(value) == {"__array__"}:
            key = value["__array__"]
            if key not in arrays:
                raise KeyError(f"array '{key}' referenced by the metadata is missing")
            return arrays[key]
        if set(value) == {"__items__"}:
            return {k: _join_arrays(v, arrays) for k, v in value["__items__"]}
        if set(value) == {"__tuple__"}:
            return tuple(_join_arrays(v, arrays) for v in value["__tuple__"])
        return {k: _join_arrays(v, arrays) for k, v in value.items()}
    if isinstance(value, list):
        return [_join_arrays(v, arrays) for v in value]
    return value


def _encode(state) -> dict:
    """Every array to store, ``meta`` (the JSON string) included."""
    if not isinstance(state, dict) or set(state) != set(SECTIONS):
        got = sorted(state) if isinstance(state, dict) else f"a {type(state).__name__}"
        raise TypeError(f"save_checkpoint: state must be a dict with the keys {list(SECTIONS)} "
                        f"(the state dicts of model, optimizer and trainer); got {got}")
    for name in SECTIONS:
        if not isinstance(state[name], dict):
            raise TypeError(f"save_checkpoint: state['{name}'] must be a state dict; got a "
                            f"{type(state[name]).__name__}")
    arrays = {}
    for name, value in state["model"].items():
        _split_arrays(np.asarray(value), f"model/{name}", arrays)
    trainer = dict(state["trainer"])
    beside = {key: _split_arrays(trainer.pop(key), key, arrays)
              for key in _BESIDE_TRAINER if key in trainer}
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"parameters": list(state["model"])},
        "optimizer": {"state": _split_arrays(state["optimizer"], "optim", arrays)},
        "trainer": _split_arrays(trainer, "trainer", arrays),
        **beside,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def _decode(arrays: dict, meta: dict) -> dict:
    """Inverse of :func:`_encode` (given the arrays without ``meta``)."""
    model = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    optimizer = _join_arrays(_section(meta, "optimizer", dict).get("state"), arrays)
    if not isinstance(optimizer, dict):
        raise ValueError("metadata entry 'optimizer' has no state dict")
    trainer = _join_arrays(_section(meta, "trainer", dict), arrays)
    if not isinstance(trainer, dict):
        raise ValueError("metadata entry 'trainer' is missing or malformed")
    for key in _BESIDE_TRAINER:
        if key in meta:
            trainer[key] = _join_arrays(meta[key], arrays)
    return {"model": model, "optimizer": optimizer, "trainer": trainer}


def _section(meta: dict, name: str, kind):
    value = meta.get(name)
    if not isinstance(value, kind):
        raise ValueError(f"metadata entry '{name}' is missing or malformed")
    return value


# ---------------------------------------------------------------------------- saving
def _write_archive(file, arrays: dict) -> None:
    """Write ``arrays`` as an .npz archive into the open binary ``file``."""
    # A file object, not a path: np.savez would append ".npz" to a path without it.
    np.savez(file, **arrays)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_checkpoint(state: dict, path) -> None:
    """Write ``state`` — ``{"model": ..., "optimizer": ..., "trainer": ...}``, three state
    dicts — to one .npz file at exactly ``path``, atomically (see the module docstring).
    Stale temporary files of earlier, killed saves of ``path`` are removed first."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save_checkpoint: folder '{folder}' does not exist "
                                f"(checkpoint path '{path}')")
    if os.path.isdir(path):
        example = os.path.join(path, "checkpoint.npz")
        raise IsADirectoryError(f"save_checkpoint: '{path}' is a directory; give the path of "
                                f"the checkpoint file to write, e.g. '{example}'")
    arrays = _encode(state)  # everything that can fail before the disk is touched
    remove_stale_temporaries(path)
    write_atomically(path, lambda file: _write_archive(file, arrays), binary=True,
                     prefix=_temporary_prefix(path))


def write_atomically(path, write, *, binary: bool = False, prefix: str | None = None) -> None:
    """Replace ``path`` by what ``write(file)`` writes into an open temporary file (binary
    with ``binary``, else UTF-8 text) named ``<prefix><random>.tmp`` in the same folder;
    ``prefix`` defaults to ``.<name>.``. The file is flushed and fsync'ed, given the usual
    permissions (0o666 less the umask; a bare temporary file is owner-only) and renamed onto
    ``path`` with ``os.replace``, then the folder is fsync'ed so the rename survives a power
    loss. On any error, ``write``'s included, the temporary is removed, ``path`` is left as it
    was and the error propagates. Capstone submissions and the book's notebooks are written
    this way too."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    prefix = prefix if prefix is not None else f".{os.path.basename(path)}."
    descriptor, temporary = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
    try:
        with (os.fdopen(descriptor, "wb") if binary
              else os.fdopen(descriptor, "w", encoding="utf-8")) as file:
            write(file)
            file.flush()
            os.fsync(file.fileno())
        if os.name == "posix":
            os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    _fsync_folder(folder)


def write_text_atomically(path, text: str) -> None:
    """Replace ``path`` by ``text`` (UTF-8), atomically: see :func:`write_atomically`."""
    write_atomically(path, lambda file: file.write(text))


def _host() -> str:
    """This machine's name as it appears in temporary file names (letters, digits, '-')."""
    return re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:64]


def _temporary_prefix(path: str) -> str:
    return f".{os.path.basename(path)}.pid{os.getpid()}@{_host()}."


def _writer_is_gone(pid: int) -> bool:
    """Whether process ``pid`` of this machine has exited (False when it cannot be told)."""
    if os.name != "posix" or pid == os.getpid():
        return False  # (on Windows os.kill would terminate the process, not probe it)
    try:
        os.kill(pid, 0)  # signal 0: no signal is sent, only the existence check is made
    except ProcessLookupError:
        return True
    except OSError:  # PermissionError: it exists, owned by another user
        return False
    with contextlib.suppress(OSError, IndexError):  # a zombie has exited but is not reaped
        with open(f"/proc/{pid}/stat", encoding="ascii", errors="replace") as stat:
            return stat.read().rsplit(")", 1)[1].split()[0] == "Z"
    return False


def remove_stale_temporaries(path) -> list:
    """Remove the stale temporary files of killed saves of ``path`` (the rule is in the
    module docstring); return the names removed. Never raises: a folder that cannot be
    listed, or a file that another process removes first, is skipped."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(rf"\.{re.escape(os.path.basename(path))}\."
                         rf"(?:pid(\d+)@([A-Za-z0-9-]*)\.)?[a-z0-9_]+\.tmp")
    try:
        names = os.listdir(folder)
    except OSError:
        return []
    removed, host, now = [], _host(), time.time()
    for name in names:
        match = pattern.fullmatch(name)
        if match is None:
            continue
        temporary = os.path.join(folder, name)
        try:
            untouched = now - os.stat(temporary).st_mtime
            gone = (match[1] is not None and match[2] == host
                    and _writer_is_gone(int(match[1])))
            if gone or untouched > STALE_AFTER_SECONDS:
                os.remove(temporary)
                removed.append(name)
        except OSError:
            continue
    return removed


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (POSIX); harmless to skip where unsupported."""
    with contextlib.suppress(OSError, AttributeError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


# ---------------------------------------------------------------------------- reading
def read_checkpoint(path) -> tuple:
    """``(arrays, meta)`` of the checkpoint at ``path``: a dict of numpy arrays (``meta``
    excluded) and the decoded JSON metadata. Raises CheckpointError if the file is not a
    readable checkpoint of a supported version."""
    path = os.fspath(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"checkpoint '{path}' is a directory, not a checkpoint file")
    if not os.path.isfile(path):
        raise FileNotFoundError(f"checkpoint '{path}' does not exist")
    # We open the file ourselves: np.load(path) leaks its handle when the zip is broken.
    with open(path, "rb") as file:
        head = file.read(4)
        if head not in _ZIP_MAGIC:
            raise CheckpointError(f"checkpoint '{path}' is not an .npz (zip) archive: it "
                                  f"starts with {head!r}; the file is corrupt or not a checkpoint")
        file.seek(0)
        try:
            with np.load(file, allow_pickle=False) as archive:
                arrays = {key: archive[key] for key in archive.files}
        except Exception as error:  # zipfile, zlib, numpy format errors: all mean a broken file
            raise CheckpointError(f"checkpoint '{path}' is truncated or corrupt: cannot read "
                                  f"its arrays ({type(error).__name__}: {error})") from error
    meta_array = arrays.pop("meta", None)
    if meta_array is None or meta_array.shape != () or meta_array.dtype.kind != "U":
        raise CheckpointError(f"checkpoint '{path}' has no 'meta' string entry; it was not "
                              f"written by Trainer.save_checkpoint")
    try:
        meta = json.loads(str(meta_array))
    except json.JSONDecodeError as error:
        raise CheckpointError(f"checkpoint '{path}': its metadata is not valid JSON "
                              f"({error})") from error
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"checkpoint '{path}': metadata does not describe a {FORMAT} "
                              f"file")
    if meta.get("version") != VERSION:
        raise CheckpointError(f"checkpoint '{path}' has format version {meta.get('version')!r}; "
                              f"this tinytorch reads version {VERSION}")
    return arrays, meta


# ---------------------------------------------------------------------------- loading
def load_checkpoint(path) -> dict:
    """The ``{"model": ..., "optimizer": ..., "trainer": ...}`` state dicts saved at ``path``.

    Raises FileNotFoundError if there is no such file, IsADirectoryError if ``path`` is a
    directory, CheckpointError (naming the path) if it is not a complete checkpoint of a
    supported version. Runs no code from the file. Stale temporary files of killed saves of
    ``path`` are removed first.
    """
    path = os.fspath(path)
    remove_stale_temporaries(path)
    arrays, meta = read_checkpoint(path)
    try:
        return _decode(arrays, meta)
    except (KeyError, TypeError, ValueError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise CheckpointError(f"checkpoint '{path}' cannot be loaded: {message}") from error
