"""``qengine collect --ray ADDRESS`` against a real head node (``ray start --head`` on 127.0.0.1
and a free port): the trees of the single-process command, bit for bit; run again, it resumes.

A driver killed mid-run and started again resumes. The CLI runs in subprocesses outside the
source tree. One head node for the module, under the machine-wide Ray test lock; its teardown
asserts that none of its processes is left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import ray_helpers
from search_helpers import assert_same_trees

from qengine.search import TreeStore

OPTIONS = ["--env", "shop", "--tasks", "4", "--iterations", "6", "--candidates", "3",
           "--max-depth", "6", "--workers", "1", "--seed", "4", "--no-progress"]  # fmt: skip


# with --dist loadgroup, xdist keeps a module's tests on one worker (one cluster start); under
# any other mode the machine-wide lock of ray_helpers serializes the clusters
pytestmark = pytest.mark.xdist_group("ray")


@pytest.fixture(scope="module")
def address():
    with ray_helpers.head_node(num_cpus=2) as addr:
        yield addr


def qengine_collect(cwd: Path, *extra: str) -> str:
    env = {**os.environ, **ray_helpers.LOOPBACK_ENV}  # see there
    command = [sys.executable, "-m", "qengine", "collect", *OPTIONS, *extra]
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-4000:]
    return done.stdout


def test_collect_on_a_cluster_address_matches_one_process(address, tmp_path) -> None:
    qengine_collect(tmp_path, "--out", "local")
    out = qengine_collect(
        tmp_path, "--out", "ray", "--ray", address, "--ray-workers", "2", "--ray-chunk-size", "1"
    )
    assert "4 trees (0 already done, 4 searched)" in out and "2 Ray actors" in out, out
    assert_same_trees(tmp_path / "local", tmp_path / "ray")
    # which of the two actors takes how many chunks depends on when each came up (the
    # in-process tests pin both taking some with a barrier policy)
    writers = {w["writer"] for w in TreeStore(tmp_path / "ray").writes()}
    assert 1 <= len(writers) <= 2, writers
    again = qengine_collect(tmp_path, "--out", "ray", "--ray", address)
    assert "4 trees (4 already done, 0 searched)" in again, again
    assert len(TreeStore(tmp_path / "ray").writes()) == 4


def test_driver_killed_mid_run_and_restarted_resumes(address, tmp_path) -> None:
    """SIGKILL the driver after its first tree; Ray ends its actors; the same command again
    completes the run: every tree once, the same trees as one process."""
    more = ["--tasks", "12", "--out", "run", "--ray", address, "--ray-chunk-size", "1"]
    command = [sys.executable, "-m", "qengine", "collect", *OPTIONS, *more]
    env = {**os.environ, **ray_helpers.LOOPBACK_ENV}
    driver = subprocess.Popen(command, cwd=tmp_path, env=env, stdout=subprocess.DEVNULL,
                              stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
    log = tmp_path / "run" / "trees" / "writes.log"
    deadline = time.monotonic() + 300
    while driver.poll() is None and time.monotonic() < deadline:
        if log.exists() and log.read_text().strip():
            break
        time.sleep(0.02)
    assert driver.poll() is None, "the driver ended before it could be killed"
    os.killpg(driver.pid, signal.SIGKILL)  # the driver's own process group: not the head
    driver.wait()
    assert 0 < len(TreeStore(tmp_path / "run").done()) < 12
    out = qengine_collect(tmp_path, *more)
    assert "12 trees (" in out and ", 0 searched)" not in out, out
    qengine_collect(tmp_path, "--tasks", "12", "--out", "local")
    assert_same_trees(tmp_path / "local", tmp_path / "run")
    store = TreeStore(tmp_path / "run")
    assert sorted(w["index"] for w in store.writes()) == list(range(12)), "a tree written twice"
    assert not list(store.dir.glob("*.tmp"))


def test_hf_policy_is_loaded_by_each_actor(address, tmp_path) -> None:
    """``--policy CKPT --ray``: the checkpoint is loaded in the actors (the driver checks the
    options with the scripted policy and never loads it)."""
    from qengine.models import build_word_tokenizer, tiny_causal_lm

    ckpt = tmp_path / "ckpt"
    tok = build_word_tokenizer(["search click buy now back to search red mug Action: [ ]"])
    tiny_causal_lm(tok, hidden_size=16, num_layers=1, num_heads=2, seed=0).save_pretrained(ckpt)
    tok.save_pretrained(ckpt)
    out = qengine_collect(tmp_path, "--out", "hf", "--policy", str(ckpt), "--tasks", "3",
                          "--iterations", "2", "--ray", address, "--ray-workers", "2",
                          "--ray-chunk-size", "1", "--ray-cpus-per-worker", "0.5")  # fmt: skip
    assert "3 trees (0 already done, 3 searched)" in out and "2 Ray actors" in out, out
    store = TreeStore(tmp_path / "hf")
    assert store.done() == {0, 1, 2}
    assert sorted(w["index"] for w in store.writes()) == [0, 1, 2]


BAD_RAY_OPTIONS = [["--ray-gpus-per-worker", "-1"], ["--ray-cpus-per-worker", "0"],
                   ["--ray-workers", "0"]]  # fmt: skip


@pytest.mark.parametrize("bad", BAD_RAY_OPTIONS)
def test_bad_ray_resources_are_usage_errors(bad, tmp_path) -> None:
    command = [sys.executable, "-m", "qengine", "collect", "--out", "x", "--ray", *bad]
    done = subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2 and "Traceback" not in done.stderr, done.stderr[-3000:]
    assert "--ray" in done.stderr and not (tmp_path / "x").exists()
