"""``qengine evaluate``: base vs best-of-n vs Q-guided agents on held-out tasks."""

from __future__ import annotations

import argparse
from pathlib import Path

from qengine.errors import UsageError

from ._common import add_env_options, make_env_and_policy, positive_int


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="compare agents (base, best-of-n by log-prob, Q-guided) on held-out tasks",
        description=(
            "Plays the test split with each agent and reports success rate and mean reward with "
            "95%% bootstrap confidence intervals; --out writes results.json and agents.png."
        ),
    )
    add_env_options(parser)
    parser.set_defaults(split="test")
    parser.add_argument("--q-model", type=Path, default=None, help="from `qengine train-q`")
    parser.add_argument("-n", "--candidates", type=positive_int, default=5)
    parser.add_argument(
        "--avoid-repeats",
        action="store_true",
        help="also evaluate the Q-guided agent that skips candidates the episode already took in "
        "the same observation (loops, in a deterministic environment)",
    )
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from qengine.agents import (
        BaseAgent,
        BestOfNLogprobAgent,
        QGuidedAgent,
        QValueModel,
        format_table,
        run_episodes,
    )
    from qengine.agents.evaluate import write_results

    if args.avoid_repeats and args.q_model is None:
        raise UsageError("--avoid-repeats needs --q-model (the agent it changes is Q-guided)")
    env, policy, tasks = make_env_and_policy(args)
    agents = [BaseAgent(policy), BestOfNLogprobAgent(policy, args.candidates)]
    if args.q_model is not None:
        q_model = QValueModel.from_pretrained(args.q_model)
        agents.append(QGuidedAgent(policy, q_model, args.candidates))
        if args.avoid_repeats:
            agents.append(QGuidedAgent(policy, q_model, args.candidates, avoid_repeats=True))
    results = [run_episodes(env, a, tasks, progress=not args.no_progress) for a in agents]
    print(format_table(results))
    if args.out is not None:
        print(f"wrote {write_results(results, args.out)}")
    return 0
