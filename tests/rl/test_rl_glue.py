"""Each part of the token-reward RL glue against a hand-computed example: reward layouts (outcome on
the last token, oracle prefix match), eos re-scoring and normalisation, the REINFORCE weights of
both return modes, and the alignment of the policy's log-probs with the tokens they score under
either padding side. Expected values are written by hand in the comments."""

from __future__ import annotations

import math

import pytest
import torch
from stub_lm import TableBody
from torch import nn

from qengine.qrm import normalize_token_rewards
from qengine.rl import (
    last_token_positions,
    last_token_rewards,
    policy_token_logprobs,
    prefix_match_rewards,
    reinforce_loss,
)

B = torch.bool


def test_last_token_rewards_by_hand() -> None:
    # row 0: right-padded response at 1..2; row 1: left-padded, response at 2..3; row 2: empty.
    mask = torch.tensor([[0, 1, 1, 0], [0, 0, 1, 1], [0, 0, 0, 0]], dtype=B)
    assert last_token_positions(mask).tolist() == [2, 3, -1]
    r = last_token_rewards(mask, torch.tensor([1.0, 0.5, 7.0]))
    expected = torch.tensor([[0, 0, 1.0, 0], [0, 0, 0, 0.5], [0, 0, 0, 0]])
    torch.testing.assert_close(r, expected)
    with pytest.raises(ValueError, match=r"\[B\] tensor with B = 3"):
        last_token_rewards(mask, torch.ones(2))


def test_prefix_match_rewards_by_hand() -> None:
    # The reference of every row is [5, 6, 7] (e.g. "3 = 3" + eos).
    ids = torch.tensor(
        [
            [1, 5, 6, 7, 0],  # exact: +1 +1 +1
            [1, 5, 9, 7, 0],  # wrong second token: +1 -1, then 0 (lost)
            [1, 1, 5, 6, 0],  # left prompt of 2, stops early (no eos yet): +1 +1
            [1, 5, 6, 7, 7],  # runs past the reference: +1 +1 +1 -1
            [1, 2, 5, 3, 6],  # a gap at position 3 (not a response token) is skipped
        ]
    )
    mask = torch.tensor(
        [
            [0, 1, 1, 1, 0],
            [0, 1, 1, 1, 0],
            [0, 0, 1, 1, 0],
            [0, 1, 1, 1, 1],
            [0, 0, 1, 0, 1],
        ],
        dtype=B,
    )
    r = prefix_match_rewards(ids, mask, [[5, 6, 7]] * 5)
    expected = torch.tensor(
        [
            [0, 1.0, 1, 1, 0],
            [0, 1.0, -1, 0, 0],
            [0, 0, 1.0, 1, 0],
            [0, 1.0, 1, 1, -1],
            [0, 0, 1.0, 0, 1],
        ]
    )
    torch.testing.assert_close(r, expected)
    scaled = prefix_match_rewards(ids[:2], mask[:2], [[5, 6, 7]] * 2, right=0.5, wrong=-2.0)
    torch.testing.assert_close(scaled, torch.tensor([[0, 0.5, 0.5, 0.5, 0], [0, 0.5, -2, 0, 0]]))
    with pytest.raises(ValueError, match="1 references for 5 rows"):
        prefix_match_rewards(ids, mask, [[5]])


def test_eos_rescoring_then_normalisation_by_hand() -> None:
    # Oracle rewards of two rows; the last response token of each row is its eos.
    raw = torch.tensor([[0, 1.0, 1, 1], [0, 1.0, -1, 0]])
    mask = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 1]], dtype=B)
    # eos_mean: row 0's eos gets mean(1, 1, 1) = 1, row 1's gets mean(1, -1, 0) = 0.
    none = normalize_token_rewards(raw, mask, normalize="none", eos_mean=True)
    torch.testing.assert_close(none, torch.tensor([[0, 1.0, 1, 1], [0, 1.0, -1, 0]]))
    # Six rewards {1, 1, 1, 1, -1, 0}: mean 1/2, population variance (4·1/4 + 9/4 + 1/4)/6 = 7/12.
    std = math.sqrt(7 / 12)
    got = normalize_token_rewards(raw, mask, normalize="std", eos_mean=True)
    torch.testing.assert_close(got, none / std)  # the sign of every token is kept
    got = normalize_token_rewards(raw, mask, normalize="mean_std", eos_mean=True)
    torch.testing.assert_close(got, (none - 0.5) / std * mask)


def test_reinforce_weights_for_dense_and_outcome_rewards_by_hand() -> None:
    mask = torch.tensor([[0, 1, 1, 1], [0, 1, 1, 0]], dtype=B)
    logp = torch.log(torch.tensor([[1.0, 0.5, 0.25, 0.5], [1.0, 0.5, 0.5, 1.0]]))
    logp.requires_grad_(True)
    # Dense (Q-RM / oracle): each token weighted by its own reward, no baseline.
    dense = torch.tensor([[0, 2.0, -1, 1], [0, 1.0, 1, 0]])
    out = reinforce_loss(logp, dense, mask, returns="immediate")
    torch.testing.assert_close(out.weights, dense)
    # loss = -(2·ln½ - ln¼ + ln½ + ln½ + ln½) / 5 = -(5 ln½ + 2 ln2)/5 = 3 ln2 / 5
    torch.testing.assert_close(out.loss, torch.tensor(3 * math.log(2) / 5))
    out.loss.backward()
    # d loss / d logp = -weight / 5 on every response token: the sign follows the reward.
    torch.testing.assert_close(logp.grad, -dense / 5)
    # Outcome (ORM): 1 on row 0's last token, 0 on row 1's; reward-to-go gives every token of a
    # row its outcome; the mean baseline over the 5 response tokens is 3/5.
    outcome = last_token_rewards(mask, torch.tensor([1.0, 0.0]))
    out = reinforce_loss(logp, outcome, mask, returns="reward_to_go", baseline="mean")
    torch.testing.assert_close(out.weights, torch.tensor([[0, 0.4, 0.4, 0.4], [0, -0.6, -0.6, 0]]))


class _StubLM(nn.Module):
    """logits at position t = table[input_ids[t]] (identity LM head): hand-computable."""

    base_model_prefix = "model"

    def __init__(self) -> None:
        super().__init__()
        ln2, ln3 = math.log(2.0), math.log(3.0)
        # token 0 -> uniform (1/3 each); token 1 -> (2/4, 1/4, 1/4); token 2 -> (1/5, 1/5, 3/5)
        self.model = TableBody(torch.tensor([[0.0, 0, 0], [ln2, 0, 0], [0, 0, ln3]]))
        self.head = nn.Linear(3, 3, bias=False)
        with torch.no_grad():
            self.head.weight.copy_(torch.eye(3))

    def get_output_embeddings(self) -> nn.Linear:
        return self.head


def test_policy_logprobs_align_with_the_tokens_they_score() -> None:
    model = _StubLM()
    # Right padding: prompt [1], response [2, 0], one pad. π(2 | ..1) = 1/4, π(0 | ..2) = 1/5.
    right = policy_token_logprobs(
        model,
        torch.tensor([[1, 2, 0, 0]]),
        torch.tensor([[1, 1, 1, 0]]),
        torch.tensor([[0, 1, 1, 0]], dtype=B),
    )
    torch.testing.assert_close(right, torch.tensor([[0, math.log(1 / 4), math.log(1 / 5), 0]]))
    # Left padding of the same sequence shifts the values with the tokens.
    left = policy_token_logprobs(
        model,
        torch.tensor([[0, 1, 2, 0]]),
        torch.tensor([[0, 1, 1, 1]]),
        torch.tensor([[0, 0, 1, 1]], dtype=B),
    )
    torch.testing.assert_close(left, torch.tensor([[0, 0, math.log(1 / 4), math.log(1 / 5)]]))
    # Two rows of different lengths: row-major packing must not mix them up.
    both = policy_token_logprobs(
        model,
        torch.tensor([[2, 2, 1, 0], [1, 1, 0, 0]]),
        torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]]),
        torch.tensor([[0, 1, 1, 1], [0, 1, 0, 0]], dtype=B),
    )
    # row 0: π(2|2) = 3/5, π(1|2) = 1/5, π(0|1) = 2/4; row 1: π(1|1) = 1/4
    expected = torch.tensor([[0, math.log(3 / 5), math.log(1 / 5), math.log(1 / 2)],
                             [0, math.log(1 / 4), 0, 0]])  # fmt: skip
    torch.testing.assert_close(both, expected)
    # Temperature divides the logits: token 1 at T=2 gives (√2, 1, 1)/(√2 + 2) for π(· | 1).
    hot = policy_token_logprobs(
        model, torch.tensor([[1, 0]]), torch.tensor([[1, 1]]), torch.tensor([[0, 1]], dtype=B),
        temperature=2.0,
    )  # fmt: skip
    torch.testing.assert_close(hot[0, 1], torch.tensor(math.log(math.sqrt(2) / (math.sqrt(2) + 2))))
