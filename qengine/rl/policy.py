"""Rollouts and token log-probs of a Hugging Face causal-LM policy.

Legend: ``B`` sequences, ``T`` positions. A :class:`Rollout` is right-padded
``prompt + completion`` ids with a response mask, the layout every scorer here expects
(:meth:`qengine.qrm.QRewardModel.token_rewards`, :func:`policy_token_logprobs`).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from qengine.models.causal_lm import head_logprobs
from qengine.qrm.rewards import check_token_masks
from qengine.train.logprobs import completion_rows
from qengine.train.tokenize import CompletionBatch

__all__ = ["Rollout", "policy_token_logprobs", "sample_completions"]


@dataclass(frozen=True)
class Rollout:
    """Sampled completions, right-padded.

    input_ids: int64 [B, T]; attention_mask: int64 [B, T]; response_mask: bool [B, T] (the
    completion tokens and their eos, if sampled); prompts / completions: the texts (completion
    decoded without special tokens); finished: bool [B], True where the completion ended with eos.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    response_mask: torch.Tensor
    prompts: list[str]
    completions: list[str]
    finished: torch.Tensor


def policy_token_logprobs(
    model: Any,
    input_ids: torch.Tensor,
    attention_mask: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    temperature: float = 1.0,
) -> torch.Tensor:
    """log π(input_ids[b, t] | prefix) of every response token, differentiable → fp32 [B, T].

    Only the rows predicting response tokens meet the LM head (with the model's own logit transform,
    :func:`qengine.models.causal_lm.head_logprobs`: no [T × V] logits on CUDA). ``temperature``
    divides the model's logits (match the sampling temperature). 0 off the response.
    """
    attention, response = check_token_masks(input_ids, attention_mask, response_mask)
    device = next(model.parameters()).device
    batch = CompletionBatch(input_ids.to(device), attention.long().to(device), response.to(device))
    rows, targets, _ = completion_rows(model, batch)
    logp = head_logprobs(model, rows, targets, temperature=temperature).float()
    # Row i of ``rows`` sits at the position before the i-th response token (row-major), so the
    # packed log-probs land on the response positions from column 1 on.
    out = logp.new_zeros(input_ids.shape)
    out[:, 1:] = out[:, 1:].masked_scatter(batch.completion_mask[:, 1:], logp)
    return out


def _special_ids(tokenizer: Any, eos_token_id: int | None) -> tuple[int, int, int]:
    """(eos, pad, start) ids for sampling, each chosen explicitly (id 0 is a valid id).

    eos: ``eos_token_id`` or the tokenizer's (a ValueError when neither has one: the response
    mask ends at the first eos, so sampling without one is not guessed); pad: the tokenizer's pad,
    else eos; start: the token an empty prompt is replaced by (bos, else eos).
    """
    eos = eos_token_id if eos_token_id is not None else getattr(tokenizer, "eos_token_id", None)
    if eos is None:
        raise ValueError(
            "the tokenizer has no eos_token_id: pass sample_completions(..., eos_token_id=ID) "
            "with the id that ends a completion"
        )
    pad = getattr(tokenizer, "pad_token_id", None)
    bos = getattr(tokenizer, "bos_token_id", None)
    return int(eos), int(eos if pad is None else pad), int(eos if bos is None else bos)


@torch.no_grad()
def sample_completions(
    model: Any,
    tokenizer: Any,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 32,
    do_sample: bool = True,
    temperature: float = 1.0,
    top_k: int = 0,
    eos_token_id: int | None = None,
) -> Rollout:
    """Sample one completion per prompt with ``model.generate`` (left-padded prompts), then
    re-pack ``prompt + completion`` right-padded with a response mask that stops at the first eos.

    ``eos_token_id`` overrides the tokenizer's (one of them must exist: ValueError otherwise). A
    prompt that encodes to no tokens (``""`` with a tokenizer that adds no bos) is replaced by one
    start token, the tokenizer's bos or else its eos, so every response token has a prefix to be
    scored from (:func:`qengine.qrm.check_token_masks`).
    """
    if not prompts:
        raise ValueError("no prompts")
    device = next(model.parameters()).device
    eos, pad, start = _special_ids(tokenizer, eos_token_id)
    encoded = [tokenizer(p, add_special_tokens=True)["input_ids"] or [start] for p in prompts]
    width = max(len(ids) for ids in encoded)
    ids = torch.full((len(encoded), width), pad, dtype=torch.long)
    att = torch.zeros((len(encoded), width), dtype=torch.long)
    for i, row in enumerate(encoded):
        ids[i, width - len(row) :] = torch.tensor(row, dtype=torch.long)
        att[i, width - len(row) :] = 1
    was_training = model.training
    model.eval()
    kwargs: dict[str, Any] = {"do_sample": do_sample}
    if do_sample:
        kwargs.update(temperature=temperature, top_k=top_k, top_p=1.0)
    out = model.generate(
        input_ids=ids.to(device), attention_mask=att.to(device), max_new_tokens=max_new_tokens,
        pad_token_id=pad, eos_token_id=eos, **kwargs,
    ).cpu()  # fmt: skip
    model.train(was_training)
    new = out[:, width:]
    rows, finished = [], []
    for i, row in enumerate(encoded):
        gen = new[i].tolist()
        if eos in gen:
            gen = gen[: gen.index(eos) + 1]
            finished.append(True)
        else:
            finished.append(False)
        rows.append((row, gen))
    total = max(len(p) + len(c) for p, c in rows)
    input_ids = torch.full((len(rows), total), pad, dtype=torch.long)
    attention = torch.zeros((len(rows), total), dtype=torch.long)
    response = torch.zeros((len(rows), total), dtype=torch.bool)
    completions = []
    for i, (p, c) in enumerate(rows):
        input_ids[i, : len(p) + len(c)] = torch.tensor(p + c, dtype=torch.long)
        attention[i, : len(p) + len(c)] = 1
        response[i, len(p) : len(p) + len(c)] = True
        completions.append(tokenizer.decode(c, skip_special_tokens=True))
    return Rollout(
        input_ids, attention, response, list(prompts), completions, torch.tensor(finished)
    )
