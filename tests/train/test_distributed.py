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


def test_train_q_cli_under_torchrun_matches_one_process(tmp_path: Path) -> None:
    """``torchrun --nproc-per-node 2 -m qengine train-q`` with half the per-device batch: the
    held-out evaluation of one process, one model written, one line printed."""
    from qengine.cli import main

    trees, pairs = tmp_path / "trees", tmp_path / "pairs.jsonl"
    collect = ["collect", "--env", "shop", "--tasks", "6", "--iterations", "12", "--no-progress"]
    assert main([*collect, "--out", str(trees)]) == 0
    assert main(["pairs", str(trees), "--out", str(pairs), "--mode", "max_all"]) == 0
    train = ["-m", "qengine", "train-q", str(pairs), "--model", "tiny", "--hidden-size", "32",
             "--epochs", "2", "--max-length", "256", "--eval-fraction", "0.34",
             "--no-progress"]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    runs = {}
    for name, launcher, per_device in (
        ("one", [], "8"),
        ("two", ["-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2"], "4"),
    ):
        # (torchrun's own -m: each process runs the module qengine)
        cmd = [sys.executable, *launcher, *train, "--out", str(tmp_path / name),
               "--per-device-train-batch-size", per_device]  # fmt: skip
        done = subprocess.run(cmd, cwd=tmp_path, env=env, capture_output=True, text=True,
                              timeout=600)  # fmt: skip
        assert done.returncode == 0, done.stderr[-3000:]
        lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
        assert len(lines) == 1, done.stdout[-2000:]  # rank 0 alone prints the result
        runs[name] = json.loads(lines[0])
    for when in ("eval_before", "eval_after"):
        a, b = runs["one"][when], runs["two"][when]
        assert a.keys() == b.keys() and any(isinstance(v, float) for v in a.values()), a
        for key, value in a.items():
            if isinstance(value, float):
                assert b[key] == pytest.approx(value, rel=1e-3, abs=1e-4), (when, key, a, b)
    one, two = tmp_path / "one", tmp_path / "two"
    assert sorted(p.name for p in two.rglob("*")) == sorted(p.name for p in one.rglob("*"))
