"""Loads the compiled core ``qengine._core`` and explains how to build it when it is missing."""

from __future__ import annotations

from types import ModuleType

_BUILD_HINT = (
    "qengine's native core (qengine._core) is not built. Install the package so that CMake "
    "compiles it: `pip install .` (or `pip install -e .` for development) from the repository "
    "root; this needs a C++17 compiler, CMake >= 3.20 and pybind11."
)

try:
    from . import _core as _core_module
except ImportError as error:  # pragma: no cover - exercised only on a broken install
    raise ImportError(f"{_BUILD_HINT} (original error: {error})") from error


def core() -> ModuleType:
    """The compiled extension module."""
    return _core_module
