"""Prompt + completion tokenisation with a mask over the completion (action / response) tokens."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..models.causal_lm import keep_recent, pad_id, special_prefix


@dataclass(frozen=True)
class CompletionBatch:
    """Right-padded token ids of ``prompt + completion + eos``.

    input_ids, attention_mask: int64 [B, T]; completion_mask: bool [B, T], True on the tokens whose
    log-probability is scored (the completion and its eos), False on the prompt and the padding.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    completion_mask: torch.Tensor

    def to(self, device: torch.device | str) -> CompletionBatch:
        return CompletionBatch(
            self.input_ids.to(device),
            self.attention_mask.to(device),
            self.completion_mask.to(device),
        )


def encode_completions(
    tokenizer: Any,
    prompts: Sequence[str],
    completions: Sequence[str],
    *,
    max_length: int = 512,
) -> CompletionBatch:
    """Tokenise pairs of texts; long prompts lose their beginning (the recent history is kept).

    Raises ValueError when a completion alone does not fit in ``max_length``.
    """
    if len(prompts) != len(completions):
        raise ValueError(f"{len(prompts)} prompts but {len(completions)} completions")
    if not prompts:
        raise ValueError("nothing to encode: empty batch")
    eos = tokenizer.eos_token_id
    head = special_prefix(tokenizer)  # a BOS survives truncation; SmolLM2 adds none
    rows: list[tuple[list[int], int]] = []
    for prompt, completion in zip(prompts, completions, strict=True):
        p_ids = tokenizer(prompt, add_special_tokens=True)["input_ids"]
        c_ids = tokenizer(completion, add_special_tokens=False)["input_ids"]
        if eos is not None:
            c_ids = [*c_ids, eos]
        if len(c_ids) + 1 > max_length:
            raise ValueError(
                f"completion of {len(c_ids)} tokens does not fit max_length={max_length}: "
                f"{completion[:60]!r}"
            )
        keep = max_length - len(c_ids)
        if len(p_ids) > keep:
            p_ids = keep_recent(p_ids, keep, head=head)  # drop the oldest history
        rows.append((p_ids + c_ids, len(p_ids)))
    width = max(len(ids) for ids, _ in rows)
    pad = pad_id(tokenizer)
    input_ids = torch.full((len(rows), width), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), width), dtype=torch.long)
    completion = torch.zeros((len(rows), width), dtype=torch.bool)
    for i, (ids, prompt_len) in enumerate(rows):
        input_ids[i, : len(ids)] = torch.tensor(ids)
        attention[i, : len(ids)] = 1
        completion[i, prompt_len : len(ids)] = True
    return CompletionBatch(input_ids, attention, completion)
