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

__all__ = ["Candidate", "Policy", "dedupe"]


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
