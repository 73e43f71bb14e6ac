"""Token-reward post-processing for Q-RM: mask checks and the normalisations used in RL.

Legend: ``B`` sequences, ``T`` positions. Rewards are fp32 [B, T]; ``rewards[b, t]`` belongs to the
token ``input_ids[b, t]`` (an action of the policy) and is 0 wherever ``response_mask`` is False.

Normalisations (statistics over *all* response tokens of the batch, as the authors' rollout buffer
does):

- ``"std"``: ``r / std(r)`` - the default of the authors' code ("empirically yield better results");
- ``"mean_std"``: ``(r - mean(r)) / std(r)`` - the whitening the paper's text describes;
- ``"none"``: raw ``β·Z``.

``eos_mean`` (the authors' REINFORCE variant, applied *before* normalising) replaces the reward of
each row's last response token by the mean reward of that row's response tokens; ``clip`` then
clamps the normalised rewards to ``[-clip, clip]``. ``std`` is the population standard deviation
(``ddof=0``, as ``numpy.std``).
"""

from __future__ import annotations

from typing import Literal

import torch

__all__ = ["Normalization", "check_token_masks", "normalize_token_rewards"]

Normalization = Literal["std", "mean_std", "none"]
_NORMALIZATIONS = ("std", "mean_std", "none")


def _as_bool_mask(name: str, mask: torch.Tensor) -> torch.Tensor:
    if mask.dtype == torch.bool:
        return mask
    if mask.dtype.is_floating_point or mask.dtype.is_complex:
        raise TypeError(f"{name} must be bool or integer 0/1, got dtype {mask.dtype}")
    if mask.numel() and not bool(((mask == 0) | (mask == 1)).all()):
        raise ValueError(f"{name} must hold only 0 and 1")
    return mask.bool()


def check_token_masks(
    input_ids: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate a scored batch and return (attention, response) as bool [B, T].

    Args:
        input_ids: int [B, T] token ids (any padding side).
        attention_mask: bool / 0-1 int [B, T], True on real tokens.
        response_mask: bool / 0-1 int [B, T], True on the response (action) tokens to score; it must
            lie inside ``attention_mask`` and never cover position 0 (a token's score is read from
            the hidden state of the position before it). Rows with no response token are allowed
            and get zero rewards.
    Raises:
        TypeError / ValueError saying which argument is wrong and how.
    """
    if not isinstance(input_ids, torch.Tensor) or input_ids.dim() != 2:
        raise ValueError(
            f"input_ids must be a [B, T] tensor, got {getattr(input_ids, 'shape', type(input_ids))}"
        )
    if input_ids.dtype.is_floating_point or input_ids.dtype == torch.bool:
        raise TypeError(f"input_ids must hold integer token ids, got dtype {input_ids.dtype}")
    for name, m in (("attention_mask", attention_mask), ("response_mask", response_mask)):
        if not isinstance(m, torch.Tensor) or m.shape != input_ids.shape:
            raise ValueError(
                f"{name} must have the shape of input_ids {tuple(input_ids.shape)}, got "
                f"{tuple(getattr(m, 'shape', ()))}"
            )
    attention = _as_bool_mask("attention_mask", attention_mask)
    response = _as_bool_mask("response_mask", response_mask)
    if bool((response & ~attention).any()):
        raise ValueError("response_mask marks padding tokens (attention_mask == 0)")
    if input_ids.shape[1] and bool(response[:, 0].any()):
        raise ValueError(
            "response_mask covers position 0: every response token needs at least one prompt "
            "token before it (its score is read from the previous position)"
        )
    return attention, response


def normalize_token_rewards(
    rewards: torch.Tensor,
    response_mask: torch.Tensor,
    *,
    normalize: Normalization = "std",
    eos_mean: bool = False,
    clip: float | None = None,
    eps: float = 1e-8,
) -> torch.Tensor:
    """Post-process raw token rewards [B, T] (see the module docstring for the options).

    Args:
        rewards: float [B, T] raw rewards (values outside ``response_mask`` are ignored).
        response_mask: bool / 0-1 int [B, T].
        normalize: ``"std"`` (default), ``"mean_std"`` or ``"none"``.
        eos_mean: replace each row's last response reward by the row's mean response reward.
        clip: clamp the result to ``[-clip, clip]`` (after normalising); None: no clipping.
        eps: added to the standard deviation.
    Returns:
        [B, T] in the dtype of ``rewards`` (fp32 at least), 0 outside ``response_mask``.
    """
    if normalize not in _NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {_NORMALIZATIONS}, got {normalize!r}")
    if rewards.dim() != 2 or response_mask.shape != rewards.shape:
        raise ValueError(
            f"rewards and response_mask must both be [B, T], got {tuple(rewards.shape)} and "
            f"{tuple(response_mask.shape)}"
        )
    if clip is not None and not clip > 0:
        raise ValueError(f"clip must be positive or None, got {clip}")
    mask = _as_bool_mask("response_mask", response_mask)
    r = rewards.to(torch.promote_types(rewards.dtype, torch.float32))
    m = mask.to(r.dtype)
    r = r * m
    if eos_mean:
        count = m.sum(1)
        row_mean = r.sum(1) / count.clamp_min(1.0)
        positions = torch.arange(r.shape[1], device=r.device).expand_as(r)
        last = torch.where(mask, positions, -1).amax(1)  # [B], -1 on empty rows
        has = last >= 0
        rows = torch.nonzero(has).squeeze(1)
        r = r.index_put((rows, last[has]), row_mean[has])
    n = m.sum()
    if normalize != "none" and n > 0:
        mean = r.sum() / n
        std = torch.sqrt((((r - mean) * m) ** 2).sum() / n)
        if normalize == "mean_std":
            r = (r - mean) / (std + eps)
        else:
            r = r / (std + eps)
    if clip is not None:
        r = r.clamp(-clip, clip)
    return r * m
