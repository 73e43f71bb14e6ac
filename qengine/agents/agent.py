"""Agents that act in text environments: the base policy, best-of-n by log-prob, Q-guided.

An agent maps a batch of states to one action each (``act``). The Q-guided agent wraps any policy:
it samples n candidates per state and executes the one with the highest Q-value.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np

from ..data.prompts import render_state


class Agent(Protocol):
    """What ``run_episodes`` plays: one action per state of a batch (B states -> B actions)."""

    name: str

    def act(self, states: Sequence[Any]) -> list[str]: ...


class BaseAgent:
    """The policy itself: its first sampled candidate."""

    def __init__(self, policy: Any, *, name: str = "base") -> None:
        self.policy, self.name = policy, name
        self.model_calls_per_decision = 0

    def act(self, states: Sequence[Any]) -> list[str]:
        proposals = self.policy.propose(states, 1)
        return [cands[0].text if cands else "" for cands in proposals]


class BestOfNLogprobAgent:
    """Sample n candidates, execute the one the policy itself finds most likely."""

    def __init__(self, policy: Any, n: int = 5, *, name: str = "best-of-n (log-prob)") -> None:
        if n < 1:
            raise ValueError("n must be >= 1")
        self.policy, self.n, self.name = policy, n, name
        self.model_calls_per_decision = 0

    def act(self, states: Sequence[Any]) -> list[str]:
        proposals = self.policy.propose(states, self.n)
        return [max(c, key=lambda x: x.logprob).text if c else "" for c in proposals]


def repeated_actions(state: Any) -> frozenset[str]:
    """Actions the episode of ``state`` already executed in an observation equal to the current one.

    In a deterministic environment such an action leads where it led before: repeating it is a
    loop (re-opening an item the agent already left, paging forth and back).
    """
    seen = (state.first_observation, *(o for _, o in state.history))
    # action k was taken in observation k; the last observation is the current one
    taken_in = zip(state.history, seen[:-1], strict=True)
    return frozenset(a for (a, _), observation in taken_in if observation == seen[-1])


class QGuidedAgent:
    """Sample n candidates from ``policy``, execute argmax of ``q_model.score`` (paper: n = 5).

    ``avoid_repeats`` (off by default; the paper's agent has no such rule): skip the candidates
    the episode already executed in this same observation (:func:`repeated_actions`) unless all
    are. For deterministic environments, where such a candidate can only repeat a loop; a
    Q-model trained on search trees rates an action by the state alone and cannot know that the
    agent already tried it (on the demo's shop it re-opens items it has already left).
    """

    def __init__(
        self,
        policy: Any,
        q_model: Any,
        n: int = 5,
        *,
        avoid_repeats: bool = False,
        name: str | None = None,
    ) -> None:
        if n < 1:
            raise ValueError("n must be >= 1")
        self.policy, self.q_model, self.n = policy, q_model, n
        self.avoid_repeats = avoid_repeats
        self.name = name or ("Q-guided, no repeats" if avoid_repeats else "Q-guided")
        self.model_calls_per_decision = 1
        # decisions; Q-model calls (one per state with >= 2 distinct candidates); candidates
        # scored; decisions where avoid_repeats passed over the highest-Q candidate
        self.stats = {"decisions": 0, "q_calls": 0, "candidates_scored": 0, "repeats_avoided": 0}

    @property
    def candidates_scored_per_decision(self) -> float:
        """Action sequences the Q-model scored per decision (duplicates are removed first)."""
        return self.stats["candidates_scored"] / max(self.stats["decisions"], 1)

    def act(self, states: Sequence[Any]) -> list[str]:
        proposals = self.policy.propose(states, self.n)
        actions = []
        for state, cands in zip(states, proposals, strict=True):
            self.stats["decisions"] += 1
            if not cands:
                actions.append("")
                continue
            if len(cands) == 1:
                actions.append(cands[0].text)
                continue
            texts = [c.text for c in cands]
            q = np.asarray(self.q_model.score(render_state(state), texts), dtype=np.float64)
            self.stats["q_calls"] += 1
            self.stats["candidates_scored"] += len(cands)
            best = int(np.argmax(q))
            if self.avoid_repeats:
                done_here = repeated_actions(state)
                repeated = np.array([t in done_here for t in texts])
                if not repeated.all():
                    q[repeated] = -np.inf
                    self.stats["repeats_avoided"] += int(repeated[best])
                    best = int(np.argmax(q))
            actions.append(texts[best])
        return actions
