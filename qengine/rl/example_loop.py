"""A plain REINFORCE loop with Q-RM token rewards - the recipe without any RL framework.

Run it: ``python -m qengine.rl.example_loop`` (CPU, about a minute; builds everything from
configs, downloads nothing). Each step:

1. sample one completion per prompt from the policy (:func:`qengine.rl.sample_completions`);
2. score every completion token with the Q-RM (:meth:`QRewardModel.token_rewards`, the authors'
   normalisation: EOS re-scored with the sequence mean, then divided by the batch std);
3. subtract a KL penalty against the frozen initial policy from the token rewards (k3);
4. REINFORCE on the policy's token log-probs (:func:`qengine.rl.reinforce_loss`, each token
   weighted by its own reward since Q-RM rewards already are Q-values).

Swap step 4 for PPO with :func:`qengine.rl.q_advantages` (``A = r - c·V``) or
:func:`qengine.rl.gae_advantages` and :func:`qengine.rl.ppo_clip_loss`.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import Any

import torch

from qengine.qrm import QRewardModel

from .losses import kl_penalty, reinforce_loss
from .policy import policy_token_logprobs, sample_completions

__all__ = ["reinforce_with_qrm"]


def reinforce_with_qrm(
    policy: Any,
    tokenizer: Any,
    qrm: QRewardModel,
    prompts: Sequence[str],
    *,
    steps: int = 10,
    batch_size: int = 8,
    learning_rate: float = 1e-4,
    kl_coef: float = 0.05,
    max_new_tokens: int = 16,
    seed: int = 0,
) -> list[dict[str, float]]:
    """Train ``policy`` in place; the Q-RM must share the policy's tokenizer (the ids are scored
    as sampled; re-tokenise with :class:`qengine.rl.QRMRewardFunction` otherwise).

    Returns one log row per step: loss, mean raw Q-RM reward (β·Z) of the sampled tokens, KL.
    """
    torch.manual_seed(seed)
    reference = copy.deepcopy(policy).eval()
    for p in reference.parameters():
        p.requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=learning_rate)
    log = []
    for step in range(steps):
        chunk = [prompts[(step * batch_size + i) % len(prompts)] for i in range(batch_size)]
        roll = sample_completions(policy, tokenizer, chunk, max_new_tokens=max_new_tokens)
        ids, att, mask = roll.input_ids, roll.attention_mask, roll.response_mask
        raw = qrm.token_rewards(ids, att, mask, normalize="none")
        rewards = qrm.token_rewards(ids, att, mask, normalize="std", eos_mean=True)
        policy.train()
        logprobs = policy_token_logprobs(policy, ids, att, mask)
        with torch.no_grad():
            ref_logprobs = policy_token_logprobs(reference, ids, att, mask)
        kl = kl_penalty(logprobs.detach(), ref_logprobs, mask, estimator="k3")
        out = reinforce_loss(logprobs, rewards - kl_coef * kl, mask, returns="immediate")
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        n = mask.sum().clamp_min(1)
        log.append(
            {
                "step": step,
                "loss": out.loss.item(),
                "qrm_reward": float(raw.sum() / n),
                "kl": float(kl.sum() / n),
            }
        )
    return log


def main() -> None:  # pragma: no cover - exercised by tests/rl through reinforce_with_qrm
    """A toy run: Q-RM trained to prefer completions that say "yes", then RL towards them."""
    from qengine.models.tiny import build_word_tokenizer, tiny_causal_lm
    from qengine.qrm import QRMTrainConfig, train_qrm

    words = "is the sky blue is grass green is snow white yes no maybe".split()
    tokenizer = build_word_tokenizer([" ".join(words)])
    prompts = ["is the sky blue ?", "is grass green ?", "is snow white ?"]
    records = [
        {"prompt": p, "chosen": "yes yes", "rejected": r, "task": str(i)}
        for i, p in enumerate(prompts * 20)
        for r in ("no no", "maybe no")
    ]
    qrm = QRewardModel(tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1, seed=1))
    train_qrm(qrm, tokenizer, records, config=QRMTrainConfig(learning_rate=3e-3, epochs=2))
    policy = tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1, seed=2)
    for row in reinforce_with_qrm(policy, tokenizer, qrm, prompts, steps=30, learning_rate=3e-3):
        print(row)


if __name__ == "__main__":  # pragma: no cover
    main()
