"""The policy protocol: many text states in, ``n`` candidate actions each out.

``B`` denotes the number of states in a batch. A policy returns, per state, up to ``n``
*distinct* candidate actions with their log-probabilities under the policy (used as priors by
the search); fewer when the policy's samples repeat, none for a finished episode.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from qengine.envs.base import TextState
from qengine.envs.text import stable_hash

__all__ = ["Candidate", "Policy", "StateSeeds", "dedupe"]


@dataclass(frozen=True)
class Candidate:
    """One proposed action."""

    text: str  # the action, e.g. "click[buy now]"
    logprob: float  # log-probability of this action under the policy (a prior, <= 0)


@runtime_checkable
class Policy(Protocol):
    """Anything that proposes actions for a batch of states."""

    def propose(self, states: Sequence[TextState], n: int) -> list[list[Candidate]]:
        """Return ``B`` lists of at most ``n`` distinct candidates, in sampling order."""
        ...


def dedupe(candidates: Sequence[Candidate]) -> list[Candidate]:
    """Drop repeated action texts (after stripping whitespace), keeping the first occurrence."""
    seen: set[str] = set()
    out = []
    for c in candidates:
        key = c.text.strip()
        if key not in seen:
            seen.add(key)
            out.append(c)
    return out


class StateSeeds:
    """Seeds keyed by the state, so a state's samples do not depend on which states share a
    call: ``stable_hash(tag, seed, env, task, actions, k)`` with ``k`` the times this state was
    seeded before (a state proposed for again gets new samples). Memory grows with the
    distinct states seen."""

    def __init__(self, tag: str, seed: int) -> None:
        self.tag, self.seed = tag, int(seed)
        self._counts: dict[tuple[str, str, tuple[str, ...]], int] = {}

    def next(self, state: TextState) -> int:
        """The seed of ``state``'s next sampling (a 64-bit int)."""
        key = (state.env_name, state.task_id, state.actions)
        count = self._counts.get(key, 0)
        self._counts[key] = count + 1
        return stable_hash(self.tag, self.seed, *key, count)
