"""qengine: step-level and token-level Q-value methods for LLM agents, natively accelerated.

The search core (``Forest``) is C++; ``qengine.kernels`` holds the Triton kernels (with PyTorch
fallbacks); the rest (environments, policies, data, training, selection) is thin Python on top.
Heavy submodules (torch, transformers) are imported only when first used.
"""

from __future__ import annotations

import importlib
from typing import Any

from . import _native  # noqa: F401  (fails early, with build instructions, if _core is missing)
from .config import SearchConfig
from .errors import CapacityError
from .forest import Forest, Leaves, Pairs

__version__ = "0.1.0"

__all__ = [
    "CapacityError",
    "Forest",
    "Leaves",
    "Pairs",
    "SearchConfig",
    "__version__",
]

_LAZY_SUBMODULES = (
    "critics",
    "data",
    "demo",
    "envs",
    "kernels",
    "models",
    "pipeline",
    "policies",
    "qrm",
    "reference",
    "rl",
    "search",
    "select",
    "train",
)


def __getattr__(name: str) -> Any:
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'qengine' has no attribute {name!r}")
