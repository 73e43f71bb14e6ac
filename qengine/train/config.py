"""The fields every qengine trainer shares (step-DPO, value models, Q-RM), defined once.

Names follow TRL / ``transformers.TrainingArguments`` where the meaning is theirs
(``learning_rate``, ``num_train_epochs``, ``per_device_train_batch_size``,
``gradient_accumulation_steps``, ``warmup_ratio``, ``weight_decay``, ``max_grad_norm``, ``bf16``,
``seed``); a trainer's config subclasses :class:`TrainConfig`, adds its own fields and may change
a default. One optimiser step sees ``per_device_train_batch_size x gradient_accumulation_steps x
world size`` examples (the world size is 1 outside ``torch.distributed``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..data.prompts import PromptStyle

__all__ = ["StepDPOConfig", "TrainConfig"]


@dataclass(frozen=True, kw_only=True)
class TrainConfig:
    """Hyper-parameters of the optimisation loop (``qengine.train.loop.train_epochs``)."""

    learning_rate: float = 1e-4  # AdamW peak learning rate
    num_train_epochs: int = 3
    per_device_train_batch_size: int = 8  # examples (pairs, states) per micro-batch and process
    gradient_accumulation_steps: int = 1  # micro-batches per optimiser step
    warmup_ratio: float = 0.1  # linear warmup over this fraction of the steps, then linear decay
    weight_decay: float = 0.0
    max_grad_norm: float = 1.0
    eval_fraction: float = 0.1  # tasks held out whole for evaluation (0: none)
    bf16: bool | None = None  # bf16 autocast; None: on CUDA when supported
    seed: int = 0  # shuffling, the held-out split and torch's generator

    def __post_init__(self) -> None:
        if not (self.learning_rate > 0 and math.isfinite(self.learning_rate)):
            raise ValueError(f"learning_rate must be a positive number, got {self.learning_rate}")
        for name in (
            "num_train_epochs", "per_device_train_batch_size", "gradient_accumulation_steps"
        ):  # fmt: skip
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.eval_fraction < 1.0:
            raise ValueError(f"eval_fraction must lie in [0, 1), got {self.eval_fraction}")
        if not 0.0 <= self.warmup_ratio <= 1.0:
            raise ValueError(f"warmup_ratio must lie in [0, 1], got {self.warmup_ratio}")
        if not (self.weight_decay >= 0 and self.max_grad_norm > 0):
            raise ValueError("weight_decay must be >= 0 and max_grad_norm > 0")


@dataclass(frozen=True, kw_only=True)
class StepDPOConfig(TrainConfig):
    """Hyper-parameters of step-level DPO (paper defaults where it gives them: β = 0.1); the
    loop's fields (``learning_rate``, ``num_train_epochs``, ``per_device_train_batch_size`` in
    pairs, ...) come from :class:`~qengine.train.config.TrainConfig`."""

    beta: float = 0.1
    max_length: int = 512  # tokens per sequence (the prompt loses its oldest history)
    prompt_style: PromptStyle = "full"  # "compact": instruction, past actions, last observation
    # Run each state's prompt once with all its actions on top (tree attention mask; batches
    # keep a state's pairs together, qengine.train.packing). Models whose attention takes no
    # custom mask (flash-attn) run every pair's two sequences separately, as does False.
    pack_prefixes: bool = True

    def __post_init__(self) -> None:
        super().__post_init__()
        if not (self.beta > 0 and math.isfinite(self.beta)):
            raise ValueError(f"beta must be a positive number, got {self.beta}")
        if self.max_length < 2:
            raise ValueError(f"max_length must be >= 2, got {self.max_length}")
