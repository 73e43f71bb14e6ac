"""Shared fixtures: small, fast configurations of the built-in environments."""

from __future__ import annotations

import os
import sys

# The shared helpers module sits next to this file; make it importable under any import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest
from envs_helpers import HOTPOT_KW, SHOP_KW

from qengine.envs import TextEnv, make_env


@pytest.fixture
def shop() -> TextEnv:
    return make_env("shop", **SHOP_KW)


@pytest.fixture
def hotpot() -> TextEnv:
    return make_env("hotpot", **HOTPOT_KW)
