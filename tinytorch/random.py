"""The shared random generator (first used in chapter 03).

Everything in tinytorch that draws random numbers — the initial weights of Linear and Conv2d,
Dropout's masks — draws them from one numpy Generator, ``default_generator``. It is seeded
with 0 when tinytorch is imported (PyTorch, too, starts from a fixed default seed), so a fresh
process builds the same model every time. As in PyTorch::

    tt.manual_seed(0)              # restart it
    state = tt.get_rng_state()     # a snapshot (a JSON-able dict) ...
    tt.set_rng_state(state)        # ... to continue from later, e.g. after loading a checkpoint

``manual_seed`` and ``set_rng_state`` change the generator in place: code holding a reference
to ``default_generator`` sees the change.
"""
from __future__ import annotations

import numpy as np

from .checks import is_int

__all__ = ["manual_seed", "default_generator", "get_rng_state", "set_rng_state"]

default_generator: np.random.Generator = np.random.default_rng(0)

_STATE_KEYS = {"bit_generator", "state", "has_uint32", "uinteger"}
_PCG64_KEYS = {"state", "inc"}


def manual_seed(seed: int) -> np.random.Generator:
    """Restart ``default_generator`` from ``seed``; returns it (as ``torch.manual_seed`` does)."""
    default_generator.bit_generator.state = np.random.default_rng(seed).bit_generator.state
    return default_generator


def get_rng_state() -> dict:
    """A copy of ``default_generator``'s state: a dict of strings and ints, JSON-able."""
    return default_generator.bit_generator.state


def set_rng_state(state: dict) -> None:
    """Continue ``default_generator`` from ``state``, a dict returned by :func:`get_rng_state`.

    The state is checked first: a malformed one raises ValueError naming what is wrong, and
    leaves the generator unchanged.
    """
    default_generator.bit_generator.state = check_rng_state(state)


def check_rng_state(state) -> dict:
    """``state`` if it is a state :func:`set_rng_state` accepts; otherwise ValueError.

    numpy itself accepts some broken states silently (a float counter is truncated) and
    rejects others with a bare KeyError or OverflowError, so the structure is checked here.
    """
    expected = type(default_generator.bit_generator).__name__
    if not isinstance(state, dict):
        raise ValueError(f"generator state must be a dict as returned by get_rng_state(); "
                         f"got a {type(state).__name__}")
    if state.get("bit_generator") != expected:
        raise ValueError(f"generator state is for {state.get('bit_generator')!r}; tinytorch's "
                         f"default generator is a {expected}")
    _check_keys("generator state", state, _STATE_KEYS)
    inner = state["state"]
    if not isinstance(inner, dict):
        raise ValueError(f"generator state['state'] must be a dict with keys "
                         f"{sorted(_PCG64_KEYS)}; got a {type(inner).__name__}")
    _check_keys("generator state['state']", inner, _PCG64_KEYS)
    for key in sorted(_PCG64_KEYS):
        _check_int(f"generator state['state'][{key!r}]", inner[key], 2 ** 128)
    _check_int("generator state['has_uint32']", state["has_uint32"], 2)
    _check_int("generator state['uinteger']", state["uinteger"], 2 ** 32)
    return state


def _check_keys(what: str, value: dict, keys: set) -> None:
    missing, unexpected = sorted(keys - set(value)), sorted(set(value) - keys, key=str)
    if missing or unexpected:
        raise ValueError(f"{what} must have the keys {sorted(keys)}; missing {missing}, "
                         f"unexpected {unexpected}")


def _check_int(what: str, value, bound: int) -> None:
    if not is_int(value) or not (
            0 <= value < bound):
        raise ValueError(f"{what} must be an int in [0, {bound}); got {value!r}")
