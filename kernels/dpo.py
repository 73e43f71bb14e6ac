"""Op 4 - sequence / step-level DPO loss fused with the LM head (built on op 2).

Legend: ``N`` tokens, ``D`` hidden, ``V`` vocab, ``P`` preference pairs (``2P`` sequences: the ``P``
chosen ones first, then the ``P`` rejected ones, as TRL's concatenated batch). A "sequence" is
whatever is compared: a whole response (sequence DPO) or one step / action (step-level DPO).

With per-sequence log-probs ``π = Σ_{t ∈ action} log πθ(y_t | ·)`` and the same for the reference
model, ``Δ = (π_w - ref_w) - (π_l - ref_l)``:

- ``sigmoid`` (DPO, Rafailov et al. 2023, arXiv:2305.18290), label smoothing ε as in cDPO:
  ``-(1-ε) log σ(βΔ) - ε log σ(-βΔ)``
- ``robust`` (Chowdhury et al. 2024, arXiv:2403.00409):
  ``(-(1-ε) log σ(βΔ) + ε log σ(-βΔ)) / (1-2ε)``
- ``hinge`` (SLiC, Zhao et al. 2023): ``relu(1 - βΔ)``
- ``ipo`` (Azar et al. 2023, arXiv:2310.12036), each log-ratio averaged over its sequence's action
  tokens inside the loss: ``(Δ̄ - 1/(2β))²``, ``Δ̄ = (π_w - ref_w) / n_w - (π_l - ref_l) / n_l``

These are TRL's (1.x) ``DPOTrainer`` formulas and metric definitions: log-probs are always sums,
rewards are ``β (π - ref)`` (detached, also for IPO), the reward accuracy is the fraction of pairs
with chosen reward > rejected reward.

No kernel of its own: the token log-probs come from :func:`fused_linear_logprobs` (the LM head is
never materialised); the per-sequence reduction is :func:`segment_reduce`; the loss is O(P) scalar
math. Its backward is therefore op 2's recomputing backward with per-token weights
``dL/dπ_seq(t)`` - a weighted cross-entropy backward, no second forward of the LM head. The
reference log-probs are either given or computed by the same kernel under ``no_grad``.
"""

from __future__ import annotations

from typing import NamedTuple

import torch
import torch.nn.functional as F

from ._common import check_positive
from .fused_linear_logprobs import FusedLinearConfig, fused_linear_logprobs
from .segments import SegmentStats, resolve_cu_seqlens, segment_reduce

__all__ = ["LOSS_TYPES", "DPOOutput", "dpo_loss_from_logps", "fused_linear_dpo_loss"]

LOSS_TYPES = ("sigmoid", "ipo", "hinge", "robust")


class DPOOutput(NamedTuple):
    """``loss`` scalar; the rest [P] fp32 (detached) except ``reward_accuracy`` (scalar)."""

    loss: torch.Tensor
    chosen_rewards: torch.Tensor
    rejected_rewards: torch.Tensor
    reward_margins: torch.Tensor
    reward_accuracy: torch.Tensor
    chosen_logps: torch.Tensor
    rejected_logps: torch.Tensor


def dpo_loss_from_logps(
    chosen_logps: torch.Tensor,
    rejected_logps: torch.Tensor,
    ref_chosen_logps: torch.Tensor,
    ref_rejected_logps: torch.Tensor,
    *,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    chosen_num_tokens: torch.Tensor | None = None,
    rejected_num_tokens: torch.Tensor | None = None,
) -> DPOOutput:
    """DPO-family loss from per-sequence summed log-probs [P] (policy and reference).

    ``ipo`` needs ``chosen_num_tokens`` / ``rejected_num_tokens`` [P] (action tokens per sequence,
    clamped to >= 1): TRL averages the log-ratios by them inside the IPO loss.
    """
    if loss_type not in LOSS_TYPES:
        raise ValueError(f"loss_type must be one of {LOSS_TYPES}, got {loss_type!r}")
    check_positive("beta", beta)
    if loss_type == "robust" and not 0.0 <= label_smoothing < 0.5:
        raise ValueError(f"robust DPO needs 0 <= label_smoothing < 0.5, got {label_smoothing}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    chosen_ratio = chosen_logps - ref_chosen_logps
    rejected_ratio = rejected_logps - ref_rejected_logps
    delta = chosen_ratio - rejected_ratio
    if loss_type == "sigmoid":
        losses = (
            -F.logsigmoid(beta * delta) * (1 - label_smoothing)
            - F.logsigmoid(-beta * delta) * label_smoothing
        )
    elif loss_type == "robust":
        losses = (
            -F.logsigmoid(beta * delta) * (1 - label_smoothing)
            + F.logsigmoid(-beta * delta) * label_smoothing
        ) / (1 - 2 * label_smoothing)
    elif loss_type == "hinge":
        losses = torch.relu(1 - beta * delta)
    else:  # ipo
        if chosen_num_tokens is None or rejected_num_tokens is None:
            raise ValueError(
                "loss_type='ipo' needs chosen_num_tokens and rejected_num_tokens (action tokens "
                "per sequence): the log-ratios are averaged over them inside the loss, as in TRL"
            )
        avg_delta = chosen_ratio / chosen_num_tokens.clamp_min(1) - rejected_ratio / (
            rejected_num_tokens.clamp_min(1)
        )
        losses = (avg_delta - 1 / (2 * beta)) ** 2
    chosen_rewards = beta * chosen_ratio.detach()
    rejected_rewards = beta * rejected_ratio.detach()
    return DPOOutput(
        loss=losses.mean(),
        chosen_rewards=chosen_rewards,
        rejected_rewards=rejected_rewards,
        reward_margins=chosen_rewards - rejected_rewards,
        reward_accuracy=(chosen_rewards > rejected_rewards).float().mean(),
        chosen_logps=chosen_logps.detach(),
        rejected_logps=rejected_logps.detach(),
    )


def _sequence_logps(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    target: torch.Tensor,
    cu: torch.Tensor,
    **kw,
) -> SegmentStats:
    """[2P] per-sequence sum and count of token log-probs over the action tokens."""
    lp = fused_linear_logprobs(hidden, weight, target, bias, **kw).logp.reshape(-1)
    action = (target.reshape(-1) != kw["ignore_index"]).float()
    return segment_reduce(lp, cu, mask=action, impl=kw["impl"], validate=False)


def fused_linear_dpo_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    *,
    bias: torch.Tensor | None = None,
    cu_seqlens: torch.Tensor | None = None,
    ref_logps: torch.Tensor | None = None,
    ref_hidden: torch.Tensor | None = None,
    ref_weight: torch.Tensor | None = None,
    ref_bias: torch.Tensor | None = None,
    reference_free: bool = False,
    beta: float = 0.1,
    loss_type: str = "sigmoid",
    label_smoothing: float = 0.0,
    temperature: float = 1.0,
    softcap: float | None = None,
    ignore_index: int = -100,
    impl: str = "auto",
    config: FusedLinearConfig | None = None,
    validate: bool = True,
) -> DPOOutput:
    """DPO loss from final hidden states and the LM head, without materialising logits.

    Args:
        hidden: policy hidden states, padded [2P, T, D] or packed [N, D] (with ``cu_seqlens``).
        weight: [V, D] policy LM head (``bias`` optional [V]).
        target: [2P, T] or [N] next-token ids; ``ignore_index`` marks prompt / padding tokens, so
            only action (response) tokens count. Sequences ``0..P-1`` are chosen, ``P..2P-1``
            rejected.
        cu_seqlens: [2P + 1] offsets for the packed layout.
        ref_logps: [2P] precomputed reference sequence log-probs (sums over action tokens), or
        ref_hidden / ref_weight / ref_bias: the reference model's hidden states (default:
            ``hidden``) and head (default: ``weight``), scored by the same kernel under ``no_grad``.
        reference_free: use a zero reference (neither ``ref_logps`` nor ``ref_weight`` given).
        beta, loss_type, label_smoothing: see the module docstring.
        temperature, softcap, ignore_index, impl, config: as in :func:`fused_linear_logprobs`.
        validate: check ``cu_seqlens`` (one host sync); pass False only for offsets known good.

    Returns:
        :class:`DPOOutput`; ``loss`` is differentiable w.r.t. ``hidden``, ``weight``, ``bias``.
    """
    cu = resolve_cu_seqlens(target, cu_seqlens, validate=validate)
    n_seq = cu.numel() - 1
    if n_seq % 2:
        raise ValueError(f"expected 2P sequences (chosen then rejected), got {n_seq}")
    kw = dict(
        temperature=temperature, softcap=softcap, ignore_index=ignore_index, impl=impl,
        config=config,
    )  # fmt: skip
    stats = _sequence_logps(hidden, weight, bias, target, cu, **kw)
    policy = stats.sum
    if ref_logps is not None:
        if ref_logps.shape != (n_seq,):
            raise ValueError(f"ref_logps must be [2P]={n_seq}, got {tuple(ref_logps.shape)}")
        ref = ref_logps.detach().float()
    elif ref_weight is not None or ref_hidden is not None:
        with torch.no_grad():
            ref = _sequence_logps(
                hidden if ref_hidden is None else ref_hidden,
                weight if ref_weight is None else ref_weight,
                ref_bias if ref_weight is not None else bias,
                target, cu, **kw,
            ).sum  # fmt: skip
    elif reference_free:
        ref = torch.zeros_like(policy)
    else:
        raise ValueError(
            "give ref_logps, or ref_weight / ref_hidden, or reference_free=True for DPO's reference"
        )
    p = n_seq // 2
    return dpo_loss_from_logps(
        policy[:p], policy[p:], ref[:p], ref[p:],
        beta=beta, loss_type=loss_type, label_smoothing=label_smoothing,
        chosen_num_tokens=stats.count[:p], rejected_num_tokens=stats.count[p:],
    )  # fmt: skip
