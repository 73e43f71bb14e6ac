"""The step-level Q-value pipeline end to end, on the embedded default (`qengine demo`).

  1. collect: batched MCTS over `shop` training tasks with the scripted noisy-expert agent;
  2. pairs: step-level preference pairs (the best sibling by Q vs each worse one);
  3. train-q: a small causal LM trained from scratch with step-level DPO (β = 0.1); it reads
     a compact state with the instruction's words marked and opened items / selected options
     flagged (``prompt_style``);
  4. evaluate: the base agent vs the Q-guided agent (n candidates, execute argmax Q) on held-out
     test tasks, success rate and mean reward with 95% bootstrap intervals.
Everything runs on a CPU; nothing is downloaded.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:
    from .data.prompts import PromptStyle


@dataclass(frozen=True, kw_only=True)
class PipelineSettings:
    env: str = "shop"
    train_tasks: int = 500
    test_tasks: int = 100  # every held-out task of the default shop
    # Episodes per held-out task and agent: each replay of a task samples the policy afresh
    # (ScriptedPolicy seeds by how often a state was proposed for), so 3 x 100 episodes
    # narrow the confidence intervals at little cost.
    episodes_per_task: int = 3
    expert_p: float = 0.5  # the base agent: oracle action with this probability
    iterations: int = 50  # paper: 30; 50 visits more siblings (9,100 pairs instead of 5,289)
    candidates: int = 5  # n, for the search and for Q-guided selection
    # Per-step discount of the search's returns. The shop's expert recovers from almost any
    # detour, so undiscounted Q-values barely separate a detour from progress; 0.9 makes a step
    # spent going back cost something (paper: undiscounted; set 1.0 to reproduce that).
    discount: float = 0.9
    # The demo measures success (reward 1), so the search backs up success: with WebShop's
    # partial scores a near-miss purchase otherwise outvalues going back to find the right item.
    # "auto": that (1.0) for an environment whose reward is a final grade, and the raw rewards
    # (None) for one that scores progress (TextWorld's game score, TextEnv.scores_progress): on
    # harder games no rollout wins, and success alone would leave every Q at 0 and no pair.
    success_reward: float | Literal["auto"] | None = "auto"
    # Trees run all their iterations: an early stop right after the winning expansion would
    # leave the winning action's siblings unvisited, and its state without a preference pair.
    early_stop: bool = False
    # Pairs: the best sibling vs EACH worse one (not only the worst): the winning purchase is
    # then also contrasted with re-selecting an option, not only with leaving the page.
    pair_mode: Literal["paper", "max_min", "max_all"] = "max_all"
    min_q_gap: float = 0.1
    # How the Q-model sees a state: the compact prompt with the instruction's words marked in the
    # observation and the candidate, a click on an item already opened / an option already
    # selected flagged, and prices within the instruction's budget marked
    # (qengine.data.prompts.style_actions). Measured on the demo's pairs, 4 training seeds each:
    # the price marks raise Q-guided success from ~67% to ~71% (a fifth of the unmarked model's
    # item clicks went to items over the budget).
    prompt_style: PromptStyle = "compact-marked-visited-price"
    hidden_size: int = 128  # measured: 64 -> 128 helps; 192 at this learning rate does not
    epochs: int = 4  # measured: 6 epochs no better than 4 (held-out pair accuracy ~0.70)
    learning_rate: float = 2e-3
    max_length: int = 256
    seed: int = 0


def search_success_reward(s: PipelineSettings, env: Any = None) -> float | None:
    """``s.success_reward`` with ``"auto"`` resolved for ``env``: ``None`` (raw rewards) when
    the environment scores progress (``env.scores_progress``), else ``1.0`` (also when ``env``
    is not given)."""
    if s.success_reward != "auto":
        return s.success_reward
    return None if getattr(env, "scores_progress", False) else 1.0


def collect_settings(s: PipelineSettings, env: Any = None) -> Any:
    """Step 1's search settings: ``CollectSettings`` of ``s`` (iterations, n, discount,
    success reward resolved for ``env`` (see :func:`search_success_reward`), early stop)."""
    from dataclasses import replace

    from .search import CollectSettings
    from .search.driver import DEFAULT_SEARCH_CONFIG

    return CollectSettings(
        iterations=s.iterations,
        candidates=s.candidates,
        success_reward=search_success_reward(s, env),
        early_stop_reward=1.0 if s.early_stop else None,
        config=replace(DEFAULT_SEARCH_CONFIG, discount=s.discount),
    )


def preference_pairs(tree_dir: str | Path, s: PipelineSettings) -> list[dict[str, Any]]:
    """Step 2: sibling pairs (``s.pair_mode``) with a Q gap of at least ``s.min_q_gap``."""
    from .data import build_pairs

    return build_pairs(tree_dir, mode=s.pair_mode, min_q_gap=s.min_q_gap)


def q_model_texts(records: list[dict[str, Any]], s: PipelineSettings | None = None) -> list[str]:
    """The texts a Q-model sees (styled prompt, chosen, rejected): its tokenizer's corpus."""
    from .data.prompts import styled_corpus

    return styled_corpus(records, (s or PipelineSettings()).prompt_style)


def train_q_model(
    records: list[dict[str, Any]],
    s: PipelineSettings,
    output_dir: str | Path,
    *,
    tokenizer: Any = None,
    progress: bool = True,
) -> dict[str, Any]:
    """Step 3: a tiny Llama trained from scratch with step-level DPO, saved to ``output_dir``.

    ``tokenizer``: a word-level tokenizer to use (default: one built on ``q_model_texts``).
    Returns ``train_step_dpo``'s history.
    """
    from .models import build_word_tokenizer, tiny_causal_lm
    from .train import StepDPOConfig, train_step_dpo

    if tokenizer is None:
        tokenizer = build_word_tokenizer(q_model_texts(records, s))
    model = tiny_causal_lm(tokenizer, hidden_size=s.hidden_size, seed=s.seed)
    config = StepDPOConfig(
        num_train_epochs=s.epochs,
        learning_rate=s.learning_rate,
        per_device_train_batch_size=16,
        max_length=s.max_length,
        prompt_style=s.prompt_style,
        seed=s.seed,
    )
    return train_step_dpo(
        model, tokenizer, records, config=config, output_dir=output_dir, progress=progress
    )


def run_pipeline(
    settings: PipelineSettings | None = None,
    *,
    out: str | Path = "demo-out",
    progress: bool = True,
    log: Any = print,
) -> dict[str, Any]:
    """Run the four steps and write everything under ``out``; returns the results dict."""
    import torch

    from .agents import (
        BaseAgent,
        QGuidedAgent,
        QValueModel,
        format_table,
        plot_results,
        run_episodes,
    )
    from .data import plot_q_distributions, q_gap_summary, save_records
    from .envs import make_env
    from .policies import ScriptedPolicy
    from .search import collect

    s = settings or PipelineSettings()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(s.seed)
    env = make_env(s.env)
    timings: dict[str, float] = {}

    start = time.perf_counter()
    log(f"[1/4] collect: MCTS over {s.train_tasks} {s.env} training tasks")
    stats = collect(
        env,
        ScriptedPolicy(env, p=s.expert_p, seed=s.seed),
        env.task_ids("train")[: s.train_tasks],
        settings=collect_settings(s, env),
        out_dir=out,
        progress=progress,
    )
    timings["collect_s"] = time.perf_counter() - start

    start = time.perf_counter()
    records = preference_pairs(out, s)
    if not records:
        raise RuntimeError("the search produced no preference pair; raise train_tasks")
    save_records(records, out / "pairs.jsonl")
    plot_q_distributions(records, out / "q_distributions.png")
    log(f"[2/4] pairs: {json.dumps(q_gap_summary(records))}")
    timings["pairs_s"] = time.perf_counter() - start

    start = time.perf_counter()
    log(f"[3/4] train-q: step-level DPO on {len(records)} pairs")
    history = train_q_model(records, s, out / "qmodel", progress=progress)
    timings["train_s"] = time.perf_counter() - start

    start = time.perf_counter()
    log(
        f"[4/4] evaluate: base vs Q-guided (plain and no repeats) on {s.test_tasks} held-out "
        f"tasks x {s.episodes_per_task} episodes"
    )
    q_model = QValueModel.from_pretrained(out / "qmodel", device="cpu")
    tasks = env.task_ids("test")[: s.test_tasks] * s.episodes_per_task

    def actor() -> ScriptedPolicy:
        # each agent drives its own copy of the same seeded actor: the same samples for all
        return ScriptedPolicy(env, p=s.expert_p, seed=s.seed + 1)

    agents = [
        BaseAgent(actor()),
        QGuidedAgent(actor(), q_model, s.candidates),
        QGuidedAgent(actor(), q_model, s.candidates, avoid_repeats=True),
    ]
    results = [run_episodes(env, agent, tasks, progress=progress) for agent in agents]
    timings["evaluate_s"] = time.perf_counter() - start
    plot_results(results, out / "agents.png")
    summary = {
        "settings": asdict(s),
        "agents": {
            r.agent: {k: v for k, v in asdict(r).items() if k != "rewards"} for r in results
        },
        "q_model": {"eval_before": history["eval_before"], "eval_after": history["eval_after"]},
        "search": {
            "trees": stats.trees,
            "leaves": stats.leaves,
            "mean_best_reward": sum(stats.best_rewards) / max(len(stats.best_rewards), 1),
            "engine_overhead": stats.engine_overhead,
        },
        "pairs": len(records),
        "timings_s": timings,
    }
    base, guided, no_repeats = (r.success_rate for r in results)
    summary["q_guided_over_base_success"] = guided / base if base > 0 else None
    summary["q_guided_no_repeats_over_base_success"] = no_repeats / base if base > 0 else None
    (out / "results.json").write_text(json.dumps(summary, indent=2))
    log(format_table(results))
    return summary
