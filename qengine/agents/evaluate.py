"""Compare agents on held-out tasks: success rate and mean reward with bootstrap intervals."""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm.auto import tqdm


@dataclass(frozen=True)
class AgentResult:
    agent: str
    tasks: int
    success_rate: float
    success_ci: tuple[float, float]
    mean_reward: float
    reward_ci: tuple[float, float]
    mean_steps: float
    rewards: list[float]


def bootstrap_ci(
    values: Sequence[float], *, level: float = 0.95, samples: int = 2000, seed: int = 0
) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean."""
    x = np.asarray(values, dtype=np.float64)
    if x.size == 0:
        return (float("nan"), float("nan"))
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(samples, x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    return float(lo), float(hi)


def run_episodes(
    env: Any,
    agent: Any,
    task_ids: Sequence[str],
    *,
    success_reward: float = 1.0,
    progress: bool = True,
    on_episode_end: Callable[[Any], None] | None = None,
) -> AgentResult:
    """Play every task to the end with ``agent``, all episodes advancing together (batched acts).

    ``on_episode_end(state)`` is called with each finished episode's final ``TextState`` as soon
    as it ends, e.g. to feed a critic the actor's recent outcomes (``GenerativeCritic.observe``).
    """
    envs = [env.fresh() for _ in task_ids]
    states = [e.reset(t) for e, t in zip(envs, task_ids, strict=True)]
    steps = np.zeros(len(task_ids), dtype=np.int64)
    active = [i for i, s in enumerate(states) if not s.done]
    bar = tqdm(total=len(task_ids), desc=f"eval {agent.name}", unit="task", disable=not progress)
    bar.update(len(task_ids) - len(active))
    while active:
        actions = agent.act([states[i] for i in active])
        still = []
        for i, action in zip(active, actions, strict=True):
            envs[i].step(action)
            states[i] = envs[i].state()
            steps[i] += 1
            if states[i].done:
                bar.update(1)
                if on_episode_end is not None:
                    on_episode_end(states[i])
            else:
                still.append(i)
        active = still
    bar.close()
    rewards = [float(s.total_reward) for s in states]
    success = [float(r >= success_reward) for r in rewards]
    for e in envs:
        e.close()
    return AgentResult(
        agent=agent.name,
        tasks=len(task_ids),
        success_rate=float(np.mean(success)),
        success_ci=bootstrap_ci(success),
        mean_reward=float(np.mean(rewards)),
        reward_ci=bootstrap_ci(rewards),
        mean_steps=float(steps.mean()),
        rewards=rewards,
    )


def format_table(results: Sequence[AgentResult]) -> str:
    head = f"{'agent':<24} {'tasks':>5} {'success':>8} {'95% CI':>15} {'reward':>7} {'95% CI':>15}"
    lines = [head, "-" * len(head)]
    for r in results:
        lines.append(
            f"{r.agent:<24} {r.tasks:>5} {r.success_rate:>8.1%} "
            f"{f'[{r.success_ci[0]:.2f}, {r.success_ci[1]:.2f}]':>15} {r.mean_reward:>7.3f} "
            f"{f'[{r.reward_ci[0]:.2f}, {r.reward_ci[1]:.2f}]':>15}"
        )
    return "\n".join(lines)


def plot_results(results: Sequence[AgentResult], path: str | Path) -> Path:
    """Bar chart of success rate and mean reward with their intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [r.agent for r in results]
    x = np.arange(len(results))
    fig, axes = plt.subplots(1, 2, figsize=(9, 3.6))
    for ax, key, ci, label in (
        (axes[0], "success_rate", "success_ci", "success rate"),
        (axes[1], "mean_reward", "reward_ci", "mean reward"),
    ):
        values = np.array([getattr(r, key) for r in results])
        lo = values - np.array([getattr(r, ci)[0] for r in results])
        hi = np.array([getattr(r, ci)[1] for r in results]) - values
        ax.bar(
            x, values, yerr=[lo, hi], capsize=4, color=["#888", "#5a8", "#36c", "#c63"][: len(x)]
        )
        ax.set_xticks(x, names, rotation=15)
        ax.set_ylabel(label)
        ax.set_ylim(0, 1)
    fig.suptitle(f"held-out tasks: {results[0].tasks} per agent (95% bootstrap CI)")
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def write_results(results: Sequence[AgentResult], out_dir: str | Path) -> Path:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    payload = {r.agent: {k: v for k, v in asdict(r).items() if k != "rewards"} for r in results}
    (out / "results.json").write_text(json.dumps(payload, indent=2))
    plot_results(results, out / "agents.png")
    return out / "results.json"
