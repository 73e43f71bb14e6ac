"""Share of wall time the search driver itself takes (everything but policy and environment).

The scripted policy is nearly free, so it is also run behind a fixed latency per batched call to
stand in for an LLM (50 ms for a batch of ~200 states is fast for any real model).

Usage: python bench/search_overhead.py [--tasks 200] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import platform
import tempfile
import time
from pathlib import Path

from qengine.envs import make_env
from qengine.policies import ScriptedPolicy
from qengine.search import CollectSettings, collect


class LatencyPolicy:
    """A policy that waits ``delay`` seconds per batched call, then asks ``inner``."""

    def __init__(self, inner, delay: float) -> None:
        self.inner, self.delay = inner, delay

    def propose(self, states, n):
        time.sleep(self.delay)
        return self.inner.propose(states, n)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--tasks", type=int, default=200)
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()
    env = make_env("shop")
    tasks = env.task_ids("train")[: args.tasks]
    rows = []
    for delay in (0.0, 0.05):
        policy = LatencyPolicy(ScriptedPolicy(env, p=0.5, seed=0), delay)
        with tempfile.TemporaryDirectory() as out:
            stats = collect(
                env, policy, tasks, settings=CollectSettings(), out_dir=out, progress=False
            )
        rows.append(
            {
                "policy_latency_ms": delay * 1e3,
                "wall_s": stats.seconds,
                "policy_s": stats.policy_seconds,
                "env_s": stats.env_seconds,
                "engine_overhead": stats.engine_overhead,
                "policy_calls": stats.policy_calls,
                "leaves": stats.leaves,
            }
        )
        r = rows[-1]
        print(
            f"latency {r['policy_latency_ms']:>4.0f} ms/call  wall {r['wall_s']:6.1f} s  "
            f"policy {r['policy_s']:6.1f} s  env {r['env_s']:5.1f} s  "
            f"engine overhead {r['engine_overhead']:.2%}"
        )
    if args.json:
        result = {"machine": platform.processor() or platform.machine(), "rows": rows}
        args.json.write_text(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
