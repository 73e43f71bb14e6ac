"""Scale-out of the tree search over Ray workers, against the single-process driver (same run).

The policy stands in for one model replica per worker (an HF model on its own GPU, or one vLLM
server per worker): every batched call waits a fixed ``--latency`` (50 ms), and a replica serves
at most ``--max-batch`` states per call, so a request of ``n`` states waits
``ceil(n / max_batch)`` calls. The search is then latency-bound: the environments and the tree
cost little next to the waits. (With no batch cap, one process already batches every tree into
one call per step and more workers cannot help: scale-out buys replicas, i.e. throughput.)

Rows: the single-process ``collect`` (one replica), then Ray with 1, 2 and 4 workers (one replica
each). ``speedup_N_workers`` is the search's trees/s with N workers over 1 worker, once the actors
are up (wall time minus the time until the last first actor was up; actors search as soon as each
is up; the startup, ~0.5 s per actor here, is paid once per run, whatever its length);
``..._end_to_end`` counts the startup in. The per-worker overhead is what 1
Ray worker costs over the single-process driver (actor startup, pickling, the shared store).
A last run with 2 workers kills one worker (``ray.kill``) as soon as the first tree is written
and counts the trees lost and written twice (``writes.log``); every run's trees are compared bit
for bit with the single-process ones.

Usage: python bench/scale_out.py [--tasks 64] [--json bench/results/scale_out.json]
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np
from machine_info import machine

from qengine.envs import make_env
from qengine.policies import ScriptedPolicy
from qengine.search import CollectSettings, RayExecutor, Recipe, TreeStore, collect


class LatencyPolicy:
    """``inner`` behind a replica that answers at most ``max_batch`` states per ``latency`` s."""

    def __init__(self, inner: Any, latency: float, max_batch: int) -> None:
        self.inner, self.latency, self.max_batch = inner, latency, max_batch

    def propose(self, states: list[Any], n: int) -> list[list[Any]]:
        time.sleep(self.latency * math.ceil(len(states) / self.max_batch))
        return self.inner.propose(states, n)


def latency_policy(env: Any, seed: int, latency: float, max_batch: int) -> LatencyPolicy:
    """Built inside each worker (a Recipe target) from the pickled environment."""
    return LatencyPolicy(ScriptedPolicy(env, p=0.5, seed=seed), latency, max_batch)


def ray_version() -> str:
    import ray

    return ray.__version__


def same_trees(a: Path, b: Path) -> bool:
    x, y = TreeStore(a), TreeStore(b)
    if x.done() != y.done():
        return False
    for index in x.done():
        s, t = x.read(index).arrays, y.read(index).arrays
        if sorted(s) != sorted(t) or not all(np.array_equal(s[k], t[k]) for k in s):
            return False
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--env", default="shop")
    parser.add_argument("--tasks", type=int, default=64)
    parser.add_argument("--iterations", type=int, default=8)
    parser.add_argument("--latency", type=float, default=0.05, help="seconds per batched call")
    parser.add_argument("--max-batch", type=int, default=4, help="states per call of a replica")
    parser.add_argument("--workers", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--json", type=Path, default=None)
    args = parser.parse_args()

    import ray

    env = make_env(args.env)
    tasks = env.task_ids("train")[: args.tasks]
    settings = CollectSettings(iterations=args.iterations, candidates=4, max_depth=8, workers=1)
    policy = Recipe(latency_policy, env, 0, args.latency, args.max_batch)
    root = Path(tempfile.mkdtemp(prefix="scale-out-"))
    rows: list[dict[str, Any]] = []

    def record(name: str, workers: int, out: Path, stats: Any, startup: float = 0.0) -> None:
        rows.append(
            {
                "run": name,
                "workers": workers,
                "wall_s": round(stats.seconds, 3),
                "actor_startup_s": round(startup, 3),
                "trees_per_s": round(len(tasks) / stats.seconds, 4),
                "search_trees_per_s": round(len(tasks) / (stats.seconds - startup), 4),
                "policy_calls": stats.policy_calls,
                "same_trees_as_single_process": same_trees(root / "single", out),
            }
        )
        r = rows[-1]
        print(
            f"{name:>14} {workers:>2} {r['wall_s']:8.2f} {startup:9.2f} {r['trees_per_s']:8.3f} "
            f"{r['search_trees_per_s']:8.3f} {r['policy_calls']:6d}  "
            f"{r['same_trees_as_single_process']}",
            flush=True,
        )

    print(f"{'run':>14} {'w':>2} {'wall s':>8} {'actors s':>9} {'trees/s':>8} {'search':>8} "
          f"{'calls':>6}  same trees")  # fmt: skip
    stats = collect(env, policy, tasks, settings=settings, out_dir=root / "single", progress=False)
    record("single-process", 1, root / "single", stats)

    t0 = time.perf_counter()
    ray.init(num_cpus=max(args.workers), include_dashboard=False, log_to_driver=False)
    ray_init_s = time.perf_counter() - t0
    for workers in args.workers:
        executor = RayExecutor(workers=workers)
        out = root / f"ray{workers}"
        stats = collect(env, policy, tasks, settings=settings, out_dir=out, progress=False,
                        executor=executor)  # fmt: skip
        record("ray", workers, out, stats, executor.startup_seconds)

    # a worker killed mid-run: smaller chunks, so the killed one leaves work to redo
    out = root / "ray-kill"
    executor = RayExecutor(workers=2, chunk_size=max(1, len(tasks) // 8), name="scale-out-kill")
    result: dict[str, Any] = {}

    def run() -> None:
        result["stats"] = collect(env, policy, tasks, settings=settings, out_dir=out,
                                  progress=False, executor=executor)  # fmt: skip

    driver = threading.Thread(target=run)
    driver.start()
    log = out / "trees" / "writes.log"
    while driver.is_alive() and not (log.exists() and log.read_text().strip()):
        time.sleep(0.05)
    killed = driver.is_alive()
    if killed:
        ray.kill(ray.get_actor("scale-out-kill-0"))
    driver.join()
    record("ray, 1 killed", 2, out, result["stats"], executor.startup_seconds)
    store = TreeStore(out)
    writes = Counter(w["index"] for w in store.writes())
    trees_lost = len(set(range(len(tasks))) - store.done())
    trees_duplicated = sum(c - 1 for c in writes.values())
    ray.shutdown()

    by_workers = {r["workers"]: r for r in rows if r["run"] == "ray"}
    single = rows[0]

    def speedup(w: int, key: str = "search_trees_per_s") -> float | None:
        one = by_workers[min(by_workers)][key]
        return round(by_workers[w][key] / one, 3) if w in by_workers else None

    # speedups of the search (trees/s once the actors are up: their startup is paid once per
    # run, whatever its length); end to end (startup included) next to them
    summary = {
        "speedup_2_workers": speedup(2),
        "speedup_4_workers": speedup(4),
        "speedup_2_workers_end_to_end": speedup(2, "trees_per_s"),
        "speedup_4_workers_end_to_end": speedup(4, "trees_per_s"),
        "speedup_vs_single_process": {
            str(w): round(r["search_trees_per_s"] / single["trees_per_s"], 3)
            for w, r in by_workers.items()
        },
        # what one Ray worker costs over the single-process driver: actor startup (once per
        # actor) and the rest of the difference in wall time (pickling, scheduling, the store)
        "per_worker_overhead_s": round(by_workers[min(by_workers)]["wall_s"] - single["wall_s"], 3),
        "per_worker_startup_s": {
            str(w): round(r["actor_startup_s"] / w, 3) for w, r in by_workers.items()
        },
        "search_overhead_vs_single_process": round(
            single["trees_per_s"] / by_workers[min(by_workers)]["search_trees_per_s"] - 1, 4
        ),
        "ray_init_s": round(ray_init_s, 3),
        "worker_killed": killed,
        "actors_started_in_kill_run": executor.actors_started,
        "trees_lost": trees_lost,
        "trees_duplicated": trees_duplicated,
        "all_trees_identical": all(r["same_trees_as_single_process"] for r in rows),
    }
    print(json.dumps(summary, indent=2))
    if args.json:
        doc = {
            "machine": machine(ray=ray_version()),
            "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
            "workload": {
                "env": args.env,
                "tasks": len(tasks),
                "iterations": args.iterations,
                "candidates": settings.candidates,
                "max_depth": settings.max_depth,
                "latency_s_per_call": args.latency,
                "max_batch_per_call": args.max_batch,
            },
            **summary,
            "rows": rows,
        }
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(doc, indent=2) + "\n")


if __name__ == "__main__":
    main()
