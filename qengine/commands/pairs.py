"""``qengine pairs``: searched trees → step-level preference records (JSONL or Parquet)."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "pairs",
        help="turn searched trees into preference pairs (prompt / chosen / rejected)",
        description=(
            "Reads the trees written by `qengine collect`, extracts (chosen, rejected) sibling "
            "actions in the native core and writes records loadable by datasets.load_dataset and "
            "TRL's DPOTrainer."
        ),
    )
    parser.add_argument("trees", type=Path, help="directory given to `qengine collect --out`")
    parser.add_argument("--out", type=Path, required=True, help="pairs.jsonl or pairs.parquet")
    parser.add_argument("--mode", choices=("paper", "max_min", "max_all"), default="paper")
    parser.add_argument("--min-visits", type=int, default=1)
    parser.add_argument("--min-q-gap", type=float, default=0.0)
    parser.add_argument("--max-depth", type=int, default=-1)
    parser.add_argument("--plot", type=Path, default=None, help="PNG of the Q distributions")


def run(args: argparse.Namespace) -> int:
    from qengine.data import build_pairs, plot_q_distributions, q_gap_summary, save_records
    from qengine.data.pairs import record_format

    record_format(args.out)  # a wrong suffix is a mistake to report before the work
    records = build_pairs(
        args.trees,
        mode=args.mode,
        min_visits=args.min_visits,
        min_q_gap=args.min_q_gap,
        max_depth=args.max_depth,
    )
    if not records:
        from qengine.data.pairs import NO_PAIRS

        print(f"qengine pairs: warning: {NO_PAIRS}", file=sys.stderr)
    save_records(records, args.out)
    if args.plot is not None:
        plot_q_distributions(records, args.plot)
    print(json.dumps(q_gap_summary(records)))
    return 0
