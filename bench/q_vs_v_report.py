"""The Q-vs-V study's report: tables, paired differences, plots and the markdown file.

Everything here reads the JSON report that ``bench/q_vs_v.py`` builds (nothing is recomputed
except paired bootstrap intervals of differences, from the per-task rewards stored there).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

COST_CONVENTION = (
    "critic sequences per decision: the (state) or (state, action) sequences a LEARNED critic "
    "reads to pick one action. Q-guided: the n candidate actions of the state (one batched call "
    "on a shared, KV-cached state prefix; each sequence goes through the Q-model and its frozen "
    "DPO reference). V-guided: the next states it scores (n, minus terminal next states valued by "
    "the environment's reward in the '+env reward' variant). GenCritic-guided: the next states it "
    "scores x samples per state (1, greedy), each a generated text of up to max_new_tokens. "
    "Base and best-of-n (log-prob) read no critic (0). The actor's own sampling (1 candidate for "
    "base, n for every other agent) is not counted."
)
ENV_STEP_CONVENTION = (
    "environment steps per decision: steps taken in a private copy of the environment to pick "
    "one action (lookahead: one per candidate; replay: bringing the copy to the state when no "
    "snapshot is cached), not counting the executed step. Only the V-guided agents step."
)
CONVENTIONS = {
    "decision": "one action chosen in one state of one episode (steps summed over test tasks)",
    "sequences_per_decision": COST_CONVENTION,
    "env_steps_per_decision": ENV_STEP_CONVENTION,
    "success": "an episode whose total reward is >= 1 (shop: a perfect purchase; hotpot: exact "
    "match; textworld: game won)",
    "ci": "95% percentile bootstrap of the mean over test tasks (qengine.agents.bootstrap_ci, "
    "2000 resamples); differences: paired bootstrap over the same tasks",
    "wall_s": "wall time of the agent's evaluation episodes (actor + environment + critic)",
}
CONTRASTS = (
    ("Q-guided", "base"),
    ("V-guided", "base"),
    ("V-guided", "Q-guided"),
    ("V-guided (+env reward)", "V-guided"),
    ("GenCritic-guided", "V-guided"),
    ("best-of-n (log-prob)", "base"),
)
COLORS = ["#888888", "#b58900", "#c0392b", "#2e86c1", "#85c1e9", "#27ae60"]


def paired_diff(
    a: list[float], b: list[float], *, samples: int = 2000, seed: int = 0
) -> tuple[float, float, float]:
    """Mean of a − b over the same tasks and its 95% paired bootstrap interval."""
    d = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if d.size == 0:
        return (float("nan"),) * 3
    rng = np.random.default_rng(seed)
    means = d[rng.integers(0, d.size, size=(samples, d.size))].mean(axis=1)
    lo, hi = np.quantile(means, [0.025, 0.975])
    return float(d.mean()), float(lo), float(hi)


def _ci(ci: Any) -> str:
    return "n/a" if ci is None or ci[0] is None else f"[{ci[0]:.2f}, {ci[1]:.2f}]"


def _num(x: Any, fmt: str = ".2f") -> str:
    return "n/a" if x is None else format(x, fmt)


def agent_table(env: dict[str, Any]) -> list[str]:
    lines = [
        "| agent | success | 95% CI | mean reward | 95% CI | steps / episode | "
        "env steps / decision | critic sequences / decision | ms / decision | wall s |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in env["agents"].items():
        lines.append(
            f"| {name} | {r['success_rate']:.2f} | {_ci(r['success_ci'])} | "
            f"{r['mean_reward']:.3f} | {_ci(r['reward_ci'])} | {r['mean_steps']:.1f} | "
            f"{r['env_steps_per_decision']:.2f} | {r['sequences_per_decision']:.2f} | "
            f"{r['ms_per_decision']:.1f} | {r['wall_s']:.1f} |"
        )
    return lines


def contrast_table(env: dict[str, Any]) -> list[str]:
    lines = [
        "| difference (paired, same tasks) | success | 95% CI | mean reward | 95% CI |",
        "|---|---|---|---|---|",
    ]
    agents = env["agents"]
    for a, b in CONTRASTS:
        if a not in agents or b not in agents:
            continue
        ra, rb = agents[a]["rewards"], agents[b]["rewards"]
        s = paired_diff([float(x >= 1.0) for x in ra], [float(x >= 1.0) for x in rb])
        m = paired_diff(ra, rb)
        lines.append(
            f"| {a} − {b} | {s[0]:+.2f} | [{s[1]:+.2f}, {s[2]:+.2f}] | {m[0]:+.3f} | "
            f"[{m[1]:+.2f}, {m[2]:+.2f}] |"
        )
    return lines


def _acc(d: dict[str, Any] | None) -> str:
    d = d or {}
    return " | ".join(_num(d.get(k)) for k in ("all", "non_terminal", "with_terminal"))


def model_table(env: dict[str, Any]) -> list[str]:
    m, d, t = env["models"], env["diagnostics"], env["timings_s"]
    v_val, c_val = d.get("v_values") or {}, d.get("critic_values") or {}
    c_free = d.get("critic_values_no_context") or {}
    q_after, v_after = m["q"]["eval_after"], m["v"]["eval_after"]
    n, n_t = d["val_pairs"], d["val_pairs_with_terminal"]
    return [
        f"Validation: {n} max-min sibling pairs ({n - n_t} between non-terminal successors, "
        f"{n_t} with a terminal one) and {d['val_states']} node values from the validation "
        "trees; the same pairs for all three critics (Q ranks the two actions from the parent "
        "state, V and the generative critic rank the two successor states).",
        "",
        "| critic | trained on | parameters | own held-out metric (trainer's split) | "
        "val pair acc. | non-terminal | with terminal | val MAE | val MSE (constant "
        f"{_num(v_val.get('baseline_mse'), '.3f')}) | train s |",
        "|---|---|---|---|---|---|---|---|---|---|",
        f"| Q (step-level DPO) | {m['q']['pairs']} pairs | {m['q']['parameters']:,} (+ frozen "
        f"reference) | pair accuracy {_num(q_after.get('accuracy'))} (before "
        f"{_num(m['q']['eval_before'].get('accuracy'))}) | {_acc(d['q_pair_accuracy'])} | — | — "
        f"| {t['train_q_s']:.0f} |",
        f"| V (regression) | {m['v']['states']} states | {m['v']['parameters']:,} + "
        f"{m['v']['head_parameters']} head | MSE {_num(v_after.get('mse'), '.3f')} (constant "
        f"{_num(v_after.get('baseline_mse'), '.3f')}) | {_acc(d['v_pair_accuracy'])} | "
        f"{_num(v_val.get('mae'), '.3f')} | {_num(v_val.get('mse'), '.3f')} | "
        f"{t['train_v_s']:.0f} |",
        f"| generative critic (SFT) | {m['critic']['examples']} prompts | "
        f"{m['critic']['parameters']:,} | final SFT loss "
        f"{_num(m['critic']['epoch_loss'][-1], '.3f')} | {_acc(d['critic_pair_accuracy'])} | "
        f"{_num(c_val.get('mae'), '.3f')} (no context {_num(c_free.get('mae'), '.3f')}) | "
        f"{_num(c_val.get('mse'), '.3f')} (no context {_num(c_free.get('mse'), '.3f')}) | "
        f"{t['train_critic_s']:.0f} |",
    ]


# ------------------------------------------------------------------------------ plots
def plot(report: dict[str, Any], success_path: Path, cost_path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    envs = list(report["envs"])
    agents = report["agents"]
    fig, axes = plt.subplots(2, len(envs), figsize=(4.2 * len(envs), 6.4), squeeze=False)
    for j, env in enumerate(envs):
        rows = report["envs"][env]["agents"]
        for i, (key, ci, label) in enumerate(
            (("success_rate", "success_ci", "success rate"), ("mean_reward", "reward_ci", "reward"))
        ):
            ax = axes[i][j]
            names = [a for a in agents if a in rows]
            v = np.array([rows[a][key] for a in names])
            lo = np.array([rows[a][ci][0] if rows[a][ci][0] is not None else x
                           for a, x in zip(names, v, strict=True)])  # fmt: skip
            hi = np.array([rows[a][ci][1] if rows[a][ci][1] is not None else x
                           for a, x in zip(names, v, strict=True)])  # fmt: skip
            x = np.arange(len(names))
            ax.bar(x, v, yerr=[v - lo, hi - v], capsize=3, color=COLORS[: len(names)])
            ax.set_ylim(0, 1.05)
            ax.set_xticks(x, names, rotation=35, ha="right", fontsize=7)
            ax.set_ylabel(label)
            if i == 0:
                tasks = next(iter(rows.values()))["tasks"]
                ax.set_title(f"{env} ({tasks} held-out tasks)")
    fig.suptitle("Q vs V vs generative critic guiding the same actor (95% bootstrap CI)")
    fig.tight_layout()
    fig.savefig(success_path, dpi=110)
    plt.close(fig)

    fig, axes = plt.subplots(1, len(envs), figsize=(4.2 * len(envs), 3.8), squeeze=False)
    for j, env in enumerate(envs):
        ax = axes[0][j]
        rows = report["envs"][env]["agents"]
        for k, a in enumerate(agents):
            if a not in rows:
                continue
            r = rows[a]
            y, (lo, hi) = r["success_rate"], r["success_ci"]
            err = None if lo is None else [[y - lo], [hi - y]]
            ax.errorbar(max(r["ms_per_decision"], 1e-2), y, yerr=err, fmt="o", color=COLORS[k],
                        capsize=3, label=a)  # fmt: skip
        if j == 0:
            ax.legend(fontsize=7, loc="best")
        ax.set_xscale("log")
        ax.set_xlabel("wall ms per decision (log)")
        ax.set_ylabel("success rate")
        ax.set_ylim(-0.05, 1.05)
        ax.set_title(env)
    fig.suptitle("success (95% CI) vs wall time per decision")
    fig.tight_layout()
    fig.savefig(cost_path, dpi=110)
    plt.close(fig)


# ------------------------------------------------------------------------------- text
def _verdict(env: dict[str, Any], a: str, b: str) -> str:
    agents = env["agents"]
    if a not in agents or b not in agents:
        return ""
    ra, rb = agents[a]["rewards"], agents[b]["rewards"]
    s, lo, hi = paired_diff([float(x >= 1.0) for x in ra], [float(x >= 1.0) for x in rb])
    if lo > 0:
        word = "better than"
    elif hi < 0:
        word = "worse than"
    else:
        word = "not distinguishable from"
    return f"{a} is {word} {b} in success ({s:+.2f}, paired 95% CI [{lo:+.2f}, {hi:+.2f}])"


def findings(report: dict[str, Any]) -> list[str]:
    out = []
    for name, env in report["envs"].items():
        parts = [_verdict(env, a, b) for a, b in CONTRASTS[:5]]
        d = env["diagnostics"]

        def acc(key: str, sub: str, d: dict[str, Any] = d) -> str:
            return _num((d.get(key) or {}).get(sub))

        parts.append(
            "validation pairs ranked right, between non-terminal successors / with a terminal "
            f"one: Q {acc('q_pair_accuracy', 'non_terminal')} / "
            f"{acc('q_pair_accuracy', 'with_terminal')}, V "
            f"{acc('v_pair_accuracy', 'non_terminal')} / {acc('v_pair_accuracy', 'with_terminal')}"
            f", generative critic {acc('critic_pair_accuracy', 'non_terminal')} / "
            f"{acc('critic_pair_accuracy', 'with_terminal')} (0.5 = chance)"
        )
        base = env["agents"].get("base")
        if base:
            slow = [
                f"{a} {r['mean_steps']:.1f}"
                for a, r in env["agents"].items()
                if a != "base" and r["mean_steps"] > 1.25 * base["mean_steps"]
            ]
            if slow:
                parts.append(
                    f"episodes are longer than base's {base['mean_steps']:.1f} steps for "
                    + ", ".join(slow)
                    + " (the selected actions loop or stall until the step cap)"
                )
        gc = env["agents"].get("GenCritic-guided", {})
        if gc:
            parts.append(
                f"the generative critic's value line failed to parse in "
                f"{gc.get('parse_failures', 0)} of {gc.get('generations', 0)} generations "
                f"during its episodes ({gc.get('fallbacks', 0)} states fell back to the "
                "in-context mean)"
            )
        out.append(f"- **{name}**: " + "; ".join(p for p in parts if p) + ".")
    return out


STATIC = """\
## How to read it

* **One actor for everyone.** Every agent drives the same scripted noisy expert
  (`ScriptedPolicy(p=expert_p)`: the oracle action with probability p, else a uniformly random
  admissible/plausible action). Its sampling is seeded per state, so in the same state every agent
  sees the same n candidates; agents differ only in which candidate they execute. A perfect critic
  would execute the oracle whenever it is among the candidates.
* **best-of-n (log-prob) is not a fair LLM baseline here.** The scripted policy's probability of
  the oracle action is `p + (1 − p)/|plausible|`, always the largest, so picking the most likely
  candidate is picking the oracle whenever it was sampled: this row is close to an upper bound of
  what candidate selection can reach, not what an LLM's log-prob would give.
* **V-guided agents look ahead; Q-guided does not.** A V-guided agent steps every candidate in a
  private copy of the environment and scores the states it lands in, so it reads the
  environment's answer to each candidate (including the final score a terminal step prints,
  e.g. shop's `Your score ... 1.00` or hotpot's `reward = 1`). That needs a resettable simulator
  and n environment steps per decision, which real web agents rarely have (buying is
  irreversible). `V-guided` scores every next state with the critic; `V-guided (+env reward)`
  replaces the critic by the environment's reward on terminal next states (`VGuidedAgent`'s
  default), i.e. it sees the outcome of ending the episode before committing. The Q-guided agent
  scores the n actions from the current state only, with no environment step.
* **Same size.** The three models are the same tiny Llama (`PipelineSettings.hidden_size`, 2
  layers, one shared word-level vocabulary, tied embeddings, trained from scratch with the
  pipeline's epochs and learning rate); V adds a `D + 1` head, Q needs its frozen DPO reference at
  inference (twice the forward cost per sequence).
* **Same data.** All three learn from the same searched training trees: Q from max-min sibling
  action pairs (`build_pairs`, the pipeline's `min_q_gap`), V from every visited node's value
  `Q(node) = reward + q` (`value_records`), the generative critic from (a seeded sample of) the
  same node values written as `<reasoning> Value: <v>` after `GenerativeCritic`'s prompt, with
  0..K finished episodes of the collecting actor in context. The diagnostics use separate
  validation trees (more training-split tasks, searched the same way, trained on by no model).
"""

LIMITS = """\
## Limits

* Tiny models (the pipeline's hidden size, 128, 2 layers, under a million parameters) trained
  from scratch in minutes on a 2-core CPU, not pretrained LMs as in the step-level Q-value paper
  (Phi-1.5) or GenAC. Whatever the ranking of Q, V and the generative critic here, it says how these
  objectives behave at this scale on these synthetic environments, not at LLM scale.
* The generative critic's "reasoning" is a short template (steps taken, whether the last action
  was refused) the model learns to copy; it is not chain-of-thought and adds no information. The
  in-context samples are the agent's own finished episodes (state before the last action, the
  action, the return), fed as each test episode ends (``run_episodes(on_episode_end=...)``); the
  first decisions run with an empty buffer. Whether a 2-layer model uses them at all is not
  measured.
* The actor is scripted, not an LLM; its candidates are samples of a known distribution, so
  best-of-n by log-prob is near-oracle (above) and Q/V/C only re-rank those candidates.
* One seed; the CIs cover the test-task sampling only, not the training randomness (a second
  seed can move a tiny model's result by more than the interval).
* TextWorld runs on few, small generated games (coin collector, level 5) with a 10-step budget
  (twice the expert's 5-step plan; the default 50-step cap lets the base actor win every game, so
  there would be nothing to select for); its numbers have wide intervals. Its snapshots restore
  by replaying the episode, so each lookahead step of a V-guided agent there also costs a game
  reset and one engine call per past action: the ms per decision shows it, the env-step count
  does not. Wall times are measured on a shared 2-core machine and include the actor and the
  environment; they are comparable within an environment, not across machines.
"""


def write_markdown(report: dict[str, Any], path: Path) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    success_png = path.with_name(path.stem + "_success.png")
    cost_png = path.with_name(path.stem + "_cost.png")
    plot(report, success_png, cost_png)
    m = report["machine"]
    lines = [
        "# Q vs V: a step-level Q-model, a state-value model and a generative critic",
        "",
        f"Reproduce: `{report['command']}` (`--quick` for a one-minute smoke run). Machine: "
        f"{m.get('cpu')} ({m.get('cores')} cores, torch {m.get('torch')} with "
        f"{m.get('torch_threads')} threads, transformers {m.get('transformers')}, textworld "
        f"{m.get('textworld')}). Total wall time {report['wall_s'] / 60:.1f} min. Seed "
        f"{report['seed']}; raw numbers (per-task rewards included) in `{path.stem}.json`.",
        "",
        "The question (issue 5): on the same MCTS data, does a model that scores *actions* "
        "(step-level Q, trained with step-level DPO, arXiv 2409.09345) guide an agent better than "
        "a model of the same size that scores *states* (V, regression on node values), or a "
        "generative critic that writes a value (GenAC-style, with in-context conditioning)?",
        "",
        "## Conventions",
        "",
        *[f"* **{k}**: {v}" for k, v in report["conventions"].items()],
        "",
        "## Results",
        "",
        f"![success and reward]({success_png.name})",
        "",
        f"![success vs cost]({cost_png.name})",
        "",
    ]
    for name, env in report["envs"].items():
        s, t = env["settings"], env["tasks"]
        lines += [
            f"### {name}",
            "",
            f"{t['train']} training trees, {t['val']} validation trees, {t['test']} held-out test "
            f"tasks; actor p = {s['expert_p']}, n = {s['candidates']} candidates, search "
            f"{s['iterations']} iterations; {env['data']['pairs']} pairs, "
            f"{env['data']['states']} states, vocabulary {env['data']['vocabulary']}; wall "
            f"{env['wall_s'] / 60:.1f} min (collect "
            f"{env['timings_s']['collect_train_s'] + env['timings_s']['collect_val_s']:.0f} s).",
            "",
            *agent_table(env),
            "",
            *contrast_table(env),
            "",
            *model_table(env),
            "",
        ]
        out = env["diagnostics"].get("critic_example_output")
        if out:
            lines += [f"A generative-critic output on a validation state: `{out.strip()}`", ""]
    lines += ["## What the numbers say", "", *findings(report), "", STATIC, LIMITS]
    path.write_text("\n".join(lines))
    return path


def console_table(report: dict[str, Any]) -> str:
    out = []
    for name, env in report["envs"].items():
        out.append(f"\n{name}")
        out.append(f"{'agent':<24} {'success':>8} {'95% CI':>14} {'reward':>7} {'ms/dec':>8}")
        for agent, r in env["agents"].items():
            out.append(
                f"{agent:<24} {r['success_rate']:>8.2f} {_ci(r['success_ci']):>14} "
                f"{r['mean_reward']:>7.3f} {r['ms_per_decision']:>8.1f}"
            )
    return "\n".join(out)
