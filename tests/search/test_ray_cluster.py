"""``qengine collect --ray ADDRESS`` against a real head node (``ray start --head`` on 127.0.0.1
and a free port): the trees of the single-process command, bit for bit; run again, it resumes.

The CLI runs in subprocesses outside the source tree. One head node for the module, under the
machine-wide Ray test lock; its teardown asserts that none of its processes is left.
"""

from __future__ import annotations

import os
import subprocess
import sys
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
    writers = {w["writer"] for w in TreeStore(tmp_path / "ray").writes()}
    assert len(writers) == 2, writers
    again = qengine_collect(tmp_path, "--out", "ray", "--ray", address)
    assert "4 trees (4 already done, 0 searched)" in again, again
    assert len(TreeStore(tmp_path / "ray").writes()) == 4
