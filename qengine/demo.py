"""`qengine demo`: batched MCTS over many tasks of a small built-in puzzle, end to end.

The puzzle ("combination lock") stands in for an LLM agent task: each task hides one correct action
per step; a wrong action ends the episode with reward 0, the last correct one earns reward 1. The
"policy" is a noisy prior that favours the correct action only sometimes, exactly the situation
where search (and later a Q-value model trained on its trees) beats acting greedily on the prior.

Every tree is searched in one forest: ask leaves across all trees → one batched "policy call"
proposes the children with priors → leaves are valued by a rollout of the policy → backup.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from .config import SearchConfig
from .forest import Forest


@dataclass(frozen=True, kw_only=True)
class LockPuzzle:
    """B tasks, each a hidden action sequence of length ``depth`` over ``num_actions`` actions."""

    num_tasks: int = 256
    depth: int = 6
    num_actions: int = 5
    prior_skill: float = 0.45  # probability that the prior's favourite action is the correct one
    seed: int = 0

    def secrets(self) -> np.ndarray:
        """int64 [B, depth]: the correct action of every step of every task."""
        rng = np.random.default_rng(self.seed)
        return rng.integers(0, self.num_actions, size=(self.num_tasks, self.depth))

    def favourites(self) -> np.ndarray:
        """int64 [B, depth]: the action the noisy prior favours at each step."""
        rng = np.random.default_rng(self.seed + 1)
        secret = self.secrets()
        random_pick = rng.integers(0, self.num_actions, size=secret.shape)
        skilled = rng.random(secret.shape) < self.prior_skill
        return np.where(skilled, secret, random_pick)


def _priors(favourite: np.ndarray, num_actions: int, boost: float = 2.0) -> np.ndarray:
    """float32 [L, A]: softmax priors that put extra mass on the favourite action."""
    logits = np.zeros((favourite.shape[0], num_actions), dtype=np.float64)
    logits[np.arange(favourite.shape[0]), favourite] = boost
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    return (probs / probs.sum(axis=1, keepdims=True)).astype(np.float32)


def _rollouts(
    secret: np.ndarray,
    favourite: np.ndarray,
    start_depth: np.ndarray,
    puzzle: LockPuzzle,
    rng: np.random.Generator,
) -> np.ndarray:
    """float64 [L]: reward of one policy rollout from each leaf (the leaf's path is correct).

    secret, favourite: int64 [L, depth], the rows of the leaves' tasks.
    """
    rewards = np.ones(secret.shape[0])
    for d in range(puzzle.depth):
        active = start_depth <= d
        probs = _priors(favourite[:, d], puzzle.num_actions).astype(np.float64)
        draws = (probs.cumsum(axis=1) > rng.random((secret.shape[0], 1))).argmax(axis=1)
        rewards = np.where(active & (draws != secret[:, d]), 0.0, rewards)
    return rewards


def run_demo(
    *,
    puzzle: LockPuzzle | None = None,
    iterations: int = 40,
    leaves_per_ask: int = 4,
    num_threads: int = 0,
    out: Path | None = None,
    progress: bool = True,
) -> dict:
    """Search every task of the puzzle and return a summary (and write it under ``out``)."""
    puzzle = puzzle or LockPuzzle()
    secret, favourite = puzzle.secrets(), puzzle.favourites()
    config = SearchConfig(rule="lats", c=1.0, qnorm="bounds", value_min=0.0, value_max=1.0)
    forest = Forest(puzzle.num_tasks, config, num_threads=num_threads)
    rng = np.random.default_rng(puzzle.seed + 2)
    a = puzzle.num_actions
    start = time.perf_counter()
    leaves_evaluated = 0
    for _ in tqdm(range(iterations), desc="search", disable=not progress, unit="iter"):
        leaves = forest.ask(leaves_per_ask, paths=False)
        if len(leaves) == 0:
            break
        depth = leaves.depth.astype(np.int64)
        task = leaves.tree.astype(np.int64)
        # Children exist below non-terminal leaves; one batched "policy call" for all of them.
        step = np.minimum(depth, puzzle.depth - 1)
        priors = _priors(favourite[task, step], a)
        correct = np.arange(a)[None, :] == secret[task, step][:, None]
        last = (depth + 1 == puzzle.depth)[:, None]
        terminal = ~correct | last
        rewards = (correct & last).astype(np.float32)
        forest.expand(
            leaves.tree,
            leaves.node,
            np.full(len(leaves), a, dtype=np.int32),
            priors.ravel(),
            rewards=rewards.ravel(),
            terminal=terminal.ravel(),
        )
        values = _rollouts(secret[task], favourite[task], depth, puzzle, rng)
        forest.backup(leaves.tree, leaves.node, values)
        leaves_evaluated += len(leaves)
    elapsed = time.perf_counter() - start

    def solved(actions: np.ndarray, t: int) -> bool:
        return len(actions) == puzzle.depth and bool(np.all(actions == secret[t]))

    search_success = 0
    for t in range(puzzle.num_tasks):
        path = forest.best_path(t)
        actions = forest.view(t, "action")[path[1:]]
        search_success += solved(np.asarray(actions), t)
    greedy_success = int(np.all(favourite == secret, axis=1).sum())
    pairs = forest.pairs(mode="paper")
    summary = {
        "tasks": puzzle.num_tasks,
        "iterations": iterations,
        "leaves_evaluated": leaves_evaluated,
        "seconds": round(elapsed, 4),
        "leaves_per_second": round(leaves_evaluated / max(elapsed, 1e-9), 1),
        "greedy_prior_success_rate": greedy_success / puzzle.num_tasks,
        "mcts_best_path_success_rate": search_success / puzzle.num_tasks,
        "preference_pairs": len(pairs),
        "mean_pair_q_gap": float(np.mean(pairs.q_chosen - pairs.q_rejected)) if len(pairs) else 0.0,
        "nodes": int(sum(forest.size(t) for t in range(puzzle.num_tasks))),
        "puzzle": asdict(puzzle),
    }
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
        forest.save(out / "forest.safetensors")
        (out / "results.json").write_text(json.dumps(summary, indent=2))
    return summary


def format_summary(summary: dict) -> str:
    rows = [
        ("tasks searched", f"{summary['tasks']}"),
        ("leaves evaluated", f"{summary['leaves_evaluated']:,}"),
        ("search throughput", f"{summary['leaves_per_second']:,.0f} leaves/s"),
        ("nodes in the forest", f"{summary['nodes']:,}"),
        ("greedy prior: success", f"{summary['greedy_prior_success_rate']:.1%}"),
        ("MCTS best path: success", f"{summary['mcts_best_path_success_rate']:.1%}"),
        ("step-level preference pairs", f"{summary['preference_pairs']:,}"),
        ("mean Q gap chosen - rejected", f"{summary['mean_pair_q_gap']:.3f}"),
    ]
    width = max(len(name) for name, _ in rows)
    return "\n".join(f"{name:<{width}}  {value}" for name, value in rows)
