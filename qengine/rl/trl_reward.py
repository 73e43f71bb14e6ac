"""A Q-RM reward function for TRL's ``GRPOTrainer`` (or any trainer that calls
``reward_func(prompts, completions, **kwargs) -> list[float]``).

GRPO consumes one scalar per completion, so the Q-RM token rewards of the completion are reduced to
a sequence reward: ``"mean"`` (default; the quantity the Q-RM loss ranks: mean β·Z) or ``"sum"``.
Token-level credit needs a trainer that accepts [B, T] rewards: see :mod:`qengine.rl.example_loop`
and ``docs/qrm.md`` (TRL's ``GRPOTrainer`` broadcasts one advantage over the completion).

Example::

    from trl import GRPOConfig, GRPOTrainer
    from qengine.qrm import QRewardModel
    from qengine.rl import QRMRewardFunction

    qrm = QRewardModel.from_pretrained("out/qrm")
    reward = QRMRewardFunction(qrm, qrm_tokenizer)
    trainer = GRPOTrainer(
        model=policy, reward_funcs=reward, args=GRPOConfig(...),
        train_dataset=dataset_with_a_prompt_column, processing_class=policy_tokenizer,
    )
    trainer.train()
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Literal

import torch

from qengine.qrm.model import QRewardModel
from qengine.qrm.rewards import Normalization
from qengine.train.tokenize import encode_completions

__all__ = ["QRMRewardFunction"]


def _text(x: Any, tokenizer: Any, *, prompt: bool) -> str:
    """A plain string, or conversational messages rendered with the tokenizer's chat template."""
    if isinstance(x, str):
        return x
    if isinstance(x, list) and all(isinstance(m, dict) and "content" in m for m in x):
        if prompt:
            if getattr(tokenizer, "chat_template", None) is None:
                raise ValueError(
                    "conversational prompts need a Q-RM tokenizer with a chat template; pass "
                    "plain string prompts otherwise"
                )
            return tokenizer.apply_chat_template(x, tokenize=False, add_generation_prompt=True)
        return "".join(str(m["content"]) for m in x)
    raise TypeError(f"expected a string or a list of chat messages, got {type(x).__name__}")


class QRMRewardFunction:
    """Callable reward ``(prompts, completions, **kwargs) -> list[float]`` from a Q-RM.

    Args:
        qrm: a trained :class:`qengine.qrm.QRewardModel`.
        tokenizer: the Q-RM's tokenizer (the texts are re-tokenised, so the policy may use another).
        reduction: ``"mean"`` or ``"sum"`` of the completion's token rewards.
        normalize, clip, eos_mean, score: as in :meth:`QRewardModel.token_rewards`; normalisation
            statistics are those of the call's batch (``"none"`` by default: GRPO normalises the
            rewards within each group itself).
        batch_size: completions per Q-RM forward pass.
        max_length: token budget of ``prompt + completion`` (the prompt's start is cut first).
    Each completion is scored followed by the Q-RM tokenizer's eos, as in training.
    """

    __name__ = "qrm"

    def __init__(
        self,
        qrm: QRewardModel,
        tokenizer: Any,
        *,
        reduction: Literal["mean", "sum"] = "mean",
        normalize: Normalization = "none",
        clip: float | None = None,
        eos_mean: bool = False,
        score: Literal["q", "advantage"] = "q",
        batch_size: int = 32,
        max_length: int = 1024,
    ) -> None:
        if reduction not in ("mean", "sum"):
            raise ValueError(f"reduction must be 'mean' or 'sum', got {reduction!r}")
        self.qrm = qrm
        self.tokenizer = tokenizer
        self.reduction = reduction
        self.normalize: Normalization = normalize
        self.clip = clip
        self.eos_mean = eos_mean
        self.score: Literal["q", "advantage"] = score
        self.batch_size = batch_size
        self.max_length = max_length

    def token_rewards(
        self, prompts: Sequence[Any], completions: Sequence[Any]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Token rewards [B, T] and the response mask [B, T] of the completions (Q-RM tokens)."""
        if len(prompts) != len(completions):
            raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
        p = [_text(x, self.tokenizer, prompt=True) for x in prompts]
        c = [_text(x, self.tokenizer, prompt=False) for x in completions]
        batch = encode_completions(self.tokenizer, p, c, max_length=self.max_length)
        rewards = self.qrm.token_rewards(
            batch.input_ids, batch.attention_mask, batch.completion_mask,
            normalize=self.normalize, eos_mean=self.eos_mean, clip=self.clip, score=self.score,
            batch_size=self.batch_size,
        )  # fmt: skip
        return rewards, batch.completion_mask

    def __call__(
        self, prompts: Sequence[Any], completions: Sequence[Any], **kwargs: Any
    ) -> list[float]:
        """One float per completion (TRL passes extra columns as ``kwargs``; they are ignored)."""
        if not completions:
            return []
        rewards, mask = self.token_rewards(prompts, completions)
        total = rewards.sum(1)
        if self.reduction == "mean":
            total = total / mask.sum(1).clamp_min(1).to(total.dtype)
        return [float(x) for x in total.cpu()]
