"""The one text rendering of an agent state, shared by data, Q-model training and selection.

A Q-value model scores ``prompt + action``; the prompt it is trained on must be byte-identical to
the one it sees when selecting actions, so every part of qengine renders states through here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

ACTION_PREFIX = "Action: "
PromptStyle = Literal[
    "full", "compact", "compact-marked", "compact-marked-visited", "compact-marked-visited-price"
]
PROMPT_STYLES: tuple[str, ...] = (
    "full", "compact", "compact-marked", "compact-marked-visited", "compact-marked-visited-price"
)  # fmt: skip
VISITED, SELECTED = "visited", "selected"
PRICED_STYLE = "compact-marked-visited-price"  # the style that marks prices
_MARKED_STYLES = frozenset({"compact-marked", "compact-marked-visited", PRICED_STYLE})
_VISIT_FLAG_STYLES = frozenset({"compact-marked-visited", PRICED_STYLE})
_BLOCK = re.compile(r"^(Instruction|Observation|Action): ?", re.MULTILINE)
_INSTRUCTION = re.compile(r"^Instruction: (.*)$", re.MULTILINE)
_WORD = re.compile(r"\w+(?:[-.]\w+)*")  # "x-large", "90.00" stay one word
MARK = "^"
# "price lower than 50.00 dollars" (WebShop's wording), "under $50"
_PRICE_LIMIT = re.compile(r"(?:lower|less) than \$?(\d+(?:\.\d+)?)|under \$(\d+(?:\.\d+)?)")
_PRICE = re.compile(r"\$(\d+(?:\.\d+)?)")
_LISTED_PRICE = re.compile(r" (\$\d+(?:\.\d+)?)(?: \[SEP\]|\n|$)")  # the field after a label
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


def _limit_text(prompt: str) -> str | None:
    match = _INSTRUCTION.search(prompt)
    limit = _PRICE_LIMIT.search(match.group(1).lower()) if match else None
    return (limit.group(1) or limit.group(2)) if limit else None


def price_limit(prompt: str) -> float | None:
    """The price bound of a rendered prompt's instruction ("price lower than 50.00 dollars"), or
    None when it states none."""
    text = _limit_text(prompt)
    return None if text is None else float(text)


def mark_prices(text: str, limit: float | None) -> str:
    """Prefix every dollar amount of ``text`` within ``limit`` with ``MARK``: "$31.99" -> "^$31.99".

    At most the limit counts, as in WebShop's price reward.
    """
    if limit is None:
        return text
    return _PRICE.sub(
        lambda m: MARK + m.group(0) if float(m.group(1)) <= limit else m.group(0), text
    )


@dataclass(frozen=True)
class _Marks:
    """What a marked style marks in one prompt's observation and candidates."""

    words: frozenset[str]  # the instruction's content words
    limit: float | None  # the price bound, when the style marks prices and the instruction has one

    def apply(self, text: str) -> str:
        return mark_prices(mark_words(text, self.words), self.limit)


def _marks(prompt: str, style: PromptStyle) -> _Marks:
    words = instruction_words(prompt)
    bound = _limit_text(prompt) if style == PRICED_STYLE else None
    if bound is None:
        return _Marks(words, None)
    # the bound's number is marked as a price ("^$50.00"), not as a word ("$^50.00")
    return _Marks(words - {bound}, float(bound))


def style_prompt(prompt: str, style: PromptStyle) -> str:
    """Apply a prompt style to a ``render_prompt`` text.

    ``"full"``: unchanged; ``"compact"``: :func:`compact_prompt`; ``"compact-marked"``: the compact
    prompt with every word after the instruction that also occurs in the instruction marked "^"
    (see :func:`style_action`). The marks hand a small model trained from scratch the lexical
    overlap a pretrained LM sees by itself (is the wanted colour among the options? which title
    has the wanted attributes?); from-scratch Q-models learn far faster with them.
    ``"compact-marked-visited"``: the same prompt; its actions also say which items were already
    visited (:func:`style_actions`). ``"compact-marked-visited-price"``: also marks every price
    within the instruction's bound (:func:`mark_prices`): comparing "$63.99" with "lower than
    50.00 dollars" is arithmetic a small model trained from scratch does not learn from a few
    thousand pairs, and an item over the budget can never earn the full reward.
    """
    _check_style(style)
    if style == "full":
        return prompt
    compact = compact_prompt(prompt)
    if style == "compact":
        return compact
    # the marked styles
    head, sep, rest = compact.partition("\n")
    return head + sep + _marks(compact, style).apply(rest)


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


def action_label(prompt: str, action: str, *, with_price: bool = False) -> str:
    """The visible label of the element ``action`` clicks, from the prompt's last observation.

    WebShop-style pages list a clickable id as a field of its own followed by its label
    (``[b0ab12cd34] [SEP] Zosa short sleeve t-shirt [SEP] $19.99``); for ``click[b0ab12cd34]``
    this returns ``"Zosa short sleeve t-shirt"`` (``"Zosa short sleeve t-shirt $19.99"`` with
    ``with_price``, when a price field follows). Only single-word ids count (not ``next >``,
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
    if label is None:
        return ""
    price = _LISTED_PRICE.match(observation, label.end()) if with_price else None
    return label.group(1).strip() + (f" {price.group(1)}" if price else "")


def style_actions(prompt: str, actions: Sequence[str], style: PromptStyle) -> list[str]:
    """The candidate actions as a Q-model of ``style`` sees them after ``style_prompt(prompt)``.

    Unchanged except for the marked styles: an action that clicks an id gets the id's visible
    label appended (:func:`action_label`), so the model need not look the id up in the page, and
    the action's instruction words are marked as in the prompt. ``"compact-marked-visited"`` also
    appends "visited" to a click on an item the episode opened before and "selected" to a click
    on an option already selected on this item page (:func:`episode_clicks`): the compact prompt
    keeps only the last observation, and a small model otherwise re-opens the same wrong item
    after going back to the results, or re-selects an option instead of buying.
    ``"compact-marked-visited-price"`` also appends a listed item's price to its label and marks
    the prices within the instruction's bound (:func:`mark_prices`).
    """
    _check_style(style)
    if style not in _MARKED_STYLES:
        return list(actions)
    marks = _marks(prompt, style)
    opened, selected = frozenset(), frozenset()
    if style in _VISIT_FLAG_STYLES:
        opened, selected = episode_clicks(prompt)
    priced = style == PRICED_STYLE
    out = []
    for action in actions:
        text = action
        label = action_label(prompt, action, with_price=priced)
        target = _CLICK.fullmatch(action.strip())
        if label:
            text = f"{text} {label}"
            if target is not None and target.group(1) in opened:
                text = f"{text} {VISITED}"
        elif target is not None and target.group(1) in selected:
            text = f"{text} {SELECTED}"
        out.append(marks.apply(text))
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
