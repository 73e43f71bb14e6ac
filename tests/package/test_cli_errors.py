"""A user's mistake gets one line saying what is wrong and what to do, and exit status 2; a bug
keeps its traceback. The real command runs in a subprocess, outside the source tree."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from qengine.cli import USAGE_EXIT, main

# (arguments, words the one line must contain); "{tmp}" is an empty directory.
MISTAKES = {
    "unknown environment": (
        ["collect", "--env", "nowhere", "--out", "{tmp}/out"],
        ["unknown environment 'nowhere'", "shop", "hotpot"],
    ),
    "not a Q-model": (
        ["evaluate", "--q-model", "{tmp}", "--tasks", "1", "--no-progress"],
        ["is not a qengine Q-value model", "qengine train-q"],
    ),
    "missing Q-model": (
        ["evaluate", "--q-model", "{tmp}/missing", "--tasks", "1", "--no-progress"],
        ["missing' is not a qengine Q-value model", "qengine train-q --out"],
    ),
    "not a tree directory": (
        ["pairs", "{tmp}", "--out", "{tmp}/pairs.jsonl"],
        ["holds no searched trees", "qengine collect --out"],
    ),
    "records file suffix": (
        ["pairs", "{tmp}", "--out", "{tmp}/pairs.txt"],
        ["unsupported suffix '.txt'", ".jsonl or .parquet"],
    ),
    "option out of range": (
        ["evaluate", "--tasks", "0"],
        ["--tasks", "0 must be >= 1", "qengine evaluate --help"],
    ),
    "unknown prompt style": (
        ["demo", "--prompt-style", "tiny"],
        ["unknown prompt style 'tiny'", "compact-marked-visited-price", "mark_prices"],
    ),
    "search option out of range": (
        ["collect", "--iterations", "0", "--out", "{tmp}/out"],
        ["--iterations", "0 must be >= 1"],
    ),
    "invalid choice": (["collect", "--split", "val", "--out", "{tmp}/out"], ["'val'", "'test'"]),
    "option needs another": (
        ["evaluate", "--avoid-repeats", "--tasks", "1"],
        ["--avoid-repeats needs --q-model"],
    ),
}


@pytest.mark.parametrize("mistake", list(MISTAKES))
def test_a_mistake_prints_one_line_and_exits_2(mistake: str, tmp_path: Path) -> None:
    argv, words = MISTAKES[mistake]
    argv = [a.format(tmp=tmp_path) for a in argv]
    run = subprocess.run(
        [sys.executable, "-m", "qengine", *argv],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        timeout=300,
    )
    lines = run.stderr.strip().splitlines()
    assert run.returncode == USAGE_EXIT == 2, run.stderr
    assert len(lines) == 1 and lines[0].startswith("qengine"), run.stderr
    assert "error: " in lines[0] and "Traceback" not in run.stderr
    for word in words:
        assert word in lines[0]
    assert not (tmp_path / "out").exists()  # nothing was written before the mistake was seen


def test_a_bug_keeps_its_traceback(monkeypatch, tmp_path: Path) -> None:
    """Only UsageError is a user's mistake: anything else propagates (the traceback of a bug)."""
    import qengine.data

    def broken(*args, **kwargs):
        raise KeyError("a bug")

    monkeypatch.setattr(qengine.data, "build_pairs", broken)
    with pytest.raises(KeyError, match="a bug"):
        main(["pairs", str(tmp_path), "--out", str(tmp_path / "pairs.jsonl")])
