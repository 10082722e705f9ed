"""Checkpoints: one ``.npz`` file from which a training run resumes exactly (chapter 08).

Format (version 1). An ``.npz`` file is a zip archive of ``.npy`` arrays; ours holds

* ``model/<name>``: every entry of ``model.state_dict()`` (``model/0.weight``, ...);
* ``optim/<path>``: every numpy array inside ``optimizer.state_dict()``
  (``optim/buffers/exp_avg.0``, ...);
* ``meta``: one string array holding JSON: format name and version, the model's parameter
  names, the optimizer's class and the rest of its state dict (each array replaced by
  ``{"__array__": "optim/..."}``), the scheduler's class and settings, the Trainer's counters
  ``epoch`` and ``step``, its ``history`` and ``grad_clip_norm``, and the state of the
  generator that layers draw initial weights and Dropout masks from.

Data loaders are not saved: build them again with the same ``seed`` (the Trainer tells
them the epoch, so they resume with the same shuffle order).

No pickle anywhere: loading uses ``np.load(path, allow_pickle=False)`` and ``json.loads``,
so opening a checkpoint runs no code.

Saving is atomic: the archive is written to a temporary file in the same folder, flushed
and fsync'ed, then renamed onto ``path`` with ``os.replace``. A crash mid-save leaves the
previous checkpoint intact (and the temporary file is removed on any exception).

Loading validates everything — the archive, the JSON, the parameter names and shapes, the
optimizer's class and buffers, the scheduler, the counters, the generator state — before it
assigns anything; a bad file raises :class:`CheckpointError` naming the path and the problem,
and leaves model, optimizer and trainer untouched.
"""
from __future__ import annotations

import contextlib
import copy
import json
import os
import tempfile

import numpy as np

from ..core import layers

__all__ = ["CheckpointError", "read_checkpoint"]

FORMAT = "tinytorch-checkpoint"
VERSION = 1
_ZIP_MAGIC = (b"PK\x03\x04", b"PK\x05\x06")  # a zip's first record, or an empty zip


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


def _plain_number(value):
    return value.item() if isinstance(value, np.generic) else value


# ---------------------------------------------------------------------------- saving
def _collect(trainer) -> dict:
    """Every array to store, ``meta`` (the JSON string) included."""
    arrays = {}
    model_state = trainer.model.state_dict()
    for name, value in model_state.items():
        arrays[f"model/{name}"] = np.asarray(value)
    optimizer_state = _split_arrays(trainer.optimizer.state_dict(), "optim", arrays)
    scheduler = trainer.scheduler
    meta = {
        "format": FORMAT,
        "version": VERSION,
        "model": {"type": type(trainer.model).__name__, "parameters": list(model_state)},
        "optimizer": {"type": type(trainer.optimizer).__name__, "state": optimizer_state},
        "scheduler": None if scheduler is None else {
            "type": type(scheduler).__name__,
            "state": scheduler.state_dict() if hasattr(scheduler, "state_dict") else None},
        "trainer": {
            "epoch": int(trainer.epoch),
            "step": int(trainer.step),
            "grad_clip_norm": trainer.grad_clip_norm,
            "history": {k: [_plain_number(v) for v in values]
                        for k, values in trainer.history.items()},
        },
        "generator": layers.init_generator().bit_generator.state,
    }
    arrays["meta"] = np.array(json.dumps(meta))
    return arrays


def _write_archive(file, arrays: dict) -> None:
    """Write ``arrays`` as an .npz archive into the open binary ``file``."""
    # A file object, not a path: np.savez would append ".npz" to a path without it.
    np.savez(file, **arrays)


def _current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_checkpoint(trainer, path) -> None:
    """Write ``trainer``'s full state to one .npz file at exactly ``path``, atomically."""
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise FileNotFoundError(f"save_checkpoint: folder '{folder}' does not exist "
                                f"(checkpoint path '{path}')")
    arrays = _collect(trainer)  # everything that can fail before the disk is touched
    descriptor, temporary = tempfile.mkstemp(
        prefix=f".{os.path.basename(path)}.", suffix=".tmp", dir=folder)
    try:
        with os.fdopen(descriptor, "wb") as file:
            _write_archive(file, arrays)
            file.flush()
            os.fsync(file.fileno())
        if os.name == "posix":  # mkstemp creates the file owner-only (0600); use the usual mode
            os.chmod(temporary, 0o666 & ~_current_umask())
        os.replace(temporary, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.remove(temporary)
        raise
    _fsync_folder(folder)


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
def load_checkpoint(trainer, path) -> None:
    """Restore ``trainer`` (model, optimizer, scheduler, counters, history, generator) from
    the checkpoint at ``path``. Validates everything first: on error nothing has changed."""
    path = os.fspath(path)
    arrays, meta = read_checkpoint(path)
    try:
        plan = _plan_restore(trainer, arrays, meta)
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        message = error.args[0] if isinstance(error, KeyError) and error.args else error
        raise CheckpointError(f"checkpoint '{path}' cannot be loaded: {message}") from error
    try:
        # The optimizer validates its whole state before changing anything, so it goes first:
        # if it refuses, nothing has been assigned yet. What follows was validated above.
        trainer.optimizer.load_state_dict(plan["optimizer"])
    except (KeyError, TypeError, ValueError) as error:
        raise CheckpointError(f"checkpoint '{path}' does not match the optimizer: "
                              f"{error}") from error
    trainer.model.load_state_dict(plan["model"])
    if plan["scheduler"] is not None:
        trainer.scheduler.load_state_dict(plan["scheduler"])
    trainer.epoch, trainer.step = plan["epoch"], plan["step"]
    trainer.grad_clip_norm = plan["grad_clip_norm"]
    trainer.history = plan["history"]
    layers.init_generator().bit_generator.state = plan["generator"]


def _section(meta: dict, name: str, kind):
    value = meta.get(name)
    if not isinstance(value, kind):
        raise ValueError(f"metadata entry '{name}' is missing or malformed")
    return value


def _plan_restore(trainer, arrays: dict, meta: dict) -> dict:
    """Check the checkpoint against the trainer; return the values to assign."""
    from .trainer import HISTORY_KEYS, check_grad_clip_norm

    # -- model: the same parameter names with the same shapes
    own = trainer.model.state_dict()
    stored = {k[len("model/"):]: v for k, v in arrays.items() if k.startswith("model/")}
    missing = [name for name in own if name not in stored]
    unexpected = [name for name in stored if name not in own]
    wrong_shapes = [f"'{name}' has shape {stored[name].shape} in the checkpoint but "
                    f"{np.shape(own[name])} in the model"
                    for name in own if name in stored and stored[name].shape != np.shape(own[name])]
    wrong_shapes += [f"'{name}' holds {stored[name].dtype} values, not numbers the model's "
                     f"{np.asarray(own[name]).dtype} can take"
                     for name in own if name in stored and not np.can_cast(
                         stored[name].dtype, np.asarray(own[name]).dtype, casting="same_kind")]
    if missing or unexpected or wrong_shapes:
        problems = []
        if missing:
            problems.append(f"parameters missing from the checkpoint: {missing}")
        if unexpected:
            problems.append(f"parameters the model does not have: {unexpected}")
        problems.extend(wrong_shapes)
        raise ValueError("the model's architecture differs from the checkpoint's: "
                         + "; ".join(problems))

    # -- optimizer: same class (its own load_state_dict checks the buffers)
    optimizer_meta = _section(meta, "optimizer", dict)
    if optimizer_meta.get("type") != type(trainer.optimizer).__name__:
        raise ValueError(f"the checkpoint was saved with a {optimizer_meta.get('type')} "
                         f"optimizer; this trainer has a {type(trainer.optimizer).__name__}")
    optimizer_state = _join_arrays(optimizer_meta.get("state"), arrays)
    if not isinstance(optimizer_state, dict):
        raise ValueError("metadata entry 'optimizer' has no state dict")

    # -- scheduler: present in both or in neither, same class, settings valid
    scheduler_meta, scheduler = meta.get("scheduler"), trainer.scheduler
    scheduler_state = None
    if (scheduler_meta is None) != (scheduler is None):
        saved = "no scheduler" if scheduler_meta is None else f"a {scheduler_meta.get('type')}"
        ours = "none" if scheduler is None else f"a {type(scheduler).__name__}"
        raise ValueError(f"the checkpoint was saved with {saved}; this trainer has {ours}")
    if scheduler is not None:
        if scheduler_meta.get("type") != type(scheduler).__name__:
            raise ValueError(f"the checkpoint's scheduler is a {scheduler_meta.get('type')}; "
                             f"this trainer's is a {type(scheduler).__name__}")
        scheduler_state = scheduler_meta.get("state")
        if scheduler_state is not None and hasattr(scheduler, "load_state_dict"):
            copy.deepcopy(scheduler).load_state_dict(scheduler_state)  # raises if invalid
        else:
            scheduler_state = None

    # -- trainer counters, clipping and history
    state = _section(meta, "trainer", dict)
    counters = {}
    for name in ("epoch", "step"):
        value = state.get(name)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError(f"trainer counter '{name}' must be a non-negative int; got {value!r}")
        counters[name] = value
    grad_clip_norm = check_grad_clip_norm(state.get("grad_clip_norm"))
    history = state.get("history")
    if not isinstance(history, dict) or not set(HISTORY_KEYS) <= set(history) or not all(
            isinstance(v, list) and all(isinstance(x, (int, float)) for x in v)
            for v in history.values()):
        raise ValueError(f"trainer history must map {list(HISTORY_KEYS)} to lists of numbers")

    # -- the layers' generator: same kind of bit generator, a state it accepts
    generator_state = _section(meta, "generator", dict)
    bit_generator = layers.init_generator().bit_generator
    if generator_state.get("bit_generator") != type(bit_generator).__name__:
        raise ValueError(f"generator state is for {generator_state.get('bit_generator')!r}; "
                         f"the layers use {type(bit_generator).__name__}")
    type(bit_generator)().state = generator_state  # raises if malformed

    return {
        "model": {name: stored[name] for name in own},
        "optimizer": optimizer_state,
        "scheduler": scheduler_state,
        "epoch": counters["epoch"],
        "step": counters["step"],
        "grad_clip_norm": grad_clip_norm,
        "history": {k: [float(x) for x in v] for k, v in history.items()},
        "generator": generator_state,
    }
