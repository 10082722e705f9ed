"""Argument checks shared by the whole package: one place, one wording.

Each check returns the value in its plain Python form (an ``int``, a ``float``, a pair of
ints, a non-negative dim) or raises an error that names the owner (``"Conv2d"``,
``"DataLoader"`` ...), the argument and the value it got:

* a value of the wrong kind raises ``TypeError`` ("Linear: in_features must be an int; got
  2.5"); ``bool`` is never accepted as a number, although Python counts it as one;
* a value of the right kind outside its range raises ``ValueError`` ("stride must be at
  least 1; got 0").
"""
from __future__ import annotations

import math
import numbers

__all__ = ["is_int", "is_real", "check_int", "check_real", "check_pair", "check_dim",
           "check_same_shape"]


def _prefix(owner: str) -> str:
    return f"{owner}: " if owner else ""


def is_int(value) -> bool:
    """An integer (Python or numpy), not a bool."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def is_real(value) -> bool:
    """A real number (Python or numpy), not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_int(owner: str, name: str, value, minimum: int | None = None) -> int:
    """``value`` as an int, at least ``minimum`` when given."""
    if not is_int(value):
        raise TypeError(f"{_prefix(owner)}{name} must be an int; got {value!r}")
    if minimum is not None and value < minimum:
        raise ValueError(f"{_prefix(owner)}{name} must be at least {minimum}; got {value}")
    return int(value)


def check_real(owner: str, name: str, value, low: float | None = None, *,
               low_open: bool = False, finite: bool = True) -> float:
    """``value`` as a float, at least ``low`` (above it when ``low_open``) when given. NaN is
    always refused, and infinity too when ``finite``."""
    if not is_real(value):
        raise TypeError(f"{_prefix(owner)}{name} must be a number; got {value!r}")
    value = float(value)
    too_low = low is not None and (value <= low if low_open else value < low)
    if math.isnan(value) or too_low or (finite and math.isinf(value)):
        kind = "a finite number" if finite else ""
        bound = "" if low is None else f"{'>' if low_open else '>='} {low:g}"
        wanted = " ".join(part for part in (kind, bound) if part)
        raise ValueError(f"{_prefix(owner)}{name} must be {wanted}; got {value!r}")
    return value


def check_pair(owner: str, name: str, value) -> tuple:
    """An int or a pair of ints (a kernel size, a stride), as a pair of Python ints."""
    pair = tuple(value) if isinstance(value, (tuple, list)) else (value, value)
    if len(pair) != 2 or not all(is_int(v) for v in pair):
        raise TypeError(f"{_prefix(owner)}{name} must be an int or a pair of ints; "
                        f"got {value!r}")
    return int(pair[0]), int(pair[1])


def check_dim(owner: str, dim, shape: tuple) -> int:
    """``dim`` (negative counts from the end) as a non-negative axis of ``shape``."""
    if not is_int(dim):
        raise TypeError(f"{_prefix(owner)}dim must be an int; got {dim!r}")
    ndim = len(shape)
    if not -ndim <= dim < ndim:
        raise ValueError(f"{_prefix(owner)}dim {dim} is out of range for a tensor of "
                         f"shape {tuple(shape)}")
    return int(dim) % ndim


def check_same_shape(owner: str, first: tuple, second: tuple,
                     names: tuple = ("prediction", "target")) -> None:
    """Two shapes that must match exactly (no broadcasting)."""
    if tuple(first) != tuple(second):
        raise ValueError(f"{_prefix(owner)}{names[0]} shape {tuple(first)} and {names[1]} "
                         f"shape {tuple(second)} differ; they must match exactly "
                         f"(no broadcasting)")
