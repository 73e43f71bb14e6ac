"""Text environments: a small protocol plus built-in, offline-generated environments.

``make_env(name, **config)`` builds one of :func:`list_envs` (``"shop"``, ``"hotpot"``,
``"textworld"``; the last needs ``pip install textworld``). See ``docs/envs.md``.
"""

from .base import SPLITS, EnvSnapshot, Rendering, StepResult, TextEnv, TextState, parse_action
from .registry import (
    LEGACY_RENDERING_ENV,
    UnknownEnvironmentError,
    list_envs,
    make_env,
    register_env,
    rendering_for,
)

__all__ = [
    "LEGACY_RENDERING_ENV",
    "SPLITS",
    "EnvSnapshot",
    "Rendering",
    "StepResult",
    "TextEnv",
    "TextState",
    "UnknownEnvironmentError",
    "list_envs",
    "make_env",
    "parse_action",
    "register_env",
    "rendering_for",
]
