"""Op 5 - Q-RM pairwise loss (Chen et al. 2025, arXiv:2505.23363).

For each preference pair (``P`` pairs, ``2P`` sequences: chosen first, then rejected), with
``Z_t`` the discriminator score of action token ``t`` and means over each response's action tokens:

    L = mean_pairs  -log σ( β (mean_t Z_w,t - mean_t Z_l,t) - γ ),   β = 0.2, γ = 2 by default.

``head="lm"``: ``Z_t = z_t[target]``, the (soft-capped, tempered) LM-head logit of the taken token,
from op 2 - no logits in HBM; its backward is op 2's with a one-hot upstream gradient.
``head="value"``: ``Z_t = h_t · w + b``, the fused value-head kernel of op 3 (per-sequence means
reduced in the same kernel).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
import torch.nn.functional as F

from ._common import check_positive
from .fused_linear_logprobs import FusedLinearConfig, fused_linear_logprobs
from .q_scoring import value_head_scores
from .segments import resolve_cu_seqlens, segment_reduce

__all__ = ["QRMOutput", "qrm_loss_from_scores", "qrm_pairwise_loss"]


class QRMOutput(NamedTuple):
    """``loss`` scalar; per-pair [P] mean scores (detached) and the accuracy (scalar)."""

    loss: torch.Tensor
    chosen_scores: torch.Tensor
    rejected_scores: torch.Tensor
    margins: torch.Tensor
    accuracy: torch.Tensor


def qrm_loss_from_scores(
    chosen: torch.Tensor, rejected: torch.Tensor, *, beta: float = 0.2, gamma: float = 2.0
) -> QRMOutput:
    """Q-RM loss from per-sequence mean scores [P]."""
    check_positive("beta", beta)
    if not math.isfinite(gamma):
        raise ValueError(f"gamma must be finite, got {gamma}")
    margins = chosen - rejected
    loss = -F.logsigmoid(beta * margins - gamma).mean()
    return QRMOutput(
        loss, chosen.detach(), rejected.detach(), margins.detach(), (margins > 0).float().mean()
    )


def qrm_pairwise_loss(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    *,
    head: str = "lm",
    bias: torch.Tensor | None = None,
    cu_seqlens: torch.Tensor | None = None,
    beta: float = 0.2,
    gamma: float = 2.0,
    temperature: float = 1.0,
    softcap: float | None = None,
    ignore_index: int = -100,
    impl: str = "auto",
    config: FusedLinearConfig | None = None,
    validate: bool = True,
) -> QRMOutput:
    """Q-RM pairwise loss from hidden states.

    Args:
        hidden: [2P, T, D] padded or [N, D] packed (with ``cu_seqlens`` [2P + 1]).
        weight: ``head="lm"``: LM head [V, D] (+ ``bias`` [V]);
            ``head="value"``: [D] (+ scalar ``bias``).
        target: [2P, T] / [N] token ids, ``ignore_index`` on non-response tokens (for the value
            head only the mask matters).
        beta, gamma: as in the paper (0.2, 2.0).
        temperature, softcap, impl, config: as in :func:`fused_linear_logprobs` (LM head only).
    """
    cu = resolve_cu_seqlens(target, cu_seqlens, validate=validate)
    n_seq = cu.numel() - 1
    if n_seq % 2:
        raise ValueError(f"expected 2P sequences (chosen then rejected), got {n_seq}")
    action = target.reshape(-1) != ignore_index
    if head == "lm":
        zt = fused_linear_logprobs(
            hidden, weight, target, bias, temperature=temperature, softcap=softcap,
            ignore_index=ignore_index, impl=impl, config=config,
        ).target_logit.reshape(-1)  # fmt: skip
        means = segment_reduce(zt, cu, mask=action.float(), impl=impl, validate=False).mean
    elif head == "value":
        stats = value_head_scores(
            hidden.reshape(-1, hidden.shape[-1]), weight, bias, cu_seqlens=cu, mask=action,
            impl=impl, validate=False,
        ).segments  # fmt: skip
        means = stats.mean  # type: ignore[union-attr]
    else:
        raise ValueError(f"head must be 'lm' or 'value', got {head!r}")
    p = n_seq // 2
    return qrm_loss_from_scores(means[:p], means[p:], beta=beta, gamma=gamma)
