"""The text-environment protocol shared by every built-in and third-party environment.

An environment holds a fixed, seeded list of tasks per split. ``reset(task_id)`` starts an
episode and returns a :class:`TextState`; ``step(action)`` returns a :class:`StepResult`. Every
step is deterministic, so an episode is fully described by ``(task_id, actions)`` and
:meth:`TextEnv.replay` rebuilds it; :meth:`TextEnv.snapshot` / :meth:`TextEnv.restore` do the
same faster when the environment can copy its own state.

Invalid input never raises from inside an environment: a malformed, empty or inadmissible action
is answered with an observation that says what is valid (``info["valid"] is False``), earns
reward 0 and costs a step like any other action. Only programming errors raise (stepping before
``reset``, an unknown task id).

How a Q-model reads an environment's states is the environment's business too: a
:class:`Rendering` answers the questions the prompt styles of ``qengine.data.prompts`` ask (which
instruction words matter, what a clicked id is labelled, which items the episode already opened,
which amounts are within the instruction's budget). Its defaults are neutral; an environment
whose pages carry such structure overrides them (``qengine.envs.shop.render``).
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, ClassVar

__all__ = [
    "SPLITS",
    "WORD",
    "EnvSnapshot",
    "Rendering",
    "StepResult",
    "TextEnv",
    "TextState",
    "parse_action",
]

SPLITS: tuple[str, ...] = ("train", "test")
"""Names of the task splits every environment provides (disjoint by construction)."""

_ACTION_RE = re.compile(r"^\s*([a-zA-Z_]+)\s*\[(.*)\]\s*$", re.DOTALL)

WORD = re.compile(r"\w+(?:[-.]\w+)*")
"""A word as the prompt styles mark it: "x-large" and "90.00" stay one word."""
# Function words of instructions; marking them would flag nearly every sentence.
_STOPWORDS = frozenset(
    "a an the and or of to in on at by for from with as is am are be it its this that i me my "
    "you your need want find looking look get buy".split()
)


def parse_action(action: str) -> tuple[str, str] | None:
    """Split ``"verb[argument]"`` into ``(verb.lower(), argument.strip())``.

    Returns ``None`` when ``action`` is not of that form.
    """
    if not isinstance(action, str):
        return None
    m = _ACTION_RE.match(action)
    if m is None:
        return None
    return m.group(1).lower(), m.group(2).strip()


@dataclass(frozen=True)
class TextState:
    """Everything an agent may see of an episode: plain text, no environment internals.

    This is what policies receive (an LLM policy builds its ReAct prompt from it), and with
    ``(env_name, task_id, actions)`` it identifies the environment state exactly (see
    :meth:`TextEnv.replay`).
    """

    env_name: str  # registry name of the environment ("shop", "hotpot", ...)
    task_id: str  # e.g. "train/00017"; unique within the environment's configuration
    instruction: str  # the goal, in words
    first_observation: str  # observation returned by reset
    history: tuple[tuple[str, str], ...] = ()  # (action, observation) per step taken so far
    admissible: tuple[str, ...] | None = None  # valid actions now, None when free-form
    done: bool = False  # the episode has ended (success, failure or step cap)
    total_reward: float = 0.0  # sum of the step rewards so far

    @property
    def observation(self) -> str:
        """The latest observation (the first one before any step)."""
        return self.history[-1][1] if self.history else self.first_observation

    @property
    def actions(self) -> tuple[str, ...]:
        """The actions taken so far, in order."""
        return tuple(a for a, _ in self.history)

    @property
    def depth(self) -> int:
        """Number of steps taken."""
        return len(self.history)


@dataclass(frozen=True)
class StepResult:
    """Outcome of one :meth:`TextEnv.step`."""

    observation: str
    reward: float
    done: bool
    info: Mapping[str, Any] = field(default_factory=dict)  # always has "valid": bool


@dataclass(frozen=True)
class EnvSnapshot:
    """Opaque copy of an environment's episode state, for :meth:`TextEnv.restore`."""

    env_name: str
    task_id: str
    payload: Any  # environment-specific immutable (or privately copied) state


class Rendering:
    """An environment's hooks for the prompt styles; the defaults suit any text environment.

    The styles (``qengine.data.prompts.PromptStyle``) decide *whether* to mark instruction words,
    label actions, flag revisits or mark prices; these hooks say *what* that means on this
    environment's pages. ``history`` is ``TextState.history``: (action, observation) per step.
    Subclasses override only what their pages support; every hook is a pure function of text.
    """

    def content_words(self, instruction: str) -> frozenset[str]:
        """Lower-cased words of ``instruction`` worth marking where they recur (no function
        words)."""
        return frozenset(w for w in WORD.findall(instruction.lower()) if w not in _STOPWORDS)

    def price_bound(self, instruction: str) -> str | None:
        """The upper bound on an amount that ``instruction`` states, as written ("50.00"), or
        None. Default: None (no environment-neutral notion of a budget)."""
        return None

    def mark_prices(self, text: str, bound: float, mark: str) -> str:
        """``text`` with ``mark`` before every amount within ``bound``. Default: unchanged."""
        return text

    def action_notes(
        self,
        first_observation: str,
        history: Sequence[tuple[str, str]],
        actions: Sequence[str],
        *,
        label: bool,
        with_price: bool,
        flag_visited: bool,
    ) -> list[str]:
        """Per candidate action, the words a styled prompt appends to it ("" for none): with
        ``label`` what the action's target is called on the current page (``with_price``: and
        its listed price), with ``flag_visited`` whether the episode already went there.
        Default: nothing (actions of free-form or self-describing environments)."""
        return [""] * len(actions)


class TextEnv(ABC):
    """Base class of text environments.

    Subclasses implement the abstract methods; this class keeps the text history, the step
    counter and the step cap, so subclasses only answer "what does this action do".
    Configuration is passed as keyword arguments and kept in :attr:`config`, so
    :meth:`fresh` can build an independent twin (the scripted policy and worker pools use it).
    """

    name: ClassVar[str] = "base"
    rendering: ClassVar[Rendering] = Rendering()  # hooks of the prompt styles (see Rendering)
    # Whether step rewards measure progress towards success (a game score's gains, summing to
    # 1 on a win): a search should then back up the raw rewards, which rank states before any
    # rollout wins (qengine.pipeline's success_reward="auto" does). False: the reward is a final
    # grade (shop's purchase score), where searching success is the safer default.
    scores_progress: ClassVar[bool] = False

    def __init__(self, *, max_steps: int, config: Mapping[str, Any]) -> None:
        if max_steps < 1:
            raise ValueError(f"max_steps must be >= 1, got {max_steps}")
        self.max_steps = int(max_steps)
        self.config: dict[str, Any] = dict(config)
        self._task_id: str | None = None
        self._instruction = ""
        self._first_obs = ""
        self._history: list[tuple[str, str]] = []
        self._done = False
        self._total_reward = 0.0

    # ----------------------------------------------------------------- tasks
    @abstractmethod
    def task_ids(self, split: str = "train") -> list[str]:
        """Task ids of ``split`` (one of :data:`SPLITS`), in a fixed order."""

    def _check_split(self, split: str) -> None:
        if split not in SPLITS:
            raise ValueError(f"unknown split {split!r}; valid splits: {', '.join(SPLITS)}")

    # -------------------------------------------------------------- episode
    @abstractmethod
    def _reset(self, task_id: str) -> tuple[str, str]:
        """Start ``task_id``; return ``(instruction, first_observation)``.

        Raise ``KeyError`` with a helpful message for an unknown task id.
        """

    @abstractmethod
    def _step(self, action: str) -> StepResult:
        """Apply one action to a live (not done) episode."""

    @abstractmethod
    def admissible_actions(self) -> tuple[str, ...] | None:
        """Valid actions in the current state, or ``None`` when actions are free-form."""

    @abstractmethod
    def _get_payload(self) -> Any:
        """Environment-specific part of a snapshot (must not alias mutable live state)."""

    @abstractmethod
    def _set_payload(self, payload: Any) -> None:
        """Inverse of :meth:`_get_payload`."""

    # Expert hooks used by the scripted policy (qengine.policies.scripted).
    @abstractmethod
    def oracle_action(self) -> str:
        """An action of an expert who knows the task's solution, from the current state."""

    @abstractmethod
    def plausible_actions(self) -> tuple[str, ...]:
        """A finite, non-empty set of actions an uninformed agent might try here.

        The admissible actions when they are known; otherwise actions built from the text seen
        so far (e.g. search queries from instruction words).
        """

    # --------------------------------------------------------- public API
    def reset(self, task_id: str) -> TextState:
        """Start the episode of ``task_id`` and return its initial state."""
        instruction, first_obs = self._reset(task_id)
        self._task_id = task_id
        self._instruction = instruction
        self._first_obs = first_obs
        self._history = []
        self._done = False
        self._total_reward = 0.0
        return self.state()

    def step(self, action: str) -> StepResult:
        """Apply ``action``; never raises for bad action text (see the module docstring)."""
        if self._task_id is None:
            raise RuntimeError(f"{self.name}: call reset(task_id) before step()")
        text = action if isinstance(action, str) else repr(action)
        if self._done:
            return StepResult(
                "The episode is over; call reset() to start a new one.",
                0.0,
                True,
                {"valid": False, "error": "done"},
            )
        if not isinstance(action, str) or not action.strip():
            res = StepResult(
                f"Invalid action: the action is empty. {self._valid_hint()}",
                0.0,
                False,
                {"valid": False, "error": "empty"},
            )
        else:
            res = self._step(action.strip())
        info = dict(res.info)
        info.setdefault("valid", True)
        done = res.done
        if not done and len(self._history) + 1 >= self.max_steps:
            done = True
            info["truncated"] = True
        res = StepResult(res.observation, float(res.reward), done, info)
        self._history.append((text, res.observation))
        self._done = done
        self._total_reward += res.reward
        return res

    def _valid_hint(self) -> str:
        """Sentence listing what is valid now (used in feedback for invalid actions)."""
        adm = self.admissible_actions()
        if adm:
            return "Valid actions: " + ", ".join(adm) + "."
        return ""

    def state(self) -> TextState:
        """The current episode as a :class:`TextState`."""
        if self._task_id is None:
            raise RuntimeError(f"{self.name}: call reset(task_id) before state()")
        return TextState(
            env_name=self.name,
            task_id=self._task_id,
            instruction=self._instruction,
            first_observation=self._first_obs,
            history=tuple(self._history),
            admissible=None if self._done else self.admissible_actions(),
            done=self._done,
            total_reward=self._total_reward,
        )

    @property
    def done(self) -> bool:
        """Whether the current episode has ended."""
        return self._done

    @property
    def task_id(self) -> str | None:
        """The task of the current episode (``None`` before the first reset)."""
        return self._task_id

    def replay(self, task_id: str, actions: Iterable[str]) -> TextState:
        """Reset to ``task_id`` and apply ``actions``; deterministic, so equal inputs give equal
        states."""
        self.reset(task_id)
        for a in actions:
            self.step(a)
        return self.state()

    def snapshot(self) -> EnvSnapshot:
        """Copy the current episode state (restore it with :meth:`restore`)."""
        if self._task_id is None:
            raise RuntimeError(f"{self.name}: call reset(task_id) before snapshot()")
        base = (
            self._task_id,
            self._instruction,
            self._first_obs,
            tuple(self._history),
            self._done,
            self._total_reward,
        )
        return EnvSnapshot(self.name, self._task_id, (base, self._get_payload()))

    def restore(self, snap: EnvSnapshot) -> TextState:
        """Return to the state captured by :meth:`snapshot`; returns that state."""
        if not isinstance(snap, EnvSnapshot) or snap.env_name != self.name:
            raise ValueError(f"{self.name}: not a snapshot of this environment: {snap!r:.80}")
        base, payload = snap.payload
        (tid, instr, first, hist, done, total) = base
        self._task_id, self._instruction, self._first_obs = tid, instr, first
        self._history, self._done, self._total_reward = list(hist), done, total
        self._set_payload(payload)
        return self.state()

    def fresh(self) -> TextEnv:
        """A new, independent environment with the same configuration (and so the same tasks)."""
        return type(self)(**self.config)

    def close(self) -> None:  # noqa: B027 - optional hook
        """Release external resources (game processes); a no-op for pure-Python environments."""
