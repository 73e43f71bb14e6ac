"""How the shop's pages read to a Q-model: the shop's :class:`~qengine.envs.base.Rendering`.

Pages are WebShop's text mode (fields joined by ``[SEP]``, a clickable id a field of its own
followed by its label, prices as ``$19.99``), instructions state a budget ("price lower than 50.00
dollars"); the prompt styles of ``qengine.data.prompts`` ask these hooks what a click's label is,
which items the episode already opened and which prices are within the budget.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from ..base import Rendering

__all__ = [
    "BACK", "BUY", "NAVIGATION", "NEXT", "PREV", "RENDERING", "SELECTED", "VISITED",
    "ShopRendering", "action_label", "episode_clicks",
]  # fmt: skip

# The page buttons.
BACK = "back to search"
NEXT = "next >"
PREV = "< prev"
BUY = "buy now"
VISITED, SELECTED = "visited", "selected"  # the flags of action_notes
NAVIGATION = frozenset({NEXT, PREV, BACK, BUY, "search"})
"""Buttons: a click on one of them is neither an item nor an option."""
# "price lower than 50.00 dollars" (the shop's wording, WebShop's), "under $50"
_PRICE_LIMIT = re.compile(r"(?:lower|less) than \$?(\d+(?:\.\d+)?)|under \$(\d+(?:\.\d+)?)")
_PRICE = re.compile(r"\$(\d+(?:\.\d+)?)")
_LISTED_PRICE = re.compile(r" (\$\d+(?:\.\d+)?)(?: \[SEP\]|\n|$)")  # the field after a label
_CLICK_ID = re.compile(r"click\[(\w+)\]")
_CLICK = re.compile(r"click\[(.+)\]")


def action_label(observation: str, action: str, *, with_price: bool = False) -> str:
    """The visible label of the element ``action`` clicks on the page ``observation``.

    A clickable id is listed as a field of its own followed by its label
    (``[b0ab12cd34] [SEP] Zosa short sleeve t-shirt [SEP] $19.99``); for ``click[b0ab12cd34]``
    this returns ``"Zosa short sleeve t-shirt"`` (``"Zosa short sleeve t-shirt $19.99"`` with
    ``with_price``, when a price field follows). Only single-word ids count (not ``next >``,
    ``buy now`` or option values); "" when there is no such field.
    """
    match = _CLICK_ID.fullmatch(action.strip())
    if match is None:
        return ""
    label = re.search(
        r"(?:^|\[SEP\] )\["
        + re.escape(match.group(1))
        + r"\] \[SEP\] ([^\[\n]+?)(?: \[SEP\]|\n|$)",
        observation,
    )
    if label is None:
        return ""
    price = _LISTED_PRICE.match(observation, label.end()) if with_price else None
    return label.group(1).strip() + (f" {price.group(1)}" if price else "")


def episode_clicks(
    first_observation: str, history: Sequence[tuple[str, str]]
) -> tuple[frozenset[str], frozenset[str]]:
    """What the episode has clicked so far: (the ids of the items it opened, the options it
    selected on the item page it opened last).

    An item is an id listed with a label on the page it was clicked on (:func:`action_label`);
    an option is any other ``click[...]`` but the buttons (:data:`NAVIGATION`).
    """
    opened: set[str] = set()
    selected: set[str] = set()
    page = first_observation.strip()
    for action, observation in history:
        action = action.strip()
        if action:
            target = _CLICK.fullmatch(action)
            if target is None:  # a search: a new results page
                selected.clear()
            elif action_label(page, action):
                opened.add(target.group(1))
                selected.clear()
            elif target.group(1) not in NAVIGATION:
                selected.add(target.group(1))
        page = observation.strip()
    return frozenset(opened), frozenset(selected)


class ShopRendering(Rendering):
    """The shop's answers to the prompt styles (see the module docstring)."""

    def price_bound(self, instruction: str) -> str | None:
        """ "price lower than 50.00 dollars" -> "50.00"; "under $7.5" -> "7.5"."""
        limit = _PRICE_LIMIT.search(instruction.lower())
        return (limit.group(1) or limit.group(2)) if limit else None

    def mark_prices(self, text: str, bound: float, mark: str) -> str:
        """``mark`` before every dollar amount of at most ``bound`` (as WebShop's price reward
        counts it): "$31.99" -> "^$31.99"."""
        return _PRICE.sub(
            lambda m: mark + m.group(0) if float(m.group(1)) <= bound else m.group(0), text
        )

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
        """A click on a listed item gets its label (and price) and "visited" when the episode
        opened it before; a click on an option already selected on this item page gets
        "selected". The compact prompt keeps only the last page, and a small model otherwise
        re-opens the same wrong item after going back, or re-selects an option instead of
        buying."""
        page = (history[-1][1] if history else first_observation).strip()
        opened, selected = frozenset(), frozenset()
        if flag_visited:
            opened, selected = episode_clicks(first_observation, history)
        notes = []
        for action in actions:
            name = action_label(page, action, with_price=with_price) if label else ""
            target = _CLICK.fullmatch(action.strip())
            clicked = target.group(1) if target is not None else None
            if name:
                notes.append(f"{name} {VISITED}" if clicked in opened else name)
            else:
                notes.append(SELECTED if clicked in selected else "")
        return notes


RENDERING = ShopRendering()
