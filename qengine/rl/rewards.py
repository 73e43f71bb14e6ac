"""Token-reward layouts that do not need a reward model: an outcome score on the last response
token, and an oracle dense reward from a reference (gold) token sequence.

Legend: ``B`` sequences, ``T`` positions. Every output is float32 [B, T], aligned with
``input_ids`` (entry ``[b, t]`` rewards the token ``input_ids[b, t]``) and 0 off ``response_mask``,
the layout of :meth:`qengine.qrm.QRewardModel.token_rewards` and of the losses in
:mod:`qengine.rl.losses`. The oracle reward is the control that tells an RL loop's glue from its
reward model: a loop that does not learn faster from it than from an outcome reward is broken.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

from .advantages import check_rl_inputs

__all__ = ["last_token_positions", "last_token_rewards", "prefix_match_rewards"]


def last_token_positions(mask: torch.Tensor) -> torch.Tensor:
    """Position of each row's last masked token → int64 [B] (-1 for a row with none)."""
    mask = check_rl_inputs(mask)
    positions = torch.arange(mask.shape[1], device=mask.device).expand_as(mask)
    return torch.where(mask, positions, -1).amax(1)


def last_token_rewards(mask: torch.Tensor, scores: torch.Tensor) -> torch.Tensor:
    """An outcome reward: ``scores[b]`` on row b's last response token (its eos when it has one).

    Args:
        mask: [B, T] response tokens (any padding side).
        scores: float [B] one score per sequence (e.g. 1 / 0 for a right / wrong final answer).
    Returns:
        float32 [B, T]; rows without a response token get nothing.
    """
    mask = check_rl_inputs(mask)
    if not isinstance(scores, torch.Tensor) or scores.shape != mask.shape[:1]:
        raise ValueError(
            f"scores must be a [B] tensor with B = {mask.shape[0]}, got "
            f"{tuple(getattr(scores, 'shape', ()))}"
        )
    last = last_token_positions(mask)
    out = torch.zeros(mask.shape, dtype=torch.float32, device=mask.device)
    rows = torch.nonzero(last >= 0).squeeze(1)
    out[rows, last[rows]] = scores.to(out)[rows]
    return out


def prefix_match_rewards(
    input_ids: torch.Tensor,
    response_mask: torch.Tensor,
    references: Sequence[Sequence[int]],
    *,
    right: float = 1.0,
    wrong: float = -1.0,
) -> torch.Tensor:
    """Oracle dense rewards from reference completions (e.g. the gold solution + eos).

    Walking row b's response tokens in order, a token that extends a prefix of ``references[b]``
    gets ``right``; the first token that leaves it (a different token, a token past the reference's
    end) gets ``wrong``; every token after that gets 0 (the sequence is already lost, and no token
    there can be blamed or credited by comparison with the reference).

    Args:
        input_ids: int [B, T]; response_mask: [B, T] (any padding side, gaps allowed).
        references: B token-id sequences.
    Returns:
        float32 [B, T].
    """
    mask = check_rl_inputs(response_mask)
    if input_ids.shape != mask.shape:
        raise ValueError(
            f"input_ids {tuple(input_ids.shape)} and response_mask {tuple(mask.shape)} differ"
        )
    if len(references) != mask.shape[0]:
        raise ValueError(f"{len(references)} references for {mask.shape[0]} rows")
    out = torch.zeros(mask.shape, dtype=torch.float32)
    ids, m = input_ids.cpu(), mask.cpu()
    for b, ref in enumerate(references):
        positions = torch.nonzero(m[b]).squeeze(1).tolist()
        tokens = ids[b, positions].tolist()
        for k, (pos, tok) in enumerate(zip(positions, tokens, strict=True)):
            if k < len(ref) and tok == ref[k]:
                out[b, pos] = right
            else:
                out[b, pos] = wrong
                break
    return out.to(mask.device)
