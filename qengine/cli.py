"""The ``qengine`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

DESCRIPTION = """\
qengine: high-throughput tree search and Q-value models for LLM agents.

  qengine demo      run the built-in end-to-end demo on its embedded default
  qengine collect   search MCTS trees over environment tasks (batched, resumable)
  qengine pairs     turn searched trees into step-level preference pairs
  qengine train-q   train a step-level Q-value model with step-level DPO
  qengine evaluate  compare base, best-of-n and Q-guided agents on held-out tasks
  qengine info      show the build: native core, threads, torch / triton availability

Run `qengine COMMAND --help` for the options of a command.
"""


def _add_demo(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "demo",
        help="batched MCTS over many tasks of a built-in puzzle, with a summary",
        description=(
            "Search 256 tasks of the built-in 'combination lock' puzzle in one forest: a noisy "
            "prior proposes actions in one batched call per iteration, leaves are valued by "
            "rollouts, and the best paths are compared with acting greedily on the prior. Prints "
            "a summary; with --out also writes results.json and the searched forest."
        ),
    )
    parser.add_argument("--tasks", type=int, default=256, help="number of tasks / trees")
    parser.add_argument("--iterations", type=int, default=40, help="ask/expand/tell rounds")
    parser.add_argument("--leaves-per-ask", type=int, default=4, help="leaves per tree per round")
    parser.add_argument("--threads", type=int, default=0, help="core threads (0: all cores)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=None, help="directory for results.json")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")


def _run_demo(args: argparse.Namespace) -> int:
    from .demo import LockPuzzle, format_summary, run_demo

    if args.tasks < 1 or args.iterations < 1 or args.leaves_per_ask < 1:
        raise SystemExit("qengine demo: --tasks, --iterations and --leaves-per-ask must be >= 1")
    summary = run_demo(
        puzzle=LockPuzzle(num_tasks=args.tasks, seed=args.seed),
        iterations=args.iterations,
        leaves_per_ask=args.leaves_per_ask,
        num_threads=args.threads,
        out=args.out,
        progress=not args.no_progress,
    )
    print(json.dumps(summary, indent=2) if args.json else format_summary(summary))
    return 0


def _run_info(_: argparse.Namespace) -> int:
    import importlib.util

    import qengine
    from qengine import Forest

    forest = Forest(1)
    rows = {
        "qengine": qengine.__version__,
        "native core": qengine._native.core().__file__,
        "bytes per node (with, without payload)": str(forest._engine.bytes_per_node),
        "core threads (default)": str(forest.num_threads),
        "cpu cores": str(os.cpu_count()),
        "torch": "installed" if importlib.util.find_spec("torch") else "not installed",
        "triton": "installed" if importlib.util.find_spec("triton") else "not installed",
    }
    for name, value in rows.items():
        print(f"{name:<40} {value}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qengine", description=DESCRIPTION, formatter_class=argparse.RawTextHelpFormatter
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    _add_demo(sub)
    for module in _pipeline_commands().values():
        module.add_parser(sub)
    sub.add_parser("info", help="show the build and the optional accelerators")
    return parser


def _pipeline_commands() -> dict:
    from .commands import collect, evaluate, pairs, train_q

    return {"collect": collect, "pairs": pairs, "train-q": train_q, "evaluate": evaluate}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"demo": _run_demo, "info": _run_info}
    handlers.update({name: m.run for name, m in _pipeline_commands().items()})
    if args.command is None:
        parser.print_help()
        return 0
    return handlers[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
