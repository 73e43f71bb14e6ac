"""Batched MCTS over text-environment tasks: one tree per task, every tree in one forest.

One iteration:
  1. ``ask`` leaves across all live trees (the native core selects, with virtual loss);
  2. the leaves' text states are looked up by payload;
  3. ONE batched policy call proposes ``n`` candidate actions per leaf (log-probs → priors);
  4. the candidates are stepped in the environment from the leaf's snapshot (a worker pool);
  5. each leaf is valued by a width-1 rollout of the policy (to the end or a depth cap), as in the
     step-level Q-value paper, or by a user value function;
  6. ``expand`` + ``backup``.
A tree stops early when it finds a terminal with reward >= ``early_stop_reward``. Trees are written
to disk (``TreeStore``) as they finish, so a killed run resumes where it stopped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import numpy as np
from tqdm.auto import tqdm

from ..config import SearchConfig
from ..forest import Forest
from .storage import NodeText, TreeStore, one_tree_arrays


class CandidateLike(Protocol):
    text: str
    logprob: float


class PolicyLike(Protocol):
    def propose(self, states: Sequence[Any], n: int) -> list[list[CandidateLike]]: ...


DEFAULT_SEARCH_CONFIG = SearchConfig(
    rule="lats", c=1.0, qnorm="bounds", value_min=0.0, value_max=1.0, fpu="inf"
)


@dataclass(frozen=True, kw_only=True)
class CollectSettings:
    """How ``collect`` searches.

    ``iterations``: ask/expand/tell rounds per tree (the paper's default: 30).
    ``candidates``: actions proposed per expanded leaf (n = 5 in the paper).
    ``leaves_per_ask``: leaves per tree per round (batching across trees already gives width).
    ``max_depth``: nodes at this depth are not expanded further (treated as terminal).
    ``rollout_depth``: step cap of a rollout (None: up to ``max_depth``).
    ``early_stop_reward``: a tree stops once a terminal with at least this reward is found.
    The stop comes right after the expansion that found it, so that winning action's siblings
    stay unvisited and its state gives no preference pair: for preference data, prefer None
    (the search is cheap next to what the pairs are worth; ``qengine demo`` does so).
    ``success_reward``: search for success instead of reward: every environment reward counts 1
    if it is at least this value, else 0 (WebShop-style partial scores then no longer make a
    near-miss purchase look better than a detour that ends in success). None: the raw rewards.
    The trees' text payloads keep the raw rewards either way.
    ``workers``: threads stepping environments (useful when steps wait on I/O).
    """

    iterations: int = 30
    candidates: int = 5
    leaves_per_ask: int = 1
    max_depth: int = 12
    rollout_depth: int | None = None
    early_stop_reward: float | None = 1.0
    success_reward: float | None = None
    workers: int = 4
    config: SearchConfig = field(default_factory=lambda: DEFAULT_SEARCH_CONFIG)

    def __post_init__(self) -> None:
        for name in ("iterations", "candidates", "leaves_per_ask", "max_depth", "workers"):
            if getattr(self, name) < 1:
                raise ValueError(f"CollectSettings.{name} must be >= 1")
        if self.success_reward is not None and not math.isfinite(self.success_reward):
            raise ValueError("CollectSettings.success_reward must be a finite number or None")

    def search_reward(self, reward: float) -> float:
        """The reward the search backs up for an environment reward (see ``success_reward``)."""
        if self.success_reward is None:
            return float(reward)
        return float(reward >= self.success_reward)


@dataclass
class _Node:
    snapshot: Any  # EnvSnapshot of the environment in this node's state
    state: Any  # TextState
    text: NodeText


@dataclass
class CollectStats:
    trees: int = 0
    resumed: int = 0
    leaves: int = 0
    policy_calls: int = 0
    env_steps: int = 0
    seconds: float = 0.0
    policy_seconds: float = 0.0
    env_seconds: float = 0.0
    best_rewards: list[float] = field(default_factory=list)

    @property
    def engine_overhead(self) -> float:
        """Fraction of wall time spent outside the policy and the environment."""
        other = self.seconds - self.policy_seconds - self.env_seconds
        return max(other, 0.0) / max(self.seconds, 1e-9)


ValueFn = Callable[[Sequence[Any]], Sequence[float]]


class _EnvPool:
    """One environment per worker (environments are not thread-safe), stepping in parallel."""

    def __init__(self, env: Any, workers: int) -> None:
        self.envs = [env] + [env.fresh() for _ in range(workers - 1)]
        self.pool = ThreadPoolExecutor(max_workers=workers) if workers > 1 else None

    def map(self, fn: Callable[[Any, Any], Any], items: Sequence[Any]) -> list[Any]:
        if self.pool is None or len(items) < 2:
            return [fn(self.envs[0], item) for item in items]
        chunks = [items[w :: len(self.envs)] for w in range(len(self.envs))]
        results = list(
            self.pool.map(lambda w: [fn(self.envs[w], x) for x in chunks[w]], range(len(chunks)))
        )
        out: list[Any] = [None] * len(items)
        for w, chunk_results in enumerate(results):
            out[w :: len(self.envs)] = chunk_results
        return out

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown()


def _softmax(logprobs: Sequence[float]) -> np.ndarray:
    x = np.asarray(logprobs, dtype=np.float64)
    if x.size == 0:
        return x.astype(np.float32)
    x = np.where(np.isfinite(x), x, -1e9)
    p = np.exp(x - x.max())
    return (p / p.sum()).astype(np.float32)


def collect(
    env: Any,
    policy: PolicyLike,
    task_ids: Sequence[str],
    *,
    settings: CollectSettings | None = None,
    out_dir: str | Path | None = None,
    value_fn: ValueFn | None = None,
    progress: bool = True,
    engine: str = "native",
) -> CollectStats:
    """Search every task and write its tree under ``out_dir`` (resuming what is already there).

    Args:
      env: a ``qengine.envs.TextEnv`` (its ``fresh()`` twins serve the worker pool).
      policy: proposes candidate actions for many states at once.
      task_ids: the tasks, one tree each; tree ``i`` is written as ``trees/{i:05d}.*``.
      value_fn: values leaf states in one batch instead of policy rollouts.
      engine: the forest engine, "native" or "reference" (tests compare the two).
    """
    settings = settings or CollectSettings()
    store = TreeStore(out_dir) if out_dir is not None else None
    finished = store.done() if store is not None else set()
    todo = [i for i in range(len(task_ids)) if i not in finished]
    stats = CollectStats(trees=len(task_ids), resumed=len(finished))
    if not todo:
        return stats
    pool = _EnvPool(env, settings.workers)
    try:
        _search(pool, policy, task_ids, todo, settings, store, value_fn, stats, progress, engine)
    finally:
        pool.close()
    return stats


def _search(
    pool: _EnvPool,
    policy: PolicyLike,
    task_ids: Sequence[str],
    todo: list[int],
    settings: CollectSettings,
    store: TreeStore | None,
    value_fn: ValueFn | None,
    stats: CollectStats,
    progress: bool,
    engine: str,
) -> None:
    start = time.perf_counter()
    roots = pool.map(lambda e, i: (e.reset(task_ids[i]), e.snapshot()), todo)
    nodes: list[list[_Node]] = [
        [_Node(snap, state, NodeText("", state.first_observation, 0.0, False))]
        for state, snap in roots
    ]
    forest = Forest(len(todo), settings.config, engine=engine)  # type: ignore[arg-type]
    live = np.ones(len(todo), dtype=bool)
    best = np.zeros(len(todo))
    rollout_cap = settings.rollout_depth or settings.max_depth
    bar = tqdm(total=len(todo), desc="collect", unit="tree", disable=not progress)

    def finish(t: int) -> None:
        live[t] = False
        stats.best_rewards.append(float(best[t]))
        if store is not None:
            index = todo[t]
            header = {
                "task_id": task_ids[index],
                "env": nodes[t][0].state.env_name,
                "instruction": nodes[t][0].state.instruction,
                "first_observation": nodes[t][0].state.first_observation,
                "best_reward": float(best[t]),
            }
            texts = [n.text for n in nodes[t]]
            arrays = one_tree_arrays(forest.export_arrays(), t)
            store.write(index, header, texts, arrays, settings.config)
        bar.update(1)

    for _ in range(settings.iterations):
        if not live.any():
            break
        leaves = forest.ask(settings.leaves_per_ask, paths=False)
        keep = live[leaves.tree]
        if not keep.all():  # trees stopped early still get asked: withdraw their leaves
            forest.cancel(leaves.tree[~keep], leaves.node[~keep])
        trees, ids, payloads = leaves.tree[keep], leaves.node[keep], leaves.payload[keep]
        depths = leaves.depth[keep]
        if len(trees) == 0:
            continue
        leaf_nodes = [nodes[t][p] for t, p in zip(trees, payloads, strict=True)]
        expandable = [
            i
            for i, n in enumerate(leaf_nodes)
            if not n.state.done and depths[i] < settings.max_depth
        ]
        # 3. one batched policy call for every expandable leaf
        t0 = time.perf_counter()
        proposals = policy.propose([leaf_nodes[i].state for i in expandable], settings.candidates)
        stats.policy_seconds += time.perf_counter() - t0
        stats.policy_calls += 1
        # 4. step every candidate from its leaf's snapshot
        jobs = [(i, c) for i, cands in zip(expandable, proposals, strict=True) for c in cands]

        t0 = time.perf_counter()
        outcomes = pool.map(_step_candidate, [(leaf_nodes[i].snapshot, c) for i, c in jobs])
        stats.env_seconds += time.perf_counter() - t0
        stats.env_steps += len(jobs)
        counts = np.zeros(len(trees), dtype=np.int32)
        priors, rewards, terminal, child_payloads = [], [], [], []
        for i, cands in zip(expandable, proposals, strict=True):
            counts[i] = len(cands)
            priors.extend(_softmax([c.logprob for c in cands]))
        for (i, cand), (result, state, snap) in zip(jobs, outcomes, strict=True):
            t = int(trees[i])
            payload = len(nodes[t])
            nodes[t].append(
                _Node(
                    snap, state, NodeText(cand.text, result.observation, result.reward, state.done)
                )
            )
            rewards.append(settings.search_reward(result.reward))
            terminal.append(state.done or depths[i] + 1 >= settings.max_depth)
            child_payloads.append(payload)
            if state.done:
                best[t] = max(best[t], state.total_reward)
        # 5. value every leaf: batched rollouts (one policy call per step) or value_fn
        t0 = time.perf_counter()
        values = (
            np.asarray(value_fn([n.state for n in leaf_nodes]), dtype=np.float64)
            if value_fn is not None
            else _rollouts(pool, policy, leaf_nodes, rollout_cap - depths, stats, settings)
        )
        stats.policy_seconds += time.perf_counter() - t0 if value_fn is not None else 0.0
        # 6. expand and tell; leaves with zero candidates become terminal
        forest.expand(
            trees,
            ids,
            counts,
            np.asarray(priors, dtype=np.float32),
            rewards=np.asarray(rewards, dtype=np.float32),
            terminal=np.asarray(terminal, dtype=bool),
            payloads=np.asarray(child_payloads, dtype=np.int64),
        )
        forest.backup(trees, ids, values)
        stats.leaves += len(trees)
        for t in np.unique(trees):
            done_early = (
                settings.early_stop_reward is not None and best[t] >= settings.early_stop_reward
            )
            if live[t] and done_early:
                finish(int(t))
        stats.seconds = time.perf_counter() - start
        bar.set_postfix(
            sims_per_s=f"{stats.leaves / max(stats.seconds, 1e-9):.1f}",
            mean_best=f"{best.mean():.3f}",
        )
    for t in np.flatnonzero(live):
        finish(int(t))
    bar.close()
    stats.seconds = time.perf_counter() - start


def _step_candidate(env: Any, job: tuple[Any, Any]) -> tuple[Any, Any, Any]:
    """Step one candidate action from a leaf's snapshot; returns (result, state, snapshot)."""
    snapshot, candidate = job
    env.restore(snapshot)
    result = env.step(candidate.text)
    return result, env.state(), env.snapshot()


def _rollouts(
    pool: _EnvPool,
    policy: PolicyLike,
    leaves: Sequence[_Node],
    caps: np.ndarray,
    stats: CollectStats,
    settings: CollectSettings,
) -> np.ndarray:
    """Width-1 policy rollouts from every leaf at once → the return after each leaf [L].

    The k-th reward of a rollout (k = 0, 1, ...) counts ``discount**k``: the same discount the
    core applies on the tree's edges, so a leaf's value and a backed-up Q mean the same thing.
    Rewards go through ``settings.search_reward`` as the edges' do.
    """
    discount = settings.config.discount
    values = np.zeros(len(leaves))
    active = [i for i, n in enumerate(leaves) if not n.state.done and caps[i] > 0]
    snaps = {i: leaves[i].snapshot for i in active}
    states = {i: leaves[i].state for i in active}
    steps = 0
    while active:
        t0 = time.perf_counter()
        proposals = policy.propose([states[i] for i in active], 1)
        stats.policy_seconds += time.perf_counter() - t0
        stats.policy_calls += 1

        def step(env: Any, job: tuple[int, list[Any]]) -> tuple[float, Any, Any]:
            i, cands = job
            env.restore(snaps[i])
            if not cands:
                return 0.0, None, None
            result = env.step(cands[0].text)
            return result.reward, env.state(), env.snapshot()

        t0 = time.perf_counter()
        outcomes = pool.map(step, list(zip(active, proposals, strict=True)))
        stats.env_seconds += time.perf_counter() - t0
        stats.env_steps += len(active)
        steps += 1
        still = []
        for i, (reward, state, snap) in zip(active, outcomes, strict=True):
            values[i] += discount ** (steps - 1) * settings.search_reward(reward)
            if state is not None and not state.done and steps < caps[i]:
                states[i], snaps[i] = state, snap
                still.append(i)
        active = still
    return values


def mean_reward(stats: CollectStats) -> float:
    return float(np.mean(stats.best_rewards)) if stats.best_rewards else math.nan
