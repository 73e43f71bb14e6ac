"""Returns and advantages from token rewards, in plain PyTorch.

Legend: ``B`` sequences, ``T`` positions. Every tensor is [B, T]; ``mask`` (bool or 0/1) marks the
response (action) tokens. Time runs over the *masked* tokens of a row: the "next" token of a
response token is the next masked position of the same row, so left or right padding and a prompt
before the response need no special care. Outputs are 0 outside the mask.
"""

from __future__ import annotations

import torch

__all__ = [
    "check_rl_inputs",
    "expected_q_advantages",
    "gae_advantages",
    "masked_mean",
    "masked_whiten",
    "q_advantages",
    "returns_to_go",
]


def check_rl_inputs(mask: torch.Tensor, **tensors: torch.Tensor | None) -> torch.Tensor:
    """Check that ``mask`` is [B, T] bool / 0-1 and every tensor has its shape → bool mask."""
    if not isinstance(mask, torch.Tensor) or mask.dim() != 2:
        raise ValueError(f"mask must be a [B, T] tensor, got {getattr(mask, 'shape', type(mask))}")
    if mask.dtype != torch.bool:
        if not bool(((mask == 0) | (mask == 1)).all()):
            raise ValueError("mask must hold only 0 and 1 (or be bool)")
        mask = mask != 0
    for name, t in tensors.items():
        if t is None:
            continue
        if not isinstance(t, torch.Tensor) or t.shape != mask.shape:
            raise ValueError(
                f"{name} must have the mask's shape {tuple(mask.shape)} ([B, T]), got "
                f"{tuple(getattr(t, 'shape', ()))}"
            )
        if not t.dtype.is_floating_point:
            raise TypeError(f"{name} must be a floating tensor, got dtype {t.dtype}")
    return mask


def masked_mean(x: torch.Tensor, mask: torch.Tensor, dim: int | None = None) -> torch.Tensor:
    """Mean of ``x`` over the masked entries (all, or along ``dim``); 0 where nothing is masked."""
    m = mask.to(x.dtype)
    if dim is None:
        return (x * m).sum() / m.sum().clamp_min(1.0)
    return (x * m).sum(dim) / m.sum(dim).clamp_min(1.0)


def masked_whiten(x: torch.Tensor, mask: torch.Tensor, *, shift_mean: bool = True) -> torch.Tensor:
    """``(x - mean) / std`` over the masked entries (population std); 0 outside the mask."""
    m = mask.to(x.dtype)
    mean = masked_mean(x, mask)
    var = masked_mean((x - mean) ** 2, mask)
    y = (x - mean) if shift_mean else x
    return y * torch.rsqrt(var + 1e-8) * m


def _scan(
    values: torch.Tensor, mask: torch.Tensor, discount: float, carry_in: torch.Tensor | None = None
) -> torch.Tensor:
    """out_t = values_t + discount * out_next over masked tokens (backwards), 0 elsewhere."""
    out = torch.zeros_like(values)
    carry = torch.zeros_like(values[:, 0]) if carry_in is None else carry_in
    for t in range(values.shape[1] - 1, -1, -1):
        m = mask[:, t]
        new = values[:, t] + discount * carry
        out[:, t] = torch.where(m, new, torch.zeros_like(new))
        carry = torch.where(m, new, carry)
    return out


def returns_to_go(rewards: torch.Tensor, mask: torch.Tensor, *, gamma: float = 1.0) -> torch.Tensor:
    """``G_t = r_t + γ G_{t+1}`` over each row's response tokens.

    Args:
        rewards: float [B, T] token rewards (an outcome reward sits on the last response token).
        mask: [B, T] response tokens.
        gamma: discount (1: undiscounted).
    Returns:
        float [B, T], 0 outside the mask.
    """
    mask = check_rl_inputs(mask, rewards=rewards)
    return _scan(rewards * mask.to(rewards.dtype), mask, gamma)


def gae_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    *,
    gamma: float = 1.0,
    lam: float = 0.95,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Generalised advantage estimation over each row's response tokens.

    ``δ_t = r_t + γ V_{t+1} - V_t`` (``V`` after the last token is 0),
    ``A_t = δ_t + γ λ A_{t+1}``, returns ``R_t = A_t + V_t`` (the value targets).

    Args:
        rewards, values: float [B, T]; ``values[b, t]`` estimates the state before token t.
        mask: [B, T] response tokens.
    Returns:
        (advantages [B, T], returns [B, T]), 0 outside the mask.
    """
    mask = check_rl_inputs(mask, rewards=rewards, values=values)
    m = mask.to(rewards.dtype)
    r, v = rewards * m, values * m
    adv = torch.zeros_like(r)
    next_v = torch.zeros_like(r[:, 0])
    next_a = torch.zeros_like(r[:, 0])
    for t in range(r.shape[1] - 1, -1, -1):
        mt = mask[:, t]
        delta = r[:, t] + gamma * next_v - v[:, t]
        a = delta + gamma * lam * next_a
        adv[:, t] = torch.where(mt, a, torch.zeros_like(a))
        next_v = torch.where(mt, v[:, t], next_v)
        next_a = torch.where(mt, a, next_a)
    return adv, (adv + v) * m


def q_advantages(
    rewards: torch.Tensor,
    values: torch.Tensor,
    mask: torch.Tensor,
    *,
    value_coef: float = 0.01,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PPO advantages when the token rewards already are Q-values (Q-RM): ``A = r - c·V``.

    This is what the authors' rollout buffer does with ``reward_is_q`` (small ``c`` keeps the early,
    poorly fitted critic from dominating). Returns (advantages [B, T], value targets = r [B, T]).
    """
    mask = check_rl_inputs(mask, rewards=rewards, values=values)
    m = mask.to(rewards.dtype)
    return (rewards - value_coef * values) * m, rewards * m


def expected_q_advantages(
    q_all: torch.Tensor,
    policy_logits: torch.Tensor,
    input_ids: torch.Tensor,
    mask: torch.Tensor,
) -> torch.Tensor:
    """Token advantages from Q-values of *every* candidate token: ``A_t = Q(s_t, a_t) - V(s_t)``
    with the exact baseline ``V(s_t) = Σ_a π(a | s_t) Q(s_t, a)`` under the policy.

    For a reward model that scores every candidate of a state at once (the LM-head Q-RM: ``β·Z``
    is the logit row), this removes the per-state offset of Q that the pairwise loss leaves free
    (only differences of mean Z are trained), which otherwise enters REINFORCE as a state-dependent
    baseline: no bias, but a variance as large as the offsets' spread over states. ``E_π[A_t] = 0``
    in every state.

    Legend: ``V`` vocabulary. Args:
        q_all: float [B, T, V]; ``q_all[b, t, a]`` = Q of token ``a`` in the state before position
            t (the layout of the token rewards: entry ``t`` scores token ``input_ids[b, t]``).
        policy_logits: float [B, T, V] the policy's logits for the same states (softmax → π;
            divide by the sampling temperature first); no gradient flows through either.
        input_ids: int [B, T] the sampled tokens; mask: [B, T] response tokens.
    Returns:
        float [B, T] (the dtype of ``q_all``), 0 outside the mask.
    """
    mask = check_rl_inputs(mask)
    if q_all.dim() != 3 or q_all.shape[:2] != mask.shape or policy_logits.shape != q_all.shape:
        raise ValueError(
            f"q_all and policy_logits must both be [B, T, V] with [B, T] = {tuple(mask.shape)}, "
            f"got {tuple(q_all.shape)} and {tuple(policy_logits.shape)}"
        )
    if input_ids.shape != mask.shape:
        raise ValueError(f"input_ids {tuple(input_ids.shape)} and mask {tuple(mask.shape)} differ")
    q = q_all.detach()
    pi = torch.softmax(policy_logits.detach().to(q.dtype), dim=-1)
    taken = q.gather(-1, input_ids.long().unsqueeze(-1)).squeeze(-1)
    baseline = (pi * q).sum(-1)
    return (taken - baseline) * mask.to(q.dtype)
