"""WebShop's purchase reward (Yao et al. 2022, ``web_agent_site/engine/goal.py``), re-derived.

    reward = r_type * (n_att + n_opt + r_price) / (|goal attributes| + |goal options| + 1)

* ``r_type`` — 1.0 when the purchased product is of the wanted type. It is computed from three
  signals: ``query_match`` (same type name), ``category_match`` (at least two category path
  elements in common) and ``title_score`` (the fraction of the goal title's type words the
  purchased title shares). No signal → 0.5; ``title_score < 0.1`` → 0.1; ``title_score == 0`` → 0.
* ``n_att`` — goal attributes found among the product's attributes (token-set containment, the
  case where WebShop's ``fuzz.token_set_ratio`` is 100) or, failing that, as a phrase of its
  title or description.
* ``n_opt`` — selected option values that are among the goal's values or occur as a phrase of
  the title or description, at most ``|goal options|``.
* ``r_price`` — 1 when the price is at most the goal's upper bound.

Differences from WebShop: spaCy's noun tagging is replaced by the generator's known type words
(the type name's words; brands are left out, so another type never scores by brand), fuzzy
string ratios by token-set containment, and substring tests by whole-word phrase tests (so "red"
is not found in "insulated"). The vocabulary is generated, so these give the decisions WebShop's
would on it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from ..text import contains_phrase, tokens
from .catalog import Goal, Product

__all__ = ["RewardBreakdown", "attribute_matches", "option_matches", "shop_reward", "type_reward"]


@dataclass(frozen=True)
class RewardBreakdown:
    """The reward and its parts (as WebShop's ``verbose=True`` returns them)."""

    reward: float
    r_type: float
    num_attr_matches: int
    num_option_matches: int
    r_price: bool
    query_match: bool
    category_match: bool
    title_score: float


def _path(path: str) -> set[str]:
    return {x.strip() for x in path.split("›")}


def type_reward(product: Product, goal: Goal) -> tuple[float, bool, bool, float]:
    """``(r_type, query_match, category_match, title_score)``."""
    query_match = product.category == goal.category
    category_match = len(_path(product.path) & _path(goal.path)) >= 2
    desired = goal.type_words
    title_score = len(product.type_words & desired) / len(desired) if desired else 0.2
    r_type = 1.0
    if not (query_match or category_match or title_score > 0.2):
        r_type = 0.5
    if title_score < 0.1:
        r_type = 0.1
    if title_score == 0.0:
        r_type = 0.0
    return r_type, query_match, category_match, title_score


def _attr_match(product_attr: str, goal_attr: str) -> bool:
    p, g = set(tokens(product_attr)), set(tokens(goal_attr))
    return bool(p and g) and (p <= g or g <= p)


def attribute_matches(product: Product, goal: Goal) -> int:
    """Number of goal attributes the product has."""
    n = 0
    for g in goal.attributes:
        if any(_attr_match(p, g) for p in product.attributes):
            n += 1
        elif contains_phrase(product.title, g) or contains_phrase(product.description, g):
            n += 1
    return n


def option_matches(product: Product, goal: Goal, selected: Mapping[str, str]) -> int:
    """Number of selected option values that satisfy the goal (at most ``len(goal.options)``)."""
    wanted = {v.lower() for _, v in goal.options}
    n = 0
    for value in selected.values():
        v = value.lower()
        if (
            v in wanted
            or contains_phrase(product.title, v)
            or contains_phrase(product.description, v)
        ):
            n += 1
    return min(n, len(goal.options))


def shop_reward(product: Product, goal: Goal, selected: Mapping[str, str]) -> RewardBreakdown:
    """Reward of buying ``product`` with options ``selected`` (dimension -> value) for ``goal``."""
    r_type, qm, cm, ts = type_reward(product, goal)
    n_att = attribute_matches(product, goal)
    n_opt = option_matches(product, goal, selected)
    r_price = product.price <= goal.price_upper
    total = (n_att + n_opt + int(r_price)) / (len(goal.attributes) + len(goal.options) + 1)
    return RewardBreakdown(total * r_type, r_type, n_att, n_opt, r_price, qm, cm, ts)
