"""``VGuidedAgent``: one-step lookahead with a state-value critic.

Per decision (state s, ``B`` states per ``act`` call):

1. the policy proposes up to ``n`` distinct candidate actions a_1..a_k (ONE batched call);
2. each candidate is stepped in the agent's **private** environment (``env.fresh()``, brought to
   s by restoring a cached snapshot or by replay; the caller's environment is never touched),
   giving the next state s'_i and the step reward r_i;
3. every non-terminal next state of the whole batch is rendered (``render_state``) and scored
   by ONE ``value_model.score(texts)`` call;
4. the candidate with the highest value is executed (ties: the earlier candidate):

       value(a_i) = r_i            if s'_i is terminal (the episode ended: its actual reward),
                    V(s'_i)        otherwise.

The V-model is trained on node values Q(node) = reward + q (``value_records``), i.e. on the
value of *reaching* s', step reward included, so the two branches are on one scale. With
``terminal_value="model"`` terminal next states are scored by the critic too.

A state with a single candidate is executed without lookahead (no environment step, no critic
call); a state with none gets ``""`` (the environment answers an invalid action), like
``QGuidedAgent``. Costs are counted (:attr:`stats`, :attr:`env_steps_per_decision`,
:attr:`model_calls_per_decision`) because the Q-vs-V study compares environment steps and critic
calls per decision: the Q-guided agent needs none of the former.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import Any, Literal

import numpy as np

from ..data.prompts import render_state
from ..envs.base import EnvSnapshot, TextState

__all__ = ["VGuidedAgent"]

_Key = tuple[str, tuple[str, ...]]


class VGuidedAgent:
    """Sample n candidates, step each in a private env, execute the best next state by V.

    Args:
      policy: anything with ``propose(states, n) -> list[list[Candidate]]``.
      value_model: anything with ``score(texts: list[str]) -> np.ndarray`` (``ValueModel``,
        ``GenerativeCritic``); an optional ``calls_per_state`` (default 1) says how many model
        sequences one scored state costs.
      env: an environment of the states' configuration; only ``env.fresh()`` is used.
      n: candidates per decision (the step-level Q-value paper uses 5).
      terminal_value: ``"reward"`` (a terminal next state is worth its actual step reward) or
        ``"model"`` (score it with the critic like any other).
      cache_size: snapshots kept (states and looked-ahead next states) to avoid replays.
    """

    def __init__(
        self,
        policy: Any,
        value_model: Any,
        env: Any,
        n: int = 5,
        *,
        name: str = "V-guided",
        terminal_value: Literal["reward", "model"] = "reward",
        cache_size: int = 4096,
    ) -> None:
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        if terminal_value not in ("reward", "model"):
            raise ValueError(f"terminal_value must be 'reward' or 'model', got {terminal_value!r}")
        if not callable(getattr(value_model, "score", None)):
            raise TypeError(
                "value_model needs a score(texts) -> np.ndarray method (ValueModel, "
                "GenerativeCritic)"
            )
        if not callable(getattr(env, "fresh", None)):
            raise TypeError("env must be a qengine TextEnv (it needs fresh())")
        self.policy, self.value_model, self.n, self.name = policy, value_model, int(n), name
        self.terminal_value = terminal_value
        self._env = env.fresh()
        self._cache: OrderedDict[_Key, EnvSnapshot] = OrderedDict()
        self._cache_size = int(cache_size)
        self.reset_stats()

    # ------------------------------------------------------------------------------- counters
    def reset_stats(self) -> None:
        """Zero the cost counters (:attr:`stats`)."""
        self.stats: dict[str, int] = {
            "decisions": 0,  # states acted on
            "lookahead_steps": 0,  # candidate steps (one per candidate looked at)
            "replay_steps": 0,  # steps spent bringing the private env to a state
            "policy_calls": 0,  # batched propose() calls
            "critic_calls": 0,  # batched critic.score() calls
            "critic_states": 0,  # next states scored (rows of those calls)
        }

    @property
    def env_steps_per_decision(self) -> float:
        """Mean environment steps per decision (lookahead + replay); 0 before any decision."""
        s = self.stats
        return (s["lookahead_steps"] + s["replay_steps"]) / max(s["decisions"], 1)

    @property
    def model_calls_per_decision(self) -> float:
        """Mean critic sequences per decision: scored states × the critic's ``calls_per_state``
        (a generative critic's samples). ``QGuidedAgent`` reports 1: one Q-model call that
        scores all n candidates on a shared prefix."""
        per_state = int(getattr(self.value_model, "calls_per_state", 1))
        return self.stats["critic_states"] * per_state / max(self.stats["decisions"], 1)

    # ------------------------------------------------------------------------ private env
    def _remember(self, key: _Key) -> None:
        self._cache[key] = self._env.snapshot()
        self._cache.move_to_end(key)
        while len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)

    def _goto(self, state: TextState) -> EnvSnapshot:
        """Bring the private env to ``state``; returns its snapshot."""
        actions = state.actions
        key = (state.task_id, actions)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        parent = (state.task_id, actions[:-1])
        if actions and parent in self._cache:
            self._env.restore(self._cache[parent])
            self._env.step(actions[-1])
            self.stats["replay_steps"] += 1
        else:
            self._env.replay(state.task_id, actions)
            self.stats["replay_steps"] += len(actions)
        if self._env.state().observation != state.observation:
            raise ValueError(
                f"state of task {state.task_id!r} does not replay to the same observation in "
                "VGuidedAgent's environment; pass the env the states come from (same config)"
            )
        self._remember(key)
        return self._cache[key]

    def _lookahead(self, state: TextState, texts: Sequence[str]) -> list[tuple[TextState, float]]:
        """(next state, step reward) of each candidate text from ``state``."""
        snap = self._goto(state)
        out = []
        for text in texts:
            self._env.restore(snap)
            result = self._env.step(text)
            nxt = self._env.state()
            self._remember((state.task_id, nxt.actions))  # the next decision starts here
            out.append((nxt, float(result.reward)))
        self.stats["lookahead_steps"] += len(texts)
        return out

    # -------------------------------------------------------------------------------- act
    def act(self, states: Sequence[TextState]) -> list[str]:
        """One action per state: the candidate whose next state has the highest value."""
        states = list(states)
        if not states:
            return []
        proposals = self.policy.propose(states, self.n)
        self.stats["policy_calls"] += 1
        if len(proposals) != len(states):
            raise ValueError(f"policy returned {len(proposals)} lists for {len(states)} states")
        self.stats["decisions"] += len(states)
        actions: list[str] = [""] * len(states)
        values: dict[int, np.ndarray] = {}
        to_score: list[tuple[int, int, str]] = []  # (state, candidate, next-state text)
        for b, (state, cands) in enumerate(zip(states, proposals, strict=True)):
            if not cands:
                continue
            if len(cands) == 1:
                actions[b] = cands[0].text
                continue
            looked = self._lookahead(state, [c.text for c in cands])
            v = np.full(len(cands), np.nan)
            for i, (nxt, reward) in enumerate(looked):
                if nxt.done and self.terminal_value == "reward":
                    v[i] = reward
                else:
                    to_score.append((b, i, render_state(nxt)))
            values[b] = v
        if to_score:
            scores = self.value_model.score([t for _, _, t in to_score])
            scores = np.asarray(scores, dtype=np.float64)
            if scores.shape != (len(to_score),):
                raise ValueError(
                    f"value_model.score returned shape {scores.shape} for {len(to_score)} states"
                )
            self.stats["critic_calls"] += 1
            self.stats["critic_states"] += len(to_score)
            for (b, i, _), s in zip(to_score, scores, strict=True):
                values[b][i] = s
        for b, v in values.items():
            v = np.where(np.isfinite(v), v, -np.inf)  # a non-finite score never wins
            actions[b] = proposals[b][int(np.argmax(v))].text
        return actions

    def close(self) -> None:
        """Release the private environment."""
        self._env.close()
