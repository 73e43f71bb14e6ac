"""Sequence log-probabilities of completions under a Hugging Face causal LM, without [T × V] logits.

The decoder's last hidden states go through ``qengine.kernels.fused_linear_logprobs`` with the LM
head: only the completion rows are scored, and on CUDA the logits never reach HBM.
"""

from __future__ import annotations

from typing import Any

import torch

from .tokenize import CompletionBatch


def _decoder(model: Any) -> Any:
    """The transformer body of a ``*ForCausalLM`` (the part that returns hidden states)."""
    body = getattr(model, getattr(model, "base_model_prefix", "model"), None)
    if body is None or body is model:
        raise TypeError(
            f"{type(model).__name__} has no decoder attribute "
            f"{getattr(model, 'base_model_prefix', 'model')!r}; pass a Hugging Face *ForCausalLM"
        )
    return body


def completion_logprobs(model: Any, batch: CompletionBatch) -> torch.Tensor:
    """Σ log π(token) over each row's completion tokens → float32 [B].

    Args:
      model: a Hugging Face causal LM (Llama, Phi, Qwen, a PEFT wrapper, ...).
      batch: from :func:`qengine.train.tokenize.encode_completions`.
    """
    from qengine.kernels import fused_linear_logprobs

    hidden = _decoder(model)(
        input_ids=batch.input_ids, attention_mask=batch.attention_mask
    ).last_hidden_state  # [B, T, D]
    # Position t predicts token t + 1: score the rows whose *next* token is a completion token.
    scored = batch.completion_mask[:, 1:]  # [B, T-1]
    rows = hidden[:, :-1][scored]  # [n, D]
    targets = batch.input_ids[:, 1:][scored]  # [n]
    head = model.get_output_embeddings()
    weight = head.weight
    out = fused_linear_logprobs(rows.to(weight.dtype), weight, targets, getattr(head, "bias", None))
    per_row = torch.zeros(scored.shape, dtype=torch.float32, device=rows.device)
    per_row[scored] = out.logp
    return per_row.sum(dim=1)
