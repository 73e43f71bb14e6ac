"""Data-parallel training: 2 gloo processes under torchrun give the loss curve of one process with
the same global batch, and write one model (rank 0)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import TRAINERS, weights

HELPER = Path(__file__).with_name("train_helpers.py")
EPOCHS = "2"


def start(cmd: list[str], cwd: Path) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, cwd=cwd, env=env, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen) -> None:
    try:
        _, err = proc.communicate(timeout=300)
    except subprocess.TimeoutExpired:
        proc.kill()  # torchrun takes its workers down with it
        _, err = proc.communicate()
        pytest.fail(f"timed out: {err[-2000:]}")
    assert proc.returncode == 0, err[-3000:]


@pytest.mark.parametrize("trainer", TRAINERS)
def test_two_gloo_processes_match_one_process(trainer: str, tmp_path: Path) -> None:
    one, two = tmp_path / "one-process", tmp_path / "two-processes"
    common = [str(HELPER), trainer, "--threads", "1", "--epochs", EPOCHS]
    single = start([sys.executable, *common[:2], str(one), *common[2:], "--per-device", "16"],
                   tmp_path)  # fmt: skip
    ddp = start(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         *common[:2], str(two), *common[2:], "--per-device", "8"],
        tmp_path,
    )  # fmt: skip
    finish(single)
    finish(ddp)

    curve_one = json.loads((one / "history.json").read_text())
    curve_two = json.loads((two / "history.json").read_text())
    assert len(curve_one) == len(curve_two) == int(EPOCHS)
    for a, b in zip(curve_one, curve_two, strict=True):
        for key in ("loss", "accuracy", "mse"):
            if key in a:
                assert b[key] == pytest.approx(a[key], rel=1e-3, abs=1e-5), (key, a, b)
    # one model, the same files as the single process wrote, and its weights up to float sums:
    # a gradient that cancels to ~0 (the Q-RM head's bias: chosen minus rejected) is rounding
    # noise that Adam scales to a step of up to the learning rate (3e-3), so allow a sixth of it
    assert sorted(p.name for p in two.rglob("*")) == sorted(p.name for p in one.rglob("*"))
    wa, wb = weights(one), weights(two)
    assert wa.keys() == wb.keys() and wa
    for name in wa:
        torch.testing.assert_close(wb[name], wa[name], rtol=1e-3, atol=5e-4, msg=name)
