"""``qengine collect``: batched MCTS over environment tasks, trees written as they finish."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from qengine.errors import UsageError

from ._common import add_env_options, make_env_and_policy, positive_int


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
    parser.add_argument(
        "--iterations", type=positive_int, default=30, help="search rounds per tree"
    )
    parser.add_argument(
        "--candidates", type=positive_int, default=5, help="actions per expansion (n)"
    )
    parser.add_argument("--max-depth", type=positive_int, default=12)
    parser.add_argument(
        "--workers", type=positive_int, default=2, help="threads stepping environments"
    )
    parser.add_argument(
        "--discount", type=float, default=1.0, help="per-step discount of returns (paper: 1.0)"
    )
    parser.add_argument(
        "--success-reward",
        type=float,
        default=None,
        help="search for success: a reward counts 1 if >= this, else 0 (default: raw rewards)",
    )
    parser.add_argument(
        "--no-early-stop",
        action="store_true",
        help="search every tree for all iterations, also after a reward-1 episode is found "
        "(more preference pairs: the winning action's siblings get visited)",
    )
    parser.add_argument(
        "--ray",
        nargs="?",
        const="",
        default=None,
        metavar="ADDRESS",
        help="shard the tasks over Ray actors writing to OUT (a directory every node reaches): "
        "--ray joins $RAY_ADDRESS or starts a local Ray; --ray ADDRESS joins that cluster "
        "(e.g. 10.0.0.1:6379, auto). Needs pip install 'qengine[ray]'",
    )
    parser.add_argument("--ray-workers", type=int, default=2, help="Ray actors searching at once")
    parser.add_argument(
        "--ray-chunk-size",
        type=int,
        default=None,
        help="tasks per actor forest (default: an even share of the tasks)",
    )
    parser.add_argument(
        "--ray-cpus-per-worker",
        type=float,
        default=1.0,
        help="CPUs Ray reserves for each actor (it steps environments on ~1 core)",
    )
    parser.add_argument(
        "--ray-gpus-per-worker",
        type=float,
        default=0.0,
        help="GPUs Ray reserves for each actor: 1 gives each its own HF policy replica on a GPU, "
        "0.5 puts two actors on one GPU (default 0: a CPU policy or a shared server)",
    )
    parser.add_argument("--no-progress", action="store_true")


_BUILT: dict[str, tuple[Any, Any, list[str]]] = {}  # per process: an actor builds once


def _built(args: argparse.Namespace) -> tuple[Any, Any, list[str]]:
    key = repr(sorted(vars(args).items(), key=lambda kv: kv[0]))
    if key not in _BUILT:
        _BUILT[key] = make_env_and_policy(args)
    return _BUILT[key]


def _env(args: argparse.Namespace) -> Any:
    """The options' environment (built by each Ray actor from the pickled options)."""
    return _built(args)[0]


def _policy(args: argparse.Namespace) -> Any:
    """The options' policy (built by each Ray actor: an HF model is loaded there, not pickled)."""
    return _built(args)[1]


def _actor_options(args: argparse.Namespace) -> dict[str, float]:
    """Ray resources of each actor from ``--ray-cpus-per-worker`` / ``--ray-gpus-per-worker``."""
    cpus, gpus = args.ray_cpus_per_worker, args.ray_gpus_per_worker
    if not (cpus >= 0 and gpus >= 0) or cpus + gpus == 0:
        raise ValueError(
            "--ray-cpus-per-worker and --ray-gpus-per-worker must be >= 0 and not both 0, "
            f"got {cpus:g} and {gpus:g}"
        )
    return {"num_cpus": cpus, "num_gpus": gpus} if gpus else {"num_cpus": cpus}


def run(args: argparse.Namespace) -> int:
    from dataclasses import replace

    from qengine.search import DEFAULT_SEARCH_CONFIG, CollectSettings, RayExecutor, Recipe, collect

    executor = None
    if args.ray is None:
        env, policy, tasks = make_env_and_policy(args)
    else:
        try:
            executor = RayExecutor(
                args.ray or None,
                workers=args.ray_workers,
                chunk_size=args.ray_chunk_size,
                actor_options=_actor_options(args),
            )
        except (ImportError, ValueError) as e:
            raise UsageError(f"--ray: {e}") from None
        # the driver needs the task ids only: the actors build the real policy (an HF model is
        # loaded there); the options are checked here with the cheap scripted one
        scripted = argparse.Namespace(**{**vars(args), "policy": "scripted"})
        _, _, tasks = make_env_and_policy(scripted)
        env, policy = Recipe(_env, args), Recipe(_policy, args)
    settings = CollectSettings(
        iterations=args.iterations,
        candidates=args.candidates,
        max_depth=args.max_depth,
        workers=args.workers,
        success_reward=args.success_reward,
        early_stop_reward=None if args.no_early_stop else 1.0,
        config=replace(DEFAULT_SEARCH_CONFIG, discount=args.discount),
    )
    stats = collect(
        env,
        policy,
        tasks,
        settings=settings,
        out_dir=args.out,
        progress=not args.no_progress,
        executor=executor,
    )
    searched = stats.trees - stats.resumed
    print(
        f"{stats.trees} trees ({stats.resumed} already done, {searched} searched) in "
        f"{stats.seconds:.1f} s; {stats.leaves} leaves, {stats.env_steps} environment steps; "
        + (
            f"engine overhead {stats.engine_overhead:.1%} of wall time"
            if executor is None
            else f"{executor.actors_started} Ray actors (startup {executor.startup_seconds:.1f} s)"
        )
    )
    return 0
