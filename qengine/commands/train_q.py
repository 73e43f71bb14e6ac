"""``qengine train-q``: step-level DPO of a causal LM on preference records."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def add_parser(sub: argparse._SubParsersAction) -> None:
    parser = sub.add_parser(
        "train-q",
        help="train a step-level Q-value model with step-level DPO",
        description=(
            "Trains MODEL (a local Hugging Face checkpoint path, or 'tiny' for a small model "
            "built from scratch with a tokenizer fitted on the data) on preference records; "
            "the reference is the initial model, frozen. Saves with save_pretrained."
        ),
    )
    parser.add_argument("pairs", type=Path, help="records from `qengine pairs` (.jsonl/.parquet)")
    parser.add_argument("--model", default="tiny", help="local checkpoint path or 'tiny'")
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    parser.add_argument("--beta", type=float, default=0.1)
    parser.add_argument("--epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--grad-accumulation", type=int, default=1)
    parser.add_argument("--eval-fraction", type=float, default=0.1)
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from qengine.data import load_records
    from qengine.models import build_word_tokenizer, tiny_causal_lm
    from qengine.train import StepDPOConfig, train_step_dpo

    if not args.pairs.is_file():
        raise SystemExit(f"{args.pairs} does not exist: make it with `qengine pairs`")
    records = list(load_records(args.pairs))
    if args.model == "tiny":
        texts = (r["prompt"] + " " + r["chosen"] + " " + r["rejected"] for r in records)
        tokenizer = build_word_tokenizer(texts)
        model = tiny_causal_lm(tokenizer)
    else:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        path = Path(args.model)
        if not path.exists():
            raise SystemExit(f"--model {args.model}: no such local checkpoint directory")
        tokenizer = AutoTokenizer.from_pretrained(path)
        if tokenizer.pad_token is None:
            tokenizer.pad_token = tokenizer.eos_token
        model = AutoModelForCausalLM.from_pretrained(path)
    config = StepDPOConfig(
        beta=args.beta,
        epochs=args.epochs,
        learning_rate=args.lr,
        batch_size=args.batch_size,
        grad_accumulation=args.grad_accumulation,
        eval_fraction=args.eval_fraction,
    )
    history = train_step_dpo(
        model,
        tokenizer,
        records,
        config=config,
        output_dir=args.out,
        progress=not args.no_progress,
    )
    print(json.dumps({"eval_before": history["eval_before"], "eval_after": history["eval_after"]}))
    return 0
