"""bench/kernels.py runs end to end in its CPU mode (tiny sizes) and writes a valid report."""

import json
import os
import subprocess
import sys
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[2] / "bench" / "kernels.py"


def test_bench_cpu_mode_runs(tmp_path):
    out = tmp_path / "kernels-cpu.json"
    env = {**os.environ, "TRITON_INTERPRET": "0"}
    res = subprocess.run(
        [sys.executable, str(SCRIPT), "--cpu", "--tiny", "--reps", "1", "--json", str(out)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=300,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr[-3000:]
    report = json.loads(out.read_text())
    assert report["mode"] == "cpu"
    cases = {(r["case"].split()[0], r["impl"], r["mode"]) for r in report["results"]}
    for op in ("fused_linear_logprobs", "token_logprobs", "dpo_loss"):
        for impl in ("eager", "reference"):
            assert (op, impl, "full") in cases
    assert all(r["ms"] > 0 for r in report["results"])
