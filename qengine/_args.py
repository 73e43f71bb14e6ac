"""Strict scalar arguments (docs/search-semantics.md, section 9, "Arguments").

``qengine.Forest`` and the reference engine check scalars with these; the native bindings apply
the same rules (``csrc/bindings/args.cc``), and ``SearchConfig`` is checked by the core's (its
schema lives in ``csrc/qengine/config.h``). Nothing is coerced: ``1.5`` never
becomes ``1`` and ``'3'`` never becomes ``3``.

* int:  a Python int or a numpy integer, not a bool
* real: a Python int or float, a numpy integer or floating, not a bool
* str:  a Python str
* bool: a Python bool or a numpy bool

A wrong type raises TypeError naming the argument; values are range-checked by the caller.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
UINT64_MAX = 2**64 - 1


def _type_error(name: str, value: Any, what: str) -> TypeError:
    return TypeError(
        f"{name} must be {what}, got {type(value).__name__} (nothing is converted implicitly)"
    )


def is_bool(value: Any) -> bool:
    return isinstance(value, (bool, np.bool_))


def integer(name: str, value: Any) -> int:
    """``value`` as a Python int, if it is an int (TypeError otherwise)."""
    if is_bool(value) or not isinstance(value, (int, np.integer)):
        raise _type_error(name, value, "an int")
    return int(value)


def real(name: str, value: Any) -> float:
    """``value`` as a Python float, if it is a real number (TypeError otherwise). An int beyond
    the float range gives +-inf (refused by the callers' finiteness checks)."""
    if isinstance(value, float):
        return float(value)
    if is_bool(value):
        raise _type_error(name, value, "a real number (int or float)")
    if isinstance(value, (int, np.integer)):
        try:
            return float(int(value))
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    if isinstance(value, np.floating):
        return float(value)
    raise _type_error(name, value, "a real number (int or float)")


def text(name: str, value: Any) -> str:
    if not isinstance(value, str):
        raise _type_error(name, value, "a str")
    return value


def flag(name: str, value: Any) -> bool:
    if not is_bool(value):
        raise _type_error(name, value, "a bool")
    return bool(value)
