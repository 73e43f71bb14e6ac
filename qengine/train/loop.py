"""The optimisation loop shared by qengine's trainers (step-DPO, Q-RM, value models).

Each trainer supplies the loss of one micro-batch; the loop owns shuffling, AdamW with warmup,
gradient accumulation and clipping, bf16 autocast, the progress bar and data parallelism
(``qengine.train.distributed``: under torchrun each process takes its shard of every global
micro-batch and the gradients are summed over the processes before each step).
"""

from __future__ import annotations

import random
from collections.abc import Callable
from typing import Any

import torch
from tqdm.auto import tqdm

from . import distributed
from .config import TrainConfig
from .optim import adamw_with_warmup


def resolve_bf16(flag: bool | None, device: torch.device) -> bool:
    """``None`` means bf16 autocast on a CUDA device that supports it."""
    if flag is not None:
        return bool(flag)
    return device.type == "cuda" and torch.cuda.is_bf16_supported()


def _mean_metrics(parts: list[tuple[int, dict[str, float]]]) -> dict[str, float]:
    """Example-weighted mean of every rank's micro-batch metrics (ranks without examples skip)."""
    if len(parts) == 1:
        return parts[0][1]
    total = sum(n for n, _ in parts)
    names = sorted({k for n, m in parts if n for k in m})
    return {k: sum(n * m[k] for n, m in parts if n and k in m) / total for k in names}


def train_epochs(
    module: torch.nn.Module,
    num_examples: int,
    step_loss: Callable[[list[int]], tuple[torch.Tensor, dict[str, float]]],
    cfg: TrainConfig,
    *,
    device: torch.device,
    desc: str,
    progress: bool,
    end_of_epoch: Callable[[int, dict[str, float]], Any],
    batches: Callable[[random.Random, int], list[list[int]]] | None = None,
) -> None:
    """Train ``module``'s trainable parameters for ``cfg.num_train_epochs`` epochs.

    ``step_loss(indices)`` returns the mean loss of those training examples and extra per-batch
    metrics; ``end_of_epoch(epoch, means)`` receives the epoch's mean ``loss`` and mean extras
    (over every process). A short micro-batch weighs by its size in the accumulated gradient.
    ``batches(rng, size)`` returns one epoch's global micro-batches of example indices, at most
    ``size`` each (default: a shuffle of all examples cut into ``size`` chunks); ``size`` is
    ``per_device_train_batch_size`` times the number of processes, each taking its slice. Every
    process must call this with the same examples and config.
    """
    use_bf16 = resolve_bf16(cfg.bf16, device)
    # under torchrun, join the process group (NCCL for a CUDA model, gloo otherwise)
    distributed.init_from_env("nccl" if device.type == "cuda" else "gloo")
    per_device = cfg.per_device_train_batch_size
    _, world_size = distributed.world()
    global_batch = per_device * world_size
    distributed.broadcast_parameters(module)
    params = [p for p in module.parameters() if p.requires_grad]
    optimizer, scheduler, total = adamw_with_warmup(
        params,
        learning_rate=cfg.learning_rate,
        weight_decay=cfg.weight_decay,
        examples=num_examples,
        batch_size=global_batch,
        grad_accumulation=cfg.gradient_accumulation_steps,
        epochs=cfg.num_train_epochs,
        warmup_ratio=cfg.warmup_ratio,
    )
    # Each micro-batch's mean loss is scaled to its share of one optimiser step's examples, so
    # the accumulated (and, across processes, summed) gradient is the step's mean gradient.
    step_examples = global_batch * cfg.gradient_accumulation_steps
    order = list(range(num_examples))
    rng = random.Random(cfg.seed)  # the same shuffles on every process
    bar = tqdm(
        total=total,
        desc=desc,
        unit="step",
        disable=not progress or not distributed.is_main_process(),
    )
    for epoch in range(cfg.num_train_epochs):
        module.train()
        if batches is None:
            rng.shuffle(order)
            micro = [order[i : i + global_batch] for i in range(0, len(order), global_batch)]
        else:
            micro = batches(rng, global_batch)
        metrics: dict[str, list[float]] = {}
        for k, global_idx in enumerate(micro):
            idx = distributed.shard(global_idx, per_device) if world_size > 1 else global_idx
            mine: dict[str, float] = {}
            if idx:
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=use_bf16):
                    loss, extras = step_loss(idx)
                (loss * len(idx) / step_examples).backward()
                mine = {"loss": loss.item(), **{n: float(v) for n, v in extras.items()}}
            for name, value in _mean_metrics(distributed.gather_metrics(len(idx), mine)).items():
                metrics.setdefault(name, []).append(value)
            if (k + 1) % cfg.gradient_accumulation_steps == 0 or k + 1 == len(micro):
                distributed.all_reduce_gradients(params)
                torch.nn.utils.clip_grad_norm_(params, cfg.max_grad_norm)
                optimizer.step()
                scheduler.step()
                optimizer.zero_grad(set_to_none=True)
                bar.update(1)
                bar.set_postfix(loss=f"{metrics['loss'][-1]:.4f}")
        end_of_epoch(epoch, {name: sum(v) / len(v) for name, v in metrics.items()})
    bar.close()
