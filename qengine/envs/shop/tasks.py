"""Purchase tasks of the ``shop`` environment, generated from the catalogue and a seed.

Train and test tasks are built from disjoint sets of target products (split by a hash of the
item id), and no instruction text occurs twice. A goal is kept only if an expert can solve it:
some product that can earn reward 1 must be among the first ``oracle_pages`` result pages of
the expert's query, so every task is solvable within the step budget.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

from ..base import SPLITS
from ..text import rng_for, stable_hash
from .catalog import Catalog, Goal, Product, build_catalog
from .reward import shop_reward

__all__ = ["ShopTask", "build_tasks", "perfect_products"]


@dataclass(frozen=True)
class ShopTask:
    """One purchase task."""

    task_id: str
    goal: Goal
    perfect: frozenset[str]  # asins that can earn reward 1 with the right options
    oracle_rank: int  # 0-based rank of the first perfect product in the expert's results


def _join(words: list[str]) -> str:
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def _instruction(rng, cat: str, attrs: list[str], opts: list[tuple[str, str]], p: float) -> str:
    opt_text = ", and ".join(f"{k}: {v}" for k, v in opts)
    price = f"{p:.2f}"
    templates = (
        f"i need {_join(attrs)} {cat} with {opt_text}, and price lower than {price} dollars",
        f"i am looking for a {cat} that is {_join(attrs)}, with {opt_text}, "
        f"and price lower than {price} dollars",
        f"find me {_join(attrs)} {cat} with {opt_text}, and price lower than {price} dollars",
    )
    return templates[int(rng.integers(len(templates)))]


def perfect_products(catalog: Catalog, goal: Goal) -> frozenset[str]:
    """Asins of the products that earn reward 1 for ``goal`` when the right options are chosen."""
    out = []
    for p in catalog.products:
        # Reward 1 needs r_type 1 (a shared type word) and the price; skip the rest cheaply.
        if p.price > goal.price_upper or not (p.type_words & goal.type_words):
            continue
        offered = p.option_values()
        sel = {}
        for dim, v in goal.options:
            if v in offered.get(dim, ()):
                sel[dim] = v
        if shop_reward(p, goal, sel).reward >= 1.0:
            out.append(p.asin)
    return frozenset(out)


def _goal(rng, target: Product) -> Goal:
    n_att = min(len(target.attributes), int(rng.choice([1, 2, 2, 2, 3])))
    attrs = sorted(rng.choice(target.attributes, size=n_att, replace=False).tolist())
    opts = [(dim, values[int(rng.integers(len(values)))]) for dim, values in target.options]
    upper = float(math.ceil((target.price + rng.uniform(0.5, 15.0)) / 10.0) * 10)
    return Goal(
        target=target.asin,
        category=target.category,
        path=target.path,
        type_words=target.type_words,
        attributes=tuple(attrs),
        options=tuple(opts),
        price_upper=upper,
        instruction=_instruction(rng, target.category, attrs, opts, upper),
        search_query=" ".join([*attrs, target.category]),
    )


@lru_cache(maxsize=8)
def build_tasks(
    seed: int,
    products_per_category: int,
    num_train: int,
    num_test: int,
    page_size: int,
    oracle_pages: int,
) -> dict[str, tuple[ShopTask, ...]]:
    """Tasks per split (cached: environments with one configuration share them)."""
    catalog = build_catalog(seed, products_per_category)
    pools: dict[str, list[Product]] = {s: [] for s in SPLITS}
    for p in catalog.products:
        pools["test" if stable_hash("shop-split", seed, p.asin) % 5 == 0 else "train"].append(p)
    seen: set[str] = set()
    out: dict[str, tuple[ShopTask, ...]] = {}
    for split, count in (("train", num_train), ("test", num_test)):
        rng = rng_for("shop-tasks", seed, split)
        pool = pools[split]
        tasks: list[ShopTask] = []
        attempts = 0
        while len(tasks) < count:
            attempts += 1
            if attempts > 50 * count + 1000:
                raise RuntimeError(
                    f"shop: could only generate {len(tasks)} of {count} {split} tasks; "
                    "use more products_per_category or fewer tasks"
                )
            goal = _goal(rng, pool[int(rng.integers(len(pool)))])
            if goal.instruction in seen:
                continue
            perfect = perfect_products(catalog, goal)
            results = catalog.search(goal.search_query, limit=page_size * oracle_pages)
            ranks = [i for i, a in enumerate(results) if a in perfect]
            if not ranks:
                continue
            seen.add(goal.instruction)
            tasks.append(ShopTask(f"{split}/{len(tasks):05d}", goal, perfect, ranks[0]))
        out[split] = tuple(tasks)
    return out
