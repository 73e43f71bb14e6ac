"""Same seed and thread count give the same model, bit for bit, whatever else runs.

Each trainer trains twice in two subprocesses started together (so each is the other's
background load), with different ``PYTHONHASHSEED``, two torch threads each, outside the source
tree; the saved safetensors must be identical. A multi-threaded gather whose backward raced
(``rows[index]`` with repeated indices) made the demo train a different model per run.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import TRAINERS, weights

HELPER = Path(__file__).with_name("train_helpers.py")


def train_in_subprocesses(trainer: str, root: Path, hash_seeds: tuple[str, ...]) -> list[Path]:
    outs, procs = [], []
    for seed in hash_seeds:
        out = root / f"run-hash{seed}"
        env = {**os.environ, "PYTHONHASHSEED": seed, "OMP_NUM_THREADS": "2"}
        cmd = [sys.executable, str(HELPER), trainer, str(out), "--threads", "2"]
        procs.append(subprocess.Popen(cmd, cwd=root, env=env, stderr=subprocess.PIPE, text=True))
        outs.append(out)
    for proc in procs:
        _, err = proc.communicate(timeout=240)
        assert proc.returncode == 0, err[-3000:]
    return outs


@pytest.mark.parametrize("trainer", TRAINERS)
def test_two_processes_train_bit_identical_models(trainer: str, tmp_path: Path) -> None:
    first, second = train_in_subprocesses(trainer, tmp_path, ("0", "12345"))
    a, b = weights(first), weights(second)
    assert a and a.keys() == b.keys()
    differ = [name for name in a if not torch.equal(a[name], b[name])]
    assert not differ, f"{trainer}: tensors differ between the two runs: {differ[:5]}"


def test_packed_dpo_backward_is_deterministic_with_threads() -> None:
    """The packed DPO loss's gradients do not depend on how threads race (same bits 10 times)."""
    from train_helpers import _tokenizer, colour_pairs

    from qengine.models import tiny_causal_lm
    from qengine.train import StepDPOConfig, step_dpo
    from qengine.train.packing import group_by_state

    threads = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        tokenizer = _tokenizer()
        model = tiny_causal_lm(tokenizer, hidden_size=128, num_layers=1, seed=0)
        records = colour_pairs(40, seed=2)
        cfg = StepDPOConfig(per_device_train_batch_size=len(records), max_length=64)
        groups = group_by_state(records, cfg.prompt_style)
        reference = (torch.zeros(len(records)), torch.zeros(len(records)))
        grads = []
        for _ in range(10):
            model.zero_grad()
            step_dpo._packed_dpo_loss(
                model, tokenizer, groups, reference, cfg, torch.device("cpu")
            ).backward()
            grads.append(model.get_output_embeddings().weight.grad.clone())
    finally:
        torch.set_num_threads(threads)
    assert all(torch.equal(grads[0], g) for g in grads[1:])
