"""Small training runs for the reproducibility and distributed tests (a uniquely named module:
tests have no packages). Run as a script it trains one of qengine's trainers and saves the model:

    python train_helpers.py TRAINER OUT_DIR [--threads N] [--per-device B] [--epochs E]

(under ``torchrun`` each rank trains its shard of every global batch; rank 0 writes).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
from pathlib import Path
from typing import Any

COLOURS = ["red", "blue", "green", "black", "white", "pink", "gray", "gold"]
THINGS = ["shirt", "mug", "lamp", "sock"]
TRAINERS = ("step_dpo", "value", "qrm")


def colour_pairs(states: int, seed: int) -> list[dict]:
    """Preference records, several per state (each state's chosen action is shared by its pairs,
    so the packed DPO batch gathers the same action rows more than once)."""
    rng = random.Random(seed)
    records = []
    for s in range(states):
        want, thing = rng.choice(COLOURS), rng.choice(THINGS)
        for other in rng.sample([c for c in COLOURS if c != want], 3):
            records.append(
                {
                    "prompt": f"Instruction: buy a {want} {thing}\nAction: ",
                    "chosen": f"click[{want} {thing}]",
                    "rejected": f"click[{other} {thing}]",
                    "task": f"t{s}",
                }
            )
    return records


def value_records(n: int, seed: int) -> list[dict]:
    """Regression records whose value is set by the colour shown."""
    rng = random.Random(seed)
    return [
        {
            "state": f"Instruction: buy a {rng.choice(THINGS)}\nObservation: a {c} "
            f"{rng.choice(THINGS)}\nAction: ",
            "value": COLOURS.index(c) / (len(COLOURS) - 1),
            "task": f"t{i % 40}",
        }
        for i, c in enumerate(rng.choice(COLOURS) for _ in range(n))
    ]


def _tokenizer() -> Any:
    from qengine.models import build_word_tokenizer

    words = " ".join(COLOURS + THINGS) + " instruction buy a action click observation"
    return build_word_tokenizer([words, "[ ] :"])


def train(trainer: str, out: Path, *, per_device: int, epochs: int = 1, hidden: int = 64) -> dict:
    """Train ``trainer`` for ``epochs`` on fixed data, save to ``out``; returns the history."""
    from qengine.models import tiny_causal_lm

    tokenizer = _tokenizer()
    model = tiny_causal_lm(tokenizer, hidden_size=hidden, num_layers=1, seed=0)
    common = dict(learning_rate=3e-3, eval_fraction=0.2, seed=0)
    if trainer == "step_dpo":
        from qengine.train import StepDPOConfig, train_step_dpo

        config = StepDPOConfig(
            num_train_epochs=epochs, per_device_train_batch_size=per_device, max_length=64, **common
        )
        return train_step_dpo(model, tokenizer, colour_pairs(16, seed=1), config=config,
                              output_dir=out, progress=False)  # fmt: skip
    if trainer == "value":
        from qengine.critics import ValueModel, ValueTrainConfig, train_value_regression

        config = ValueTrainConfig(
            num_train_epochs=epochs, per_device_train_batch_size=per_device, **common
        )
        vm = ValueModel(model, tokenizer)
        return train_value_regression(vm, value_records(64, seed=1), config=config,
                                      output_dir=out, progress=False)  # fmt: skip
    if trainer == "qrm":
        from qengine.qrm import QRewardModel, QRMTrainConfig, train_qrm

        config = QRMTrainConfig(
            num_train_epochs=epochs, per_device_train_batch_size=per_device, max_length=64, **common
        )
        return train_qrm(QRewardModel(model), tokenizer, colour_pairs(16, seed=1),
                         config=config, output_dir=out, progress=False)  # fmt: skip
    raise ValueError(f"unknown trainer {trainer!r}; one of {TRAINERS}")


def weights(out: Path) -> dict[str, Any]:
    """Every tensor of every safetensors file under ``out`` (path-qualified names)."""
    from safetensors.torch import load_file

    tensors = {}
    for f in sorted(out.rglob("*.safetensors")):
        for name, t in load_file(str(f)).items():
            tensors[f"{f.relative_to(out)}:{name}"] = t
    return tensors


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser()
    parser.add_argument("trainer", choices=TRAINERS)
    parser.add_argument("out", type=Path)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--per-device", type=int, default=32)
    parser.add_argument("--epochs", type=int, default=1)
    args = parser.parse_args(argv)
    import torch

    from qengine.train import is_main_process

    torch.set_num_threads(args.threads)
    history = train(args.trainer, args.out, per_device=args.per_device, epochs=args.epochs)
    if is_main_process():
        (args.out / "history.json").write_text(json.dumps(history["epochs"], default=str))
    return 0


if __name__ == "__main__":
    sys.exit(main())
