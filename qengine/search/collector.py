"""The search of one process: a forest of task trees grown in ask / propose / step / value / tell
rounds, each tree written to the store when it finishes.

Shapes: ``B`` trees in the forest, ``L`` leaves asked in a round (``E`` of them expandable),
``C`` candidate children over the expandable leaves.

One round (:meth:`Collector.round`):
  1. ``ask``: leaves across all live trees (the native core selects, with virtual loss); the
     leaves' text states are looked up by payload;
  2. ``propose``: ONE batched policy call proposes ``n`` candidate actions per expandable leaf
     (log-probs → priors);
  3. ``step``: the candidates are stepped in the environment from the leaf's snapshot (a pool);
  4. ``value``: each leaf is valued by a width-1 rollout of the policy (to the end or a depth
     cap), as in the step-level Q-value paper, or by a user value function;
  5. ``tell``: ``expand`` + ``backup``; a tree stops early when it finds a terminal with reward
     >= ``early_stop_reward``;
  6. ``finish``: a finished tree is exported and written (``TreeStore``) at once, so a killed run
     resumes where it stopped.

A tree's search depends on its task alone (and the seeds), never on which other tasks share the
forest, so the same tasks give the same trees whether collected at once, resumed, or sharded
over workers (``qengine.search.ray_collect``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from ..forest import Forest
from .envpool import EnvPool
from .settings import CollectSettings, CollectStats
from .storage import NodeText, TreeStore


class CandidateLike(Protocol):
    text: str
    logprob: float


class PolicyLike(Protocol):
    def propose(self, states: Sequence[Any], n: int) -> list[list[CandidateLike]]: ...


ValueFn = Callable[[Sequence[Any]], Sequence[float]]


@dataclass
class _Node:
    snapshot: Any  # EnvSnapshot of the environment in this node's state
    state: Any  # TextState
    text: NodeText


@dataclass
class _Asked:
    """The leaves of one round (live trees only)."""

    trees: np.ndarray  # int32 [L] forest tree ids
    ids: np.ndarray  # int32 [L] node ids
    depths: np.ndarray  # int32 [L]
    nodes: list[_Node]  # [L]
    expandable: list[int]  # [E] positions in the leaves: not done and above the depth cap


@dataclass
class _Children:
    """The expansion of one round, in the layout ``Forest.expand`` takes."""

    counts: np.ndarray  # int32 [L] children per leaf (0: the leaf becomes terminal)
    priors: np.ndarray  # float32 [C]
    rewards: np.ndarray  # float32 [C] search rewards (``CollectSettings.search_reward``)
    terminal: np.ndarray  # bool [C]
    payloads: np.ndarray  # int64 [C] index of the child's text in its tree's node list


def forest_slots(todo: Sequence[int], gumbel: bool) -> tuple[int, np.ndarray]:
    """(number of forest trees, forest tree id of each task in ``todo``).

    The core keys its only randomness (root Gumbel noise) by the tree id, so with ``gumbel``
    task ``i`` gets tree ``i`` (the forest has ``max(todo) + 1`` trees, the others never grow):
    its tree is then the same whichever tasks are collected with it. Without randomness the
    forest is compact.
    """
    if gumbel:
        return max(todo) + 1, np.asarray(todo, dtype=np.int64)
    return len(todo), np.arange(len(todo), dtype=np.int64)


class Collector:
    """Grows one tree per task of ``todo`` in one forest and writes each as it finishes.

    Args:
      pool: environments stepping candidates and rollouts.
      policy: proposes candidate actions for many states at once.
      task_ids: all tasks of the collection; ``todo`` indexes them (tree ``i`` is task ``i``).
      settings, stats: the search settings and the counters this collector adds to.
      store: where finished trees go (None: searched and dropped, e.g. for benchmarks).
      value_fn: values leaf states in one batch instead of policy rollouts.
      engine: the forest engine, "native" or "reference".
      on_finish: called with each finished task index, after its tree is written.
    """

    def __init__(
        self,
        pool: EnvPool,
        policy: PolicyLike,
        task_ids: Sequence[str],
        todo: Sequence[int],
        settings: CollectSettings,
        stats: CollectStats,
        *,
        store: TreeStore | None = None,
        value_fn: ValueFn | None = None,
        engine: str = "native",
        on_finish: Callable[[int], None] | None = None,
    ) -> None:
        self.pool, self.policy, self.settings, self.stats = pool, policy, settings, stats
        self.task_ids, self.store, self.value_fn = task_ids, store, value_fn
        self.on_finish = on_finish
        num_trees, slots = forest_slots(todo, settings.config.gumbel)
        self.task_of = dict(zip(slots.tolist(), todo, strict=True))  # forest tree -> task
        self.forest = Forest(num_trees, settings.config, engine=engine)  # type: ignore[arg-type]
        roots = pool.map(lambda e, i: (e.reset(task_ids[i]), e.snapshot()), list(todo))
        self.nodes: dict[int, list[_Node]] = {
            int(t): [_Node(snap, state, NodeText("", state.first_observation, 0.0, False))]
            for t, (state, snap) in zip(slots, roots, strict=True)
        }
        self.live = np.zeros(num_trees, dtype=bool)
        self.live[slots] = True
        self.best = np.zeros(num_trees)

    # ------------------------------------------------------------------ the loop
    def run(self, progress: Callable[[], None] | None = None) -> None:
        """All rounds, then finish the trees still live; ``progress`` is called after each round."""
        start = time.perf_counter()
        for _ in range(self.settings.iterations):
            if not self.live.any():
                break
            self.round()
            self.stats.seconds = time.perf_counter() - start
            if progress is not None:
                progress()
        for t in np.flatnonzero(self.live):
            self.finish(int(t))
        self.stats.seconds = time.perf_counter() - start

    def round(self) -> None:
        """One ask / propose / step / value / tell round over the live trees."""
        asked = self.ask()
        if asked is None:
            return
        proposals = self.propose(asked)
        children = self.step(asked, proposals)
        values = self.value(asked)
        self.tell(asked, children, values)

    # ------------------------------------------------------------------ phases
    def ask(self) -> _Asked | None:
        """Leaves of the live trees (those of finished trees are withdrawn); None if none."""
        leaves = self.forest.ask(self.settings.leaves_per_ask, paths=False)
        keep = self.live[leaves.tree]
        if not keep.all():  # finished trees still get asked: withdraw their leaves
            self.forest.cancel(leaves.tree[~keep], leaves.node[~keep])
        trees, ids, payloads = leaves.tree[keep], leaves.node[keep], leaves.payload[keep]
        if len(trees) == 0:
            return None
        depths = leaves.depth[keep]
        nodes = [self.nodes[int(t)][p] for t, p in zip(trees, payloads, strict=True)]
        cap = self.settings.max_depth
        expandable = [i for i, n in enumerate(nodes) if not n.state.done and depths[i] < cap]
        return _Asked(trees, ids, depths, nodes, expandable)

    def propose(self, asked: _Asked) -> list[list[CandidateLike]]:
        """One batched policy call: ``candidates`` actions for every expandable leaf [E][<=n]."""
        states = [asked.nodes[i].state for i in asked.expandable]
        return self._propose(states, self.settings.candidates)

    def step(self, asked: _Asked, proposals: list[list[CandidateLike]]) -> _Children:
        """Step every candidate from its leaf's snapshot; the children's nodes join their trees."""
        jobs = [(i, c) for i, cands in zip(asked.expandable, proposals, strict=True) for c in cands]
        t0 = time.perf_counter()
        outcomes = self.pool.map(_step_candidate, [(asked.nodes[i].snapshot, c) for i, c in jobs])
        self.stats.env_seconds += time.perf_counter() - t0
        self.stats.env_steps += len(jobs)
        counts = np.zeros(len(asked.trees), dtype=np.int32)
        priors: list[np.ndarray] = []
        for i, cands in zip(asked.expandable, proposals, strict=True):
            counts[i] = len(cands)
            priors.append(_softmax([c.logprob for c in cands]))
        rewards, terminal, payloads = [], [], []
        for (i, cand), (result, state, snap) in zip(jobs, outcomes, strict=True):
            t = int(asked.trees[i])
            payloads.append(len(self.nodes[t]))
            text = NodeText(cand.text, result.observation, result.reward, state.done)
            self.nodes[t].append(_Node(snap, state, text))
            rewards.append(self.settings.search_reward(result.reward))
            terminal.append(state.done or asked.depths[i] + 1 >= self.settings.max_depth)
            if state.done:
                self.best[t] = max(self.best[t], state.total_reward)
        return _Children(
            counts,
            np.concatenate(priors) if priors else np.zeros(0, dtype=np.float32),
            np.asarray(rewards, dtype=np.float32),
            np.asarray(terminal, dtype=bool),
            np.asarray(payloads, dtype=np.int64),
        )

    def value(self, asked: _Asked) -> np.ndarray:
        """float64 [L]: the value of every leaf (``value_fn``, or batched rollouts)."""
        if self.value_fn is None:
            cap = self.settings.rollout_depth or self.settings.max_depth
            return self._rollouts(asked.nodes, cap - asked.depths)
        t0 = time.perf_counter()
        values = np.asarray(self.value_fn([n.state for n in asked.nodes]), dtype=np.float64)
        self.stats.policy_seconds += time.perf_counter() - t0
        return values

    def tell(self, asked: _Asked, children: _Children, values: np.ndarray) -> None:
        """Expand and back up the leaves; finish the trees that found a good enough terminal."""
        self.forest.expand(
            asked.trees,
            asked.ids,
            children.counts,
            children.priors,
            rewards=children.rewards,
            terminal=children.terminal,
            payloads=children.payloads,
        )
        self.forest.backup(asked.trees, asked.ids, values)
        self.stats.leaves += len(asked.trees)
        stop = self.settings.early_stop_reward
        if stop is None:
            return
        for t in np.unique(asked.trees):
            if self.live[t] and self.best[t] >= stop:
                self.finish(int(t))

    def finish(self, tree: int) -> None:
        """Stop growing ``tree`` and write it (one tree's export, texts in payload order)."""
        self.live[tree] = False
        self.stats.best_rewards.append(float(self.best[tree]))
        index = self.task_of[tree]
        if self.store is not None:
            root = self.nodes[tree][0].state
            header = {
                "task_id": self.task_ids[index],
                "env": root.env_name,
                "instruction": root.instruction,
                "first_observation": root.first_observation,
                "best_reward": float(self.best[tree]),
            }
            texts = [n.text for n in self.nodes[tree]]
            arrays = self.forest.export_tree(tree)
            self.store.write(index, header, texts, arrays, self.settings.config)
        del self.nodes[tree]  # its snapshots are no longer needed
        if self.on_finish is not None:
            self.on_finish(index)

    # ------------------------------------------------------------------ helpers
    def mean_best(self) -> float:
        """Mean best episode reward found so far over the trees of this collector."""
        slots = list(self.task_of)
        return float(self.best[slots].mean())

    def _propose(self, states: list[Any], n: int) -> list[list[CandidateLike]]:
        if not states:  # nothing to ask the model
            return []
        t0 = time.perf_counter()
        proposals = self.policy.propose(states, n)
        self.stats.policy_seconds += time.perf_counter() - t0
        self.stats.policy_calls += 1
        return proposals

    def _rollouts(self, leaves: Sequence[_Node], caps: np.ndarray) -> np.ndarray:
        """Width-1 policy rollouts from every leaf at once → the return after each leaf [L].

        The k-th reward of a rollout (k = 0, 1, ...) counts ``discount**k``: the same discount
        the core applies on the tree's edges, so a leaf's value and a backed-up Q mean the same
        thing. Rewards go through ``settings.search_reward`` as the edges' do.
        """
        discount = self.settings.config.discount
        values = np.zeros(len(leaves))
        active = [i for i, n in enumerate(leaves) if not n.state.done and caps[i] > 0]
        snaps = {i: leaves[i].snapshot for i in active}
        states = {i: leaves[i].state for i in active}
        steps = 0
        while active:
            proposals = self._propose([states[i] for i in active], 1)
            jobs = [(snaps[i], cands) for i, cands in zip(active, proposals, strict=True)]
            t0 = time.perf_counter()
            outcomes = self.pool.map(_rollout_step, jobs)
            self.stats.env_seconds += time.perf_counter() - t0
            self.stats.env_steps += len(active)
            steps += 1
            still = []
            for i, (reward, state, snap) in zip(active, outcomes, strict=True):
                values[i] += discount ** (steps - 1) * self.settings.search_reward(reward)
                if state is not None and not state.done and steps < caps[i]:
                    states[i], snaps[i] = state, snap
                    still.append(i)
            active = still
        return values


def _softmax(logprobs: Sequence[float]) -> np.ndarray:
    """float32 [n]: priors from log-probs (non-finite ones count as -1e9)."""
    x = np.asarray(logprobs, dtype=np.float64)
    if x.size == 0:
        return x.astype(np.float32)
    x = np.where(np.isfinite(x), x, -1e9)
    p = np.exp(x - x.max())
    return (p / p.sum()).astype(np.float32)


def _step_candidate(env: Any, job: tuple[Any, Any]) -> tuple[Any, Any, Any]:
    """Step one candidate action from a leaf's snapshot; returns (result, state, snapshot)."""
    snapshot, candidate = job
    env.restore(snapshot)
    result = env.step(candidate.text)
    return result, env.state(), env.snapshot()


def _rollout_step(env: Any, job: tuple[Any, list[Any]]) -> tuple[float, Any, Any]:
    """One rollout step: the first proposed action from the snapshot → (reward, state, snapshot);
    (0, None, None) when the policy proposed nothing (the rollout ends)."""
    snapshot, cands = job
    env.restore(snapshot)
    if not cands:
        return 0.0, None, None
    result = env.step(cands[0].text)
    return result.reward, env.state(), env.snapshot()
