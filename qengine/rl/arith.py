"""A shipped RL experiment: REINFORCE + Q-RM vs REINFORCE + outcome reward on arithmetic problems.

The task: two-step word problems generated from a seed ("tom has 3 apples . he buys 4 more . he
gives 2 away . how many apples now ?"), solved as "3 + 4 = 7 . 7 - 2 = 5 . answer 5". Pipeline,
all on CPU with a tiny word-level Llama (:mod:`qengine.models.tiny`):

1. SFT: teacher-forced on gold solutions for ``sft_steps`` steps (a weak but non-zero policy);
2. Q-RM data: ``qrm_samples`` completions per prompt sampled from the SFT policy, labelled by the
   final answer; pairs (correct, incorrect) of the same prompt, the gold solution standing in for a
   correct sample when none was drawn;
3. Q-RM: initialised from the SFT policy, trained with the pairwise mean-Z loss (fused kernel);
4. RL from the same SFT policy, same prompt stream, same optimiser, twice:
   - ORM: reward 1 / 0 on the last response token (final answer right / wrong), reward-to-go,
     batch-mean baseline;
   - Q-RM: token rewards β·Z, EOS re-scored with the sequence mean (the authors' REINFORCE), then
     whitened over the batch (``qrm_normalize="mean_std"``, the paper's text; ``"std"`` is the
     authors' code default), each token weighted by its own reward (Q-values need no reward-to-go);
   greedy accuracy on held-out problems every ``eval_every`` steps; the score is the number of RL
   steps until it reaches ``target_accuracy`` (default: SFT accuracy + ``target_gain``).

:func:`run_experiment` returns everything measured; ``python -m qengine.rl.arith`` runs the default
configuration and writes ``bench/results/qrm_vs_orm.json`` and ``.md``.
"""

from __future__ import annotations

import copy
import json
import math
import random
import sys
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

import torch

from qengine.qrm import QRewardModel, QRMTrainConfig, train_qrm
from qengine.train.tokenize import encode_completions

from .losses import reinforce_loss
from .policy import policy_token_logprobs, sample_completions

__all__ = [
    "ArithConfig",
    "ArithProblem",
    "answer_of",
    "generate_problems",
    "run_experiment",
    "write_results",
]

NAMES = ("tom", "ann", "bob", "sue", "max", "eva")
ITEMS = ("apples", "pens", "cards", "coins", "books", "shells")
MAX_NUMBER = 9  # operands 0..9, intermediate results up to 18


@dataclass(frozen=True)
class ArithProblem:
    prompt: str
    solution: str
    answer: int


def _make_problem(rng: random.Random) -> ArithProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a = rng.randint(0, MAX_NUMBER)
    text = [f"{name} has {a} {item} ."]
    steps, value = [], a
    for _ in range(2):
        b = rng.randint(0, MAX_NUMBER)
        if rng.random() < 0.5 or b > value:
            text.append(f"{name} buys {b} more .")
            steps.append(f"{value} + {b} = {value + b}")
            value += b
        else:
            text.append(f"{name} gives {b} away .")
            steps.append(f"{value} - {b} = {value - b}")
            value -= b
    text.append(f"how many {item} now ?")
    return ArithProblem(" ".join(text), " . ".join(steps) + f" . answer {value}", value)


def generate_problems(n: int, seed: int) -> list[ArithProblem]:
    """``n`` problems drawn from ``seed`` (deterministic)."""
    rng = random.Random(seed)
    return [_make_problem(rng) for _ in range(n)]


def answer_of(completion: str) -> int | None:
    """The integer after the last ``answer`` word, or None (malformed output never raises)."""
    words = completion.split()
    for i in range(len(words) - 2, -1, -1):
        if words[i] == "answer":
            try:
                return int(words[i + 1])
            except ValueError:
                return None
    return None


def _vocabulary() -> list[str]:
    words = [*NAMES, *ITEMS, "has", "buys", "more", "gives", "away", "how", "many", "now"]
    words += [".", "?", "+", "-", "=", "answer"] + [str(i) for i in range(2 * MAX_NUMBER + 1)]
    return [" ".join(words)]


@dataclass(frozen=True, kw_only=True)
class ArithConfig:
    """The experiment's knobs; defaults take about 4 minutes on 2 CPU cores."""

    seed: int = 0
    hidden_size: int = 64
    num_layers: int = 2
    sft_steps: int = 180
    sft_batch: int = 32
    sft_lr: float = 3e-3
    qrm_prompts: int = 128
    qrm_samples: int = 4
    qrm_head: Literal["lm", "value"] = "value"
    qrm_epochs: int = 2
    qrm_lr: float = 1e-3
    rl_steps: int = 60
    rl_batch: int = 32
    rl_lr: float = 1e-4
    eval_every: int = 5
    eval_problems: int = 128
    target_accuracy: float | None = None  # None: SFT accuracy + target_gain
    target_gain: float = 0.15
    qrm_normalize: Literal["std", "mean_std", "none"] = "mean_std"
    max_new_tokens: int = 20
    methods: tuple[str, ...] = ("qrm", "orm")
    extra: dict[str, Any] = field(default_factory=dict)


def _device_threads() -> int:
    return torch.get_num_threads()


@torch.no_grad()
def _accuracy(model: Any, tokenizer: Any, problems: list[ArithProblem], max_new: int) -> float:
    prompts = [p.prompt for p in problems]
    out = sample_completions(model, tokenizer, prompts, max_new_tokens=max_new, do_sample=False)
    right = sum(answer_of(c) == p.answer for c, p in zip(out.completions, problems, strict=True))
    return right / len(problems)


def _sft(model: Any, tokenizer: Any, cfg: ArithConfig) -> list[float]:
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.sft_lr)
    stream = generate_problems(cfg.sft_steps * cfg.sft_batch, cfg.seed + 1)
    losses = []
    model.train()
    for step in range(cfg.sft_steps):
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


def _qrm_records(model: Any, tokenizer: Any, cfg: ArithConfig) -> tuple[list[dict], float]:
    """(correct, incorrect) pairs of samples of the SFT policy; returns (records, sample acc)."""
    problems = generate_problems(cfg.qrm_prompts, cfg.seed + 2)
    prompts = [p.prompt for p in problems for _ in range(cfg.qrm_samples)]
    out = sample_completions(model, tokenizer, prompts, max_new_tokens=cfg.max_new_tokens)
    rng = random.Random(cfg.seed)
    records, right_total = [], 0
    for i, p in enumerate(problems):
        done = out.completions[i * cfg.qrm_samples : (i + 1) * cfg.qrm_samples]
        right = [c for c in done if answer_of(c) == p.answer]
        wrong = [c for c in done if answer_of(c) != p.answer]
        right_total += len(right)
        for w in wrong:
            chosen = rng.choice(right) if right else p.solution
            records.append({"prompt": p.prompt, "chosen": chosen, "rejected": w, "task": str(i)})
    return records, right_total / len(prompts)


def _log(progress: bool, *parts: Any) -> None:
    if progress:
        print("[arith]", *parts, file=sys.stderr, flush=True)


def _rl(
    method: str,
    policy: Any,
    qrm: QRewardModel | None,
    tokenizer: Any,
    cfg: ArithConfig,
    target: float,
    progress: bool = False,
) -> dict[str, Any]:
    """REINFORCE from the SFT policy; returns the accuracy curve and steps to target."""
    torch.manual_seed(cfg.seed + 3)
    opt = torch.optim.AdamW(policy.parameters(), lr=cfg.rl_lr, weight_decay=0.0)
    stream = generate_problems(cfg.rl_steps * cfg.rl_batch, cfg.seed + 4)
    held_out = generate_problems(cfg.eval_problems, cfg.seed + 5)
    curve = [(0, _accuracy(policy, tokenizer, held_out, cfg.max_new_tokens))]
    rewards_log, losses, reached = [], [], 0 if curve[0][1] >= target else None
    start = time.perf_counter()
    for step in range(1, cfg.rl_steps + 1):
        chunk = stream[(step - 1) * cfg.rl_batch : step * cfg.rl_batch]
        roll = sample_completions(
            policy, tokenizer, [p.prompt for p in chunk], max_new_tokens=cfg.max_new_tokens
        )
        correct = torch.tensor(
            [answer_of(c) == p.answer for c, p in zip(roll.completions, chunk, strict=True)],
            dtype=torch.float32,
        )
        mask = roll.response_mask
        if method == "orm":
            last = torch.where(mask, torch.arange(mask.shape[1]), -1).amax(1)
            rewards = torch.zeros(mask.shape)
            rewards[torch.arange(mask.shape[0]), last] = correct
            returns, baseline = "reward_to_go", "mean"
        elif method == "qrm":
            assert qrm is not None
            rewards = qrm.token_rewards(
                roll.input_ids,
                roll.attention_mask,
                mask,
                normalize=cfg.qrm_normalize,
                eos_mean=True,
            )
            returns, baseline = "immediate", None
        else:
            raise ValueError(f"method must be 'qrm' or 'orm', got {method!r}")
        policy.train()
        lp = policy_token_logprobs(policy, roll.input_ids, roll.attention_mask, mask)
        out = reinforce_loss(lp, rewards, mask, returns=returns, baseline=baseline)
        opt.zero_grad(set_to_none=True)
        out.loss.backward()
        torch.nn.utils.clip_grad_norm_(policy.parameters(), 1.0)
        opt.step()
        rewards_log.append(float(correct.mean()))
        losses.append(out.loss.item())
        if step % cfg.eval_every == 0 or step == cfg.rl_steps:
            acc = _accuracy(policy, tokenizer, held_out, cfg.max_new_tokens)
            curve.append((step, acc))
            _log(progress, f"{method} step {step}: held-out accuracy {acc:.3f}")
            if reached is None and acc >= target:
                reached = step
                if cfg.extra.get("stop_at_target", True):
                    break
    return {
        "steps_to_target": reached,
        "curve": curve,
        "train_sample_accuracy": rewards_log,
        "losses": losses,
        "seconds": time.perf_counter() - start,
    }


def run_experiment(config: ArithConfig | None = None, *, progress: bool = False) -> dict[str, Any]:
    """Run SFT → Q-RM → RL (Q-RM and ORM) and return the measurements (JSON-serialisable)."""
    from qengine.models.tiny import build_word_tokenizer, tiny_causal_lm

    cfg = config or ArithConfig()
    t0 = time.perf_counter()
    torch.manual_seed(cfg.seed)
    tokenizer = build_word_tokenizer(_vocabulary())
    policy = tiny_causal_lm(
        tokenizer, hidden_size=cfg.hidden_size, num_layers=cfg.num_layers, seed=cfg.seed
    )
    sft_losses = _sft(policy, tokenizer, cfg)
    held_out = generate_problems(cfg.eval_problems, cfg.seed + 5)
    sft_acc = _accuracy(policy, tokenizer, held_out, cfg.max_new_tokens)
    t_sft = time.perf_counter()
    target = cfg.target_accuracy
    if target is None:
        target = min(0.95, sft_acc + cfg.target_gain)
    _log(progress, f"SFT: loss {sft_losses[-1]:.3f}, greedy accuracy {sft_acc:.3f}")

    result: dict[str, Any] = {
        "config": asdict(cfg),
        "torch_threads": _device_threads(),
        "sft": {"final_loss": sft_losses[-1], "greedy_accuracy": sft_acc, "steps": cfg.sft_steps},
        "target_accuracy": target,
        "methods": {},
    }
    qrm = None
    if "qrm" in cfg.methods:
        records, sample_acc = _qrm_records(policy, tokenizer, cfg)
        qrm = QRewardModel(copy.deepcopy(policy), head=cfg.qrm_head)
        history = train_qrm(
            qrm, tokenizer, records, progress=progress,
            config=QRMTrainConfig(
                learning_rate=cfg.qrm_lr, epochs=cfg.qrm_epochs, batch_size=16, eval_fraction=0.15,
                seed=cfg.seed, max_length=64,
            ),
        )  # fmt: skip
        result["qrm"] = {
            "pairs": len(records),
            "sft_sample_accuracy": sample_acc,
            "eval_before": history["eval_before"],
            "eval_after": history["eval_after"],
        }
        _log(progress, f"Q-RM: {len(records)} pairs, held-out {history['eval_after']}")
    t_qrm = time.perf_counter()
    for method in cfg.methods:
        result["methods"][method] = _rl(
            method, copy.deepcopy(policy), qrm, tokenizer, cfg, target, progress
        )
    steps = {m: result["methods"][m]["steps_to_target"] for m in cfg.methods}
    ratio = None
    if steps.get("qrm") and steps.get("orm"):
        ratio = steps["orm"] / steps["qrm"]
    elif steps.get("qrm") and steps.get("orm") is None and "orm" in steps:
        ratio = f">{cfg.rl_steps / steps['qrm']:.2f} (ORM did not reach the target)"
    elif steps.get("orm") and steps.get("qrm") is None and "qrm" in steps:
        ratio = f"<{steps['orm'] / cfg.rl_steps:.2f} (Q-RM did not reach the target)"
    result["steps_to_target"] = steps
    result["speedup_orm_over_qrm"] = ratio
    result["seconds"] = {
        "sft": t_sft - t0,
        "qrm": t_qrm - t_sft,
        "rl": {m: result["methods"][m]["seconds"] for m in cfg.methods},
        "total": time.perf_counter() - t0,
    }
    return result


def write_results(results: dict[str, Any] | list[dict[str, Any]], path: str | Path) -> Path:
    """Write ``<path>.json`` (the raw measurements) and ``<path>.md`` (a short table)."""
    runs = results if isinstance(results, list) else [results]
    path = Path(path).with_suffix("")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.with_suffix(".json").write_text(json.dumps(runs, indent=1))
    lines = [
        "# REINFORCE + Q-RM vs REINFORCE + ORM on arithmetic word problems",
        "",
        "Produced by `python -m qengine.rl.arith` (`qengine.rl.arith.run_experiment`). Steps = RL",
        "updates (batch of prompts, one sample each) until greedy held-out accuracy reaches the",
        "target; evaluated every `eval_every` steps (so steps are multiples of it).",
        "",
        "| seed | SFT acc | Q-RM held-out pair acc | target | Q-RM steps | ORM steps | ORM/Q-RM |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        c = r["config"]
        qacc = r.get("qrm", {}).get("eval_after", {}).get("accuracy", math.nan)
        s = r["steps_to_target"]
        ratio = r["speedup_orm_over_qrm"]
        ratio_s = f"{ratio:.2f}" if isinstance(ratio, float) else str(ratio)
        lines.append(
            f"| {c['seed']} | {r['sft']['greedy_accuracy']:.3f} | {qacc:.3f} | "
            f"{r['target_accuracy']:.3f} | {s.get('qrm')} | {s.get('orm')} | {ratio_s} |"
        )
    path.with_suffix(".md").write_text("\n".join(lines) + "\n")
    return path.with_suffix(".json")


if __name__ == "__main__":  # pragma: no cover - the default experiment
    res = run_experiment(progress=True)
    print(json.dumps({k: res[k] for k in ("steps_to_target", "speedup_orm_over_qrm", "seconds")}))
    write_results(res, "bench/results/qrm_vs_orm")
