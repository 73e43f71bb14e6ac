"""The one text rendering of an agent state, shared by data, Q-model training and selection.

A Q-value model scores ``prompt + action``; the prompt it is trained on must be byte-identical to
the one it sees when selecting actions, so every part of qengine renders states through here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

ACTION_PREFIX = "Action: "
PromptStyle = Literal["full", "compact", "compact-marked", "compact-marked-visited"]
PROMPT_STYLES: tuple[str, ...] = ("full", "compact", "compact-marked", "compact-marked-visited")
VISITED, SELECTED = "visited", "selected"
_BLOCK = re.compile(r"^(Instruction|Observation|Action): ?", re.MULTILINE)
_INSTRUCTION = re.compile(r"^Instruction: (.*)$", re.MULTILINE)
_WORD = re.compile(r"\w+(?:[-.]\w+)*")  # "x-large", "90.00" stay one word
MARK = "^"
_CLICK_ID = re.compile(r"click\[(\w+)\]")
_CLICK = re.compile(r"click\[(.+)\]")
NAVIGATION = frozenset({"next >", "< prev", "back to search", "buy now", "search"})
# Function words of instructions; marking them would flag nearly every sentence.
_STOPWORDS = frozenset(
    "a an the and or of to in on at by for from with as is am are be it its this that i me my "
    "you your need want find looking look get buy".split()
)


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


def render_state(state: object) -> str:
    """``render_prompt`` of a ``qengine.envs.TextState``."""
    return render_prompt(
        state.instruction,  # type: ignore[attr-defined]
        state.first_observation,  # type: ignore[attr-defined]
        state.history,  # type: ignore[attr-defined]
    )


def compact_prompt(prompt: str) -> str:
    """Shorten a ``render_prompt`` text: instruction, the actions so far, the LAST observation.

    Earlier observations are dropped; small models trained from scratch learn faster on the short
    form and score long episodes in bounded time.
    """
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


def instruction_words(prompt: str) -> frozenset[str]:
    """Lower-cased content words of a rendered prompt's instruction line."""
    match = _INSTRUCTION.search(prompt)
    if match is None:
        return frozenset()
    return frozenset(w for w in _WORD.findall(match.group(1).lower()) if w not in _STOPWORDS)


def mark_words(text: str, words: frozenset[str]) -> str:
    """Prefix every word of ``text`` that is in ``words`` with ``MARK`` ("^")."""
    if not words:
        return text
    return _WORD.sub(
        lambda m: MARK + m.group(0) if m.group(0).lower() in words else m.group(0), text
    )


def style_prompt(prompt: str, style: PromptStyle) -> str:
    """Apply a prompt style to a ``render_prompt`` text.

    ``"full"``: unchanged; ``"compact"``: :func:`compact_prompt`; ``"compact-marked"``: the compact
    prompt with every word after the instruction that also occurs in the instruction marked "^"
    (see :func:`style_action`). The marks hand a small model trained from scratch the lexical
    overlap a pretrained LM sees by itself (is the wanted colour among the options? which title
    has the wanted attributes?); from-scratch Q-models learn far faster with them.
    ``"compact-marked-visited"``: the same prompt; its actions also say which items were already
    visited (:func:`style_actions`).
    """
    _check_style(style)
    if style == "full":
        return prompt
    compact = compact_prompt(prompt)
    if style == "compact":
        return compact
    # the marked styles
    head, sep, rest = compact.partition("\n")
    return head + sep + mark_words(rest, instruction_words(compact))


def _blocks(prompt: str) -> list[tuple[str, str]]:
    """(kind, text) of a ``render_prompt``'s Instruction / Observation / Action blocks, in order."""
    marks = list(_BLOCK.finditer(prompt))
    return [
        (m.group(1), prompt[m.end() : marks[i + 1].start() if i + 1 < len(marks) else None])
        for i, m in enumerate(marks)
    ]


def episode_clicks(prompt: str) -> tuple[frozenset[str], frozenset[str]]:
    """What the episode has clicked so far, from a ``render_prompt`` text: (the ids of the items
    it opened, the options it selected on the item page it opened last).

    An item is an id listed with a label in the page it was clicked on (:func:`action_label`);
    an option is any other ``click[...]`` but the navigation buttons (``NAVIGATION``).
    """
    opened: set[str] = set()
    selected: set[str] = set()
    observation = ""
    for kind, text in _blocks(prompt):
        text = text.strip()
        if kind == "Observation":
            observation = text
            continue
        if kind != "Action" or not text:
            continue
        target = _CLICK.fullmatch(text)
        if target is None:  # a search: a new results page
            selected.clear()
        elif action_label(f"Observation: {observation}", text):
            opened.add(target.group(1))
            selected.clear()
        elif target.group(1) not in NAVIGATION:
            selected.add(target.group(1))
    return frozenset(opened), frozenset(selected)


def action_label(prompt: str, action: str) -> str:
    """The visible label of the element ``action`` clicks, from the prompt's last observation.

    WebShop-style pages list a clickable id as a field of its own followed by its label
    (``[b0ab12cd34] [SEP] Zosa short sleeve t-shirt [SEP] $19.99``); for ``click[b0ab12cd34]``
    this returns ``"Zosa short sleeve t-shirt"``. Only single-word ids count (not ``next >``,
    ``buy now`` or option values); "" when there is no such field.
    """
    match = _CLICK_ID.fullmatch(action.strip())
    if match is None:
        return ""
    at = prompt.rfind("Observation:")
    observation = prompt[at:] if at >= 0 else prompt
    label = re.search(
        r"(?:^|\[SEP\] |Observation: )\["
        + re.escape(match.group(1))
        + r"\] \[SEP\] ([^\[\n]+?)(?: \[SEP\]|\n|$)",
        observation,
    )
    return label.group(1).strip() if label else ""


def style_actions(prompt: str, actions: Sequence[str], style: PromptStyle) -> list[str]:
    """The candidate actions as a Q-model of ``style`` sees them after ``style_prompt(prompt)``.

    Unchanged except for the marked styles: an action that clicks an id gets the id's visible
    label appended (:func:`action_label`), so the model need not look the id up in the page, and
    the action's instruction words are marked as in the prompt. ``"compact-marked-visited"`` also
    appends "visited" to a click on an item the episode opened before and "selected" to a click
    on an option already selected on this item page (:func:`episode_clicks`): the compact prompt
    keeps only the last observation, and a small model otherwise re-opens the same wrong item
    after going back to the results, or re-selects an option instead of buying.
    """
    _check_style(style)
    if not style.startswith("compact-marked"):
        return list(actions)
    words = instruction_words(prompt)
    opened, selected = frozenset(), frozenset()
    if style == "compact-marked-visited":
        opened, selected = episode_clicks(prompt)
    out = []
    for action in actions:
        text = action
        label = action_label(prompt, action)
        target = _CLICK.fullmatch(action.strip())
        if label:
            text = f"{text} {label}"
            if target is not None and target.group(1) in opened:
                text = f"{text} {VISITED}"
        elif target is not None and target.group(1) in selected:
            text = f"{text} {SELECTED}"
        out.append(mark_words(text, words))
    return out


def style_action(prompt: str, action: str, style: PromptStyle) -> str:
    """One action of :func:`style_actions`."""
    return style_actions(prompt, [action], style)[0]


def styled_corpus(records: Sequence[dict], style: PromptStyle) -> list[str]:
    """Per preference record, its styled prompt, chosen and rejected action in one text: what a
    Q-model of ``style`` reads, e.g. to fit its tokenizer on."""
    texts = []
    for r in records:
        actions = style_actions(r["prompt"], [r["chosen"], r["rejected"]], style)
        texts.append(" ".join([style_prompt(r["prompt"], style), *actions]))
    return texts


def _check_style(style: str) -> None:
    if style not in PROMPT_STYLES:
        raise ValueError(
            f"unknown prompt style {style!r}; choose one of {', '.join(PROMPT_STYLES)}"
        )
