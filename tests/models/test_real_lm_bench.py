"""``bench/real_lm.py --quick``: the real-model experiment end to end on one tiny game (CI)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("textworld", reason="the bench searches TextWorld games")

BENCH = Path(__file__).resolve().parents[2] / "bench" / "real_lm.py"


def test_quick_run_writes_the_table_and_json(tmp_path, smollm2) -> None:
    # smollm2: the checkpoint is converted (once) before the subprocess needs it
    proc = subprocess.run(
        [sys.executable, str(BENCH), "--quick", "--out", str(tmp_path)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=1800,  # ~1.5 min alone on 2 idle cores; CI runs other tests beside it
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads((tmp_path / "real_lm_quick.json").read_text())
    env = result["envs"]["tw-coin_collector"]
    assert 0.0 <= env["base_success"] <= 1.0
    assert env["q_guided_success"] is None or 0.0 <= env["q_guided_success"] <= 1.0
    assert {"base", "best-of-n (log-prob)"} <= set(env["agents"])
    kv = result["kv_reuse"]
    reuse, no_reuse = kv["reuse"], kv["no_reuse"]
    assert reuse["computed_tokens_per_state"] < no_reuse["computed_tokens_per_state"]
    assert no_reuse["replay"]["computed_tokens"] == no_reuse["replay"]["prompt_tokens"] > 0
    assert 0.0 < reuse["hit_rate"] <= 1.0
    assert kv["max_abs_prior_difference"] < 1e-3
    assert "| tw-coin_collector | base |" in (tmp_path / "real_lm_quick.md").read_text()
