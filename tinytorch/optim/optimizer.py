"""Optimizer: the base class that owns parameters, their state, and checkpointable state.

Subclasses say which per-parameter buffers they keep (``_state_names``) and how one
parameter is updated (``_update``); this class does the rest: bookkeeping, skipping
parameters without a gradient, ``zero_grad``, and a state dict a checkpoint can store
without pickling.
"""
from __future__ import annotations

import numbers

import numpy as np

from ..checks import is_real
from ..core.module import Module
from ..core.tensor import Tensor

__all__ = ["Optimizer"]


def check_number(owner: str, name: str, value, low: float, *, low_open: bool = False,
                 high: float | None = None) -> float:
    """``value`` as a float, or an error naming it: TypeError if not a real number,
    ValueError if below ``low`` (at or below it when ``low_open``) or at/above ``high``."""
    if not is_real(value):
        raise TypeError(f"{owner}: {name} must be a number; got {value!r}")
    value = float(value)
    bad = value <= low if low_open else value < low
    if bad or (high is not None and value >= high) or value != value:
        upper = f"{high:g})" if high is not None else "inf)"
        interval = ("(" if low_open else "[") + f"{low:g}, " + upper
        raise ValueError(f"{owner}: invalid {name}: {value!r} (must lie in {interval})")
    return value


def _plain(value):
    """A hyper-parameter as JSON-able Python: floats stay floats, tuples become lists."""
    if isinstance(value, (tuple, list)):
        return [_plain(v) for v in value]
    if isinstance(value, bool):
        return value
    if isinstance(value, numbers.Integral):
        return int(value)
    return float(value)


def _views(flat: np.ndarray, params: list) -> list:
    """Consecutive pieces of ``flat``, each shaped like one of ``params``."""
    views, start = [], 0
    for p in params:
        views.append(flat[start:start + p.data.size].reshape(p.data.shape))
        start += p.data.size
    return views


class Optimizer:
    """Base class of SGD, Adam and AdamW.

    ``params`` is an iterable of Parameters (a generator such as ``model.parameters()`` is
    fine; it is stored as the list ``self.params``). ``defaults`` maps each hyper-parameter
    name to its value; each becomes an attribute (``opt.lr``, ``opt.momentum``, ...), read
    afresh at every ``step()``, so a scheduler can set ``opt.lr`` between steps.

    State: ``self.state[i]`` maps buffer names to the numpy arrays kept for ``params[i]``
    (same shape and dtype, allocated up front and updated in place); ``self.param_steps[i]``
    counts the updates ``params[i]`` has received; ``self.step_count`` counts ``step()``
    calls. A parameter whose ``.grad`` is None is skipped: not moved, its state not advanced.

    Storage: when all parameters share a dtype, the optimizer moves them, with their values,
    into one flat array (each ``p.data`` becomes a view into it), so a step updates every
    parameter with a handful of numpy calls. Updates are in place from then on. Hold
    ``p.data``, not an array taken before the optimizer was built; a ``p.data`` you rebind
    later is still updated (copied in and out at each step).

    ``state_dict()`` format (plain JSON-able values plus numpy arrays, so a checkpoint can
    store ``buffers`` in an .npz and the rest as JSON)::

        {"optimizer": "SGD",                                   # class name
         "hyper": {"lr": 0.1, "momentum": 0.9, "weight_decay": 0.0},   # tuples as lists
         "step": 12,                                           # step() calls
         "param_steps": [12, 12],                              # updates per parameter
         "buffers": {"momentum_buffer.0": ndarray, ...}}              # "<name>.<index>"

    ``load_state_dict`` checks all of it against this optimizer (class, hyper-parameter
    names and values, one buffer of the parameter's shape per name and parameter) before
    changing anything, and raises ValueError naming the offending parameter and shapes.
    """

    def __init__(self, params, defaults: dict):
        if isinstance(params, (Tensor, Module)):
            hint = " (did you mean model.parameters()?)" if isinstance(params, Module) else ""
            raise TypeError(f"{type(self).__name__} expects an iterable of Parameters; got a "
                            f"{type(params).__name__}{hint}")
        self.params = list(params)
        if not self.params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        for i, p in enumerate(self.params):
            if not isinstance(p, Tensor):
                raise TypeError(f"{type(self).__name__}: parameter {i} is a "
                                f"{type(p).__name__}, not a Parameter/Tensor")
        if len({id(p) for p in self.params}) != len(self.params):
            raise ValueError(f"{type(self).__name__}: a parameter appears more than once")
        self._validate(defaults)
        self._hyper_names = tuple(defaults)
        for name, value in defaults.items():
            setattr(self, name, value)
        self.step_count = 0
        self.param_steps = [0] * len(self.params)
        self.state: list[dict[str, np.ndarray]] = [{} for _ in self.params]
        self._workspace: dict = {}
        self._flat = None  # (flat params, flat grads, {name: flat buffer}) once allocated
        self._allocate_state()

    # ------------------------------------------------------------ for subclasses
    def _validate(self, hyper: dict) -> None:
        """Raise if a hyper-parameter value is invalid (subclasses check theirs too)."""
        check_number(type(self).__name__, "learning rate lr", hyper["lr"], 0.0)

    def _state_names(self, hyper: dict) -> tuple:
        """Names of the buffers kept per parameter under these hyper-parameters."""
        return ()

    def _update(self, i: int, param: np.ndarray, grad: np.ndarray, state: dict) -> None:
        """Update ``param`` (params[i].data) in place; ``param_steps[i]`` is already counted."""
        raise NotImplementedError(f"{type(self).__name__} must define _update()")

    def _scratch(self, param: np.ndarray, slot: int = 0) -> np.ndarray:
        """A reusable work array shaped like ``param`` (two slots, shared by all parameters),
        so updates need no fresh temporaries. Its contents are garbage between uses."""
        key = param.dtype
        space = self._workspace.get(key)
        if space is None or space.shape[1] < param.size:
            space = self._workspace[key] = np.empty((2, param.size), dtype=key)
        return space[slot, :param.size].reshape(param.shape)

    # ------------------------------------------------------------ public API
    @property
    def lr(self) -> float:
        return self._lr

    @lr.setter
    def lr(self, value: float) -> None:
        self._lr = check_number(type(self).__name__, "learning rate lr", value, 0.0)

    @property
    def hyper(self) -> dict:
        """The current hyper-parameters by name."""
        return {name: getattr(self, name) for name in self._hyper_names}

    def zero_grad(self) -> None:
        """Forget every parameter's gradient (``.grad = None``), as PyTorch does by default."""
        for p in self.params:
            p.grad = None

    def step(self) -> None:
        """Update, in place, every parameter that has a gradient."""
        self._allocate_state()  # no-op unless a hyper-parameter change needs a new buffer
        self.step_count += 1
        updated = []
        for i, p in enumerate(self.params):
            if p.grad is None:
                continue
            if p.grad.shape != p.data.shape:
                raise ValueError(f"{type(self).__name__}: parameter {i} has shape "
                                 f"{p.data.shape} but its gradient has shape {p.grad.shape}")
            self.param_steps[i] += 1
            updated.append(i)
        if self._flat is not None and len(updated) == len(self.params) and \
                len(set(self.param_steps)) == 1:
            self._update_all_at_once()
        else:
            for i in updated:
                self._update(i, self.params[i].data, np.asarray(self.params[i].grad),
                             self.state[i])

    def _update_all_at_once(self) -> None:
        """One ``_update`` on every parameter laid end to end in a flat array.

        The update rules are elementwise, so this computes exactly what one ``_update`` per
        parameter would, with a handful of numpy calls instead of a handful per parameter:
        for a small model the per-call overhead, not the arithmetic, is what costs. The
        parameters already live in that array (see ``_allocate_state``), so they are updated
        where they are; one whose ``.data`` was replaced since is copied in and back out.
        """
        flat_param, flat_grad, flat_state = self._flat
        # axis=None: each array is read flat, with no reshape call per parameter
        np.concatenate([p.grad for p in self.params], axis=None, out=flat_grad)
        in_place = all(p.data is view for p, view in zip(self.params, self._flat_views))
        if not in_place:
            np.concatenate([p.data for p in self.params], axis=None, out=flat_param)
        self._update(0, flat_param, flat_grad, flat_state)
        if not in_place:
            for p, updated in zip(self.params, self._flat_views):
                np.copyto(p.data, updated)

    @property
    def state_arrays_per_param(self) -> int:
        """How many arrays of a parameter's size this optimizer keeps for each parameter."""
        return len(self._state_names(self.hyper))

    def state_nbytes(self) -> int:
        """Bytes held by the state buffers (the shared scratch space is not counted)."""
        return sum(buf.nbytes for state in self.state for buf in state.values())

    # ------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict:
        """A copy of the full state, in the format described in the class docstring."""
        return {
            "optimizer": type(self).__name__,
            "hyper": {name: _plain(value) for name, value in self.hyper.items()},
            "step": int(self.step_count),
            "param_steps": [int(s) for s in self.param_steps],
            "buffers": {f"{name}.{i}": buf.copy()
                        for i, state in enumerate(self.state) for name, buf in state.items()},
        }

    def load_state_dict(self, state_dict: dict) -> None:
        """Restore a ``state_dict()``; everything is validated before anything changes."""
        owner = type(self).__name__
        missing = {"optimizer", "hyper", "step", "param_steps", "buffers"} - set(state_dict)
        if missing:
            raise ValueError(f"{owner}.load_state_dict: missing keys {sorted(missing)}")
        if state_dict["optimizer"] != owner:
            raise ValueError(f"{owner}.load_state_dict: the state dict is from a "
                             f"{state_dict['optimizer']} optimizer")
        hyper = {name: tuple(v) if isinstance(v, list) else v
                 for name, v in state_dict["hyper"].items()}
        if set(hyper) != set(self._hyper_names):
            raise ValueError(f"{owner}.load_state_dict: hyper-parameters {sorted(hyper)} do not "
                             f"match {sorted(self._hyper_names)}")
        self._validate(hyper)
        counts = [state_dict["step"], *state_dict["param_steps"]]
        if not all(isinstance(c, numbers.Integral) and not isinstance(c, bool) and c >= 0
                   for c in counts):
            raise ValueError(f"{owner}.load_state_dict: 'step' and 'param_steps' must be "
                             f"non-negative integers; got {counts}")
        param_steps = list(state_dict["param_steps"])
        if len(param_steps) != len(self.params):
            raise ValueError(f"{owner}.load_state_dict: the state dict has step counts for "
                             f"{len(param_steps)} parameters; this optimizer has "
                             f"{len(self.params)}")
        buffers = state_dict["buffers"]
        names = self._state_names(hyper)
        expected = {f"{name}.{i}": (i, p) for i, p in enumerate(self.params) for name in names}
        unexpected = sorted(set(buffers) - set(expected))
        if unexpected:
            raise ValueError(f"{owner}.load_state_dict: unexpected buffers {unexpected}; this "
                             f"optimizer has {len(self.params)} parameters and keeps "
                             f"{list(names)} for each")
        for key, (i, p) in expected.items():
            if key not in buffers:
                raise ValueError(f"{owner}.load_state_dict: no buffer '{key}' for parameter {i} "
                                 f"(shape {p.data.shape})")
            if np.shape(buffers[key]) != p.data.shape:
                raise ValueError(f"{owner}.load_state_dict: buffer '{key}' has shape "
                                 f"{np.shape(buffers[key])} but parameter {i} has shape "
                                 f"{p.data.shape}")

        for name, value in hyper.items():
            setattr(self, name, value)
        self.step_count = int(state_dict["step"])
        self.param_steps = [int(s) for s in param_steps]
        for state in self.state:
            for name in list(state):
                if name not in names:
                    del state[name]
        self._allocate_state()
        for key, (i, _) in expected.items():
            self.state[i][key.rsplit(".", 1)[0]][...] = buffers[key]

    def _allocate_state(self) -> None:
        """Zero buffers for every state name not yet allocated. When all parameters share a
        dtype, each buffer is a view into one flat array per name, so that ``step`` can
        update every parameter at once (``_update_all_at_once``); so are the parameters,
        moved once, here: each ``p.data`` becomes a view with the same values into one flat
        array (as frameworks' "flat parameters" do), which every later step updates in place."""
        names = self._state_names(self.hyper)
        if self._flat is not None and len(self._flat[2]) == len(names) and \
                all(name in self._flat[2] for name in names):
            return  # the common case, at every step: nothing to do
        dtypes = {p.data.dtype for p in self.params}
        if len(dtypes) != 1:
            self._flat = None
            for p, state in zip(self.params, self.state):
                for name in names:
                    if name not in state:
                        state[name] = np.zeros_like(p.data)
            return
        if self._flat is None:
            total, dtype = sum(p.data.size for p in self.params), dtypes.pop()
            self._flat = (np.empty(total, dtype), np.empty(total, dtype), {})
            self._flat_views = _views(self._flat[0], self.params)
            for p, view in zip(self.params, self._flat_views):  # move each parameter in
                view[...] = p.data
                p.data = view
        flat_state = self._flat[2]
        for name in list(flat_state):
            if name not in names:
                del flat_state[name]
        for name in names:
            if name in flat_state:
                continue
            flat = flat_state[name] = np.zeros_like(self._flat[0])
            for state, view in zip(self.state, _views(flat, self.params)):
                state[name] = view

    def __repr__(self) -> str:
        hyper = ", ".join(f"{name}={value!r}" for name, value in self.hyper.items())
        return f"{type(self).__name__}({hyper})"
