"""bench/q_vs_v.py runs (quick mode, one small env) and writes the documented JSON and report."""

from __future__ import annotations

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
AGENTS = (
    "base",
    "best-of-n (log-prob)",
    "Q-guided",
    "V-guided",
    "V-guided (+env reward)",
    "GenCritic-guided",
)


def test_quick_q_vs_v_writes_json_and_report(tmp_path: Path) -> None:
    pytest.importorskip("torch")
    pytest.importorskip("transformers")
    target, md = tmp_path / "q_vs_v.json", tmp_path / "q_vs_v.md"
    out = subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "q_vs_v.py"),
            "--quick",
            "--envs",
            "hotpot",
            "--no-progress",
            "--json",
            str(target),
            "--md",
            str(md),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    result = json.loads(target.read_text())
    assert result["machine"]["cores"] >= 1 and result["machine"]["cpu"]
    assert result["machine"]["torch"]
    env = result["envs"]["hotpot"]
    assert set(env["agents"]) == set(AGENTS)
    for name, row in env["agents"].items():
        for key, ci in (("success_rate", "success_ci"), ("mean_reward", "reward_ci")):
            value, (lo, hi) = row[key], row[ci]
            assert all(math.isfinite(x) for x in (value, lo, hi)), (name, key)
            assert lo - 1e-9 <= value <= hi + 1e-9, (name, key, value, lo, hi)
        for key in ("env_steps_per_decision", "sequences_per_decision", "wall_s"):
            assert math.isfinite(row[key]) and row[key] >= 0, (name, key)
        assert row["tasks"] == env["tasks"]["test"] and row["decisions"] >= row["tasks"]
    agents = env["agents"]
    assert agents["base"]["sequences_per_decision"] == 0
    assert agents["base"]["env_steps_per_decision"] == 0
    assert agents["Q-guided"]["env_steps_per_decision"] == 0
    assert agents["Q-guided"]["sequences_per_decision"] > 0
    assert agents["V-guided"]["env_steps_per_decision"] > 0
    assert agents["V-guided"]["sequences_per_decision"] > 0
    critic = agents["GenCritic-guided"]
    assert 0 <= critic["parse_failures"] <= critic["generations"]
    models = env["models"]
    assert models["q"]["parameters"] == models["v"]["parameters"] == models["critic"]["parameters"]
    text = md.read_text()
    assert "GenCritic-guided" in text and "| agent |" in text
    assert (tmp_path / "q_vs_v_success.png").stat().st_size > 0
    assert (tmp_path / "q_vs_v_cost.png").stat().st_size > 0
