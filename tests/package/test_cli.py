"""The command line and the demo, run for real."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qengine.cli import main
from qengine.demo import LockPuzzle, run_demo


def test_help_explains_every_command(capsys) -> None:
    assert main([]) == 0
    text = capsys.readouterr().out
    for command in ("demo", "collect", "pairs", "train-q", "evaluate", "info"):
        assert f"qengine {command}" in text


def test_demo_help(capsys) -> None:
    try:
        main(["demo", "--help"])
    except SystemExit as stop:
        assert stop.code == 0
    assert "--out" in capsys.readouterr().out


def test_demo_search_beats_the_greedy_prior(tmp_path: Path) -> None:
    summary = run_demo(
        puzzle=LockPuzzle(num_tasks=48, seed=3), iterations=30, out=tmp_path, progress=False
    )
    assert summary["leaves_evaluated"] > 0
    assert summary["mcts_best_path_success_rate"] > summary["greedy_prior_success_rate"]
    assert summary["preference_pairs"] > 0 and summary["mean_pair_q_gap"] > 0
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["tasks"] == 48
    assert (tmp_path / "forest.safetensors").stat().st_size > 0


def test_console_script_runs_the_demo(tmp_path: Path) -> None:
    out = subprocess.run(
        [
            sys.executable,
            "-m",
            "qengine",
            "demo",
            "--search-only",
            "--tasks",
            "8",
            "--iterations",
            "5",
            "--no-progress",
            "--json",
        ],
        capture_output=True,
        text=True,
        check=True,
        cwd=tmp_path,
    )
    assert json.loads(out.stdout)["tasks"] == 8


def test_pipeline_demo_writes_results(tmp_path: Path) -> None:
    """A miniature `qengine demo`: every step runs and results.json has what users read."""
    from qengine.pipeline import PipelineSettings, run_pipeline

    settings = PipelineSettings(
        train_tasks=12, test_tasks=4, episodes_per_task=2, iterations=10, epochs=1
    )
    summary = run_pipeline(settings, out=tmp_path, progress=False, log=lambda *_: None)
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["pairs"] == summary["pairs"] > 0
    assert list(saved["agents"]) == ["base", "Q-guided", "Q-guided, no repeats"]
    base_success = saved["agents"]["base"]["success_rate"]
    for key, agent in (
        ("q_guided_over_base_success", "Q-guided"),
        ("q_guided_no_repeats_over_base_success", "Q-guided, no repeats"),
    ):
        if base_success == 0:
            assert saved[key] is None
        else:
            assert saved[key] == pytest.approx(
                saved["agents"][agent]["success_rate"] / base_success
            )
    for agent in saved["agents"]:
        row = saved["agents"][agent]
        assert row["tasks"] == 8  # episodes: 4 tasks x 2
        assert 0.0 <= row["success_rate"] <= 1.0
        assert row["success_ci"][0] <= row["success_rate"] <= row["success_ci"][1]
        assert 0.0 <= row["mean_reward"] <= 1.0
    for name in ("agents.png", "q_distributions.png", "pairs.jsonl", "qmodel/model.safetensors"):
        assert (tmp_path / name).stat().st_size > 0
