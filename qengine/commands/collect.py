"""``qengine collect``: batched MCTS over environment tasks, trees written as they finish."""

from __future__ import annotations

import argparse
from pathlib import Path

from ._common import add_env_options, make_env_and_policy


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "collect",
        help="search MCTS trees over environment tasks (resumable)",
        description=(
            "One tree per task, all trees in one forest: leaves are asked across trees, one "
            "batched policy call proposes the candidate actions, environments step them, "
            "rollouts value the leaves. Trees are written under OUT/trees as they finish; "
            "running the same command again resumes without losing or duplicating a tree."
        ),
    )
    add_env_options(parser)
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--iterations", type=int, default=30, help="search rounds per tree")
    parser.add_argument("--candidates", type=int, default=5, help="actions per expansion (n)")
    parser.add_argument("--max-depth", type=int, default=12)
    parser.add_argument("--workers", type=int, default=2, help="threads stepping environments")
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from qengine.search import CollectSettings, collect

    env, policy, tasks = make_env_and_policy(args)
    settings = CollectSettings(
        iterations=args.iterations,
        candidates=args.candidates,
        max_depth=args.max_depth,
        workers=args.workers,
    )
    stats = collect(
        env, policy, tasks, settings=settings, out_dir=args.out, progress=not args.no_progress
    )
    searched = stats.trees - stats.resumed
    print(
        f"{stats.trees} trees ({stats.resumed} already done, {searched} searched) in "
        f"{stats.seconds:.1f} s; {stats.leaves} leaves, {stats.env_steps} environment steps; "
        f"engine overhead {stats.engine_overhead:.1%} of wall time"
    )
    return 0
