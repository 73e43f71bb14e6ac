"""Options shared by the pipeline commands."""

from __future__ import annotations

import argparse
from typing import Any


def add_env_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="shop", help="environment: shop, hotpot or textworld")
    parser.add_argument("--split", default="train", choices=("train", "test"))
    parser.add_argument("--tasks", type=int, default=64, help="number of tasks of the split")
    parser.add_argument(
        "--policy",
        default="scripted",
        help="'scripted' (the noisy expert of the environment) or a local Hugging Face model path",
    )
    parser.add_argument(
        "--expert-p", type=float, default=0.5, help="scripted policy: probability of the oracle"
    )
    parser.add_argument("--seed", type=int, default=0)


def make_env_and_policy(args: argparse.Namespace) -> tuple[Any, Any, list[str]]:
    """The environment, the policy and the task ids the options name (clear errors otherwise)."""
    from qengine.envs import make_env
    from qengine.policies import ScriptedPolicy

    env = make_env(args.env)
    tasks = env.task_ids(args.split)
    if args.tasks < 1:
        raise SystemExit("--tasks must be >= 1")
    tasks = tasks[: args.tasks]
    if args.policy != "scripted":
        raise SystemExit(
            f"--policy {args.policy!r}: only the scripted policy is wired into the CLI so far; "
            "use qengine.search.collect from Python with your own policy object"
        )
    policy = ScriptedPolicy(env, p=args.expert_p, seed=args.seed)
    return env, policy, tasks
