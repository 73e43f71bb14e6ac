"""bench/mcts.py runs (quick mode) and writes the documented JSON."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_quick_benchmark_writes_json(tmp_path: Path) -> None:
    target = tmp_path / "mcts.json"
    subprocess.run(
        [
            sys.executable,
            str(ROOT / "bench" / "mcts.py"),
            "--quick",
            "--no-mctx",
            "--json",
            str(target),
        ],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
    )
    result = json.loads(target.read_text())
    for name in ("T1", "T2", "T3", "T4"):
        row = result["workloads"][name]
        assert row["python_reference_sims_per_s"] > 0
        assert row["speedup_vs_python_reference"] > 1.0
    assert result["workloads"]["T1"]["qengine_1thread_sims_per_s"] > 0
    assert 0.0 < result["workloads"]["T3"]["distinct_leaf_fraction"] <= 1.0
    assert result["bytes_per_node"] == 40 and result["bytes_per_node_without_payload"] == 32
    assert result["export_1m_nodes_ms"] > 0 and result["pairs_1m_nodes_ms"] > 0
    assert result["machine"]["cores"] >= 1
    t2 = result["workloads"]["T2"]
    assert t2["idiomatic_python_sims_per_s"] > 0
    # The column is the ratio of the two measured rates (speed itself is the bench's business:
    # a timed assertion here would fail on a loaded CI machine).
    assert t2["speedup_vs_idiomatic_python"] == pytest.approx(
        t2["qengine_2threads_sims_per_s"] / t2["idiomatic_python_sims_per_s"]
    )
    loop = result["python_loop"]
    assert loop["native_us_per_sim"] > 0 and loop["python_loop_us_per_sim"] > 0
    assert result["python_loop_cost_ratio"] == loop["python_loop_cost_ratio"] > 0
    assert (loop["trees"], loop["simulations"], loop["actions"]) == (256, 256, 8)  # the issue's
    assert loop["python_loop_cost_ratio"] == pytest.approx(sorted(loop["pair_ratios"])[2])
