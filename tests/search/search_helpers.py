"""Shared cases of the search tests: the golden collections and how to compare stored trees.

The golden trees under ``golden/<case>/trees`` were written by the driver as it stood before the
collector refactor (issue 13 item 5); ``python tests/search/search_helpers.py`` rewrites them (only
do so for an intended change of the search, and say why in the commit).
"""

from __future__ import annotations

import shutil
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np

from qengine.envs import make_env
from qengine.policies import ScriptedPolicy
from qengine.search import CollectSettings, TreeStore, collect
from qengine.search.driver import DEFAULT_SEARCH_CONFIG

GOLDEN = Path(__file__).resolve().parent / "golden"


def _depth_value(states) -> list[float]:
    """A value function of the state alone (no rollouts): shorter histories are worth more."""
    return [1.0 / (1.0 + len(s.actions)) for s in states]


# name -> (env, number of train tasks, policy seed, oracle probability p, settings, value_fn)
CASES = {
    "shop_rollouts": (
        "shop",
        5,
        1,
        0.5,
        CollectSettings(iterations=10, candidates=4, max_depth=8, workers=2),
        None,
    ),
    "shop_value_fn": (
        "shop",
        4,
        2,
        0.5,
        CollectSettings(
            iterations=8,
            candidates=3,
            leaves_per_ask=2,
            max_depth=6,
            workers=1,
            early_stop_reward=None,
            success_reward=1.0,
        ),
        _depth_value,
    ),
    "hotpot_discounted": (
        "hotpot",
        4,
        3,
        0.5,
        CollectSettings(
            iterations=6,
            candidates=3,
            max_depth=5,
            workers=1,
            early_stop_reward=None,
            config=replace(DEFAULT_SEARCH_CONFIG, discount=0.9),
        ),
        None,
    ),
    # Gumbel noise at the root: weak enough (small c_visit, c_scale) that it decides visits
    "shop_gumbel": (
        "shop",
        4,
        3,
        0.3,
        CollectSettings(
            iterations=8,
            candidates=5,
            max_depth=5,
            workers=1,
            early_stop_reward=None,
            config=replace(
                DEFAULT_SEARCH_CONFIG,
                gumbel=True,
                seed=7,
                gumbel_c_visit=0.1,
                gumbel_c_scale=0.1,
                gumbel_simulations=8,
            ),
        ),
        None,
    ),
}


def run_case(name: str, out: Path, **kwargs):
    """Collect case ``name`` into ``out`` (``kwargs`` go to ``collect``); its ``CollectStats``."""
    env_name, n, seed, p, settings, value_fn = CASES[name]
    env = make_env(env_name)
    tasks = env.task_ids("train")[:n]
    policy = ScriptedPolicy(env, p=p, seed=seed)
    return collect(env, policy, tasks, settings=settings, out_dir=out, value_fn=value_fn,
                   progress=False, **kwargs)  # fmt: skip


def assert_same_trees(expected: Path, actual: Path) -> None:
    """Every stored tree of ``expected`` exists in ``actual`` with equal arrays, bit for bit, and
    equal text files; ``actual`` holds no other tree."""
    a, b = TreeStore(expected), TreeStore(actual)
    assert sorted(b.done()) == sorted(a.done()) and a.done()
    for index in sorted(a.done()):
        x, y = a.read(index), b.read(index)
        assert sorted(x.arrays) == sorted(y.arrays), index
        for key, values in x.arrays.items():
            assert values.dtype == y.arrays[key].dtype, (index, key)
            np.testing.assert_array_equal(values, y.arrays[key], err_msg=f"tree {index}: {key}")
        stem = f"{index:05d}.jsonl"
        assert (a.dir / stem).read_bytes() == (b.dir / stem).read_bytes(), stem
        assert x.config == y.config


if __name__ == "__main__":  # regenerate the golden trees
    for case in sys.argv[1:] or CASES:
        shutil.rmtree(GOLDEN / case, ignore_errors=True)
        run_case(case, GOLDEN / case)
        print(case, sorted(TreeStore(GOLDEN / case).done()))


# ---------------------------------------------------------------- policies for the Ray tests
# Built inside the Ray actors from Recipes; the fixtures register this module to pickle by value.
class SlowPolicy:
    """A scripted policy that sleeps ``delay`` seconds per batched call (a run long enough to
    kill a worker in the middle of it), and can crash once: after ``crash_after`` calls, if the
    file ``marker`` does not exist yet, it creates it and then either kills its own process
    (``crash="kill"``: SIGKILL, as a lost machine), raises (``crash="raise"``: a bug) or hangs
    until something kills it (``crash="hang"``: a stuck worker, so that a test can ``ray.kill``
    it mid-tree; with ``hang_after``, only once that file is non-empty, e.g. the store's log of
    written trees)."""

    def __init__(
        self,
        inner,
        delay: float,
        *,
        crash_after: int | None = None,
        marker: str | None = None,
        crash: str = "kill",
        hang_after: str | None = None,
    ) -> None:
        self.inner, self.delay, self.calls = inner, delay, 0
        self.crash_after, self.marker, self.crash = crash_after, marker, crash
        self.hang_after = hang_after

    def propose(self, states, n):
        import os
        import signal
        import time

        self.calls += 1
        if self.crash_after is not None and self.calls > self.crash_after and self._armed():
            try:
                fd = os.open(self.marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY)
            except FileExistsError:  # crashed once already: behave
                pass
            else:
                os.close(fd)
                if self.crash == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                if self.crash == "hang":
                    time.sleep(300)  # the test kills this actor long before
                    raise RuntimeError("the hung worker was never killed")
                raise RuntimeError("simulated bug in the policy")
        time.sleep(self.delay)
        return self.inner.propose(states, n)

    def _armed(self) -> bool:
        import os

        return self.hang_after is None or (
            os.path.exists(self.hang_after) and os.path.getsize(self.hang_after) > 0
        )


class BarrierPolicy:
    """``inner`` behind a barrier: each policy leaves a file in ``folder`` when it is built, and
    its first call waits until ``count`` are there. Built in each Ray actor (a Recipe), it holds
    the first actor up until the others are, so every actor takes a chunk (actors search as
    soon as they are up)."""

    def __init__(self, inner, folder: str, count: int) -> None:
        import os

        self.inner, self.folder, self.count, self.waited = inner, folder, count, False
        os.makedirs(folder, exist_ok=True)
        open(os.path.join(folder, str(os.getpid())), "w").close()

    def propose(self, states, n):
        import os
        import time

        deadline = time.monotonic() + 300
        while not self.waited and len(os.listdir(self.folder)) < self.count:
            assert time.monotonic() < deadline, "the other actors never came up"
            time.sleep(0.05)
        self.waited = True
        return self.inner.propose(states, n)


def slow_case_policy(
    name: str, env, delay: float, barrier: tuple[str, int] | None = None, **crash
) -> SlowPolicy | BarrierPolicy:
    """Case ``name``'s scripted policy on ``env`` behind :class:`SlowPolicy` (a Recipe target;
    ``env`` comes pickled: building an environment costs seconds, a twin nothing), and behind
    a :class:`BarrierPolicy` of ``barrier = (folder, count)`` if given."""
    _, _, seed, p, _, _ = CASES[name]
    policy = SlowPolicy(ScriptedPolicy(env, p=p, seed=seed), delay, **crash)
    return policy if barrier is None else BarrierPolicy(policy, *barrier)


def missing_checkpoint_policy(path: str):
    """A Recipe target that fails as loading a missing checkpoint does."""
    raise FileNotFoundError(f"no policy checkpoint at {path}")


_ENVS: dict[str, object] = {}


def case_env(name: str):
    """Case ``name``'s environment (built once per process)."""
    env_name = CASES[name][0]
    if env_name not in _ENVS:
        _ENVS[env_name] = make_env(env_name)
    return _ENVS[env_name]
