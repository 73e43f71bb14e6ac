"""The ``qengine`` command line."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import NoReturn

from .errors import UsageError

USAGE_EXIT = 2
"""Exit status of a user's mistake (argparse's): a wrong option, name or path. Bugs keep their
traceback (status 1)."""

DESCRIPTION = """\
qengine: high-throughput tree search and Q-value models for LLM agents.

  qengine demo      the whole Q-value pipeline on its embedded default (--search-only: quick)
  qengine collect   search MCTS trees over environment tasks (batched, resumable)
  qengine pairs     turn searched trees into step-level preference pairs
  qengine train-q   train a step-level Q-value model with step-level DPO
  qengine evaluate  compare base, best-of-n and Q-guided agents on held-out tasks
  qengine info      show the build: native core, threads, torch / triton availability

Run `qengine COMMAND --help` for the options of a command.
"""


class _Parser(argparse.ArgumentParser):
    """argparse with a one-line error: what is wrong and where the help is (no usage block)."""

    def error(self, message: str) -> NoReturn:
        self.exit(USAGE_EXIT, f"{self.prog}: error: {message} (see `{self.prog} --help`)\n")


def _add_demo(sub: argparse._SubParsersAction) -> None:
    from .commands._common import PROMPT_STYLE_HELP, positive_int, probability, prompt_style
    from .pipeline import PipelineSettings

    parser = sub.add_parser(
        "demo",
        help="the step-level Q-value pipeline end to end on the embedded default",
        description=(
            "On the built-in WebShop-like `shop` environment with the scripted noisy-expert "
            "agent: collect MCTS trees over training tasks, build step-level preference pairs, "
            "train a small Q-value model with step-level DPO, and compare the base agent with "
            "the Q-guided agent (sample n candidates, execute the highest Q) on held-out tasks, "
            "and with the Q-guided agent that also skips actions it already took in the same "
            "observation (no repeats). About 12 minutes on 2 CPU cores. --search-only runs the "
            "quick search demo instead (batched MCTS over a built-in puzzle, seconds)."
        ),
    )
    parser.add_argument("--out", type=Path, default=None, help="output directory (results.json)")
    defaults = PipelineSettings()
    parser.add_argument("--train-tasks", type=positive_int, default=defaults.train_tasks)
    parser.add_argument("--test-tasks", type=positive_int, default=defaults.test_tasks)
    parser.add_argument(
        "--episodes-per-task",
        type=positive_int,
        default=defaults.episodes_per_task,
        help="evaluation episodes per held-out task and agent (fresh policy samples each)",
    )
    parser.add_argument(
        "--expert-p", type=probability, default=defaults.expert_p, help="base agent: oracle prob."
    )
    parser.add_argument(
        "--epochs", type=positive_int, default=defaults.epochs, help="Q-model training epochs"
    )
    parser.add_argument(
        "--hidden-size", type=positive_int, default=defaults.hidden_size, help="Q-model width"
    )
    parser.add_argument(
        "--prompt-style",
        type=prompt_style,
        default=defaults.prompt_style,
        help=f"how the Q-model reads a state: {PROMPT_STYLE_HELP}",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--search-only", action="store_true", help="the quick search demo")
    parser.add_argument(
        "--tasks", type=positive_int, default=256, help="search demo: number of trees"
    )
    parser.add_argument("--iterations", type=positive_int, default=40, help="search demo: rounds")
    parser.add_argument("--leaves-per-ask", type=positive_int, default=4, help="search demo")
    parser.add_argument("--threads", type=int, default=0, help="core threads (0: all cores)")
    parser.add_argument("--json", action="store_true", help="print the summary as JSON")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bars")


def _run_demo(args: argparse.Namespace) -> int:
    if args.search_only:
        return _run_search_demo(args)
    import tempfile

    from .commands._common import require_training_stack

    require_training_stack("demo")

    from .pipeline import PipelineSettings, run_pipeline

    settings = PipelineSettings(
        train_tasks=args.train_tasks,
        test_tasks=args.test_tasks,
        episodes_per_task=args.episodes_per_task,
        expert_p=args.expert_p,
        epochs=args.epochs,
        hidden_size=args.hidden_size,
        prompt_style=args.prompt_style,
        seed=args.seed,
    )
    out = args.out or Path(tempfile.mkdtemp(prefix="qengine-demo-"))
    log = (lambda *_: None) if args.json else print
    summary = run_pipeline(settings, out=out, progress=not args.no_progress, log=log)
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        ratios = (
            summary["q_guided_over_base_success"],
            summary["q_guided_no_repeats_over_base_success"],
        )
        guided, no_repeats = ("n/a" if r is None else f"{r:.2f}x" for r in ratios)
        print(f"Q-guided / base success: {guided} (Q-guided, no repeats: {no_repeats})")
        print(f"results: {out / 'results.json'}")
    return 0


def _run_search_demo(args: argparse.Namespace) -> int:
    from .demo import LockPuzzle, format_summary, run_demo

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
    parser = _Parser(
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
    """Run ``qengine`` with ``argv``; the exit status. A user's mistake (a
    :class:`~qengine.errors.UsageError` from any layer, or a bad option) prints one line and
    returns :data:`USAGE_EXIT`."""
    parser = build_parser()
    args = parser.parse_args(argv)
    handlers = {"demo": _run_demo, "info": _run_info}
    handlers.update({name: m.run for name, m in _pipeline_commands().items()})
    if args.command is None:
        parser.print_help()
        return 0
    try:
        return handlers[args.command](args)
    except UsageError as e:  # the one place a user's mistake becomes a message
        print(f"qengine {args.command}: error: {e}", file=sys.stderr)
        return USAGE_EXIT


if __name__ == "__main__":
    sys.exit(main())
