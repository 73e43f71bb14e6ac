"""Name -> environment factory registry (``make_env("shop", seed=1)``), and each environment's
prompt-style hooks (``rendering_for("shop")``)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..errors import UsageError
from .base import Rendering, TextEnv

__all__ = [
    "LEGACY_RENDERING_ENV",
    "UnknownEnvironmentError",
    "list_envs",
    "make_env",
    "register_env",
    "rendering_for",
]

_FACTORIES: dict[str, Callable[..., TextEnv]] = {}
_RENDERINGS: dict[str, Rendering | Callable[[], Rendering]] = {}  # lazy: a zero-argument factory

LEGACY_RENDERING_ENV = "shop"
"""Whose hooks style text of no named environment (``rendering_for(None)``): records and
Q-models saved before they named their environment were styled with the shop's hooks whatever
the environment, so they keep reading exactly as they were trained."""


class UnknownEnvironmentError(UsageError, ValueError):
    """``make_env`` was given a name no environment is registered under."""


def register_env(
    name: str,
    factory: Callable[..., TextEnv],
    *,
    overwrite: bool = False,
    rendering: Rendering | Callable[[], Rendering] | None = None,
) -> None:
    """Register ``factory(**kwargs) -> TextEnv`` under ``name``.

    ``rendering``: the environment's prompt-style hooks, or a zero-argument function returning
    them (so that looking them up does not import the environment); default: the neutral
    :class:`~qengine.envs.base.Rendering`.
    """
    if not name or not isinstance(name, str):
        raise ValueError(f"environment name must be a non-empty string, got {name!r}")
    if name in _FACTORIES and not overwrite:
        raise ValueError(f"environment {name!r} is already registered (pass overwrite=True)")
    _FACTORIES[name] = factory
    _RENDERINGS[name] = rendering if rendering is not None else Rendering()


def list_envs() -> list[str]:
    """Registered environment names, sorted."""
    return sorted(_FACTORIES)


def make_env(name: str, **kwargs: Any) -> TextEnv:
    """Build the environment registered as ``name`` with its keyword configuration."""
    try:
        factory = _FACTORIES[name]
    except (KeyError, TypeError):
        raise _unknown(name) from None
    return factory(**kwargs)


def rendering_for(name: str | None) -> Rendering:
    """The prompt-style hooks of the environment registered as ``name``; ``None``: those of
    :data:`LEGACY_RENDERING_ENV` (text saved without its environment's name)."""
    key = LEGACY_RENDERING_ENV if name is None else name
    if key not in _RENDERINGS:
        raise _unknown(name)
    hooks = _RENDERINGS[key]
    if not isinstance(hooks, Rendering):
        hooks = _RENDERINGS[key] = hooks()
    return hooks


def _unknown(name: object) -> UnknownEnvironmentError:
    return UnknownEnvironmentError(
        f"unknown environment {name!r}; valid names: {', '.join(list_envs())}"
    )


def _shop(**kwargs: Any) -> TextEnv:
    from .shop import ShopEnv

    return ShopEnv(**kwargs)


def _shop_rendering() -> Rendering:
    from .shop.render import RENDERING

    return RENDERING


def _hotpot(**kwargs: Any) -> TextEnv:
    from .hotpot import HotpotEnv

    return HotpotEnv(**kwargs)


def _textworld(**kwargs: Any) -> TextEnv:
    from .textworld import TextWorldEnv  # raises an ImportError with the pip hint

    return TextWorldEnv(**kwargs)


register_env("shop", _shop, rendering=_shop_rendering)
register_env("hotpot", _hotpot)
register_env("textworld", _textworld)
