"""PPO with Q-RM rewards, by hand: the critic's value alignment, the value loss (plain and
clipped), and one PPO step with ``A = r - c·V`` (the paper's c = 0.01)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from torch import nn

from qengine.rl import ValueCritic, ppo_clip_loss, q_advantages, value_loss

B = torch.bool
F64 = torch.float64


class _Body(nn.Module):
    """A 'decoder' whose hidden state at a position is a fixed row per token (no context)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(table, freeze=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(last_hidden_state=self.embed(input_ids))


class _StubLM(nn.Module):
    base_model_prefix = "model"

    def __init__(self) -> None:
        super().__init__()
        self.model = _Body(
            torch.tensor([[0.0, 0, 0], [math.log(2.0), 0, 0], [0, 0, math.log(3.0)]])
        )
        self.config = SimpleNamespace(hidden_size=3)


def test_value_loss_by_hand() -> None:
    values = torch.tensor([[9.0, 1.0, 2.0]], dtype=F64, requires_grad=True)
    returns = torch.tensor([[0.0, 2.0, 3.0]], dtype=F64)
    mask = torch.tensor([[0, 1, 1]], dtype=B)
    # ½ · mean((1 - 2)², (2 - 3)²) = ½; position 0 is off the mask.
    loss = value_loss(values, returns, mask)
    torch.testing.assert_close(loss, torch.tensor(0.5, dtype=F64))
    loss.backward()
    torch.testing.assert_close(values.grad, torch.tensor([[0.0, -0.5, -0.5]], dtype=F64))
    # Clipped to old ± 0.5 with old = 0: V' = 0.5 on both; max((1-2)², (0.5-2)²) = 2.25 and
    # max((2-3)², (0.5-3)²) = 6.25 → ½ · (2.25 + 6.25) / 2 = 2.125.
    old = torch.zeros(1, 3, dtype=F64)
    clipped = value_loss(values, returns, mask, old_values=old, clip_range=0.5)
    torch.testing.assert_close(clipped, torch.tensor(2.125, dtype=F64))


def test_critic_reads_the_state_before_each_token() -> None:
    # The stub's hidden state at a position is a fixed row per token:
    # token 0 -> (0, 0, 0), token 1 -> (ln 2, 0, 0), token 2 -> (0, 0, ln 3).
    critic = ValueCritic(_StubLM())
    with torch.no_grad():
        critic.head.weight.copy_(torch.tensor([[1.0, 2.0, 3.0]]))
        critic.head.bias.fill_(0.5)
    ln2, ln3 = math.log(2.0), math.log(3.0)
    # Right padding: prompt [1], response [2, 0]: V before token 2 is read at token 1 (ln 2 + ½),
    # V before token 0 at token 2 (3 ln 3 + ½); 0 off the response.
    v = critic(torch.tensor([[1, 2, 0, 0]]), torch.tensor([[1, 1, 1, 0]]),
               torch.tensor([[0, 1, 1, 0]], dtype=B))  # fmt: skip
    torch.testing.assert_close(v, torch.tensor([[0.0, ln2 + 0.5, 3 * ln3 + 0.5, 0.0]]))
    # Left padding: the same values move with the tokens.
    v = critic(torch.tensor([[0, 1, 2, 0]]), torch.tensor([[0, 1, 1, 1]]),
               torch.tensor([[0, 0, 1, 1]], dtype=B))  # fmt: skip
    torch.testing.assert_close(v, torch.tensor([[0.0, 0.0, ln2 + 0.5, 3 * ln3 + 0.5]]))
    v.sum().backward()  # differentiable into the head
    assert critic.head.weight.grad is not None


def test_ppo_step_with_q_advantages_by_hand() -> None:
    rewards = torch.tensor([[0.0, 2.0, -1.0, 0.5]], dtype=F64)
    values = torch.tensor([[7.0, 10.0, 50.0, -50.0]], dtype=F64)
    mask = torch.tensor([[0, 1, 1, 1]], dtype=B)
    adv, targets = q_advantages(rewards, values, mask, value_coef=0.01)
    # A = r - 0.01 V: 2 - 0.1 = 1.9, -1 - 0.5 = -1.5, 0.5 + 0.5 = 1.0; the critic's target is r.
    torch.testing.assert_close(adv, torch.tensor([[0.0, 1.9, -1.5, 1.0]], dtype=F64))
    torch.testing.assert_close(targets, rewards * mask)
    # First PPO pass: ratio 1 everywhere → loss = -mean(A) = -(1.9 - 1.5 + 1) / 3, and the
    # gradient on each token's log-prob is -A / 3.
    old = torch.log(torch.tensor([[1.0, 0.5, 0.5, 0.5]], dtype=F64))
    logp = old.clone().requires_grad_(True)
    out = ppo_clip_loss(logp, old, adv, mask, clip_range=0.2)
    torch.testing.assert_close(out.loss, torch.tensor(-1.4 / 3, dtype=F64))
    out.loss.backward()
    torch.testing.assert_close(logp.grad, -adv / 3)
    # Second pass after the policy moved: ratios (1.5, 1.5, 0.5). Token 1 (A > 0) is clipped at
    # 1.2 (no gradient); token 2 (A < 0) keeps 1.5 · -1.5 (the pessimistic term); token 3 (A > 0,
    # ratio 0.5 < 0.8) keeps 0.5 · 1 → loss = -(1.2·1.9 - 2.25 + 0.5) / 3.
    logp = (old + torch.log(torch.tensor([[1.0, 1.5, 1.5, 0.5]], dtype=F64))).requires_grad_(True)
    out = ppo_clip_loss(logp, old, adv, mask, clip_range=0.2)
    torch.testing.assert_close(out.loss, torch.tensor(-(1.2 * 1.9 - 2.25 + 0.5) / 3, dtype=F64))
    out.loss.backward()
    torch.testing.assert_close(
        logp.grad, torch.tensor([[0.0, 0.0, 1.5 * 1.5 / 3, -0.5 / 3]], dtype=F64)
    )
