"""Name -> environment factory registry (``make_env("shop", seed=1)``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .base import TextEnv

__all__ = ["UnknownEnvironmentError", "list_envs", "make_env", "register_env"]

_FACTORIES: dict[str, Callable[..., TextEnv]] = {}


class UnknownEnvironmentError(ValueError):
    """``make_env`` was given a name no environment is registered under."""


def register_env(name: str, factory: Callable[..., TextEnv], *, overwrite: bool = False) -> None:
    """Register ``factory(**kwargs) -> TextEnv`` under ``name``."""
    if not name or not isinstance(name, str):
        raise ValueError(f"environment name must be a non-empty string, got {name!r}")
    if name in _FACTORIES and not overwrite:
        raise ValueError(f"environment {name!r} is already registered (pass overwrite=True)")
    _FACTORIES[name] = factory


def list_envs() -> list[str]:
    """Registered environment names, sorted."""
    return sorted(_FACTORIES)


def make_env(name: str, **kwargs: Any) -> TextEnv:
    """Build the environment registered as ``name`` with its keyword configuration."""
    try:
        factory = _FACTORIES[name]
    except (KeyError, TypeError):
        raise UnknownEnvironmentError(
            f"unknown environment {name!r}; valid names: {', '.join(list_envs())}"
        ) from None
    return factory(**kwargs)


def _shop(**kwargs: Any) -> TextEnv:
    from .shop import ShopEnv

    return ShopEnv(**kwargs)


def _hotpot(**kwargs: Any) -> TextEnv:
    from .hotpot import HotpotEnv

    return HotpotEnv(**kwargs)


def _textworld(**kwargs: Any) -> TextEnv:
    from .textworld import TextWorldEnv  # raises an ImportError with the pip hint

    return TextWorldEnv(**kwargs)


register_env("shop", _shop)
register_env("hotpot", _hotpot)
register_env("textworld", _textworld)
