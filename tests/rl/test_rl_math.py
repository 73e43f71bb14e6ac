"""REINFORCE, PPO, GAE, Q-RM advantages and KL estimators against hand-worked cases."""

from __future__ import annotations

import math

import pytest
import torch

from qengine.rl import (
    gae_advantages,
    kl_penalty,
    masked_mean,
    masked_whiten,
    ppo_clip_loss,
    q_advantages,
    reinforce_loss,
    returns_to_go,
)

F64 = torch.float64


def t(rows) -> torch.Tensor:
    return torch.tensor(rows, dtype=F64)


def test_returns_to_go_by_hand() -> None:
    rewards = t([[7.0, 1.0, 2.0, 3.0], [0.0, 0.0, 5.0, 9.0]])
    mask = torch.tensor([[0, 1, 1, 1], [0, 0, 1, 0]], dtype=torch.bool)
    g = returns_to_go(rewards, mask, gamma=0.5)
    # row 0: G3 = 3, G2 = 2 + 0.5·3 = 3.5, G1 = 1 + 0.5·3.5 = 2.75; the prompt token gets 0.
    # row 1: one response token; the padding after it (reward 9) is ignored.
    torch.testing.assert_close(g, t([[0.0, 2.75, 3.5, 3.0], [0.0, 0.0, 5.0, 0.0]]))
    undiscounted = returns_to_go(rewards, mask)
    torch.testing.assert_close(undiscounted[0], t([0.0, 6.0, 5.0, 3.0]))


def test_returns_skip_gaps_and_padding_side_does_not_matter() -> None:
    right = returns_to_go(t([[0.0, 1.0, 2.0, 0.0]]), torch.tensor([[0, 1, 1, 0]]), gamma=0.9)
    left = returns_to_go(t([[0.0, 0.0, 1.0, 2.0]]), torch.tensor([[0, 0, 1, 1]]), gamma=0.9)
    torch.testing.assert_close(right[0, 1:3], left[0, 2:4])
    gap = returns_to_go(t([[1.0, 4.0, 2.0]]), torch.tensor([[1, 0, 1]]), gamma=0.5)
    torch.testing.assert_close(gap, t([[2.0, 0.0, 2.0]]))  # G0 = 1 + 0.5·2, token 1 skipped


def test_gae_by_hand() -> None:
    r, v = t([[1.0, 0.0, 2.0]]), t([[0.5, 1.0, 0.2]])
    mask = torch.ones(1, 3, dtype=torch.bool)
    adv, ret = gae_advantages(r, v, mask, gamma=0.9, lam=0.8)
    # δ2 = 2 - 0.2 = 1.8;            A2 = 1.8
    # δ1 = 0 + 0.9·0.2 - 1 = -0.82;   A1 = -0.82 + 0.72·1.8 = 0.476
    # δ0 = 1 + 0.9·1 - 0.5 = 1.4;     A0 = 1.4 + 0.72·0.476 = 1.74272
    torch.testing.assert_close(adv, t([[1.74272, 0.476, 1.8]]))
    torch.testing.assert_close(ret, adv + v)
    # λ = 1, V = 0: GAE reduces to the discounted return.
    adv1, _ = gae_advantages(r, torch.zeros_like(v), mask, gamma=0.9, lam=1.0)
    torch.testing.assert_close(adv1, returns_to_go(r, mask, gamma=0.9))


def test_gae_ignores_masked_positions() -> None:
    r, v = t([[9.0, 1.0, 2.0, 9.0]]), t([[9.0, 0.5, 0.5, 9.0]])
    mask = torch.tensor([[0, 1, 1, 0]], dtype=torch.bool)
    adv, _ = gae_advantages(r, v, mask, gamma=1.0, lam=1.0)
    # A2 = 2 - 0.5 = 1.5; A1 = 1 + 0.5 - 0.5 + 1.5 = 2.5
    torch.testing.assert_close(adv, t([[0.0, 2.5, 1.5, 0.0]]))


def test_q_advantages_are_r_minus_c_v() -> None:
    r, v = t([[0.0, 1.0, -2.0]]), t([[5.0, 10.0, 20.0]])
    mask = torch.tensor([[0, 1, 1]], dtype=torch.bool)
    adv, ret = q_advantages(r, v, mask, value_coef=0.1)
    torch.testing.assert_close(adv, t([[0.0, 0.0, -4.0]]))
    torch.testing.assert_close(ret, t([[0.0, 1.0, -2.0]]))


def test_reinforce_by_hand_with_gradient() -> None:
    logp = t([[0.0, -1.0, -2.0], [0.0, -0.5, 0.0]]).requires_grad_(True)
    rewards = t([[0.0, 0.0, 1.0], [0.0, 3.0, 0.0]])
    mask = torch.tensor([[0, 1, 1], [0, 1, 0]], dtype=torch.bool)
    out = reinforce_loss(logp, rewards, mask)  # reward-to-go: G = [[0, 1, 1], [0, 3, 0]]
    # loss = -(1·-1 + 1·-2 + 3·-0.5) / 3 = 1.5
    torch.testing.assert_close(out.loss, torch.tensor(1.5, dtype=F64))
    out.loss.backward()
    torch.testing.assert_close(logp.grad, t([[0.0, -1 / 3, -1 / 3], [0.0, -1.0, 0.0]]))
    # immediate returns + mean baseline: weights r - mean(r over mask) = r - 4/3
    out = reinforce_loss(logp, rewards, mask, returns="immediate", baseline="mean")
    torch.testing.assert_close(out.weights, t([[0.0, -4 / 3, -1 / 3], [0.0, 5 / 3, 0.0]]))
    # sequence reduction: mean over rows of row means of -(G·logp)
    out = reinforce_loss(logp, rewards, mask, reduction="sequence")
    torch.testing.assert_close(out.loss, torch.tensor((1.5 + 1.5) / 2, dtype=F64))
    tensor_baseline = t([[0.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    out = reinforce_loss(logp, rewards, mask, baseline=tensor_baseline, reduction="sum")
    torch.testing.assert_close(out.loss, torch.tensor((0.0 + 1.0) / 2, dtype=F64))


def test_ppo_clip_by_hand() -> None:
    old = t([[0.0, 0.0, 0.0]])
    logp = torch.log(t([[1.0, 1.5, 1.5]])).requires_grad_(True)
    adv = t([[0.0, 1.0, -1.0]])
    mask = torch.tensor([[0, 1, 1]], dtype=torch.bool)
    out = ppo_clip_loss(logp, old, adv, mask, clip_range=0.2)
    # token 1: min(1.5, 1.2) = 1.2 (clipped, no gradient); token 2: min(-1.5, -1.2) = -1.5
    torch.testing.assert_close(out.loss, torch.tensor(-(1.2 - 1.5) / 2, dtype=F64))
    out.loss.backward()
    torch.testing.assert_close(logp.grad, t([[0.0, 0.0, 0.75]]))  # d(1.5·e^x)/dx / 2


def test_kl_estimators_by_hand() -> None:
    logp, ref = torch.log(t([[0.5, 0.5]])), torch.log(t([[0.25, 0.5]]))
    mask = torch.tensor([[1, 0]], dtype=torch.bool)
    d = math.log(2.0)
    torch.testing.assert_close(kl_penalty(logp, ref, mask, estimator="k1"), t([[d, 0.0]]))
    torch.testing.assert_close(kl_penalty(logp, ref, mask, estimator="k2"), t([[d * d / 2, 0.0]]))
    torch.testing.assert_close(kl_penalty(logp, ref, mask, estimator="k3"), t([[0.5 - 1 + d, 0]]))
    # Expectations over π equal the true KL for k1 and k3 (two-outcome distribution).
    p, q = t([0.3, 0.7]), t([0.6, 0.4])
    true_kl = (p * (p / q).log()).sum()
    lp, lq = p.log()[None], q.log()[None]
    ones = torch.ones(1, 2, dtype=torch.bool)
    for est in ("k1", "k3"):
        torch.testing.assert_close((kl_penalty(lp, lq, ones, estimator=est) * p).sum(), true_kl)


def test_masked_statistics() -> None:
    x = t([[1.0, 2.0, 100.0], [3.0, 100.0, 100.0]])
    mask = torch.tensor([[1, 1, 0], [1, 0, 0]], dtype=torch.bool)
    torch.testing.assert_close(masked_mean(x, mask), torch.tensor(2.0, dtype=F64))
    torch.testing.assert_close(masked_mean(x, mask, dim=1), t([1.5, 3.0]))
    w = masked_whiten(x, mask)
    torch.testing.assert_close(masked_mean(w, mask), torch.tensor(0.0, dtype=F64))
    assert (w[~mask] == 0).all()


def test_wrong_shapes_and_masks_raise() -> None:
    r = t([[1.0, 2.0]])
    mask = torch.ones(1, 2, dtype=torch.bool)
    with pytest.raises(ValueError, match=r"mask's shape \(1, 2\)"):
        returns_to_go(t([[1.0, 2.0, 3.0]]), mask)
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        returns_to_go(r, mask[0])
    with pytest.raises(ValueError, match="only 0 and 1"):
        returns_to_go(r, torch.tensor([[0.5, 1.0]]))
    with pytest.raises(TypeError, match="floating"):
        reinforce_loss(r, torch.tensor([[1, 2]]), mask)
    with pytest.raises(ValueError, match="values must have"):
        gae_advantages(r, t([[1.0]]), mask)
    with pytest.raises(ValueError, match="returns must be"):
        reinforce_loss(r, r, mask, returns="monte-carlo")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="baseline must be"):
        reinforce_loss(r, r, mask, baseline="median")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="estimator"):
        kl_penalty(r, r, mask, estimator="k4")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="reduction"):
        reinforce_loss(r, r, mask, reduction="max")  # type: ignore[arg-type]
