"""Data-parallel training on ``torch.distributed`` (gloo on CPU, NCCL on GPU), launched by torchrun.

Every trainer runs unchanged under ``torchrun --nproc-per-node N``: each process holds a full
replica, takes its contiguous shard of every global micro-batch
(``per_device_train_batch_size x N`` examples, the same order on every rank), and the gradients
are summed over the processes before each optimiser step, as ``DistributedDataParallel`` does.
The all-reduce is explicit (one flat buffer per step) because qengine's losses run the decoder
body and the LM head directly, not the model's ``forward`` that DDP's wrapper hooks. Only rank 0
writes files. Outside ``torch.distributed`` (or with one process) every function here is a no-op.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

import torch


def _dist() -> Any:
    """``torch.distributed`` when a process group is running, else None."""
    import torch.distributed as dist

    return dist if dist.is_available() and dist.is_initialized() else None


def world() -> tuple[int, int]:
    """``(rank, world size)``; ``(0, 1)`` outside a process group."""
    dist = _dist()
    return (dist.get_rank(), dist.get_world_size()) if dist else (0, 1)


def is_main_process() -> bool:
    """Rank 0 (the one that writes models and logs), or any single process."""
    return world()[0] == 0


def init_from_env(backend: str | None = None) -> bool:
    """Join the process group that ``torchrun`` describes (``WORLD_SIZE`` > 1 in the
    environment), with ``backend`` (default NCCL when CUDA is available, gloo otherwise); on CUDA
    each process takes GPU ``LOCAL_RANK``. Returns whether training is distributed. Idempotent;
    the trainers call it, so a script launched by torchrun needs no setup of its own."""
    if _dist() is not None:
        return True
    if int(os.environ.get("WORLD_SIZE", "1")) <= 1:
        return False
    import torch.distributed as dist

    cuda = torch.cuda.is_available() and backend != "gloo"
    if cuda:
        torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    dist.init_process_group(backend or ("nccl" if cuda else "gloo"))
    return True


def default_device() -> torch.device:
    """This process's device: ``cuda:LOCAL_RANK`` under torchrun with GPUs, else CUDA or CPU."""
    if torch.cuda.is_available():
        return torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
    return torch.device("cpu")


def shard(indices: Sequence[int], size: int) -> list[int]:
    """This rank's contiguous slice of a global micro-batch (at most ``size`` indices; the last,
    short global batch may leave a rank fewer or none)."""
    rank, _ = world()
    return list(indices[rank * size : (rank + 1) * size])


def broadcast_parameters(module: torch.nn.Module) -> None:
    """Every rank starts from rank 0's parameters and buffers (as DDP does when it wraps)."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return
    for tensor in [*module.parameters(), *module.buffers()]:
        dist.broadcast(tensor.data, src=0)


def all_reduce_gradients(params: Sequence[torch.nn.Parameter]) -> None:
    """Sum the gradients of ``params`` over the ranks, in place (a rank whose shard was empty
    contributes zeros). Losses are pre-scaled by 1 / (global examples per step), so the sum is
    the global mean gradient."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return
    grads = [p.grad if p.grad is not None else torch.zeros_like(p) for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for p in params:
        n = p.numel()
        p.grad = flat[offset : offset + n].view_as(p).clone()
        offset += n


def gather_metrics(count: int, metrics: dict[str, float]) -> list[tuple[int, dict[str, float]]]:
    """Every rank's ``(examples, metrics)`` of one micro-batch (this rank's alone outside a
    process group)."""
    dist = _dist()
    if dist is None or dist.get_world_size() == 1:
        return [(count, metrics)]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, (count, metrics))
    return out


def barrier() -> None:
    """Wait for every rank (e.g. until rank 0 has written the model)."""
    dist = _dist()
    if dist is not None and dist.get_world_size() > 1:
        dist.barrier()
