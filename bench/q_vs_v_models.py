"""Models of the Q-vs-V study (``bench/q_vs_v.py``): one tokenizer, a Q-model, a V-model and a
generative critic, all tiny Llamas of the same size trained from scratch on the same searched trees.

* ``shared_tokenizer`` — the pipeline's word-level tokenizer (``qengine.models``) trained on the
  texts of all three models, plus 101 value tokens ``0.00`` .. ``1.00`` kept whole
  (``single_word``), so ``Value: 0.73`` is four tokens and decodes back to a parsable line (the
  Whitespace pre-tokenizer alone splits ``0.73`` into ``0 . 73``). One vocabulary, so the three
  models have exactly the same parameter count.
* ``train_q`` — steps 2-3 of ``qengine.pipeline.run_pipeline`` (max-min pairs, step-level DPO) with
  the pipeline's settings; ``train_v`` — ``ValueModel`` regression on ``value_records``;
  ``train_critic`` — SFT of a causal LM to write ``<reasoning> Value: <v>`` after the exact prompt
  ``GenerativeCritic.build_prompt`` builds, with in-context samples in the prompt.
* ``pair_accuracy_*`` / ``value_errors`` — one held-out diagnostic for every critic, measured on
  the same validation trees (tasks none of the models trained on).

Legend: ``B`` states, ``P`` pairs, ``K`` in-context samples.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

VALUE_TOKENS = [f"{i / 100:.2f}" for i in range(101)]


# --------------------------------------------------------------------------------- tokenizer
def shared_tokenizer(texts: Sequence[str]) -> Any:
    """The pipeline's word tokenizer on ``texts`` + the value tokens ``0.00`` .. ``1.00``."""
    from tokenizers import AddedToken

    from qengine.models import build_word_tokenizer

    tok = build_word_tokenizer(texts)
    tok.add_tokens([AddedToken(v, single_word=True, normalized=True) for v in VALUE_TOKENS])
    return tok


def tiny_lm(tokenizer: Any, settings: Any) -> Any:
    """The pipeline's tiny Llama (``hidden_size`` from the settings), seeded."""
    from qengine.models import tiny_causal_lm

    return tiny_causal_lm(tokenizer, hidden_size=settings.hidden_size, seed=settings.seed)


def parameter_count(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


# --------------------------------------------------------------------------------- Q-model
def q_records(tree_dir: Path, settings: Any) -> list[dict[str, Any]]:
    """Step-level preference pairs exactly as the pipeline builds them (step 2)."""
    from qengine.pipeline import preference_pairs

    return preference_pairs(tree_dir, settings)


def q_texts(records: Sequence[dict[str, Any]], settings: Any = None) -> list[str]:
    from qengine.pipeline import q_model_texts

    return q_model_texts(list(records), settings)


def train_q(
    records: list[dict[str, Any]],
    tokenizer: Any,
    settings: Any,
    out: Path,
    *,
    progress: bool,
) -> dict[str, Any]:
    """Step 3 of ``run_pipeline`` (``train_q_model``) on the shared tokenizer, saved to ``out``."""
    from qengine.pipeline import train_q_model

    history = train_q_model(records, settings, out, tokenizer=tokenizer, progress=progress)
    return {
        "pairs": len(records),
        "parameters": parameter_count(tiny_lm(tokenizer, settings)),
        "eval_before": history["eval_before"],
        "eval_after": history["eval_after"],
    }


# --------------------------------------------------------------------------------- V-model
def train_v(
    records: list[dict[str, Any]],
    tokenizer: Any,
    settings: Any,
    out: Path,
    *,
    progress: bool,
) -> tuple[Any, dict[str, Any]]:
    """``ValueModel`` on the same tiny LM, regression on node values, same epochs and lr as Q."""
    from qengine.critics import ValueModel, ValueTrainConfig, train_value_regression

    vm = ValueModel.from_causal_lm(
        tiny_lm(tokenizer, settings),
        tokenizer,
        prompt_style="compact",
        max_length=settings.max_length,
    )
    config = ValueTrainConfig(
        learning_rate=settings.learning_rate,
        num_train_epochs=settings.epochs,
        per_device_train_batch_size=16,
        seed=settings.seed,
    )
    history = train_value_regression(vm, records, config=config, output_dir=out, progress=progress)
    vm.eval()
    return vm, {
        "states": len(records),
        "parameters": parameter_count(vm.model),
        "head_parameters": parameter_count(vm.value_head),
        "eval_before": history["eval_before"],
        "eval_after": history["eval_after"],
    }


# ------------------------------------------------------------------------- generative critic
@dataclass(frozen=True, kw_only=True)
class CriticSettings:
    """The generative critic's prompt and SFT (sizes small enough for a 2-core CPU)."""

    k: int = 3  # in-context samples of the actor in the prompt
    summary_chars: int = 160  # longest in-context state summary
    max_new_tokens: int = 24
    max_length: int = 448  # prompt + completion tokens in SFT (prompts lose their beginning)
    max_records: int = 4000  # SFT examples (a seeded sample of the value records)
    batch_size: int = 16
    generate_batch: int = 64  # prompts per generate() call


def _last_action(state_text: str) -> tuple[int, str, str]:
    """(actions taken, last action, last observation) of a rendered state."""
    actions, observation = [], ""
    for line in state_text.splitlines():
        if line.startswith("Action: ") and line[len("Action: ") :].strip():
            actions.append(line[len("Action: ") :].strip())
        elif line.startswith("Observation: "):
            observation = line[len("Observation: ") :].strip()
    return len(actions), (actions[-1] if actions else ""), observation


def reasoning(state_text: str) -> str:
    """The short template "reasoning" the critic is taught to write before its value.

    Generic over environments: how far the episode is, and whether the last action was refused
    or ended the episode. It is a format, not real chain-of-thought (see the md's limits).
    """
    steps, _, observation = _last_action(state_text)
    if observation.lower().startswith("invalid action"):
        last = "the last action was invalid"
    elif steps == 0:
        last = "nothing done yet"
    else:
        last = "the last action was accepted"
    return f"{steps} actions taken , {last} ."


def critic_target(state_text: str, value: float) -> str:
    """``<reasoning> Value: <v>`` with ``v`` rounded to a value token."""
    v = min(max(float(value), 0.0), 1.0)
    return f"{reasoning(state_text)} Value: {v:.2f}"


def terminal_samples(tree_dir: Path) -> list[tuple[str, str, str, float]]:
    """In-context samples of the collecting actor: (task, state before the last action, the
    action, the return of the episode) for every node whose episode really ended."""
    from qengine.data import state_prompt
    from qengine.search.storage import TreeStore

    out = []
    for tree in TreeStore(tree_dir):
        a, task = tree.arrays, str(tree.header["task_id"])
        for node in range(1, len(a["parent"])):
            text = tree.texts[int(a["payload"][node])]
            if not text.done or a["parent"][node] < 0:
                continue
            chain, n = [], node
            while n > 0:
                chain.append(n)
                n = int(a["parent"][n])
            ret = sum(float(tree.texts[int(a["payload"][c])].reward) for c in chain)
            out.append((task, state_prompt(tree, int(a["parent"][node])), text.action, ret))
    return out


def prompt_builder(cs: CriticSettings) -> Any:
    """A ``GenerativeCritic`` with a dummy generator: it builds prompts exactly as at inference."""
    from qengine.critics import GenerativeCritic

    return GenerativeCritic(
        generate_fn=lambda prompts, s: [[""] * s for _ in prompts],
        k=cs.k,
        summary_chars=cs.summary_chars,
    )


def critic_examples(
    records: Sequence[dict[str, Any]],
    samples: Sequence[tuple[str, str, str, float]],
    cs: CriticSettings,
    *,
    seed: int,
    limit: int | None,
) -> list[tuple[str, str]]:
    """(prompt, target) SFT examples: each state with 0..K random finished episodes of OTHER
    training tasks in context (a random number, so an empty buffer is seen too)."""
    rng = random.Random(seed)
    records = list(records)
    if limit is not None and len(records) > limit:
        records = rng.sample(records, limit)
    builder = prompt_builder(cs)
    out = []
    for r in records:
        builder.clear_context()
        want = rng.randint(0, cs.k)
        picked: list[tuple[str, str, str, float]] = []
        for _ in range(4 * want):  # rejection sampling: skip the record's own task
            if len(picked) == want or not samples:
                break
            sample = samples[rng.randrange(len(samples))]
            if sample[0] != r["task"]:
                picked.append(sample)
        for _, state, action, outcome in picked:
            builder.observe(state, action, outcome)
        out.append((builder.build_prompt(r["state"]), critic_target(r["state"], r["value"])))
    return out


def train_critic(
    examples: list[tuple[str, str]],
    tokenizer: Any,
    settings: Any,
    cs: CriticSettings,
    *,
    progress: bool,
) -> tuple[Any, dict[str, Any]]:
    """SFT (next-token cross-entropy on the target tokens and eos) of a tiny LM of the same size."""
    import torch.nn.functional as F

    from qengine.train.logprobs import completion_rows
    from qengine.train.optim import adamw_with_warmup
    from qengine.train.tokenize import encode_completions

    model = tiny_lm(tokenizer, settings)
    torch.manual_seed(settings.seed)
    optimizer, scheduler, total = adamw_with_warmup(
        model.parameters(),
        learning_rate=settings.learning_rate,
        weight_decay=0.0,
        examples=len(examples),
        batch_size=cs.batch_size,
        grad_accumulation=1,
        epochs=settings.epochs,
        warmup_ratio=0.1,
    )
    rng = random.Random(settings.seed)
    order = list(range(len(examples)))
    bar = tqdm(total=total, desc="critic SFT", unit="step", disable=not progress)
    losses = []
    model.train()
    for _ in range(settings.epochs):
        rng.shuffle(order)
        epoch_losses = []
        for lo in range(0, len(order), cs.batch_size):
            chunk = [examples[i] for i in order[lo : lo + cs.batch_size]]
            batch = encode_completions(
                tokenizer, [p for p, _ in chunk], [t for _, t in chunk], max_length=cs.max_length
            )
            rows, targets, _ = completion_rows(model, batch)
            logits = model.get_output_embeddings()(rows)
            loss = F.cross_entropy(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            epoch_losses.append(loss.item())
            bar.update(1)
            bar.set_postfix(loss=f"{epoch_losses[-1]:.3f}")
        losses.append(float(np.mean(epoch_losses)))
    bar.close()
    model.eval()
    return model, {
        "examples": len(examples),
        "parameters": parameter_count(model),
        "epoch_loss": losses,
    }


def make_critic(model: Any, tokenizer: Any, cs: CriticSettings) -> Any:
    """The trained LM as a ``GenerativeCritic`` (greedy, one sample per state)."""
    from qengine.critics import GenerativeCritic

    return GenerativeCritic(
        model,
        tokenizer,
        k=cs.k,
        summary_chars=cs.summary_chars,
        max_new_tokens=cs.max_new_tokens,
        greedy=True,
        batch_size=cs.generate_batch,
        max_prompt_tokens=cs.max_length - cs.max_new_tokens,
    )


# ------------------------------------------------------------------------------ diagnostics


def validation_pairs(tree_dir: Path, *, min_q_gap: float) -> list[dict[str, Any]]:
    """One max-min sibling pair per parent, usable by every critic: the parent's rendered state
    ``prompt`` and the two ``actions`` (for Q), the two successor ``states`` (for V and the
    generative critic), their values and whether either successor ends the episode.

    ``qengine.critics.sibling_pairs`` with the Q-model's training gap ``min_q_gap``.
    """
    from qengine.critics import sibling_pairs

    return [
        {
            "prompt": p["prompt"],
            "actions": [p["chosen_action"], p["rejected_action"]],
            "states": [p["chosen"], p["rejected"]],
            "values": [p["q_chosen"], p["q_rejected"]],
            "terminal": p["terminal"],
            "task": p["task"],
        }
        for p in sibling_pairs(tree_dir, min_q_gap=min_q_gap)
    ]


def _accuracy(margin: np.ndarray) -> float:
    return float((margin > 0).mean() + 0.5 * (margin == 0).mean()) if margin.size else float("nan")


def _split_accuracy(margin: np.ndarray, pairs: list[dict]) -> dict[str, Any]:
    """Accuracy over all pairs, over pairs with a terminal successor, over the others."""
    terminal = np.array([p["terminal"] for p in pairs], dtype=bool)
    return {
        "all": _accuracy(margin),
        "with_terminal": _accuracy(margin[terminal]),
        "non_terminal": _accuracy(margin[~terminal]),
    }


def pair_accuracy_states(
    score: Callable[[list[str]], np.ndarray], pairs: list[dict]
) -> dict[str, Any]:
    """How often ``score(better successor) > score(worse successor)``; ties count half."""
    if not pairs:
        return {}
    v = np.asarray(score([p["states"][0] for p in pairs] + [p["states"][1] for p in pairs]))
    return _split_accuracy(v[: len(pairs)] - v[len(pairs) :], pairs)


def pair_accuracy_q(q_model: Any, pairs: list[dict]) -> dict[str, Any]:
    """How often ``Q(s, better action) > Q(s, worse action)``; ties count half."""
    if not pairs:
        return {}
    margin = np.array([float(np.subtract(*q_model.score(p["prompt"], p["actions"])))
                       for p in pairs])  # fmt: skip
    return _split_accuracy(margin, pairs)


def value_errors(
    score: Callable[[list[str]], np.ndarray], records: list[dict], train_mean: float
) -> dict[str, float]:
    """MAE and MSE of a critic on held-out node values, and the MSE of the constant train mean."""
    if not records:
        return {}
    y = np.array([r["value"] for r in records])
    v = np.asarray(score([r["state"] for r in records]), dtype=np.float64)
    return {
        "mae": float(np.abs(v - y).mean()),
        "mse": float(((v - y) ** 2).mean()),
        "baseline_mse": float(((train_mean - y) ** 2).mean()),
    }


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start
