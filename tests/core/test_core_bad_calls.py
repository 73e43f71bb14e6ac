"""The bad-input suite: every malformed call of ``bad_calls.catalogue()`` (well over 1,000 distinct
calls) on both engines, in child processes, so that a crash kills only the child and a hang meets a
timeout. Targets: 0 crashes, 0 hangs, 0 silent acceptances; every call raises the documented class
(the same on both engines) with a message that says what is wrong, and changes nothing."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import pytest
from bad_calls import catalogue

HERE = Path(__file__).resolve().parent
CHUNKS = 4
TIMEOUT_S = 300  # a chunk takes a few seconds
MIN_CALLS = 1000

CASES = catalogue()


def test_catalogue_has_enough_distinct_calls():
    names = [case.name for case in CASES]
    assert len(set(names)) == len(names), "case names must be distinct"
    assert len(names) >= MIN_CALLS, f"only {len(names)} distinct malformed calls"


def run_chunk(engine: str, start: int, stop: int, cwd: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, str(HERE / "bad_calls.py"), engine, str(start), str(stop)],
        cwd=cwd,  # not the repository root: the installed package is imported
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def collect(engine: str, child: subprocess.Popen) -> list[dict]:
    try:
        out, err = child.communicate(timeout=TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        out, err = child.communicate()
        last = [line for line in err.splitlines() if line.startswith("start ")][-1:]
        pytest.fail(f"{engine}: hang (timeout {TIMEOUT_S} s) in {last}")
    if child.returncode != 0:
        last = [line for line in err.splitlines() if line.startswith("start ")][-1:]
        pytest.fail(f"{engine}: the child died (exit {child.returncode}) in {last}:\n{err[-3000:]}")
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("chunk", range(CHUNKS))
def test_bad_calls_raise_the_same_error_on_both_engines(chunk, tmp_path):
    start = len(CASES) * chunk // CHUNKS
    stop = len(CASES) * (chunk + 1) // CHUNKS
    children = {e: run_chunk(e, start, stop, tmp_path) for e in ("native", "reference")}
    results = {e: collect(e, child) for e, child in children.items()}
    assert [r["index"] for r in results["native"]] == list(range(start, stop))
    assert [r["index"] for r in results["reference"]] == list(range(start, stop))
    problems = []
    for native, ref in zip(results["native"], results["reference"], strict=True):
        name, expected = native["name"], native["expected"]
        for engine, r in (("native", native), ("reference", ref)):
            if r["raised"] is None:
                problems.append(f"{name}: {engine} accepted it silently")
            elif r["raised"] != expected:
                problems.append(
                    f"{name}: {engine} raised {r['raised']} ({r['message']}), expected {expected}"
                )
            elif len(r["message"]) < 10 or (
                expected == "TypeError" and not re.search(r"must", r["message"])
            ):
                problems.append(f"{name}: {engine}: unhelpful message {r['message']!r}")
            if not r["unchanged"]:
                problems.append(f"{name}: {engine} changed the forest: {r['change']}")
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
