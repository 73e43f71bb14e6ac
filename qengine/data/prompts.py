"""The one text rendering of an agent state, and the prompt styles a Q-model reads it in.

A Q-value model scores ``prompt + action``; the prompt it is trained on must be byte-identical to
the one it sees when selecting actions, so every part of qengine renders states through here.

A :class:`PromptStyle` is a set of options (shorten the prompt, mark instruction words, label
actions, flag revisits, mark prices); what each option means on a page is the environment's
business, answered by its :class:`~qengine.envs.base.Rendering` hooks (``rendering_for(env)``).
This module knows the prompt's own layout (Instruction / Observation / Action blocks), nothing of
any environment's pages.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import Any

from ..envs.base import WORD, Rendering
from ..envs.registry import rendering_for
from ..errors import UsageValueError

__all__ = [
    "ACTION_PREFIX",
    "MARK",
    "PROMPT_STYLES",
    "PromptStyle",
    "compact_prompt",
    "mark_words",
    "parse_prompt",
    "render_prompt",
    "render_state",
    "style_action",
    "style_actions",
    "style_prompt",
    "styled_corpus",
]

ACTION_PREFIX = "Action: "
MARK = "^"
_BLOCK = re.compile(r"^(Instruction|Observation|Action): ?", re.MULTILINE)
_INSTRUCTION = re.compile(r"^Instruction: (.*)$", re.MULTILINE)
Env = str | Rendering | None  # an environment's name, its hooks, or None for legacy text


@dataclass(frozen=True)
class PromptStyle:
    """How a Q-model reads a state: composable options over :func:`render_prompt`'s text.

    Attributes:
      compact: instruction, the actions so far and the LAST observation only
        (:func:`compact_prompt`); small models trained from scratch learn faster on the short
        form and score long episodes in bounded time.
      mark_instruction: prefix "^" to every word after the instruction line (prompt and actions)
        that the instruction also names (``Rendering.content_words``). The marks hand a small
        model trained from scratch the lexical overlap a pretrained LM sees by itself (is the
        wanted colour among the options? which title has the wanted attributes?).
      label_actions: append to an action what it targets on the current page
        (``Rendering.action_notes``), so the model need not look an id up in the page.
      flag_visited: append whether the episode already went where an action leads ("visited",
        "selected" on the shop): the compact prompt keeps only the last page.
      mark_prices: mark every amount within the instruction's bound (``Rendering.price_bound``)
        and let labels carry prices: comparing "$63.99" with "lower than 50.00 dollars" is
        arithmetic a small model trained from scratch does not learn from a few thousand pairs.

    Saved models and configs name a style by :attr:`name`: a preset of :data:`PROMPT_STYLES`
    ("compact-marked-visited-price") or the options joined by "+" ("compact+mark_prices").
    """

    compact: bool = False
    mark_instruction: bool = False
    label_actions: bool = False
    flag_visited: bool = False
    mark_prices: bool = False

    @property
    def name(self) -> str:
        """The preset name of this style, else its options joined by "+" ("full" for none)."""
        for preset, style in PROMPT_STYLES.items():
            if style == self:
                return preset
        return "+".join(f.name for f in fields(self) if getattr(self, f.name))

    @property
    def notes_actions(self) -> bool:
        """Whether actions get the environment's notes appended (``Rendering.action_notes``)."""
        return self.label_actions or self.flag_visited

    @property
    def changes_actions(self) -> bool:
        """Whether a candidate action reads differently from its raw text."""
        return self.mark_instruction or self.mark_prices or self.notes_actions

    @classmethod
    def parse(cls, style: str | PromptStyle) -> PromptStyle:
        """A :class:`PromptStyle` from itself, a preset name or "+"-joined option names."""
        if isinstance(style, PromptStyle):
            return style
        if isinstance(style, str) and style in PROMPT_STYLES:
            return PROMPT_STYLES[style]
        options = {f.name for f in fields(cls)}
        parts = style.split("+") if isinstance(style, str) else [None]
        if not all(p in options for p in parts):
            raise UsageValueError(
                f"unknown prompt style {style!r}; choose one of {', '.join(PROMPT_STYLES)}, or "
                f"options joined by '+' from {', '.join(sorted(options))}"
            )
        return cls(**dict.fromkeys(parts, True))

    def __str__(self) -> str:
        return self.name


PROMPT_STYLES: dict[str, PromptStyle] = {
    "full": PromptStyle(),
    "compact": PromptStyle(compact=True),
    "compact-marked": PromptStyle(compact=True, mark_instruction=True, label_actions=True),
    "compact-marked-visited": PromptStyle(
        compact=True, mark_instruction=True, label_actions=True, flag_visited=True
    ),
    "compact-marked-visited-price": PromptStyle(
        compact=True, mark_instruction=True, label_actions=True, flag_visited=True, mark_prices=True
    ),
}
"""The named styles (the ablation ladder the demo measured); saved models name these."""


def render_prompt(
    instruction: str, first_observation: str, history: Sequence[tuple[str, str]]
) -> str:
    """Instruction, first observation, each (action, observation) so far, then "Action: ".

    The completion (the candidate action) follows the returned text directly.
    """
    parts = [f"Instruction: {instruction.strip()}", f"Observation: {first_observation.strip()}"]
    for action, observation in history:
        parts.append(f"{ACTION_PREFIX}{action.strip()}")
        parts.append(f"Observation: {observation.strip()}")
    parts.append(ACTION_PREFIX.rstrip())
    return "\n".join(parts) + " "


def render_state(state: Any) -> str:
    """``render_prompt`` of a ``qengine.envs.TextState``."""
    return render_prompt(state.instruction, state.first_observation, state.history)


def _blocks(prompt: str) -> list[tuple[str, str]]:
    """(kind, text) of a ``render_prompt``'s Instruction / Observation / Action blocks, in order."""
    marks = list(_BLOCK.finditer(prompt))
    return [
        (m.group(1), prompt[m.end() : marks[i + 1].start() if i + 1 < len(marks) else None])
        for i, m in enumerate(marks)
    ]


def parse_prompt(prompt: str) -> tuple[str, str, list[tuple[str, str]]]:
    """The inverse of :func:`render_prompt`: (instruction, first observation, history), every
    text stripped. The pending "Action: " at the end is not a step."""
    instruction, first, history = "", "", []
    action: str | None = None
    for kind, text in _blocks(prompt):
        text = text.strip()
        if kind == "Instruction":
            instruction = text
        elif kind == "Action":
            action = text
        elif action is None:
            first = text
        else:
            history.append((action, text))
            action = None
    return instruction, first, history


def compact_prompt(prompt: str) -> str:
    """Shorten a ``render_prompt`` text: instruction, the actions so far, the LAST observation
    (the ``compact`` option of :class:`PromptStyle`)."""
    blocks = _blocks(prompt)
    instruction = next((text.strip() for kind, text in blocks if kind == "Instruction"), "")
    actions = [text.strip() for kind, text in blocks if kind == "Action" and text.strip()]
    observation = next(
        (text.strip() for kind, text in reversed(blocks) if kind == "Observation"), ""
    )
    parts = [f"Instruction: {instruction}"]
    if actions:
        parts.append("Previous actions: " + " | ".join(actions))
    parts.append(f"Observation: {observation}")
    parts.append(ACTION_PREFIX.rstrip())
    return "\n".join(parts) + " "


def mark_words(text: str, words: frozenset[str]) -> str:
    """Prefix every word of ``text`` that is in ``words`` with ``MARK`` ("^")."""
    if not words:
        return text
    return WORD.sub(
        lambda m: MARK + m.group(0) if m.group(0).lower() in words else m.group(0), text
    )


def _hooks(env: Env) -> Rendering:
    return env if isinstance(env, Rendering) else rendering_for(env)


@dataclass(frozen=True)
class _Marks:
    """What a style marks in one prompt's text after the instruction line and its actions."""

    words: frozenset[str]  # the instruction's content words
    bound: float | None  # the price bound, when the style marks prices and the instruction has one
    hooks: Rendering

    @classmethod
    def of(cls, prompt: str, style: PromptStyle, hooks: Rendering) -> _Marks:
        line = _INSTRUCTION.search(prompt)  # the instruction's first line, as the model sees it
        instruction = line.group(1) if line else ""
        words = hooks.content_words(instruction) if style.mark_instruction else frozenset()
        bound = hooks.price_bound(instruction) if style.mark_prices else None
        if bound is None:
            return cls(words, None, hooks)
        # the bound's number is marked as a price ("^$50.00"), not as a word ("$^50.00")
        return cls(words - {bound}, float(bound), hooks)

    def apply(self, text: str) -> str:
        text = mark_words(text, self.words)
        return text if self.bound is None else self.hooks.mark_prices(text, self.bound, MARK)


def style_prompt(prompt: str, style: str | PromptStyle, env: Env = None) -> str:
    """A ``render_prompt`` text as a Q-model of ``style`` reads it (see :class:`PromptStyle`).

    ``env``: the environment the text comes from (its name or its hooks); None for text saved
    without one (see ``qengine.envs.LEGACY_RENDERING_ENV``). The instruction line itself is never
    marked.
    """
    style = PromptStyle.parse(style)
    text = compact_prompt(prompt) if style.compact else prompt
    if not (style.mark_instruction or style.mark_prices):
        return text
    head, sep, rest = text.partition("\n")
    return head + sep + _Marks.of(text, style, _hooks(env)).apply(rest)


def style_actions(
    prompt: str, actions: Sequence[str], style: str | PromptStyle, env: Env = None
) -> list[str]:
    """The candidate actions as a Q-model of ``style`` sees them after ``style_prompt(prompt)``:
    each with the environment's notes appended (``label_actions``, ``flag_visited``), then marked
    as the prompt is."""
    style = PromptStyle.parse(style)
    if not style.changes_actions:
        return list(actions)
    hooks = _hooks(env)
    notes = [""] * len(actions)
    if style.notes_actions:
        _, first, history = parse_prompt(prompt)
        notes = hooks.action_notes(
            first,
            history,
            actions,
            label=style.label_actions,
            with_price=style.mark_prices,
            flag_visited=style.flag_visited,
        )
    marks = _Marks.of(prompt, style, hooks)
    return [marks.apply(f"{a} {n}" if n else a) for a, n in zip(actions, notes, strict=True)]


def style_action(prompt: str, action: str, style: str | PromptStyle, env: Env = None) -> str:
    """One action of :func:`style_actions`."""
    return style_actions(prompt, [action], style, env)[0]


def styled_corpus(records: Sequence[dict], style: str | PromptStyle) -> list[str]:
    """Per preference record, its styled prompt, chosen and rejected action in one text: what a
    Q-model of ``style`` reads, e.g. to fit its tokenizer on. A record's ``env`` (when it has one)
    picks the rendering hooks."""
    texts = []
    for r in records:
        env = r.get("env")
        actions = style_actions(r["prompt"], [r["chosen"], r["rejected"]], style, env)
        texts.append(" ".join([style_prompt(r["prompt"], style, env), *actions]))
    return texts
