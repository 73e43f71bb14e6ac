"""Training a :class:`~qengine.qrm.QRewardModel` on preference records (prompt / chosen / rejected).

Records are the pipeline's output (``qengine.data.pairs``) or any Hugging Face preference dataset
with string columns ``prompt``, ``chosen``, ``rejected`` (a ``datasets.Dataset`` or a list of
dicts). Each micro-batch puts its P chosen and P rejected responses in ONE forward pass ([2P, T])
and the loss comes from the fused ``qengine.kernels.qrm_pairwise_loss``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from qengine.train.tokenize import encode_completions

from ..train import distributed
from ..train.config import TrainConfig
from ..train.heldout import pair_accuracy, split_by_task
from ..train.loop import resolve_bf16, train_epochs
from .model import QRewardModel

__all__ = ["QRMTrainConfig", "as_records", "evaluate_qrm", "train_qrm"]

_COLUMNS = ("prompt", "chosen", "rejected")


@dataclass(frozen=True, kw_only=True)
class QRMTrainConfig(TrainConfig):
    """Optimisation of the Q-RM loss (β and γ live on the model): the loop's fields
    (:class:`~qengine.train.config.TrainConfig`; ``per_device_train_batch_size`` counts pairs,
    2 x that many sequences per forward) with Q-RM defaults, and the token budget."""

    learning_rate: float = 1e-5
    num_train_epochs: int = 1
    max_length: int = 512  # tokens per prompt + response


def as_records(data: Iterable[Any]) -> list[dict[str, str]]:
    """prompt / chosen / rejected strings from a list of dicts or a ``datasets.Dataset``.

    Raises ValueError on a missing column or a non-string value (conversational datasets: apply
    the chat template to the messages first).
    """
    records = []
    for i, row in enumerate(data):
        missing = [c for c in _COLUMNS if c not in row]
        if missing:
            raise ValueError(f"record {i} lacks column(s) {missing}; need {list(_COLUMNS)}")
        bad = [c for c in _COLUMNS if not isinstance(row[c], str)]
        if bad:
            raise ValueError(
                f"record {i}: {bad} must be strings (got {type(row[bad[0]]).__name__}); for "
                "conversational data render the messages with tokenizer.apply_chat_template first"
            )
        records.append({c: row[c] for c in _COLUMNS} | {"task": row.get("task", None)})
    if not records:
        raise ValueError("no preference records")
    return records


def _encode(qrm: QRewardModel, tokenizer: Any, chunk: Sequence[dict], max_length: int) -> Any:
    prompts = [r["prompt"] for r in chunk] * 2
    completions = [r["chosen"] for r in chunk] + [r["rejected"] for r in chunk]
    return encode_completions(tokenizer, prompts, completions, max_length=max_length).to(qrm.device)


@torch.no_grad()
def evaluate_qrm(
    qrm: QRewardModel,
    tokenizer: Any,
    records: Iterable[Any],
    *,
    batch_size: int = 16,
    max_length: int = 512,
    bf16: bool | None = None,
) -> dict[str, float]:
    """Pairwise accuracy (mean Z of chosen > mean Z of rejected; ties count 1/2), mean margin and
    mean loss on preference records."""
    records = as_records(records)
    device = qrm.device
    use_bf16 = resolve_bf16(bf16, device)
    was_training = qrm.training
    qrm.eval()
    margins, losses = [], []
    for start in range(0, len(records), batch_size):
        chunk = records[start : start + batch_size]
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
            out = qrm.pairwise_loss(_encode(qrm, tokenizer, chunk, max_length))
        margins.append(out.margins.float().cpu())
        losses.append(float(out.loss) * len(chunk))
    qrm.train(was_training)
    margin = torch.cat(margins)
    return {
        "accuracy": pair_accuracy(margin),
        "margin": float(margin.mean()),
        "loss": sum(losses) / len(records),
        "pairs": len(records),
    }


def train_qrm(
    qrm: QRewardModel,
    tokenizer: Any,
    records: Iterable[Any],
    *,
    config: QRMTrainConfig | None = None,
    output_dir: str | Path | None = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Train ``qrm`` in place on preference records with AdamW, linear warmup + decay and
    gradient accumulation (bf16 autocast on CUDA).

    Returns a history: config, pair counts, per-epoch mean loss and held-out accuracy / margin,
    ``eval_before`` and ``eval_after``. With ``output_dir`` the model is saved with
    :meth:`QRewardModel.save_pretrained` (+ the tokenizer).
    """
    cfg = config or QRMTrainConfig()
    records = as_records(records)
    torch.manual_seed(cfg.seed)
    device = qrm.device
    use_bf16 = resolve_bf16(cfg.bf16, device)
    train, held_out = split_by_task(records, cfg.eval_fraction, cfg.seed)
    if not train:
        raise ValueError("no training pairs left after the held-out split; lower eval_fraction")

    def evaluate() -> dict[str, float]:
        if not held_out:
            return {}
        return evaluate_qrm(
            qrm, tokenizer, held_out, batch_size=cfg.per_device_train_batch_size,
            max_length=cfg.max_length, bf16=use_bf16,
        )  # fmt: skip

    history: dict[str, Any] = {
        "config": asdict(cfg),
        "qrm": qrm.config_dict(),
        "train_pairs": len(train),
        "eval_pairs": len(held_out),
        "epochs": [],
        "eval_before": evaluate(),
    }

    def step_loss(idx: list[int]) -> tuple[torch.Tensor, dict[str, float]]:
        out = qrm.pairwise_loss(_encode(qrm, tokenizer, [train[i] for i in idx], cfg.max_length))
        return out.loss, {"train_accuracy": float(out.accuracy)}

    def end_of_epoch(epoch: int, means: dict[str, float]) -> None:
        row = {"epoch": epoch, **means}
        row.update({f"eval_{k}": v for k, v in evaluate().items()})
        history["epochs"].append(row)

    train_epochs(
        qrm, len(train), step_loss, cfg, device=device, desc="Q-RM", progress=progress,
        end_of_epoch=end_of_epoch,
    )  # fmt: skip
    history["eval_after"] = evaluate()
    if output_dir is not None and distributed.is_main_process():
        qrm.save_pretrained(output_dir, tokenizer)
    distributed.barrier()  # the other processes return once rank 0 has written the model
    return history
