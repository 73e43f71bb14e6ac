"""RL glue for token-level rewards, plain PyTorch and framework-agnostic.

Legend: ``B`` sequences, ``T`` positions; every per-token tensor is [B, T] with a response mask.

- :mod:`.advantages`: returns-to-go, GAE, Q-RM advantages ``A = r - c·V`` and ``Q - E_π[Q]``,
  masked statistics;
- :mod:`.losses`: REINFORCE, PPO's clipped surrogate, the critic's value loss, KL penalty
  (k1 / k2 / k3);
- :mod:`.critic`: a value head on a causal LM (``V`` before each response token, for PPO);
- :mod:`.rewards`: an outcome reward on the last token, an oracle dense reward from a reference;
- :mod:`.policy`: sampling rollouts and the policy's token log-probs (fused kernel);
- :mod:`.trl_reward`: a Q-RM reward function for TRL's ``GRPOTrainer``;
- :mod:`.example_loop`: a runnable REINFORCE + Q-RM loop (the Q-RM vs ORM experiment is
  ``bench/qrm_vs_orm.py``).
"""

from .advantages import (
    check_rl_inputs,
    expected_q_advantages,
    gae_advantages,
    masked_mean,
    masked_whiten,
    q_advantages,
    returns_to_go,
)
from .critic import ValueCritic
from .losses import PGOutput, kl_penalty, ppo_clip_loss, reinforce_loss, value_loss
from .policy import Rollout, policy_token_logprobs, sample_completions
from .rewards import last_token_positions, last_token_rewards, prefix_match_rewards
from .trl_reward import QRMRewardFunction

__all__ = [
    "PGOutput",
    "QRMRewardFunction",
    "Rollout",
    "ValueCritic",
    "check_rl_inputs",
    "expected_q_advantages",
    "gae_advantages",
    "kl_penalty",
    "last_token_positions",
    "last_token_rewards",
    "masked_mean",
    "masked_whiten",
    "policy_token_logprobs",
    "ppo_clip_loss",
    "prefix_match_rewards",
    "q_advantages",
    "reinforce_loss",
    "returns_to_go",
    "sample_completions",
    "value_loss",
]
