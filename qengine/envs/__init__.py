"""Text environments: a small protocol plus built-in, offline-generated environments.

``make_env(name, **config)`` builds one of :func:`list_envs` (``"shop"``, ``"hotpot"``,
``"textworld"``; the last needs ``pip install textworld``). See ``docs/envs.md``.
"""

from .base import SPLITS, EnvSnapshot, StepResult, TextEnv, TextState, parse_action
from .registry import UnknownEnvironmentError, list_envs, make_env, register_env

__all__ = [
    "SPLITS",
    "EnvSnapshot",
    "StepResult",
    "TextEnv",
    "TextState",
    "UnknownEnvironmentError",
    "list_envs",
    "make_env",
    "parse_action",
    "register_env",
]
