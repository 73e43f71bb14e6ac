"""The held-out split and the pair accuracy every trainer reports, defined once."""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np


def task_key(record: dict[str, Any], index: int) -> str:
    """The group a record is held out with: its ``task``, else its ``prompt`` (the states of one
    prompt stay together), else the record alone."""
    task = record.get("task")
    if task is not None:
        return str(task)
    prompt = record.get("prompt")
    return prompt if isinstance(prompt, str) else f"#{index}"


def split_by_task(
    records: Sequence[dict[str, Any]], fraction: float, seed: int = 0
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(train, held-out): a ``fraction`` of the tasks (:func:`task_key`) is held out whole, so no
    state of an evaluation task is trained on. The same records, fraction and seed give the same
    split in every process (tasks are sorted before the seeded shuffle: no hash order)."""
    if not 0.0 <= fraction < 1.0:
        raise ValueError(f"the held-out fraction must lie in [0, 1), got {fraction}")
    keys = [task_key(r, i) for i, r in enumerate(records)]
    tasks = sorted(set(keys))
    random.Random(seed).shuffle(tasks)
    held = set(tasks[: round(len(tasks) * fraction)]) if fraction > 0 else set()
    train = [r for r, k in zip(records, keys, strict=True) if k not in held]
    evaluation = [r for r, k in zip(records, keys, strict=True) if k in held]
    return train, evaluation


def pair_accuracy(margin: Any) -> float:
    """Share of pairs ranked right (margin chosen − rejected > 0) over margins [P]; a tie (margin
    exactly 0, e.g. before training when the policy is its reference) counts half, like a coin
    flip. ``margin``: a torch tensor or anything numpy reads."""
    if hasattr(margin, "detach"):  # a torch tensor (this module imports no torch)
        margin = margin.detach().double().cpu().numpy()
    m = np.asarray(margin, dtype=np.float64)
    if m.size == 0:
        raise ValueError("no pairs to score")
    return float((m > 0).mean() + 0.5 * (m == 0).mean())
