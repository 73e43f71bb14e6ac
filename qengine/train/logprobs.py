"""Sequence log-probabilities of completions under a Hugging Face causal LM, without [T × V] logits.

The decoder's last hidden states go through ``qengine.kernels.fused_linear_logprobs`` with the LM
head: only the completion rows are scored, and on CUDA the logits never reach HBM.
"""

from __future__ import annotations

from typing import Any

import torch

from ..models.causal_lm import decoder, head_logprobs
from .tokenize import CompletionBatch


def completion_rows(
    model: Any, batch: CompletionBatch
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Packed hidden states of the positions that predict completion tokens.

    Returns (rows [n, D], targets [n] int64, cu_seqlens [B+1] int32): row i predicts targets[i];
    sequence b owns rows ``cu_seqlens[b]:cu_seqlens[b+1]``.
    """
    hidden = decoder(model)(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask
    ).last_hidden_state  # [B, T, D]
    # Position t predicts token t + 1: keep the rows whose *next* token is a completion token.
    scored = batch.completion_mask[:, 1:]  # [B, T-1]
    rows = hidden[:, :-1][scored]
    targets = batch.input_ids[:, 1:][scored]
    lengths = scored.sum(dim=1)
    cu_seqlens = torch.zeros(len(lengths) + 1, dtype=torch.int32, device=rows.device)
    cu_seqlens[1:] = torch.cumsum(lengths, 0)
    return rows, targets, cu_seqlens


def completion_logprobs(model: Any, batch: CompletionBatch) -> torch.Tensor:
    """Σ log π(token) over each row's completion tokens → float32 [B].

    Args:
      model: a Hugging Face causal LM (Llama, Phi, Qwen, a PEFT wrapper, ...).
      batch: from :func:`qengine.train.tokenize.encode_completions`.
    """
    from qengine.kernels import segment_reduce

    rows, targets, cu_seqlens = completion_rows(model, batch)
    # head_logprobs applies the model's own logit transform (softcap, logit scale)
    return segment_reduce(head_logprobs(model, rows, targets), cu_seqlens).sum
