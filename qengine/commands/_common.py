"""Options shared by the pipeline commands."""

from __future__ import annotations

import argparse
from typing import Any

TRAINING_STACK = ("torch", "transformers", "datasets", "matplotlib")


def require_training_stack(command: str) -> None:
    """Exit with what to install when the ``train`` extra is missing (``qengine demo`` and
    ``train-q`` train models; the search core alone does not need it)."""
    import importlib.util

    missing = [name for name in TRAINING_STACK if importlib.util.find_spec(name) is None]
    if missing:
        raise SystemExit(
            f"qengine {command} needs {', '.join(missing)}: pip install 'qengine[train]' "
            "(on a machine without a GPU, install the CPU build of torch first, e.g. "
            "pip install torch --index-url https://download.pytorch.org/whl/cpu)"
        )


def add_env_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--env", default="shop", help="environment: shop, hotpot or textworld")
    parser.add_argument("--split", default="train", choices=("train", "test"))
    parser.add_argument("--tasks", type=int, default=64, help="number of tasks of the split")
    parser.add_argument(
        "--policy",
        default="scripted",
        help="'scripted' (the environment's noisy expert), a local Hugging Face checkpoint "
        "directory, or the base URL of an OpenAI-compatible server",
    )
    parser.add_argument("--model-name", default=None, help="model name on the HTTP server")
    parser.add_argument("--temperature", type=float, default=1.0, help="LLM sampling temperature")
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
    if args.policy == "scripted":
        return env, ScriptedPolicy(env, p=args.expert_p, seed=args.seed), tasks
    if args.policy.startswith(("http://", "https://")):
        from qengine.policies import OpenAICompatiblePolicy

        if not args.model_name:
            raise SystemExit("--policy URL needs --model-name (the served model's name)")
        return env, OpenAICompatiblePolicy(args.policy, args.model_name), tasks
    from qengine.policies import HFPolicy

    return env, HFPolicy(args.policy, temperature=args.temperature), tasks
