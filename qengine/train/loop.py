"""The optimisation loop shared by qengine's trainers (step-DPO, Q-RM, value models).

Each trainer supplies the loss of one micro-batch; the loop owns shuffling, AdamW with warmup,
gradient accumulation and clipping, bf16 autocast and the progress bar.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any, Protocol

import torch
from tqdm.auto import tqdm

from .optim import adamw_with_warmup


class LoopConfig(Protocol):
    """The fields the loop reads (every trainer's config has them)."""

    learning_rate: float
    weight_decay: float
    epochs: int
    batch_size: int
    grad_accumulation: int
    warmup_ratio: float
    max_grad_norm: float
    bf16: bool | None
    seed: int


def resolve_bf16(flag: bool | None, device: torch.device) -> bool:
    """``None`` means bf16 autocast on a CUDA device that supports it."""
    if flag is not None:
        return bool(flag)
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def train_epochs(
    module: torch.nn.Module,
    num_examples: int,
    step_loss: Callable[[list[int]], tuple[torch.Tensor, dict[str, float]]],
    cfg: LoopConfig,
    *,
    device: torch.device,
    desc: str,
    progress: bool,
    end_of_epoch: Callable[[int, dict[str, float]], Any],
    batches: Callable[[random.Random], list[list[int]]] | None = None,
) -> None:
    """Train ``module``'s trainable parameters for ``cfg.epochs`` epochs.

    ``step_loss(indices)`` returns the mean loss of those training examples and extra per-batch
    metrics; ``end_of_epoch(epoch, means)`` receives the epoch's mean ``loss`` and mean extras.
    A short last micro-batch weighs by its size in the accumulated gradient. ``batches(rng)``
    returns one epoch's micro-batches of example indices, at most ``cfg.batch_size`` each
    (default: a shuffle of all examples cut into ``cfg.batch_size`` chunks).
    """
    use_bf16 = resolve_bf16(cfg.bf16, device)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer, scheduler, total = adamw_with_warmup(
        params,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        examples=num_examples,
        batch_size=cfg.batch_size,
        grad_accumulation=cfg.grad_accumulation,
        epochs=cfg.epochs,
        warmup_ratio=cfg.warmup_ratio,
    )
    order = list(range(num_examples))
    rng = random.Random(cfg.seed)
    bar = tqdm(total=total, desc=desc, unit="step", disable=not progress)
    for epoch in range(cfg.epochs):
        module.train()
        if batches is None:
            rng.shuffle(order)
            micro = [order[i : i + cfg.batch_size] for i in range(0, len(order), cfg.batch_size)]
        else:
            micro = batches(rng)
        metrics: dict[str, list[float]] = {"loss": []}
        for k, idx in enumerate(micro):
            with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                loss, extras = step_loss(idx)
            (loss * len(idx) / (cfg.batch_size * cfg.grad_accumulation)).backward()
            metrics["loss"].append(loss.item())
            for name, value in extras.items():
                metrics.setdefault(name, []).append(float(value))
            if (k + 1) % cfg.grad_accumulation == 0 or k + 1 == len(micro):
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                bar.update(1)
                bar.set_postfix(loss=f"{metrics['loss'][-1]:.4f}")
        end_of_epoch(epoch, {name: sum(v) / len(v) for name, v in metrics.items()})
    bar.close()
