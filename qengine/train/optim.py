"""Optimiser and learning-rate schedule shared by qengine's trainers."""

from __future__ import annotations

import math
from collections.abc import Iterable

import torch


def adamw_with_warmup(
    params: Iterable[torch.nn.Parameter],
    *,
    learning_rate: float,
    weight_decay: float,
    examples: int,
    batch_size: int,
    grad_accumulation: int,
    epochs: int,
    warmup_ratio: float,
) -> tuple[torch.optim.Optimizer, torch.optim.lr_scheduler.LambdaLR, int]:
    """AdamW with linear warmup then linear decay to 0; returns (optimizer, scheduler, steps).

    ``steps`` counts optimiser steps over all epochs (``examples`` per epoch, micro-batches of
    ``batch_size`` accumulated ``grad_accumulation`` at a time).
    """
    optimizer = torch.optim.AdamW(list(params), lr=learning_rate, weight_decay=weight_decay)
    total = math.ceil(examples / (batch_size * grad_accumulation)) * epochs
    warmup = int(total * warmup_ratio)

    def schedule(step: int) -> float:
        if step < warmup:
            return (step + 1) / max(warmup, 1)
        return max(0.0, (total - step) / max(total - warmup, 1))

    return optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, schedule), total
