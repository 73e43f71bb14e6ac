"""How ``collect`` searches (``CollectSettings``) and what it did (``CollectStats``)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ..config import SearchConfig

DEFAULT_SEARCH_CONFIG = SearchConfig(
    rule="lats", c=1.0, qnorm="bounds", value_min=0.0, value_max=1.0, fpu="inf"
)


@dataclass(frozen=True, kw_only=True)
class CollectSettings:
    """How ``collect`` searches.

    ``iterations``: ask / expand / backup rounds per tree (the paper's default: 30).
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
class CollectStats:
    """What a collection did. Summed over workers when sharded (``policy_seconds`` and
    ``env_seconds`` then add up the workers' time; ``seconds`` is the caller's wall time)."""

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

    def add(self, other: CollectStats) -> None:
        """Add a worker's counters (``trees``, ``resumed`` and ``seconds`` stay the caller's)."""
        for name in ("leaves", "policy_calls", "env_steps", "policy_seconds", "env_seconds"):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        self.best_rewards.extend(other.best_rewards)
