"""Shared fixtures: shop states and tiny Hugging Face checkpoints saved to disk for real."""

from __future__ import annotations

import os
import sys

# The shared helpers module sits next to this file; make it importable under any import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from pathlib import Path

import pytest
from filelock import FileLock
from policies_helpers import shop_states, train_react_model

from qengine.envs import TextState


def _shared_dir(request: pytest.FixtureRequest, factory: pytest.TempPathFactory) -> Path:
    """A directory shared by the xdist workers of this run (the run's own one without xdist)."""
    base = factory.getbasetemp()
    return base.parent if hasattr(request.config, "workerinput") else base


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """Tiny models on a busy 2-core machine: two threads per xdist worker run 20-40x slower."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def states() -> list[TextState]:
    """Two shop tasks: each one's search page (free-form) and results page (admissible clicks)."""
    return shop_states(2)


@pytest.fixture(scope="session")
def react_model_dir(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory, states
) -> Path:
    """A tiny model fine-tuned to answer ``Thought: ... Action: verb[...]`` (trained once a run)."""
    root = _shared_dir(request, tmp_path_factory)
    out = root / "react_model"
    with FileLock(str(root / "react_model.lock")):
        if not (out / "config.json").is_file():
            tmp = root / "react_model.partial"
            tmp.mkdir(exist_ok=True)
            train_react_model(tmp, states)
            tmp.rename(out)
    return out


@pytest.fixture(scope="session")
def react_pair(react_model_dir) -> tuple:
    """``(model, tokenizer)`` of ``react_model_dir``, loaded once per worker."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(react_model_dir).eval()
    return model, AutoTokenizer.from_pretrained(react_model_dir)


@pytest.fixture(scope="session")
def random_model_dir(tmp_path_factory: pytest.TempPathFactory, states) -> Path:
    """An untrained tiny model: it emits garbage, which the policy must drop without crashing."""
    from policies_helpers import training_texts

    from qengine.models import build_word_tokenizer, tiny_causal_lm

    out = tmp_path_factory.mktemp("random_model")
    tok = build_word_tokenizer(p + " " + c for p, c in training_texts(states))
    model = tiny_causal_lm(tok, hidden_size=32, num_layers=1, num_heads=2, seed=1)
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out
