"""The Q-RM vs ORM benchmark (``bench/qrm_vs_orm.py``): its arithmetic task and its --quick run."""

from __future__ import annotations

import json
import math
import random
import re
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"


@pytest.fixture(scope="module")
def task():
    sys.path.insert(0, str(BENCH))
    try:
        import arith_task

        yield arith_task
    finally:
        sys.path.remove(str(BENCH))


def test_problems_are_seeded_and_answers_parse(task) -> None:
    a, b = task.generate_problems(20, seed=3), task.generate_problems(20, seed=3)
    assert a == b and a != task.generate_problems(20, seed=4)
    for p in a:
        assert task.answer_of(p.solution) == p.answer >= 0
        for (x, op, y), step in zip(p.steps, p.solution.split(" . ")[:2], strict=True):
            assert step.split() == [str(x), op, str(y), "=", step.split()[-1]]
            assert (x + y if op == "+" else x - y) == int(step.split()[-1]) >= 0
    assert task.answer_of("1 + 2 = 3 . answer") is None
    assert task.answer_of("answer three") is None
    assert task.answer_of("") is None


def test_corruptions_share_a_prefix_and_are_wrong(task) -> None:
    rng = random.Random(0)
    vocab = set(task.vocabulary()[0].split())
    for p in task.generate_problems(50, seed=1):
        bad = task.corrupt(p, rng)
        assert task.answer_of(bad) != p.answer
        gold, wrong = p.solution.split(), bad.split()
        first = next(i for i, (g, w) in enumerate(zip(gold, wrong, strict=False)) if g != w)
        # One mistake: the tokens before it are the gold ones, and everything is in the vocabulary.
        assert wrong[:first] == gold[:first] and first < len(gold) - 1
        # (a negative result "-8" is the two words "-" "8" for the word tokenizer)
        assert set(re.findall(r"\w+|[^\w\s]+", bad)) <= vocab


def test_format_corruptions_are_malformed_variants_of_the_gold(task) -> None:
    rng = random.Random(0)
    vocab = set(task.vocabulary()[0].split())
    p = task.generate_problems(1, seed=2)[0]
    gold = p.solution.split()
    seen = set()
    for _ in range(200):
        bad = task.corrupt_format(p, rng).split()
        assert bad != gold and set(bad) <= vocab
        first = next((i for i, (g, w) in enumerate(zip(gold, bad, strict=False)) if g != w), None)
        first = min(len(gold), len(bad)) if first is None else first
        assert bad[:first] == gold[:first]  # the gold prefix, then the error
        seen.add("stop" if len(bad) < len(gold) and first == len(bad) else
                 "ramble" if len(bad) > len(gold) and first == len(gold) else "other")  # fmt: skip
    assert seen == {"stop", "ramble", "other"}


def test_quick_benchmark_writes_the_documented_json(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    out = subprocess.run(
        [sys.executable, str(BENCH / "qrm_vs_orm.py"), "--quick", "--no-progress",
         "--json", str(target)],
        capture_output=True, text=True, cwd=tmp_path, timeout=900,
    )  # fmt: skip
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    report = json.loads(target.read_text())
    assert report["quick"] and report["machine"]["cpu"] and report["wall_s"] > 0
    assert len(report["seeds"]) == len(report["sft_accuracy"]) >= 1
    for key in ("mean_speedup_qrm_vs_orm", "min_final_accuracy_qrm", "oracle_dense", "target_met"):
        assert key in report
    assert set(report["qrm_variants"]) == {
        "qrm",
        "qrm_ppo",
        "qrm_lm",
        "qrm_lm_centred",
        "qrm_lm_strong",
    }
    cfg = report["config"]
    for run in report["seeds"]:
        controls = {"orm", "oracle", "oracle_blame"}
        assert set(run["methods"]) == controls | set(report["qrm_variants"])
        assert run["qrm_data"]["gold_corrupted_pairs"] > 0
        for head in ("value", "lm", "lm_strong"):  # every Q-RM was trained and probed
            probe = run["qrm"][head]
            assert 0.0 <= probe["fresh_pair_accuracy"] <= 1.0
            assert set(probe["degenerate_mean_reward"]) >= {"gold", "eos only"}
        for name in report["qrm_variants"]:
            assert len(run["methods"][name]["reward_stats"]) == cfg["rl_steps"]
        assert len(run["methods"]["qrm_ppo"]["value_losses"]) == cfg["rl_steps"]
        for name, m in run["methods"].items():
            steps = [s for s, _ in m["curve"]]
            assert steps[0] == 0 and steps[-1] == cfg["rl_steps"], name
            assert len(m["losses"]) == cfg["rl_steps"]
            assert all(math.isfinite(x) for x in m["losses"] + m["kl"]), name
            assert all(0.0 <= a <= 1.0 for _, a in m["curve"])
        # ORM with a mean baseline has a zero loss exactly when all samples share one outcome.
        orm = run["methods"]["orm"]
        for loss, acc in zip(orm["losses"], orm["train_sample_accuracy"], strict=True):
            assert (loss == 0.0) == (acc in (0.0, 1.0))
    assert report["min_final_accuracy_qrm"] == min(
        r["methods"]["qrm"]["final_accuracy"] for r in report["seeds"]
    )
    md = target.with_suffix(".md").read_text()
    assert "| seed |" in md and target.with_suffix(".png").stat().st_size > 0
    # --report rebuilds the markdown from the JSON alone (no training).
    again = tmp_path / "again.md"
    out = subprocess.run(
        [sys.executable, str(BENCH / "qrm_vs_orm.py"), "--report", str(target), "--md", str(again),
         "--png", str(tmp_path / "again.png")],
        capture_output=True, text=True, cwd=tmp_path, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-3000:]
    assert again.read_text() == md
