"""A scripted noisy expert for the built-in environments (a controllable base agent on CPU).

Per state the policy's action distribution is

    pi(a) = p * [a == oracle] + (1 - p) * [a in plausible] / |plausible|

where ``oracle`` is :meth:`TextEnv.oracle_action` (an expert who knows the solution) and
``plausible`` is :meth:`TextEnv.plausible_actions` (the admissible actions, or text-derived
guesses when actions are free-form). ``propose`` draws ``n`` samples from ``pi`` (or ``n``
distinct ones with ``unique=True``), removes duplicates and reports ``log pi(a)`` as the prior.

The policy never touches the caller's environment: it keeps a private twin (``env.fresh()`` or
``make_env``) and brings it to each state by restoring a cached snapshot of that state or of its
parent, or by replay. Sampling is deterministic given ``seed``: the generator of a call is seeded
by ``(seed, task, actions so far, how many times this state was proposed for before)``, so the
result for a state does not depend on which other states share its batch.
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from qengine.envs import TextEnv, TextState, make_env
from qengine.envs.base import EnvSnapshot

from .base import Candidate, StateSeeds, dedupe

__all__ = ["ScriptedPolicy"]

_Key = tuple[str, tuple[str, ...]]


class ScriptedPolicy:
    """The oracle action with probability ``p``, else a uniformly random plausible action.

    Args:
        env: a registry name (``"shop"``, ``"hotpot"``, ``"textworld"``) or an environment whose
            configuration (``env.fresh()``) the states come from.
        p: probability of the oracle action, in [0, 1]; 1 is the expert, 0 a random agent.
        seed: seed of the sampling.
        unique: draw ``n`` distinct actions (without replacement) instead of ``n`` samples.
        cache_size: number of state snapshots kept to avoid replays.
        env_kwargs: configuration for ``make_env`` when ``env`` is a name.
    """

    def __init__(
        self,
        env: str | TextEnv,
        *,
        p: float = 0.5,
        seed: int = 0,
        unique: bool = False,
        cache_size: int = 4096,
        env_kwargs: Mapping[str, Any] | None = None,
    ) -> None:
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"p must be in [0, 1], got {p}")
        if isinstance(env, TextEnv):
            if env_kwargs:
                raise ValueError("pass env_kwargs only together with an environment name")
            self._env = env.fresh()
        else:
            self._env = make_env(env, **dict(env_kwargs or {}))
        self.p = float(p)
        self.seed = int(seed)
        self.unique = bool(unique)
        self._cache: OrderedDict[_Key, EnvSnapshot] = OrderedDict()
        self._cache_size = int(cache_size)
        self._seeds = StateSeeds("scripted", self.seed)

    @property
    def env_name(self) -> str:
        """Registry name of the environment this policy plays."""
        return self._env.name

    # ------------------------------------------------------------ env at state
    def _remember(self, key: _Key) -> None:
        self._cache[key] = self._env.snapshot()
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _goto(self, state: TextState) -> None:
        if state.env_name != self._env.name:
            raise ValueError(
                f"ScriptedPolicy plays {self._env.name!r} but got a state of {state.env_name!r}"
            )
        actions = state.actions
        key = (state.task_id, actions)
        parent = (state.task_id, actions[:-1])
        if key in self._cache:
            self._env.restore(self._cache[key])
            self._cache.move_to_end(key)
            return
        if actions and parent in self._cache:
            self._env.restore(self._cache[parent])
            self._env.step(actions[-1])
        else:
            self._env.replay(state.task_id, actions)
        if self._env.state().observation != state.observation:
            raise ValueError(
                f"state of task {state.task_id!r} does not replay to the same observation in "
                "this policy's environment; was it made with another configuration (seed)?"
            )
        self._remember(key)

    # ---------------------------------------------------------------- propose
    def distribution(self, state: TextState) -> dict[str, float]:
        """The policy's action probabilities at ``state`` (empty for a finished episode)."""
        if state.done:
            return {}
        self._goto(state)
        plausible = list(dict.fromkeys(self._env.plausible_actions()))
        oracle = self._env.oracle_action()
        probs: dict[str, float] = {}
        if self.p > 0.0:
            probs[oracle] = self.p
        if self.p < 1.0 and plausible:
            share = (1.0 - self.p) / len(plausible)
            for a in plausible:
                probs[a] = probs.get(a, 0.0) + share
        if not plausible:  # nothing else to do: the expert's action takes all the mass
            probs = {oracle: 1.0}
        return probs

    def propose(self, states: Sequence[TextState], n: int) -> list[list[Candidate]]:
        """``B`` lists of at most ``n`` distinct candidates with ``log pi`` as ``logprob``."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        out: list[list[Candidate]] = []
        for state in states:
            probs = self.distribution(state)
            if not probs:
                out.append([])
                continue
            rng = np.random.default_rng(self._seeds.next(state))
            texts = list(probs)
            pv = np.array([probs[t] for t in texts], dtype=np.float64)
            pv /= pv.sum()
            if self.unique:
                k = min(n, int(np.count_nonzero(pv)))
                idx = rng.choice(len(texts), size=k, replace=False, p=pv)
            else:
                idx = rng.choice(len(texts), size=n, replace=True, p=pv)
            cands = [Candidate(texts[int(i)], math.log(probs[texts[int(i)]])) for i in idx]
            out.append(dedupe(cands))
        return out

    def act(self, states: Sequence[TextState]) -> list[str | None]:
        """One sampled action per state (``None`` for a finished episode)."""
        return [c[0].text if c else None for c in self.propose(states, 1)]

    def close(self) -> None:
        """Release the private environment."""
        self._env.close()
