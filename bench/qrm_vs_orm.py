"""RL with Q-RM token rewards vs an outcome reward (ORM) vs an oracle dense reward, on arithmetic
word problems (``bench/arith_task.py``), all on CPU with a tiny word-level Llama.

Per seed:

1. SFT: teacher-forced on gold solutions (a weak but non-zero policy);
2. Q-RM data (the paper's recipe where the setting allows): gold solutions against corrupted ones
   (one wrong number or operator, then consistent steps: the pair shares a prefix up to the wrong
   token), gold against malformed ones (``task.corrupt_format``), plus (right, wrong) pairs of the
   SFT policy's own samples; held-out split by problem;
3. two Q-RMs on copies of the SFT policy (value head, the authors' default; LM head), trained with
   the pairwise mean-Z loss, then probed (fresh pairs, token statistics on the policy's samples,
   which token they prefer where a sample first goes wrong, rewards of degenerate outputs);
4. RL from the same SFT policy, same prompt stream, same optimiser and KL penalty (k3, to the
   frozen SFT policy), one method at a time:
   - ``orm``: 1 / 0 on the last response token (final answer right / wrong), reward-to-go,
     batch-mean baseline;
   - ``qrm``: REINFORCE, token rewards β·Z of the value-head Q-RM, the eos re-scored with the row
     mean, divided by the batch std (``normalize``), each token weighted by its own reward (the
     authors' REINFORCE);
   - ``qrm_ppo``: PPO with ``A = r - 0.01·V`` (``q_advantages``), a critic fitted to r;
   - ``qrm_lm``: ``qrm`` with the LM-head Q-RM; ``qrm_lm_centred``: its β·Z minus the expectation
     under the policy in the same state (``expected_q_advantages``); ``qrm_lm_strong``: that with
     an LM-head Q-RM on a trunk trained ``qrm_trunk_sft_steps`` more (a stronger verifier);
   - ``oracle``: the control for the glue: +1 on tokens extending a prefix of the gold solution,
     -1 on the first wrong token, 0 after it (``qengine.rl.prefix_match_rewards``), through exactly
     the ``qrm`` path (same eos re-scoring, normalisation and loss). If it does not beat ``orm``,
     the loop is broken, whatever the reward model; ``oracle_blame``: -1 on every token from the
     first error on (the credit a Q-RM trained on corrupted continuations gives after an error);
   greedy accuracy on held-out problems every ``eval_every`` steps; score = RL steps until it
   reaches the target (SFT accuracy + ``target_gain``).

Writes ``bench/results/qrm_vs_orm.{json,md,png}`` (machine, settings, per-seed curves, steps to
target, speed-ups, reward statistics, wall times). Seeds run in parallel processes (``--jobs``,
one torch thread each). ``--quick`` is a short smoke run (CI runs it in a test).

Usage: python bench/qrm_vs_orm.py [--quick] [--seeds 0,1,2] [--methods orm,qrm,...,oracle]
                                  [--jobs 3] [--set KEY=VALUE ...] [--json PATH] [--md PATH]
                                  [--png PATH] [--no-progress] [--report JSON]
"""

from __future__ import annotations

import argparse
import copy
import dataclasses
import json
import math
import os
import platform
import random
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))

import arith_task as task
from machine_info import machine

from qengine.qrm import (
    QRewardModel,
    QRMTrainConfig,
    evaluate_qrm,
    normalize_token_rewards,
    train_qrm,
)
from qengine.rl import (
    ValueCritic,
    expected_q_advantages,
    kl_penalty,
    last_token_rewards,
    masked_mean,
    policy_token_logprobs,
    ppo_clip_loss,
    prefix_match_rewards,
    q_advantages,
    reinforce_loss,
    sample_completions,
    value_loss,
)
from qengine.train.tokenize import encode_completions

RESULTS = Path(__file__).resolve().parent / "results"
METHODS = (
    "orm", "qrm", "qrm_ppo", "qrm_lm", "qrm_lm_centred", "qrm_lm_strong", "oracle", "oracle_blame",
)  # fmt: skip
# The Q-RM head each method's rewards come from (value head: the authors' default).
# ("_strong": on a trunk trained ``qrm_trunk_sft_steps`` more SFT steps than the policy).
QRM_HEAD = {
    "qrm": "value", "qrm_ppo": "value", "qrm_lm": "lm", "qrm_lm_centred": "lm",
    "qrm_lm_strong": "lm_strong",
}  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class Config:
    """The experiment's knobs (the full run; :data:`QUICK` shrinks them)."""

    hidden_size: int = 64
    num_layers: int = 2
    sft_steps: int = 160
    sft_batch: int = 32
    sft_lr: float = 3e-3
    qrm_gold_prompts: int = 192  # problems with gold-vs-corrupted pairs
    qrm_corruptions: int = 2  # corrupted solutions per such problem (a wrong number / operator)
    qrm_format_corruptions: int = 1  # malformed solutions per such problem (task.corrupt_format)
    qrm_sample_prompts: int = 64  # problems with (right, wrong) pairs of SFT samples
    qrm_samples: int = 4
    qrm_epochs: int = 2
    qrm_trunk_sft_steps: int = 320  # the "_strong" Q-RM: the SFT policy trained this much more
    qrm_lr: float = 1e-3
    normalize: Literal["std", "mean_std", "none"] = "std"  # mean_std: see docs/qrm.md
    rl_steps: int = 40
    rl_batch: int = 32
    rl_lr: float = 1e-4  # at 3e-4 ORM and Q-RM fell within 4 steps on every seed (docs/qrm.md)
    kl_coef: float = 0.05
    ppo_epochs: int = 2  # PPO passes over each batch of rollouts (qrm_ppo)
    ppo_clip: float = 0.2
    ppo_value_coef: float = 0.01  # A = r - c·V, the paper's c
    critic_lr: float = 1e-3
    eval_every: int = 4
    eval_problems: int = 192
    target_gain: float = 0.10
    max_new_tokens: int = 20
    probe_pairs: int = 128  # fresh gold-vs-corrupted pairs of unseen problems (Q-RM probe)


QUICK = Config(
    hidden_size=32, num_layers=1, sft_steps=20, sft_batch=16, qrm_gold_prompts=16,
    qrm_corruptions=1, qrm_sample_prompts=4, qrm_samples=2, qrm_epochs=1, rl_steps=2, rl_batch=8,
    eval_every=2, eval_problems=8, max_new_tokens=12, probe_pairs=8, qrm_trunk_sft_steps=4,
)  # fmt: skip


def run_machine() -> dict[str, Any]:
    """The machine record plus library versions and torch threads of this run."""
    import transformers

    return machine(
        name=platform.node(),
        torch=torch.__version__,
        transformers=transformers.__version__,
        torch_threads=torch.get_num_threads(),
    )


# ------------------------------------------------------------------------------------ stages
@torch.no_grad()
def accuracy(model: Any, tokenizer: Any, problems: list[task.ArithProblem], max_new: int) -> float:
    """Greedy held-out accuracy (final answer right)."""
    prompts = [p.prompt for p in problems]
    out = sample_completions(model, tokenizer, prompts, max_new_tokens=max_new, do_sample=False)
    pairs = zip(out.completions, problems, strict=True)
    right = sum(task.answer_of(c) == p.answer for c, p in pairs)
    return right / len(problems)


@torch.no_grad()
def gold_logprob(model: Any, tokenizer: Any, problems: list[task.ArithProblem]) -> float:
    """Mean log π per token of the gold solutions (+ eos): a smooth companion of the accuracy."""
    batch = encode_completions(
        tokenizer, [p.prompt for p in problems], [p.solution for p in problems], max_length=64
    )
    was_training = model.training
    model.eval()
    lp = policy_token_logprobs(model, batch.input_ids, batch.attention_mask, batch.completion_mask)
    model.train(was_training)
    return float(lp.sum() / batch.completion_mask.sum())


def sft(
    model: Any, tokenizer: Any, cfg: Config, seed: int, *, steps: int | None = None,
    stream_seed: int | None = None,
) -> list[float]:  # fmt: skip
    """Teacher forcing on gold solutions (``cfg.sft_steps`` steps on the problems of ``seed + 1``
    unless given); returns the per-step losses."""
    steps = cfg.sft_steps if steps is None else steps
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.sft_lr)
    stream = task.generate_problems(
        steps * cfg.sft_batch, seed + 1 if stream_seed is None else stream_seed
    )
    losses = []
    model.train()
    for step in range(steps):
        chunk = stream[step * cfg.sft_batch : (step + 1) * cfg.sft_batch]
        batch = encode_completions(
            tokenizer, [p.prompt for p in chunk], [p.solution for p in chunk], max_length=64
        )
        lp = policy_token_logprobs(
            model, batch.input_ids, batch.attention_mask, batch.completion_mask
        )
        loss = -(lp.sum() / batch.completion_mask.sum())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return losses


def qrm_records(model: Any, tokenizer: Any, cfg: Config, seed: int) -> tuple[list[dict], dict]:
    """Gold-vs-corrupted pairs + (right, wrong) pairs of SFT samples; returns (records, stats)."""
    rng = random.Random(seed)
    records, format_pairs = [], 0
    gold = task.generate_problems(cfg.qrm_gold_prompts, seed + 2)
    for i, p in enumerate(gold):
        for _ in range(cfg.qrm_corruptions):
            records.append(
                {"prompt": p.prompt, "chosen": p.solution, "rejected": task.corrupt(p, rng),
                 "task": f"g{i}"}
            )  # fmt: skip
        for _ in range(cfg.qrm_format_corruptions):
            records.append(
                {"prompt": p.prompt, "chosen": p.solution,
                 "rejected": task.corrupt_format(p, rng), "task": f"g{i}"}
            )  # fmt: skip
            format_pairs += 1
    sampled = task.generate_problems(cfg.qrm_sample_prompts, seed + 6)
    prompts = [p.prompt for p in sampled for _ in range(cfg.qrm_samples)]
    out = sample_completions(model, tokenizer, prompts, max_new_tokens=cfg.max_new_tokens)
    right_total, sample_pairs = 0, 0
    for i, p in enumerate(sampled):
        done = out.completions[i * cfg.qrm_samples : (i + 1) * cfg.qrm_samples]
        right = [c for c in done if task.answer_of(c) == p.answer]
        wrong = [c for c in done if task.answer_of(c) != p.answer]
        right_total += len(right)
        for w in wrong:
            chosen = rng.choice(right) if right else p.solution
            records.append({"prompt": p.prompt, "chosen": chosen, "rejected": w, "task": f"s{i}"})
            sample_pairs += 1
    stats = {
        "gold_corrupted_pairs": len(records) - sample_pairs - format_pairs,
        "gold_format_pairs": format_pairs,
        "sample_pairs": sample_pairs,
        "sft_sample_accuracy": right_total / max(1, len(prompts)),
    }
    return records, stats


def method_rewards(
    method: str,
    roll: Any,
    gold: list[list[int]],
    correct: torch.Tensor,
    qrm: QRewardModel | None,
    cfg: Config,
    policy: Any = None,
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """[B, T] token rewards of one method and the raw (unnormalised) ones of a Q-RM.

    - ``orm``: the outcome on the last response token;
    - ``qrm`` / ``qrm_lm`` (REINFORCE): β·Z, eos re-scored with the row mean, then Z / std over the
      batch (``cfg.normalize``); ``qrm_ppo``: β·Z / std (no eos re-scoring: that is the authors'
      REINFORCE variant);
    - ``qrm_lm_centred`` / ``qrm_lm_strong``: as ``qrm_lm`` with each token's β·Z minus its
      expectation under the policy in that state (``expected_q_advantages``: the LM head scores
      every candidate token);
    - ``oracle``: ``prefix_match_rewards`` against the gold solution, through the REINFORCE Q-RM
      path (same eos re-scoring and normalisation); ``oracle_blame``: -1 from the first error on.
    """
    ids, att, mask = roll.input_ids, roll.attention_mask, roll.response_mask
    if method == "orm":
        return last_token_rewards(mask, correct), None
    if method in QRM_HEAD:
        if qrm is None:
            raise ValueError(f"method {method!r} needs a trained Q-RM")
        if method in ("qrm_lm_centred", "qrm_lm_strong"):
            raw = centred_q(qrm, policy, ids, att, mask)
        else:
            raw = qrm.token_rewards(ids, att, mask, normalize="none")
        eos_mean = method != "qrm_ppo"
        return normalize_token_rewards(raw, mask, normalize=cfg.normalize, eos_mean=eos_mean), raw
    if method in ("oracle", "oracle_blame"):
        raw = prefix_match_rewards(ids, mask, gold)
        if method == "oracle_blame":  # -1 on every token from the first error on
            raw = torch.where(mask.bool() & ((raw < 0).cumsum(1) > 0), -1.0, raw)
        return normalize_token_rewards(raw, mask, normalize=cfg.normalize, eos_mean=True), None
    raise ValueError(f"method must be one of {METHODS}, got {method!r}")


@torch.no_grad()
def centred_q(
    qrm: QRewardModel, policy: Any, ids: torch.Tensor, att: torch.Tensor, mask: torch.Tensor
) -> torch.Tensor:
    """β·Z(s_t, a_t) - Σ_a π(a | s_t) β·Z(s_t, a) of an LM-head Q-RM → [B, T] (the logits at t - 1
    score the candidates of position t)."""
    z = qrm.model(input_ids=ids, attention_mask=att).logits.float()
    logits = policy(input_ids=ids, attention_mask=att).logits.float()
    q_all, pi_all = torch.zeros_like(z), torch.zeros_like(logits)
    q_all[:, 1:], pi_all[:, 1:] = qrm.beta * z[:, :-1], logits[:, :-1]
    return expected_q_advantages(q_all, pi_all, ids, mask)


def reward_stats(
    raw: torch.Tensor, rewards: torch.Tensor, oracle: torch.Tensor, mask: torch.Tensor,
    correct: torch.Tensor,
) -> dict[str, float]:  # fmt: skip
    """Per-token statistics of a Q-RM's rewards on one RL batch: raw β·Z and normalised mean / std,
    the raw mean on tokens the oracle credits (+1: on a gold prefix), blames (-1: the first wrong
    token) or ignores (after an error), the AUC of credited vs blamed tokens (0.5: blind), and the
    raw row mean of right vs wrong completions."""
    m = mask.bool()

    def mean(x: torch.Tensor) -> float | None:
        return float(x.mean()) if x.numel() else None

    pos, neg = raw[m & (oracle > 0)], raw[m & (oracle < 0)]
    auc = None
    if pos.numel() and neg.numel():
        diff = pos[:, None] - neg[None, :]
        auc = float(((diff > 0).float() + 0.5 * (diff == 0).float()).mean())
    rows = raw.sum(1) / m.sum(1).clamp_min(1)
    right = correct.bool()
    return {
        "raw_mean": float(raw[m].mean()), "raw_std": float(raw[m].std(unbiased=False)),
        "norm_mean": float(rewards[m].mean()), "norm_std": float(rewards[m].std(unbiased=False)),
        "raw_on_gold_prefix": mean(pos), "raw_on_first_error": mean(neg),
        "raw_after_error": mean(raw[m & (oracle == 0)]), "token_auc": auc,
        "row_mean_right": mean(rows[right]), "row_mean_wrong": mean(rows[~right]),
        "response_tokens": float(m.sum(1).float().mean()),
    }  # fmt: skip


def rl(
    method: str,
    policy: Any,
    qrm: QRewardModel | None,
    tokenizer: Any,
    cfg: Config,
    seed: int,
    target: float,
    log: Any,
) -> dict[str, Any]:
    """RL from the SFT policy (trained in place) with one method, the same prompt stream and
    optimiser; a KL penalty (k3) to the frozen SFT policy in every loss. REINFORCE for all but
    ``qrm_ppo``: PPO (clipped, ``ppo_epochs`` passes per batch) with ``A = r - c·V`` from a critic
    (a copy of the SFT trunk with a value head, fitted to r). Runs all ``rl_steps`` (the curve is
    the result; steps to target is read from it)."""
    torch.manual_seed(seed + 3)
    reference = copy.deepcopy(policy).eval().requires_grad_(False)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.rl_lr, weight_decay=0.0)
    critic = critic_opt = None
    if method == "qrm_ppo":
        critic = ValueCritic(copy.deepcopy(policy))
        critic_opt = torch.optim.AdamW(critic.parameters(), lr=cfg.critic_lr, weight_decay=0.0)
    stream = task.generate_problems(cfg.rl_steps * cfg.rl_batch, seed + 4)
    held_out = task.generate_problems(cfg.eval_problems, seed + 5)
    curve = [(0, accuracy(policy, tokenizer, held_out, cfg.max_new_tokens))]
    gold_curve = [(0, gold_logprob(policy, tokenizer, held_out))]
    sample_acc, losses, kls, stats, value_losses = [], [], [], [], []
    start = time.perf_counter()
    for step in range(1, cfg.rl_steps + 1):
        chunk = stream[(step - 1) * cfg.rl_batch : step * cfg.rl_batch]
        roll = sample_completions(
            policy, tokenizer, [p.prompt for p in chunk], max_new_tokens=cfg.max_new_tokens
        )
        correct = torch.tensor(
            [task.answer_of(c) == p.answer for c, p in zip(roll.completions, chunk, strict=True)],
            dtype=torch.float32,
        )
        gold = [
            tokenizer(p.solution, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            for p in chunk
        ]
        rewards, raw = method_rewards(method, roll, gold, correct, qrm, cfg, policy)
        ids, att, mask = roll.input_ids, roll.attention_mask, roll.response_mask
        if raw is not None:
            stats.append(
                reward_stats(raw, rewards, prefix_match_rewards(ids, mask, gold), mask, correct)
            )
        policy.train()
        with torch.no_grad():
            ref_lp = policy_token_logprobs(reference, ids, att, mask)
        if critic is None:
            options = (
                {"returns": "reward_to_go", "baseline": "mean"} if method == "orm"
                else {"returns": "immediate", "baseline": None}
            )  # fmt: skip
            lp = policy_token_logprobs(policy, ids, att, mask)
            loss = reinforce_loss(lp, rewards, mask, **options).loss
            kl = masked_mean(kl_penalty(lp, ref_lp, mask, estimator="k3"), mask)
            opt.zero_grad(set_to_none=True)
            (loss + cfg.kl_coef * kl).backward()
            torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
            opt.step()
        else:
            with torch.no_grad():
                old_lp = policy_token_logprobs(policy, ids, att, mask)
                values = critic(ids, att, mask)
            adv, targets = q_advantages(rewards, values, mask, value_coef=cfg.ppo_value_coef)
            for _ in range(cfg.ppo_epochs):
                lp = policy_token_logprobs(policy, ids, att, mask)
                loss = ppo_clip_loss(lp, old_lp, adv, mask, clip_range=cfg.ppo_clip).loss
                kl = masked_mean(kl_penalty(lp, ref_lp, mask, estimator="k3"), mask)
                opt.zero_grad(set_to_none=True)
                (loss + cfg.kl_coef * kl).backward()
                torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
                opt.step()
                v_loss = value_loss(critic(ids, att, mask), targets, mask)
                critic_opt.zero_grad(set_to_none=True)
                v_loss.backward()
                torch.nn.utils.clip_grad_norm_(critic.parameters(), 1.0)
                critic_opt.step()
            value_losses.append(v_loss.item())
        sample_acc.append(float(correct.mean()))
        losses.append(loss.item())
        kls.append(kl.item())
        if step % cfg.eval_every == 0 or step == cfg.rl_steps:
            acc = accuracy(policy, tokenizer, held_out, cfg.max_new_tokens)
            curve.append((step, acc))
            gold_curve.append((step, gold_logprob(policy, tokenizer, held_out)))
            extra = ""
            if stats:
                st = stats[-1]
                extra = (f", raw β·Z {st['raw_mean']:+.2f}±{st['raw_std']:.2f}, "
                         f"token AUC {fmt_opt(st['token_auc'])}")  # fmt: skip
            log(f"{method} step {step}: held-out {acc:.3f}, gold log-prob {gold_curve[-1][1]:.3f}, "
                f"samples {correct.mean():.2f}, kl {kl.item():.3f}{extra}")  # fmt: skip
    final = sample_completions(
        policy, tokenizer, [p.prompt for p in held_out[:4]], max_new_tokens=cfg.max_new_tokens,
        do_sample=False,
    )  # fmt: skip
    out = {
        "steps_to_target": steps_to(curve, target),
        "final_accuracy": curve[-1][1],
        "best_accuracy": max(a for _, a in curve),
        "curve": curve,
        "gold_logprob_curve": gold_curve,
        "train_sample_accuracy": sample_acc,
        "losses": losses,
        "kl": kls,
        "final_greedy_examples": final.completions,
        "seconds": time.perf_counter() - start,
    }
    if stats:
        out["reward_stats"] = stats
    if value_losses:
        out["value_losses"] = value_losses
    return out


def fmt_opt(x: float | None) -> str:
    return "—" if x is None else f"{x:.2f}"


def steps_to(curve: list[tuple[int, float]], target: float) -> int | None:
    """First evaluated step whose accuracy reaches ``target`` (None: never)."""
    return next((s for s, a in curve if a >= target), None)


DEGENERATE = {  # completions a reward hacker might find; {a} = the right answer
    "gold": None,
    "eos only": "",
    "answer only": "answer {a}",
    "repeated word": "answer answer answer answer answer answer",
    "repeated =": "= = = = = = = =",
    "gold twice": "{gold} . {gold}",
}


@torch.no_grad()
def qrm_probe(qrm: QRewardModel, tokenizer: Any, policy: Any, cfg: Config, seed: int) -> dict:
    """What the trained Q-RM rewards: pair accuracy on fresh gold-vs-corrupted pairs of unseen
    problems, token statistics on SFT samples (against the oracle's labels), and the mean raw
    β·Z per token of degenerate completions vs the gold one."""
    rng = random.Random(seed + 7)
    fresh = task.generate_problems(cfg.probe_pairs, seed + 8)
    records = [{"prompt": p.prompt, "chosen": p.solution, "rejected": task.corrupt(p, rng)}
               for p in fresh]  # fmt: skip
    pair = evaluate_qrm(qrm, tokenizer, records, batch_size=32, max_length=64)
    probs = task.generate_problems(cfg.rl_batch * 2, seed + 9)
    roll = sample_completions(
        policy, tokenizer, [p.prompt for p in probs], max_new_tokens=cfg.max_new_tokens
    )
    ids, att, mask = roll.input_ids, roll.attention_mask, roll.response_mask
    raw = qrm.token_rewards(ids, att, mask, normalize="none")
    gold = [tokenizer(p.solution, add_special_tokens=False)["input_ids"] + [tokenizer.eos_token_id]
            for p in probs]  # fmt: skip
    correct = torch.tensor(
        [task.answer_of(c) == p.answer for c, p in zip(roll.completions, probs, strict=True)]
    )
    oracle = prefix_match_rewards(ids, mask, gold)
    sample = reward_stats(raw, raw, oracle, mask, correct)
    sample["first_error"] = first_error_preference(qrm, policy, ids, att, mask, oracle, gold)
    degenerate = {}
    for p in fresh[:8]:
        texts = [p.solution if t is None else t.format(a=p.answer, gold=p.solution)
                 for t in DEGENERATE.values()]  # fmt: skip
        b = encode_completions(tokenizer, [p.prompt] * len(texts), texts, max_length=64)
        r = qrm.token_rewards(b.input_ids, b.attention_mask, b.completion_mask, normalize="none")
        per_row = r.sum(1) / b.completion_mask.sum(1)
        for name, v in zip(DEGENERATE, per_row.tolist(), strict=True):
            degenerate.setdefault(name, []).append(v)
    return {
        "fresh_pair_accuracy": pair["accuracy"],
        "fresh_pair_margin": pair["margin"],
        "fresh_pairs": pair["pairs"],
        "sft_samples": sample,
        "degenerate_mean_reward": {k: sum(v) / len(v) for k, v in degenerate.items()},
    }


@torch.no_grad()
def first_error_preference(
    qrm: QRewardModel,
    policy: Any,
    ids: torch.Tensor,
    att: torch.Tensor,
    mask: torch.Tensor,
    oracle: torch.Tensor,
    gold: list[list[int]],
) -> dict[str, float | int]:
    """Where a sample first leaves the gold solution (state s, sampled token w, gold token g): the
    share of such states where the Q-RM scores g above w, next to the share where the policy itself
    gives g a higher probability than w. A token reward adds information only where the Q-RM
    knows better than the policy."""
    rows, cols = torch.nonzero(mask.bool() & (oracle < 0), as_tuple=True)
    keep = [(int(b), int(t)) for b, t in zip(rows, cols, strict=True)
            if int(mask[b, :t].sum()) < len(gold[b])]  # fmt: skip
    if not keep:
        return {"states": 0, "qrm_prefers_gold": None, "policy_prefers_gold": None}
    swapped = ids.clone()
    for b, t in keep:
        swapped[b, t] = gold[b][int(mask[b, :t].sum())]
    q0 = qrm.token_rewards(ids, att, mask, normalize="none")
    q1 = qrm.token_rewards(swapped, att, mask, normalize="none")
    p0 = policy_token_logprobs(policy, ids, att, mask)
    p1 = policy_token_logprobs(policy, swapped, att, mask)
    b, t = torch.tensor([k[0] for k in keep]), torch.tensor([k[1] for k in keep])
    return {
        "states": len(keep),
        "qrm_prefers_gold": float((q1[b, t] > q0[b, t]).float().mean()),
        "policy_prefers_gold": float((p1[b, t] > p0[b, t]).float().mean()),
    }


def train_reward_model(
    head: str, trunk: Any, policy: Any, tokenizer: Any, records: list[dict], cfg: Config, seed: int
) -> tuple[QRewardModel, dict[str, Any]]:
    """A Q-RM on a copy of ``trunk`` (the SFT policy, or a longer-trained one) with ``head``
    "value" or "lm", the pairwise mean-Z loss; probed against ``policy``."""
    qrm = QRewardModel(copy.deepcopy(trunk), head=head)
    history = train_qrm(
        qrm, tokenizer, records, progress=False,
        config=QRMTrainConfig(
            learning_rate=cfg.qrm_lr, num_train_epochs=cfg.qrm_epochs,
            per_device_train_batch_size=16, eval_fraction=0.15, seed=seed, max_length=64,
        ),
    )  # fmt: skip
    qrm.requires_grad_(False)
    info = {
        "eval_before": history["eval_before"],
        "eval_after": history["eval_after"],
        "epochs": history["epochs"],
        **qrm_probe(qrm, tokenizer, policy, cfg, seed),
    }
    return qrm, info


def run_seed(cfg: Config, seed: int, methods: tuple[str, ...], log: Any) -> dict[str, Any]:
    """SFT → Q-RM(s) → RL with each method, from one seed."""
    from qengine.models.tiny import build_word_tokenizer, tiny_causal_lm

    t0 = time.perf_counter()
    torch.manual_seed(seed)
    tokenizer = build_word_tokenizer(task.vocabulary())
    policy = tiny_causal_lm(
        tokenizer, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers, seed=seed
    )
    sft_losses = sft(policy, tokenizer, cfg, seed)
    held_out = task.generate_problems(cfg.eval_problems, seed + 5)
    sft_acc = accuracy(policy, tokenizer, held_out, cfg.max_new_tokens)
    target = min(0.95, sft_acc + cfg.target_gain)
    t_sft = time.perf_counter()
    log(f"seed {seed}: SFT loss {sft_losses[-1]:.3f}, greedy accuracy {sft_acc:.3f}")
    out: dict[str, Any] = {
        "seed": seed,
        "sft": {"final_loss": sft_losses[-1], "greedy_accuracy": sft_acc},
        "target_accuracy": target,
        "methods": {},
    }
    reward_models: dict[str, QRewardModel] = {}
    heads = list(dict.fromkeys(QRM_HEAD[m] for m in methods if m in QRM_HEAD))
    if heads:
        records, stats = qrm_records(policy, tokenizer, cfg, seed)
        out["qrm_data"] = stats
        out["qrm"] = {}
        trunk = None
        if any(h.endswith("_strong") for h in heads):  # a Q-RM on a stronger model than the policy
            trunk = copy.deepcopy(policy)
            sft(trunk, tokenizer, cfg, seed, steps=cfg.qrm_trunk_sft_steps, stream_seed=seed + 11)
            trunk.eval()
            out["qrm_trunk_accuracy"] = accuracy(trunk, tokenizer, held_out, cfg.max_new_tokens)
            log(f"seed {seed}: Q-RM trunk after {cfg.qrm_trunk_sft_steps} more SFT steps: "
                f"greedy accuracy {out['qrm_trunk_accuracy']:.3f}")  # fmt: skip
        for head in heads:
            reward_models[head], info = train_reward_model(
                head.removesuffix("_strong"), trunk if head.endswith("_strong") else policy,
                policy, tokenizer, records, cfg, seed,
            )  # fmt: skip
            out["qrm"][head] = info
            log(f"seed {seed}: Q-RM ({head} head) held-out pair accuracy "
                f"{info['eval_after']['accuracy']:.3f}, fresh pairs "
                f"{info['fresh_pair_accuracy']:.3f}, token AUC on SFT samples "
                f"{fmt_opt(info['sft_samples']['token_auc'])}")  # fmt: skip
    t_qrm = time.perf_counter()
    for method in methods:
        qrm = reward_models.get(QRM_HEAD[method]) if method in QRM_HEAD else None
        out["methods"][method] = rl(
            method, copy.deepcopy(policy), qrm, tokenizer, cfg, seed, target, log
        )
    out["seconds"] = {
        "sft": t_sft - t0,
        "qrm": t_qrm - t_sft,
        "rl": {m: out["methods"][m]["seconds"] for m in methods},
        "total": time.perf_counter() - t0,
    }
    return out


# ----------------------------------------------------------------------------------- summary
def speedup(steps_slow: int | None, steps_fast: int | None, budget: int) -> float | None:
    """``steps_slow / steps_fast``; a method that never reaches the target counts as ``budget``
    steps (so the ratio is a lower bound when only the slow one missed); None when the fast one
    missed too or reached it at step 0."""
    if steps_fast is None or steps_fast == 0:
        return None
    return (budget if steps_slow is None else steps_slow) / steps_fast


QRM_METHODS = tuple(QRM_HEAD)
TARGET_SPEEDUP = 2.0  # the target: Q-RM reaches the target accuracy 2x sooner than ORM


def summarize(runs: list[dict[str, Any]], cfg: Config) -> dict[str, Any]:
    """The headline numbers over seeds (``qrm``: REINFORCE with the value-head Q-RM, the authors'
    default; the other Q-RM variants under ``qrm_variants``)."""

    def ratios(fast: str) -> list[float | None]:
        return [
            speedup(r["methods"].get("orm", {}).get("steps_to_target"),
                    r["methods"].get(fast, {}).get("steps_to_target"), cfg.rl_steps)
            if fast in r["methods"] and "orm" in r["methods"] else None
            for r in runs
        ]  # fmt: skip

    def mean(xs: list[float | None]) -> float | None:
        xs = [x for x in xs if x is not None]
        return sum(xs) / len(xs) if xs and len(xs) == len(runs) else None

    def finals(m: str) -> list[float]:
        return [r["methods"][m]["final_accuracy"] for r in runs if m in r["methods"]]

    def steps(m: str) -> list[int | None]:
        return [r["methods"].get(m, {}).get("steps_to_target") for r in runs]

    def collapsed(m: str) -> list[bool]:  # final accuracy below the SFT policy's by > 0.05
        return [r["methods"][m]["final_accuracy"] < r["sft"]["greedy_accuracy"] - 0.05
                for r in runs if m in r["methods"]]  # fmt: skip

    variants = {
        m: {
            "speedup_vs_orm": ratios(m), "mean_speedup_vs_orm": mean(ratios(m)),
            "steps_to_target": steps(m), "final_accuracy": finals(m),
            "min_final_accuracy": min(finals(m), default=None), "collapsed": collapsed(m),
        }
        for m in QRM_METHODS if any(m in r["methods"] for r in runs)
    }  # fmt: skip
    q, o = ratios("qrm"), ratios("oracle")
    mean_q = mean(q)
    return {
        "sft_accuracy": [r["sft"]["greedy_accuracy"] for r in runs],
        "speedup_qrm_vs_orm": q,
        "mean_speedup_qrm_vs_orm": mean_q,
        "min_final_accuracy_qrm": min(finals("qrm"), default=None),
        "target_met": bool(
            mean_q is not None and mean_q >= TARGET_SPEEDUP and not any(collapsed("qrm"))
        ),
        "qrm_variants": variants,
        "oracle_dense": {
            "speedup_vs_orm": o,
            "mean_speedup_vs_orm": mean(o),
            "steps_to_target": steps("oracle"),
            "final_accuracy": finals("oracle"),
            "min_final_accuracy": min(finals("oracle"), default=None),
        },
        "oracle_blame": {
            "speedup_vs_orm": ratios("oracle_blame"),
            "steps_to_target": steps("oracle_blame"),
            "final_accuracy": finals("oracle_blame"),
            "collapsed": collapsed("oracle_blame"),
        },
        "steps_to_target": {m: steps(m) for m in METHODS},
        "final_accuracy": {m: finals(m) for m in METHODS},
    }


def _fmt(x: Any) -> str:
    if x is None:
        return "—"
    if isinstance(x, bool):
        return "yes" if x else "no"
    return f"{x:.2f}" if isinstance(x, float) else str(x)


def _mean(xs: list[Any]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def findings(report: dict[str, Any]) -> list[str]:
    """The reading of the run, every number taken from the report."""
    runs, fmt = report["seeds"], _fmt
    methods = [m for m in METHODS if m in report["methods"]]

    def over(m: str, f: Any) -> float | None:
        return _mean([f(r["methods"][m]) for r in runs if m in r["methods"]])

    def final(m: str) -> float | None:
        return over(m, lambda x: x["final_accuracy"])

    def gold(m: str) -> float | None:
        return over(m, lambda x: x["gold_logprob_curve"][-1][1] - x["gold_logprob_curve"][0][1])

    sft = _mean([r["sft"]["greedy_accuracy"] for r in runs])
    out = ["", "## Reading", ""]
    if "oracle" in methods and "orm" in methods:
        better = (final("oracle") or 0) > (final("orm") or 0)
        out.append(
            f"- **The glue** (sampling, token alignment, eos re-scoring, normalisation, REINFORCE "
            "and PPO weights, critic, KL: hand-computed tests in `tests/rl/`). Through the same "
            "loop the oracle's exact token credit ends at a mean accuracy of "
            f"{fmt(final('oracle'))} against ORM's {fmt(final('orm'))} (SFT {fmt(sft)}), "
            "gold log-prob per token "
            f"{gold('oracle'):+.3f} against {gold('orm'):+.3f}: "
            + ("the loop turns right token credit into learning."
               if better else "in this run the oracle did not end above ORM.")
        )  # fmt: skip
    if "oracle_blame" in methods:
        out.append(
            f"- `oracle_blame` (the oracle, but -1 on every token after the first error): final "
            f"accuracy {fmt(final('oracle_blame'))}, gold log-prob per token "
            f"{gold('oracle_blame'):+.3f}: blame spread over the tokens after an error "
            + ("does not by itself collapse the policy."
               if (final("oracle_blame") or 0) >= (sft or 0) - 0.05
               else "alone lowers the policy.")
        )  # fmt: skip
    trunk = _mean([r.get("qrm_trunk_accuracy") for r in runs])
    if trunk is not None:
        out.append(
            f"- The `lm_strong` Q-RM starts from the SFT policy trained further (greedy accuracy "
            f"{fmt(trunk)} against the policy's {fmt(sft)})."
        )
    heads = list(dict.fromkeys(h for r in runs for h in r.get("qrm", {})))
    for h in heads:
        qs = [r["qrm"][h] for r in runs if h in r.get("qrm", {})]
        held = _mean([q["eval_after"]["accuracy"] for q in qs])
        fresh = _mean([q["fresh_pair_accuracy"] for q in qs])
        fe = [q["sft_samples"].get("first_error", {}) for q in qs]
        qg = _mean([f.get("qrm_prefers_gold") for f in fe])
        pg = _mean([f.get("policy_prefers_gold") for f in fe])
        out.append(
            f"- **The `{h}` Q-RM**: pair accuracy {fmt(held)} on held-out training pairs, "
            f"{fmt(fresh)} on"
            " fresh gold-vs-corrupted pairs, a token AUC of "
            f"{fmt(_mean([q['sft_samples']['token_auc'] for q in qs]))} on the policy's own samples"
            " (credited vs blamed tokens; 0.5 = blind). Where a sample first goes wrong it scores "
            f"the gold token higher in {fmt(qg)} of the states, the policy itself in {fmt(pg)}."
            " Mean raw β·Z per token: gold "
            f"{_mean([q['degenerate_mean_reward']['gold'] for q in qs]):+.2f}, eos only "
            f"{_mean([q['degenerate_mean_reward']['eos only'] for q in qs]):+.2f}, gold twice "
            f"{_mean([q['degenerate_mean_reward']['gold twice'] for q in qs]):+.2f}."
        )  # fmt: skip
    for m in (m for m in methods if m in QRM_HEAD):
        st = [r["methods"][m].get("reward_stats") or [] for r in runs if m in r["methods"]]
        ratio = _mean([abs(x[0]["norm_mean"]) / max(x[0]["norm_std"], 1e-8) for x in st if x])
        auc = _mean([_mean([y["token_auc"] for y in x]) for x in st if x])
        out.append(
            f"- `{m}`: final accuracy {fmt(final(m))} (SFT {fmt(sft)}), gold log-prob per token "
            f"{gold(m):+.3f}, final KL {fmt(over(m, lambda x: x['kl'][-1]))}; its rewards on the "
            f"RL batches: |mean| / std of the normalised token rewards {fmt(ratio)} at the first "
            f"step, token AUC against the oracle's labels {fmt(auc)} averaged over the steps."
        )
    return out


def write_markdown(report: dict[str, Any], path: Path) -> None:
    cfg, s, fmt = report["config"], report, _fmt
    methods = [m for m in METHODS if m in report["methods"]]
    qms = [m for m in methods if m in QRM_HEAD]
    lines = [
        "# RL with Q-RM token rewards vs outcome reward (ORM) vs oracle dense reward, arithmetic",
        "",
        f"Produced by `python bench/qrm_vs_orm.py{' --quick' if report['quick'] else ''}` on "
        f"{report['machine']['cpu']} ({report['machine']['cores']} cores, "
        + (
            f"{report['jobs']} seeds in parallel processes of 1 torch thread, "
            if report.get("jobs", 1) > 1
            else f"{report['machine']['torch_threads']} torch threads, "
        )
        + "1-minute load average "
        f"{fmt(report['machine'].get('load_average_1min'))} at the start, "
        f"{fmt(report.get('load_average_end'))} at the end: a shared machine, the wall times are "
        f"loaded ones) in {report['wall_s']:.0f} s. Steps = RL updates (a batch "
        f"of {cfg['rl_batch']} prompts, one sample each) until greedy held-out accuracy reaches "
        f"the target (SFT accuracy + {cfg['target_gain']}), evaluated every "
        f"{cfg['eval_every']} steps; `—` = not reached in {cfg['rl_steps']} steps. Speed-up = "
        "ORM steps / method steps, a method that misses counting as the whole budget.",
        "",
        "Methods: `orm` REINFORCE, outcome 1/0 on the last token, reward-to-go, batch-mean "
        "baseline; `qrm` REINFORCE with the value-head Q-RM's β·Z, eos re-scored with the row "
        "mean, Z / std over the batch; `qrm_ppo` PPO (clipped, "
        f"{cfg['ppo_epochs']} passes per batch) with A = r - {cfg['ppo_value_coef']}·V from a "
        "critic (a copy of the SFT trunk with a value head fitted to r), r = β·Z / std; `qrm_lm` "
        "as `qrm` with the LM-head Q-RM (Z = the logit of the token); `qrm_lm_centred` as "
        "`qrm_lm` with each token's β·Z minus its expectation under the policy in that state "
        "(`expected_q_advantages`: an exact per-state baseline); `qrm_lm_strong` as "
        "`qrm_lm_centred` with the LM-head Q-RM trained on a trunk given "
        f"{cfg.get('qrm_trunk_sft_steps')} more SFT steps than the policy (a verifier stronger "
        "than the policy); `oracle` the control: +1 / -1 / 0 prefix-match rewards against the "
        "gold solution through the `qrm` path; `oracle_blame` the oracle with -1 on every token "
        "from the first error on (credit after an error, as a Q-RM trained on corrupted "
        "continuations gives it). "
        f"Every method: KL penalty (k3, coefficient {cfg['kl_coef']}) to the frozen SFT policy.",
        "",
        "## Steps to target",
        "",
        "| seed | SFT acc | target | "
        + " | ".join(f"{m} steps" for m in methods)
        + " | "
        + " | ".join(f"{m} speed-up" for m in methods if m != "orm")
        + " |",
        "|---" * (3 + 2 * len(methods) - 1) + "|",
    ]
    variants = {**s.get("qrm_variants", {}), "oracle": s["oracle_dense"]}
    if "oracle_blame" in s:
        variants["oracle_blame"] = s["oracle_blame"]
    for i, r in enumerate(report["seeds"]):
        m = r["methods"]
        st = [fmt(m[k]["steps_to_target"]) if k in m else "n/a" for k in methods]
        sp = [fmt(variants[k]["speedup_vs_orm"][i]) if k in variants else "n/a"
              for k in methods if k != "orm"]  # fmt: skip
        lines.append(
            f"| {r['seed']} | {r['sft']['greedy_accuracy']:.3f} | {r['target_accuracy']:.3f} | "
            + " | ".join(st)
            + " | "
            + " | ".join(sp)
            + " |"
        )
    lines += [
        "",
        f"Mean speed-up over ORM ({len(report['seeds'])} seeds): "
        + ", ".join(f"`{k}` **{fmt(v.get('mean_speedup_vs_orm'))}**" for k, v in variants.items())
        + f". Lowest final accuracy of `qrm`: {fmt(s['min_final_accuracy_qrm'])}. "
        f"Target (`qrm` ≥ {TARGET_SPEEDUP}x sooner than ORM on the mean, no collapse): "
        f"**{'met' if s.get('target_met') else 'not met'}**.",
        "",
        "## Accuracy and drift per run",
        "",
        "Greedy held-out accuracy at the end / best over the run (at step); the change of the gold "
        "solutions' mean log-prob per token from the SFT policy (> 0: the policy moved towards the "
        "right solutions); the final KL to the SFT policy; collapsed = final accuracy more than "
        "0.05 below the SFT policy's.",
        "",
        "| seed | method | final acc | best acc (step) | Δ gold log-prob / token | final KL | "
        "collapsed |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in report["seeds"]:
        for k in methods:
            run = r["methods"][k]
            best_step, best = max(run["curve"], key=lambda c: (c[1], -c[0]))
            gold = run.get("gold_logprob_curve") or [(0, math.nan)]
            dead = run["final_accuracy"] < r["sft"]["greedy_accuracy"] - 0.05
            lines.append(
                f"| {r['seed']} | {k} | {run['final_accuracy']:.3f} | {best:.3f} ({best_step}) | "
                f"{gold[-1][1] - gold[0][1]:+.3f} | {run['kl'][-1]:.3f} | {fmt(dead)} |"
            )
    if any("qrm" in r for r in report["seeds"]):
        lines += [
            "",
            "## What the Q-RMs learned",
            "",
            "Pair accuracy (mean Z of the chosen response > the rejected one's) on the held-out "
            "split of the training pairs (by problem) and on fresh gold-vs-corrupted pairs of "
            "unseen problems; on samples of the SFT policy, at the first token leaving the gold "
            "solution, the share of states where the Q-RM scores the gold token above the sampled "
            "one, next to the share where the policy itself prefers it (the Q-RM adds information "
            "only where it knows better), and the AUC of the raw token reward of "
            "tokens the oracle credits (on a gold prefix) against those it blames (the first wrong "
            "token; 0.5 = blind); the mean raw β·Z per token of degenerate completions of the "
            "same prompts next to the gold one's.",
            "",
            "| seed | head | held-out pair acc | fresh pair acc | token AUC | first error: Q-RM / "
            "policy prefer gold (states) | β·Z on gold prefix / first error | "
            + " | ".join(f"{k}" for k in DEGENERATE)
            + " |",
            "|---" * (7 + len(DEGENERATE)) + "|",
        ]
        for r in report["seeds"]:
            for head, q in r.get("qrm", {}).items():
                sm, dg = q["sft_samples"], q["degenerate_mean_reward"]
                fe = sm.get("first_error", {})
                lines.append(
                    f"| {r['seed']} | {head} | {q['eval_after']['accuracy']:.3f} | "
                    f"{q['fresh_pair_accuracy']:.3f} | {fmt(sm['token_auc'])} | "
                    f"{fmt(fe.get('qrm_prefers_gold'))} / {fmt(fe.get('policy_prefers_gold'))} "
                    f"({fe.get('states', 0)}) | "
                    f"{fmt(sm['raw_on_gold_prefix'])} / {fmt(sm['raw_on_first_error'])} | "
                    + " | ".join(f"{dg[k]:+.2f}" for k in DEGENERATE)
                    + " |"
                )
        lines += [
            "",
            "Per-token rewards during RL (raw β·Z mean ± std over the batch's response tokens, "
            "token AUC against the oracle's labels, response length), first → last step:",
            "",
            "| seed | method | raw β·Z | token AUC | row mean right / wrong | tokens | final "
            "greedy output (held-out problem 0) |",
            "|---|---|---|---|---|---|---|",
        ]
        for r in report["seeds"]:
            for k in qms:
                st = r["methods"][k].get("reward_stats") or []
                if not st:
                    continue
                a, z = st[0], st[-1]
                ex = r["methods"][k]["final_greedy_examples"][0].replace("|", "/")
                lines.append(
                    f"| {r['seed']} | {k} | {a['raw_mean']:+.2f}±{a['raw_std']:.2f} → "
                    f"{z['raw_mean']:+.2f}±{z['raw_std']:.2f} | {fmt(a['token_auc'])} → "
                    f"{fmt(z['token_auc'])} | {fmt(a['row_mean_right'])} / "
                    f"{fmt(a['row_mean_wrong'])} → {fmt(z['row_mean_right'])} / "
                    f"{fmt(z['row_mean_wrong'])} | {a['response_tokens']:.1f} → "
                    f"{z['response_tokens']:.1f} | `{ex}` |"
                )
    lines += findings(report)
    lines += [
        "",
        "Settings: " + ", ".join(f"`{k}={v}`" for k, v in cfg.items()) + ".",
        "",
        f"![held-out accuracy during RL]({Path(report['png']).name})",
    ]
    path.write_text("\n".join(lines) + "\n")


def write_plot(report: dict[str, Any], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    runs = report["seeds"]
    fig, axes = plt.subplots(1, len(runs), figsize=(4.5 * len(runs), 4.0), squeeze=False)
    colors = {
        "orm": "tab:blue",
        "qrm": "tab:red",
        "qrm_ppo": "tab:orange",
        "qrm_lm": "tab:purple",
        "qrm_lm_centred": "tab:brown",
        "qrm_lm_strong": "tab:pink",
        "oracle": "tab:green",
        "oracle_blame": "tab:olive",
    }
    for ax, r in zip(axes[0], runs, strict=True):
        for m, run in r["methods"].items():
            xs, ys = zip(*run["curve"], strict=True)
            ax.plot(xs, ys, label=m, color=colors.get(m))
        ax.axhline(r["target_accuracy"], color="gray", ls="--", lw=0.8, label="target")
        ax.set_title(f"seed {r['seed']}")
        ax.set_xlabel("RL step")
        top = max(a for run in r["methods"].values() for _, a in run["curve"])
        ax.set_ylim(0, min(1.0, max(top, r["target_accuracy"]) + 0.1))
    axes[0][0].set_ylabel("greedy held-out accuracy")
    axes[0][0].legend()
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


class _Log:
    """A picklable progress logger for the seed workers."""

    def __init__(self, on: bool, seed: int) -> None:
        self.on, self.seed = on, seed

    def __call__(self, msg: str) -> None:
        if self.on:
            print(f"[qrm_vs_orm {time.strftime('%H:%M:%S')} s{self.seed}] {msg}", file=sys.stderr,
                  flush=True)  # fmt: skip


def _worker_init() -> None:
    torch.set_num_threads(1)


def main(argv: list[str] | None = None) -> dict[str, Any]:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--quick", action="store_true", help="tiny smoke run (< 60 s)")
    ap.add_argument("--seeds", help="comma-separated (default 0,1,2; --quick: 0)")
    ap.add_argument("--methods", default=",".join(METHODS))
    ap.add_argument(
        "--json",
        type=Path,
        help="default: bench/results/qrm_vs_orm.json "
        "(--quick: a temporary folder, never the committed results)",
    )
    ap.add_argument("--md", type=Path)
    ap.add_argument("--png", type=Path)
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a Config field (repeatable)")  # fmt: skip
    ap.add_argument("--no-progress", action="store_true")
    ap.add_argument("--jobs", type=int, default=3,
                    help="seeds run in parallel processes, one torch thread each")  # fmt: skip
    ap.add_argument("--report", type=Path, metavar="JSON",
                    help="only rewrite the markdown and plot of an existing JSON")  # fmt: skip
    args = ap.parse_args(argv)
    if args.report is not None:
        report = json.loads(args.report.read_text())
        write_markdown(report, args.md or args.report.with_suffix(".md"))
        write_plot(report, args.png or args.report.with_suffix(".png"))
        return report
    cfg = QUICK if args.quick else Config()
    overrides = {}
    for item in args.set:
        key, _, value = item.partition("=")
        field = {f.name: f for f in dataclasses.fields(Config)}.get(key)
        if field is None:
            ap.error(f"unknown Config field {key!r}")
        kind = type(getattr(cfg, key))
        overrides[key] = value if kind is str else kind(value)
    cfg = dataclasses.replace(cfg, **overrides)
    methods = tuple(m for m in args.methods.split(",") if m)
    if bad := [m for m in methods if m not in METHODS]:
        ap.error(f"unknown method(s) {bad}; choose from {METHODS}")
    seeds = [int(s) for s in (args.seeds or ("0" if args.quick else "0,1,2")).split(",") if s]
    folder = Path(tempfile.mkdtemp(prefix="qrm_vs_orm-")) if args.quick else RESULTS
    args.json = args.json or folder / "qrm_vs_orm.json"
    args.md = args.md or args.json.with_suffix(".md")
    args.png = args.png or args.json.with_suffix(".png")

    def log(msg: str) -> None:
        if not args.no_progress:
            print(f"[qrm_vs_orm {time.strftime('%H:%M:%S')}] {msg}", file=sys.stderr, flush=True)

    t0 = time.perf_counter()
    info = run_machine()
    runs: list[dict[str, Any]] = []
    for p in (args.json, args.md, args.png):
        p.parent.mkdir(parents=True, exist_ok=True)

    def write(runs: list[dict[str, Any]]) -> dict[str, Any]:
        runs = sorted(runs, key=lambda r: r["seed"])
        report = {
            "machine": info,
            "quick": args.quick,
            "config": asdict(cfg),
            "methods": list(methods),
            "jobs": jobs,
            "complete": len(runs) == len(seeds),
            "seeds": runs,
            **summarize(runs, cfg),
            "wall_s": time.perf_counter() - t0,
            "load_average_end": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
            "png": str(args.png),
        }
        args.json.write_text(json.dumps(report, indent=1))
        write_markdown(report, args.md)
        write_plot(report, args.png)
        return report

    # The files are rewritten after every seed: a cut-short run keeps its data.
    jobs = max(1, min(args.jobs, len(seeds)))
    if jobs == 1:
        for seed in seeds:
            runs.append(run_seed(cfg, seed, methods, log))
            report = write(runs)
    else:  # one process per seed, one torch thread each (a shared machine: more CPU share)
        import concurrent.futures as cf
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")
        with cf.ProcessPoolExecutor(jobs, mp_context=ctx, initializer=_worker_init) as pool:
            futures = [
                pool.submit(run_seed, cfg, seed, methods, _Log(not args.no_progress, seed))
                for seed in seeds
            ]
            for future in cf.as_completed(futures):
                runs.append(future.result())
                report = write(runs)
    headline = {k: report[k] for k in ("mean_speedup_qrm_vs_orm", "min_final_accuracy_qrm")}
    headline["oracle_mean_speedup"] = report["oracle_dense"]["mean_speedup_vs_orm"]
    print(json.dumps(headline | {"wall_s": round(report["wall_s"], 1)}))
    return report


if __name__ == "__main__":
    main()
