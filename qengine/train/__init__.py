"""Training: step-level DPO for Q-value models."""

from .logprobs import completion_logprobs
from .step_dpo import StepDPOConfig, dpo_loss, evaluate_pairs, save_q_model, train_step_dpo
from .tokenize import CompletionBatch, encode_completions

__all__ = [
    "CompletionBatch",
    "StepDPOConfig",
    "completion_logprobs",
    "dpo_loss",
    "encode_completions",
    "evaluate_pairs",
    "save_q_model",
    "train_step_dpo",
]
