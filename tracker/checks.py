"""Constructor-keyword checks: one place for the ``ValueError`` every part raises.

Every class of the project validates its keywords with these, so a wrong
value always reads the same way: ``"<name> must be ..., got <value>"``.
``True``/``False`` are never accepted as numbers (``bool`` is an ``int`` in
Python, and ``max_age=True`` is a mistake, not a 1).
"""
from __future__ import annotations

import math
from typing import Iterable, Optional

import numpy as np

_REAL = (int, float, np.integer, np.floating)
_INT = (int, np.integer)


def check_number(name: str, value, low: Optional[float] = None, high: Optional[float] = None, *,
                 low_open: bool = False, high_open: bool = False) -> float:
    """``value`` as a finite float within ``[low, high]`` (``(`` / ``)`` with the ``*_open`` flags).

    Raises
    ------
    ValueError
        Naming ``name``, the interval and the value.
    """
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, _REAL) and math.isfinite(float(value))
    if ok:
        v = float(value)
        ok = ((low is None or (v > low if low_open else v >= low))
              and (high is None or (v < high if high_open else v <= high)))
    if not ok:
        raise ValueError(f"{name} must be {_interval('a number', low, high, low_open, high_open)}, got {value!r}")
    return float(value)


def check_int(name: str, value, low: Optional[int] = None, high: Optional[int] = None) -> int:
    """``value`` as an int within ``[low, high]``.

    Raises
    ------
    ValueError
        Naming ``name``, the bounds and the value.
    """
    ok = not isinstance(value, (bool, np.bool_)) and isinstance(value, _INT)
    if ok:
        ok = (low is None or value >= low) and (high is None or value <= high)
    if not ok:
        raise ValueError(f"{name} must be {_interval('an integer', low, high, False, False)}, got {value!r}")
    return int(value)


def check_bool(name: str, value) -> bool:
    """``value`` as a bool (Python or numpy bool only).

    Raises
    ------
    ValueError
        Naming ``name`` and the value.
    """
    if not isinstance(value, (bool, np.bool_)):
        raise ValueError(f"{name} must be true or false, got {value!r}")
    return bool(value)


def check_choice(name: str, value, choices: Iterable) -> object:
    """``value`` if it is one of ``choices``.

    Raises
    ------
    ValueError
        Naming ``name``, the choices and the value.
    """
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(repr, choices))}, got {value!r}")
    return value


def _interval(kind: str, low, high, low_open: bool, high_open: bool) -> str:
    if low is not None and high is not None:
        return f"{kind} in {'(' if low_open else '['}{low}, {high}{')' if high_open else ']'}"
    if low is not None:
        return f"{kind} {'>' if low_open else '>='} {low}"
    if high is not None:
        return f"{kind} {'<' if high_open else '<='} {high}"
    return kind
