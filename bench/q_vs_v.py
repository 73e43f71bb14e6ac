"""The Q-vs-V study: on the same MCTS data, a step-level Q-model vs a state-value model vs a
generative critic of the same size, guiding the same noisy actor on held-out tasks.

Per environment (``shop``, ``hotpot``, ``textworld``):

  1. collect: batched MCTS (``qengine.search.collect``) with the scripted noisy expert over the
     training tasks, and over a few extra *validation* training-split tasks no model trains on;
  2. train three tiny Llamas of the same size (one shared word tokenizer) from scratch:
     Q — step-level DPO on max-min sibling pairs (``qengine.pipeline`` steps 2-3, its settings);
     V — ``ValueModel`` regression on the MCTS node values (``value_records``);
     C — a generative critic, SFT to write ``<reasoning> Value: <v>`` after
         ``GenerativeCritic``'s prompt, with in-context samples of the actor;
  3. diagnose every critic on the validation trees (sibling-pair ranking accuracy, value errors);
  4. evaluate agents on held-out test tasks, all driving the same actor
     (``ScriptedPolicy(p=expert_p)``, n candidates per decision): base, best-of-n by log-prob,
     Q-guided, V-guided (critic scores every next state), V-guided with the environment's reward
     on terminal next states, generative-critic-guided (in-context: the agent's recent episodes).

Writes the JSON (machine, settings, per env: data, models, diagnostics, per-agent success and
mean reward with 95% bootstrap CIs, costs per decision, wall times), the markdown report and
two plots next to it.

Usage: python bench/q_vs_v.py [--envs shop,hotpot,textworld] [--train-tasks N] [--test-tasks N]
                              [--quick] [--json PATH] [--md PATH] [--seed S] [--work DIR]
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import os
import platform
import random
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

import q_vs_v_models as M
import q_vs_v_report as R

RESULTS = Path(__file__).resolve().parent / "results"
ENVS = ("shop", "hotpot", "textworld")
# (training trees, validation trees, test tasks) per environment: the full run and --quick.
SIZES = {"shop": (450, 50, 100), "hotpot": (450, 50, 100), "textworld": (16, 4, 30)}
QUICK_SIZES = {"shop": (16, 4, 6), "hotpot": (24, 4, 6), "textworld": (4, 1, 2)}
# TextWorld's default 50-step cap lets the p = 0.5 actor win every level-5 coin-collector game
# (base 1.00 on 20 test games, nothing left to select for); a budget of twice the expert's 5-step
# plan leaves it at 0.75. Fixed from the base agent alone, before any critic ran at it.
ENV_KWARGS: dict[str, dict[str, Any]] = {
    "textworld": {"challenge": "tw-coin_collector", "max_steps": 10}
}
VAL_CAP = 200  # validation pairs / states per diagnostic (the generative critic generates)
AGENTS = (
    "base",
    "best-of-n (log-prob)",
    "Q-guided",
    "V-guided",
    "V-guided (+env reward)",
    "GenCritic-guided",
)


# ------------------------------------------------------------------------------ settings
def pipeline_settings(env: str, train: int, test: int, seed: int, quick: bool) -> Any:
    """``qengine.pipeline.PipelineSettings`` defaults (expert p, search iterations, candidates,
    min Q gap, hidden size, epochs, lr, max length), with this env and these sizes, so changes
    to the pipeline's Q-model settings flow into the study."""
    from qengine.pipeline import PipelineSettings

    s = dataclasses.replace(
        PipelineSettings(), env=env, train_tasks=train, test_tasks=test, seed=seed
    )
    if quick:
        s = dataclasses.replace(s, iterations=min(s.iterations, 10), epochs=1)
    return s


def make_env(name: str, train: int, val: int, test: int, *, progress: bool) -> Any:
    """The environment; TextWorld with just enough games, generated here one at a time.

    TextWorld's grammar parser (tatsu) is not thread-safe: games generated, or loaded for the
    first time in the process, inside ``collect``'s worker threads fail (``FailedLeftRecursion``,
    ``TypeError``). So every game is generated (and cached) here, and one game is loaded in this
    thread, which fills TextWorld's process-wide cache of the parsed game logic
    (``GameLogic.parse`` is an ``lru_cache``) shared by all games of the challenge.
    """
    from tqdm.auto import tqdm

    from qengine.envs import make_env as make

    if name != "textworld":
        return make(name, **ENV_KWARGS.get(name, {}))
    env = make("textworld", num_train=train + val, num_test=test, **ENV_KWARGS[name])
    tasks = env.task_ids("train") + env.task_ids("test")
    for task in tqdm(tasks, desc="textworld games", unit="game", disable=not progress):
        env.game_file(task)
    env.reset(tasks[0])
    return env


def machine() -> dict[str, Any]:
    """``bench/mcts.py``'s machine record + library versions and torch threads."""
    import torch
    import transformers
    from machine_info import machine as base_machine

    info = base_machine()
    info.update(torch=torch.__version__, transformers=transformers.__version__)
    info["torch_threads"] = torch.get_num_threads()
    info["loadavg_at_start"] = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    try:
        import textworld

        info["textworld"] = textworld.__version__
    except ImportError:
        info["textworld"] = None
    return info


# ----------------------------------------------------------------------------- agents
def evaluate_agent(
    env: Any,
    agent: Any,
    tasks: Sequence[str],
    *,
    critic: Any = None,
    progress: bool,
) -> tuple[Any, float]:
    """``run_episodes`` over ``tasks``; as each episode ends, a generative ``critic`` observes it
    (the state before the last action, that action, the episode's return), so later decisions
    see the actor's most recent outcomes in context. Returns the ``AgentResult`` and wall time."""
    from qengine.agents import run_episodes
    from qengine.data.prompts import render_prompt

    def feed(final: Any) -> None:
        if critic is None or not final.history:
            return
        before = render_prompt(final.instruction, final.first_observation, final.history[:-1])
        critic.observe(before, final.history[-1][0], final.total_reward)

    start = time.perf_counter()
    result = run_episodes(env, agent, tasks, progress=progress, on_episode_end=feed)
    return result, time.perf_counter() - start


def agent_row(result: Any, wall: float, agent: Any) -> dict[str, Any]:
    """Metrics + costs of one agent (see ``COST_CONVENTION``)."""
    decisions = round(result.mean_steps * result.tasks)
    row: dict[str, Any] = {
        k: v for k, v in dataclasses.asdict(result).items() if k not in ("rewards", "agent")
    }
    row.update(decisions=decisions, wall_s=wall, ms_per_decision=1e3 * wall / max(decisions, 1))
    stats = getattr(agent, "stats", None)
    if hasattr(agent, "env_steps_per_decision"):  # VGuidedAgent
        row["env_steps_per_decision"] = agent.env_steps_per_decision
        row["sequences_per_decision"] = agent.model_calls_per_decision
        row["counters"] = dict(stats)
    elif hasattr(agent, "candidates_scored_per_decision"):  # QGuidedAgent
        row["env_steps_per_decision"] = 0.0
        row["sequences_per_decision"] = agent.candidates_scored_per_decision
        row["counters"] = dict(stats)
    else:
        row["env_steps_per_decision"] = 0.0
        row["sequences_per_decision"] = 0.0
    row["rewards"] = result.rewards
    return row


# ---------------------------------------------------------------------------- one env
def run_env(
    name: str,
    sizes: tuple[int, int, int],
    args: argparse.Namespace,
    work: Path,
    log: Callable[[str], None],
) -> dict[str, Any]:
    import torch

    from qengine.agents import BaseAgent, BestOfNLogprobAgent, QGuidedAgent, QValueModel
    from qengine.critics import VGuidedAgent, value_records
    from qengine.data.prompts import compact_prompt
    from qengine.policies import ScriptedPolicy
    from qengine.search import collect

    train_n, val_n, test_n = sizes
    s = pipeline_settings(name, train_n, test_n, args.seed, args.quick)
    cs = M.CriticSettings(max_records=300 if args.quick else M.CriticSettings().max_records)
    progress = not args.no_progress
    out = work / name
    timings: dict[str, float] = {}
    torch.manual_seed(s.seed)
    env = make_env(name, train_n, val_n, test_n, progress=progress)
    ids = env.task_ids("train")
    if len(ids) < train_n + val_n:
        raise SystemExit(f"{name} has {len(ids)} training tasks; asked for {train_n} + {val_n}")
    train_ids, val_ids = ids[:train_n], ids[train_n : train_n + val_n]
    test_ids = env.task_ids("test")[:test_n]

    # 1. collect ------------------------------------------------------------------------
    from qengine.pipeline import collect_settings as pipeline_collect_settings

    log(f"[{name}] 1/4 collect: MCTS over {train_n} training + {val_n} validation tasks")
    search = {}
    for split, tasks in (("train", train_ids), ("val", val_ids)):
        stats, timings[f"collect_{split}_s"] = M.timed(
            lambda tasks=tasks, split=split: collect(
                env,
                ScriptedPolicy(env, p=s.expert_p, seed=s.seed),
                tasks,
                settings=pipeline_collect_settings(s),
                out_dir=out / split,
                progress=progress,
            )
        )
        search[split] = {
            "trees": stats.trees,
            "leaves": stats.leaves,
            "env_steps": stats.env_steps,
            "mean_best_reward": float(np.mean(stats.best_rewards)) if stats.best_rewards else None,
        }

    # 2. data and models ----------------------------------------------------------------
    start = time.perf_counter()
    pairs = M.q_records(out / "train", s)
    states = value_records(out / "train", min_visits=1)
    samples = M.terminal_samples(out / "train")
    examples = M.critic_examples(states, samples, cs, seed=s.seed, limit=cs.max_records)
    rng = random.Random(s.seed)

    def cap(records: list[dict]) -> list[dict]:
        return rng.sample(records, VAL_CAP) if len(records) > VAL_CAP else records

    val_pairs = cap(M.validation_pairs(out / "val", min_q_gap=s.min_q_gap))
    val_states = cap(value_records(out / "val", min_visits=1))
    if not pairs or not states:
        raise SystemExit(f"{name}: the search gave no pairs or states; raise --train-tasks")
    texts = M.q_texts(pairs, s) + [compact_prompt(r["state"]) for r in states]
    tokenizer = M.shared_tokenizer(texts + [p + " " + t for p, t in examples])
    timings["data_s"] = time.perf_counter() - start
    log(
        f"[{name}] 2/4 data: {len(pairs)} pairs, {len(states)} states, {len(examples)} critic "
        f"examples, vocabulary {len(tokenizer)}"
    )

    models: dict[str, Any] = {}
    models["q"], timings["train_q_s"] = M.timed(
        lambda: M.train_q(pairs, tokenizer, s, out / "qmodel", progress=progress)
    )
    (vm, models["v"]), timings["train_v_s"] = M.timed(
        lambda: M.train_v(states, tokenizer, s, out / "vmodel", progress=progress)
    )
    (lm, models["critic"]), timings["train_critic_s"] = M.timed(
        lambda: M.train_critic(examples, tokenizer, s, cs, progress=progress)
    )
    models["critic"]["settings"] = dataclasses.asdict(cs)
    q_model = QValueModel.from_pretrained(out / "qmodel", device="cpu")
    critic = M.make_critic(lm, tokenizer, cs)

    # 3. diagnostics on the validation trees ---------------------------------------------
    log(f"[{name}] 3/4 diagnostics on {val_n} validation trees")
    start = time.perf_counter()
    train_mean = float(np.mean([r["value"] for r in states]))

    def critic_score(texts: list[str], context: bool = True) -> np.ndarray:
        """The critic with K random finished training episodes in context (as in its SFT)."""
        critic.clear_context()
        if context:
            for _, state, action, outcome in rng.sample(samples, min(cs.k, len(samples))):
                critic.observe(state, action, outcome)
        return critic.score(texts)

    critic.reset_stats()
    diagnostics = {
        "val_pairs": len(val_pairs),
        "val_pairs_with_terminal": sum(p["terminal"] for p in val_pairs),
        "val_states": len(val_states),
        "q_pair_accuracy": M.pair_accuracy_q(q_model, val_pairs),
        "v_pair_accuracy": M.pair_accuracy_states(vm.score, val_pairs),
        "critic_pair_accuracy": M.pair_accuracy_states(critic_score, val_pairs),
        "v_values": M.value_errors(vm.score, val_states, train_mean),
        "critic_values": M.value_errors(critic_score, val_states, train_mean),
        "critic_values_no_context": M.value_errors(
            lambda t: critic_score(t, context=False), val_states, train_mean
        ),
        "critic_parse_failures": critic.parse_failures,
        "critic_generations": critic.generations,
        "critic_example_output": critic.last_outputs[0][0] if critic.last_outputs else None,
    }
    timings["diagnostics_s"] = time.perf_counter() - start

    # 4. agents on held-out test tasks --------------------------------------------------
    log(f"[{name}] 4/4 evaluate {len(AGENTS)} agents on {test_n} held-out test tasks")

    def actor() -> Any:  # a fresh copy of the same actor: same candidates in the same states
        return ScriptedPolicy(env, p=s.expert_p, seed=s.seed + 1)

    n = s.candidates
    critic.clear_context()
    critic.reset_stats()
    agents = [
        BaseAgent(actor(), name=AGENTS[0]),
        BestOfNLogprobAgent(actor(), n, name=AGENTS[1]),
        QGuidedAgent(actor(), q_model, n, name=AGENTS[2]),
        VGuidedAgent(actor(), vm, env, n, name=AGENTS[3], terminal_value="model"),
        VGuidedAgent(actor(), vm, env, n, name=AGENTS[4], terminal_value="reward"),
        VGuidedAgent(actor(), critic, env, n, name=AGENTS[5], terminal_value="model"),
    ]
    rows: dict[str, Any] = {}
    for agent in agents:
        is_critic = agent.name == AGENTS[5]
        result, wall = evaluate_agent(
            env,
            agent,
            test_ids,
            critic=critic if is_critic else None,
            progress=progress,
        )
        rows[agent.name] = agent_row(result, wall, agent)
        if is_critic:
            rows[agent.name].update(
                parse_failures=critic.parse_failures,
                generations=critic.generations,
                fallbacks=critic.fallbacks,
                clipped=critic.clipped,
                status_counts=dict(critic.status_counts),
            )
        timings[f"eval_{agent.name}_s"] = wall
        log(
            f"[{name}]   {agent.name:<24} success {result.success_rate:.2f} "
            f"[{result.success_ci[0]:.2f}, {result.success_ci[1]:.2f}]  reward "
            f"{result.mean_reward:.3f}  {rows[agent.name]['ms_per_decision']:.1f} ms/decision"
        )
        if hasattr(agent, "close"):
            agent.close()
    env.close()
    return {
        "settings": dataclasses.asdict(s),
        "env_kwargs": ENV_KWARGS.get(name, {}),
        "tasks": {"train": train_n, "val": val_n, "test": test_n},
        "search": search,
        "data": {
            "pairs": len(pairs),
            "states": len(states),
            "critic_examples": len(examples),
            "in_context_samples": len(samples),
            "vocabulary": len(tokenizer),
        },
        "models": models,
        "diagnostics": diagnostics,
        "agents": rows,
        "timings_s": timings,
    }


# --------------------------------------------------------------------------------- main
def parse_args(argv: Sequence[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--envs", default=",".join(ENVS), help="comma-separated (default: all three)")
    p.add_argument("--train-tasks", type=int, help="training trees per env (default per env)")
    p.add_argument("--test-tasks", type=int, help="held-out test tasks per env")
    p.add_argument("--quick", action="store_true", help="tiny sizes (a smoke run, ~1 min)")
    p.add_argument("--json", type=Path, help="default bench/results/q_vs_v.json (quick: cwd)")
    p.add_argument("--md", type=Path, help="default bench/results/q_vs_v.md (quick: cwd)")
    p.add_argument("--seed", type=int, default=0, help="seed of the actor, search and models")
    p.add_argument("--work", type=Path, help="keep trees and models here (default: a temp dir)")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    args = p.parse_args(argv)
    args.envs = [e.strip() for e in args.envs.split(",") if e.strip()]
    bad = [e for e in args.envs if e not in ENVS]
    if bad or not args.envs:
        p.error(f"unknown env(s) {bad}; choose from {', '.join(ENVS)}")
    for key in ("train_tasks", "test_tasks"):
        if getattr(args, key) is not None and getattr(args, key) < 1:
            p.error(f"--{key.replace('_', '-')} must be >= 1")
    stem = "q_vs_v-quick" if args.quick else "q_vs_v"
    where = Path.cwd() if args.quick else RESULTS
    args.json = args.json or where / f"{stem}.json"
    args.md = args.md or where / f"{stem}.md"
    return args


def sizes_for(env: str, args: argparse.Namespace) -> tuple[int, int, int]:
    train, val, test = (QUICK_SIZES if args.quick else SIZES)[env]
    if args.train_tasks is not None:
        train, val = args.train_tasks, max(2 if not args.quick else 1, args.train_tasks // 10)
    if args.test_tasks is not None:
        test = args.test_tasks
    return train, val, test


def git_state() -> dict[str, Any]:
    """The source commit the run used and whether qengine/ or bench/ had local changes."""
    import subprocess

    root = Path(__file__).resolve().parents[1]

    def git(*a: str) -> str:
        out = subprocess.run(["git", *a], cwd=root, capture_output=True, text=True, check=False)
        return out.stdout.strip()

    try:
        return {
            "commit": git("rev-parse", "HEAD") or None,
            "dirty": bool(git("status", "--porcelain", "--", "qengine", "bench")),
        }
    except OSError:
        return {"commit": None, "dirty": None}


def finite(x: Any) -> Any:
    """JSON-safe: NaN / inf become None (strict JSON)."""
    if isinstance(x, float) and not math.isfinite(x):
        return None
    if isinstance(x, dict):
        return {k: finite(v) for k, v in x.items()}
    if isinstance(x, (list, tuple)):
        return [finite(v) for v in x]
    return x


def main(argv: Sequence[str] | None = None) -> int:
    import torch

    args = parse_args(argv)
    torch.set_num_threads(min(torch.get_num_threads(), os.cpu_count() or 1))
    work = args.work or Path(tempfile.mkdtemp(prefix="q_vs_v-"))
    start = time.perf_counter()
    report: dict[str, Any] = {
        "benchmark": "q_vs_v",
        "command": " ".join(["python bench/q_vs_v.py", *(sys.argv[1:] if argv is None else argv)]),
        "machine": machine(),
        "quick": args.quick,
        "seed": args.seed,
        "agents": list(AGENTS),
        "conventions": R.CONVENTIONS,
        "envs": {},
    }
    try:
        for name in args.envs:
            env_start = time.perf_counter()
            row = run_env(name, sizes_for(name, args), args, work, print)
            row["wall_s"] = time.perf_counter() - env_start
            report["envs"][name] = row
    finally:
        if args.work is None:
            shutil.rmtree(work, ignore_errors=True)
    report["wall_s"] = time.perf_counter() - start
    report["git"] = git_state()
    report["platform"] = platform.platform()
    report = finite(report)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2))
    print(f"wrote {args.json}")
    md = R.write_markdown(report, args.md)
    print(f"wrote {md} and its plots")
    print(R.console_table(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
