"""PPO with Q-RM rewards, by hand: the critic's value alignment, the value loss (plain and
clipped), and one PPO step with ``A = r - c·V`` (the paper's c = 0.01)."""

from __future__ import annotations

import math
from types import SimpleNamespace

import torch
from stub_lm import TableBody
from torch import nn

from qengine.rl import (
    ValueCritic,
    expected_q_advantages,
    ppo_clip_loss,
    q_advantages,
    value_loss,
)

B = torch.bool
F64 = torch.float64


class _StubLM(nn.Module):
    base_model_prefix = "model"

    def __init__(self) -> None:
        super().__init__()
        self.model = TableBody(
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


def test_expected_q_advantages_by_hand() -> None:
    # Vocabulary of 2; one row, response at positions 1 and 2 (position 0 is the prompt).
    q_all = torch.tensor([[[9.0, 9.0], [1.0, 3.0], [2.0, -2.0]]], dtype=F64)
    # π at position 1: (1/4, 3/4) → V = 1/4 + 9/4 = 5/2; at position 2: (1/2, 1/2) → V = 0.
    logits = torch.log(torch.tensor([[[0.5, 0.5], [0.25, 0.75], [0.5, 0.5]]], dtype=F64))
    ids = torch.tensor([[0, 1, 0]])
    mask = torch.tensor([[0, 1, 1]], dtype=B)
    adv = expected_q_advantages(q_all, logits, ids, mask)
    # Token 1 at position 1: 3 - 5/2 = 1/2; token 0 at position 2: 2 - 0 = 2; 0 off the mask.
    torch.testing.assert_close(adv, torch.tensor([[0.0, 0.5, 2.0]], dtype=F64))
    # A per-state offset of Q changes nothing; E_π[A] = 0 in every state.
    shifted = q_all + torch.tensor([100.0, -7.0, 3.0], dtype=F64)[None, :, None]
    torch.testing.assert_close(expected_q_advantages(shifted, logits, ids, mask), adv)
    for t in (1, 2):
        expected = sum(
            torch.softmax(logits[0, t], -1)[a]
            * expected_q_advantages(q_all, logits, torch.tensor([[a, a, a]]), mask)[0, t]
            for a in (0, 1)
        )
        torch.testing.assert_close(expected, torch.tensor(0.0, dtype=F64))


def test_lm_head_q_rows_match_the_token_rewards() -> None:
    """The candidate rows an LM-head Q-RM gives (logits at t - 1, times β) hold, at the sampled
    token, exactly the raw reward ``token_rewards`` gives that token."""
    from qengine.models import build_word_tokenizer, tiny_causal_lm
    from qengine.qrm import QRewardModel
    from qengine.train import encode_completions

    tok = build_word_tokenizer(["one two three plus is answer ?"], vocab_size=32)
    qrm = QRewardModel(tiny_causal_lm(tok, hidden_size=16, num_layers=1, seed=3), head="lm")
    batch = encode_completions(tok, ["one plus two is ?", "two ?"], ["three", "answer one two"])
    ids, att, mask = batch.input_ids, batch.attention_mask, batch.completion_mask
    raw = qrm.token_rewards(ids, att, mask, normalize="none")
    with torch.no_grad():
        z = qrm.model(input_ids=ids, attention_mask=att).logits.float()
    q_all = torch.zeros_like(z)
    q_all[:, 1:] = qrm.beta * z[:, :-1]
    taken = q_all.gather(-1, ids.unsqueeze(-1)).squeeze(-1) * mask
    torch.testing.assert_close(taken, raw, rtol=1e-5, atol=1e-5)
