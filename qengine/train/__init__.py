"""Training: step-level DPO for Q-value models, and the pieces every qengine trainer shares (the
config's loop fields, the held-out split, the pair accuracy, the loop, data parallelism).

Names load on first use: ``qengine.train.config`` (the configs) imports no torch, so the CLI
builds its options from the configs' defaults without the training stack.
"""

from __future__ import annotations

import importlib
from typing import Any

from .config import StepDPOConfig, TrainConfig

_LAZY = {
    "CompletionBatch": ".tokenize",
    "completion_logprobs": ".logprobs",
    "encode_completions": ".tokenize",
    "evaluate_pairs": ".step_dpo",
    "init_from_env": ".distributed",
    "is_main_process": ".distributed",
    "pair_accuracy": ".heldout",
    "split_by_task": ".heldout",
    "train_step_dpo": ".step_dpo",
}

__all__ = [
    "CompletionBatch",
    "StepDPOConfig",
    "TrainConfig",
    "completion_logprobs",
    "encode_completions",
    "evaluate_pairs",
    "init_from_env",
    "is_main_process",
    "pair_accuracy",
    "split_by_task",
    "train_step_dpo",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
