"""Policy-gradient losses and the KL penalty, framework-agnostic (plain PyTorch, [B, T] tensors).

Legend: ``B`` sequences, ``T`` positions. ``logprobs`` are the policy's log π(token) of the sampled
tokens (differentiable), ``mask`` marks the response tokens; see
:func:`qengine.rl.policy_token_logprobs` for a Hugging Face model.
"""

from __future__ import annotations

from typing import Literal, NamedTuple

import torch

from .advantages import check_rl_inputs, masked_mean, returns_to_go

__all__ = ["PGOutput", "kl_penalty", "ppo_clip_loss", "reinforce_loss", "value_loss"]

KLEstimator = Literal["k1", "k2", "k3"]


class PGOutput(NamedTuple):
    """``loss`` scalar; ``weights`` [B, T] the (detached) per-token weights multiplying -log π."""

    loss: torch.Tensor
    weights: torch.Tensor


def _reduce(per_token: torch.Tensor, mask: torch.Tensor, reduction: str) -> torch.Tensor:
    if reduction == "token":  # mean over all response tokens of the batch
        return masked_mean(per_token, mask)
    if reduction == "sequence":  # mean over rows of each row's token mean
        return masked_mean(per_token, mask, dim=1).mean()
    if reduction == "sum":  # sum over tokens, mean over rows
        return (per_token * mask.to(per_token.dtype)).sum(1).mean()
    raise ValueError(f"reduction must be 'token', 'sequence' or 'sum', got {reduction!r}")


def reinforce_loss(
    logprobs: torch.Tensor,
    rewards: torch.Tensor,
    mask: torch.Tensor,
    *,
    returns: Literal["reward_to_go", "immediate"] = "reward_to_go",
    gamma: float = 1.0,
    baseline: Literal["mean"] | torch.Tensor | None = None,
    reduction: Literal["token", "sequence", "sum"] = "token",
) -> PGOutput:
    """REINFORCE with token rewards: ``L = -reduce_t( (G_t - b_t) · log π(a_t | s_t) )``.

    Args:
        logprobs: float [B, T] log π of the sampled tokens (carries the gradient).
        rewards: float [B, T] token rewards (Q-RM) or an outcome reward on the last response token.
        mask: [B, T] response tokens.
        returns: ``"reward_to_go"``: ``G_t = Σ_{k≥t} γ^{k-t} r_k`` (the textbook estimator; with an
            outcome reward every token gets it); ``"immediate"``: ``G_t = r_t``, right when each
            token reward already is a Q-value (the authors' REINFORCE with Q-RM).
        baseline: None, ``"mean"`` (mean of ``G`` over the batch's response tokens) or a float
            [B, T] tensor (e.g. a critic's values).
        reduction: ``"token"`` (mean over all response tokens), ``"sequence"`` (mean of per-row
            means) or ``"sum"`` (per-row sums, mean over rows).
    Returns:
        :class:`PGOutput` (loss, detached weights ``G - b`` [B, T]).
    """
    tensor_baseline = baseline if isinstance(baseline, torch.Tensor) else None
    mask = check_rl_inputs(mask, logprobs=logprobs, rewards=rewards, baseline=tensor_baseline)
    if returns == "reward_to_go":
        g = returns_to_go(rewards.detach(), mask, gamma=gamma)
    elif returns == "immediate":
        g = rewards.detach() * mask.to(rewards.dtype)
    else:
        raise ValueError(f"returns must be 'reward_to_go' or 'immediate', got {returns!r}")
    if baseline is None:
        weights = g
    elif isinstance(baseline, torch.Tensor):
        weights = g - baseline.detach()
    elif baseline == "mean":
        weights = g - masked_mean(g, mask)
    else:
        raise ValueError(f"baseline must be None, 'mean' or a [B, T] tensor, got {baseline!r}")
    weights = (weights * mask.to(weights.dtype)).to(logprobs.dtype)
    loss = _reduce(-weights * logprobs, mask, reduction)
    return PGOutput(loss, weights)


def ppo_clip_loss(
    logprobs: torch.Tensor,
    old_logprobs: torch.Tensor,
    advantages: torch.Tensor,
    mask: torch.Tensor,
    *,
    clip_range: float = 0.2,
    reduction: Literal["token", "sequence", "sum"] = "token",
) -> PGOutput:
    """PPO's clipped surrogate ``-min(ρ A, clip(ρ, 1-ε, 1+ε) A)``, ``ρ = exp(logπ - logπ_old)``.

    All inputs [B, T]; advantages from :func:`qengine.rl.q_advantages` or
    :func:`qengine.rl.gae_advantages`. ``weights`` is the detached ratio ρ.
    """
    mask = check_rl_inputs(
        mask, logprobs=logprobs, old_logprobs=old_logprobs, advantages=advantages
    )
    ratio = torch.exp(logprobs - old_logprobs.detach())
    adv = advantages.detach()
    surrogate = torch.minimum(ratio * adv, ratio.clamp(1 - clip_range, 1 + clip_range) * adv)
    return PGOutput(_reduce(-surrogate, mask, reduction), ratio.detach() * mask)


def kl_penalty(
    logprobs: torch.Tensor,
    ref_logprobs: torch.Tensor,
    mask: torch.Tensor,
    *,
    estimator: KLEstimator = "k3",
) -> torch.Tensor:
    """Per-token estimate of KL(π || π_ref) from tokens sampled from π (Schulman's estimators).

    With ``d = log π - log π_ref``: ``k1 = d`` (unbiased, high variance, can be negative),
    ``k2 = d² / 2`` (biased, low variance), ``k3 = exp(-d) - 1 + d`` (unbiased, ≥ 0).

    Args:
        logprobs, ref_logprobs: float [B, T]; mask: [B, T] response tokens.
    Returns:
        float [B, T] (differentiable w.r.t. ``logprobs``), 0 outside the mask. Subtract
        ``coef · kl`` from the token rewards, or add ``coef · masked_mean(kl, mask)`` to the loss.
    """
    mask = check_rl_inputs(mask, logprobs=logprobs, ref_logprobs=ref_logprobs)
    d = logprobs - ref_logprobs
    if estimator == "k1":
        kl = d
    elif estimator == "k2":
        kl = 0.5 * d**2
    elif estimator == "k3":
        kl = torch.expm1(-d) + d
    else:
        raise ValueError(f"estimator must be 'k1', 'k2' or 'k3', got {estimator!r}")
    return kl * mask.to(kl.dtype)


def value_loss(
    values: torch.Tensor,
    returns: torch.Tensor,
    mask: torch.Tensor,
    *,
    old_values: torch.Tensor | None = None,
    clip_range: float | None = None,
) -> torch.Tensor:
    """The critic's loss ``½ · mean_t (V_t - R_t)²`` over the masked tokens.

    With ``old_values`` and ``clip_range`` (PPO's value clipping) the per-token loss is
    ``½ · max((V - R)², (V_old + clip(V - V_old, ±ε) - R)²)``.

    Args:
        values: float [B, T] (differentiable); returns: float [B, T] targets (detached here), e.g.
            the Q-RM rewards (:func:`qengine.rl.q_advantages`) or GAE returns; mask: [B, T].
    Returns:
        scalar.
    """
    mask = check_rl_inputs(mask, values=values, returns=returns, old_values=old_values)
    target = returns.detach()
    err = (values - target) ** 2
    if clip_range is not None:
        if old_values is None:
            raise ValueError("clip_range needs old_values")
        old = old_values.detach()
        clipped = old + (values - old).clamp(-clip_range, clip_range)
        err = torch.maximum(err, (clipped - target) ** 2)
    return 0.5 * masked_mean(err, mask)
