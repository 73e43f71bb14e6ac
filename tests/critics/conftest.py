"""Shared fixtures: one torch thread per worker, a small shop env and searched trees on disk."""

from __future__ import annotations

import os
import sys

# The shared helpers module sits next to this file; make it importable under any import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pathlib import Path

import pytest
from critics_helpers import SHOP_KW

from qengine.envs import make_env
from qengine.policies import ScriptedPolicy
from qengine.search import CollectSettings, collect


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models on a busy 2-core machine: more threads per xdist worker only slow them."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def shop():
    """A small shop environment (a fresh one per test: tests step it)."""
    return make_env("shop", **SHOP_KW)


@pytest.fixture(scope="session")
def tree_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Searched trees of 6 shop tasks written by ``collect`` (a fraction of a second)."""
    env = make_env("shop", **SHOP_KW)
    out = tmp_path_factory.mktemp("trees")
    settings = CollectSettings(iterations=12, candidates=4, max_depth=8, workers=1)
    tasks = env.task_ids("train")[:6]
    collect(env, ScriptedPolicy(env, p=0.5, seed=1), tasks, settings=settings, out_dir=out,
            progress=False)  # fmt: skip
    return out
