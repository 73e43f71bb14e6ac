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


class QGuidedAgent:
    """Sample n candidates from ``policy``, execute argmax of ``q_model.score`` (paper: n = 5)."""

    def __init__(self, policy: Any, q_model: Any, n: int = 5, *, name: str = "Q-guided") -> None:
        if n < 1:
            raise ValueError("n must be >= 1")
        self.policy, self.q_model, self.n, self.name = policy, q_model, n, name
        self.model_calls_per_decision = 1
        # decisions; Q-model calls (one per state with >= 2 distinct candidates); candidates scored
        self.stats = {"decisions": 0, "q_calls": 0, "candidates_scored": 0}

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
            q = self.q_model.score(render_state(state), [c.text for c in cands])
            self.stats["q_calls"] += 1
            self.stats["candidates_scored"] += len(cands)
            actions.append(cands[int(np.argmax(q))].text)
        return actions
