"""``shop``: a WebShop-like store over a generated catalogue.

Pages and actions (WebShop's text mode):

* search page — ``search[<query>]`` (free text) shows the first result page;
* results page — ``click[<item id>]``, ``click[next >]``, ``click[< prev]``,
  ``click[back to search]``;
* item page — ``click[<option value>]`` selects an option, ``click[buy now]`` ends the episode
  with WebShop's reward (see :mod:`.reward`), ``click[< prev]`` returns to the results,
  ``click[back to search]``.

A task needs several right steps in a row: a query that surfaces a matching product, possibly
``next >`` past same-looking distractors, the right item (titles show only some attributes and
prices differ), every wanted option, then ``buy now``. ``info["success"]`` is ``reward == 1``.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, replace
from typing import Any

from ..base import StepResult, TextEnv, parse_action
from ..text import tokens
from .catalog import Catalog, Product, build_catalog
from .render import BACK, BUY, NEXT, PREV, RENDERING
from .reward import shop_reward
from .tasks import ShopTask, build_tasks

__all__ = ["ShopEnv"]

_SEARCH_HINT = "Valid actions: search[<your query>]."


@dataclass(frozen=True)
class _Page:
    """Immutable page state (a snapshot payload is just this object)."""

    kind: str = "search"  # "search" | "results" | "item" | "done"
    query: str = ""
    results: tuple[str, ...] = ()  # asins of the current search, best first
    page: int = 0  # 0-based result page
    asin: str = ""  # product on the item page
    selected: tuple[tuple[str, str], ...] = ()  # (dimension, value), in dimension order


class ShopEnv(TextEnv):
    """WebShop-like store; see the module docstring.

    Args (keyword-only): ``seed`` fixes catalogue and tasks; ``products_per_category`` (12
    categories); ``num_train`` / ``num_test`` tasks; ``page_size`` results per page;
    ``max_results`` results per search; ``oracle_pages`` how deep the first matching product may
    sit in the expert's results; ``max_steps`` step cap (reaching it ends with reward 0).
    """

    name = "shop"
    rendering = RENDERING  # how its pages read to a Q-model (.render)

    def __init__(
        self,
        *,
        seed: int = 0,
        products_per_category: int = 60,
        num_train: int = 500,
        num_test: int = 100,
        page_size: int = 5,
        max_results: int = 50,
        oracle_pages: int = 3,
        max_steps: int = 15,
    ) -> None:
        config = dict(
            seed=seed,
            products_per_category=products_per_category,
            num_train=num_train,
            num_test=num_test,
            page_size=page_size,
            max_results=max_results,
            oracle_pages=oracle_pages,
            max_steps=max_steps,
        )
        super().__init__(max_steps=max_steps, config=config)
        if page_size < 1 or max_results < page_size:
            raise ValueError(f"need 1 <= page_size <= max_results, got {page_size}, {max_results}")
        self.page_size = page_size
        self.max_results = max_results
        self.catalog: Catalog = build_catalog(seed, products_per_category)
        self._tasks = build_tasks(
            seed, products_per_category, num_train, num_test, page_size, oracle_pages
        )
        self._by_id: dict[str, ShopTask] = {t.task_id: t for ts in self._tasks.values() for t in ts}
        self._task: ShopTask | None = None
        self._page = _Page()

    def fresh(self) -> ShopEnv:
        """A twin with no episode that shares this environment's catalogue and tasks (never
        mutated). Building them costs ~2 s, and a copy unpickled in another process (a Ray
        actor) would rebuild them for each twin its policy and pool make."""
        twin = copy.copy(self)
        TextEnv.__init__(twin, max_steps=self.max_steps, config=self.config)
        twin._task, twin._page = None, _Page()
        return twin

    # ----------------------------------------------------------------- tasks
    def task_ids(self, split: str = "train") -> list[str]:
        self._check_split(split)
        return [t.task_id for t in self._tasks[split]]

    def task(self, task_id: str) -> ShopTask:
        """The task record (goal and the products that satisfy it)."""
        try:
            return self._by_id[task_id]
        except KeyError:
            raise KeyError(
                f"shop: unknown task id {task_id!r}; ids look like 'train/00000' "
                f"(see task_ids(split))"
            ) from None

    # -------------------------------------------------------------- episode
    def _reset(self, task_id: str) -> tuple[str, str]:
        self._task = self.task(task_id)
        self._page = _Page()
        instr = self._task.goal.instruction
        return instr, self._render()

    def _get_payload(self) -> Any:
        return (self._task, self._page)

    def _set_payload(self, payload: Any) -> None:
        self._task, self._page = payload

    def _product(self) -> Product:
        return self.catalog.by_asin[self._page.asin]

    def _page_items(self) -> tuple[str, ...]:
        pg = self._page
        return pg.results[pg.page * self.page_size : (pg.page + 1) * self.page_size]

    def _has_next(self) -> bool:
        pg = self._page
        return (pg.page + 1) * self.page_size < len(pg.results)

    def admissible_actions(self) -> tuple[str, ...] | None:
        pg = self._page
        if pg.kind == "search":
            return None
        if pg.kind == "results":
            acts = [f"click[{BACK}]"]
            if pg.page > 0:
                acts.append(f"click[{PREV}]")
            if self._has_next():
                acts.append(f"click[{NEXT}]")
            acts += [f"click[{a}]" for a in self._page_items()]
            return tuple(acts)
        if pg.kind == "item":
            acts = [f"click[{BACK}]", f"click[{PREV}]"]
            for _, values in self._product().options:
                acts += [f"click[{v}]" for v in values]
            acts.append(f"click[{BUY}]")
            return tuple(acts)
        return ()

    def _valid_hint(self) -> str:
        if self._page.kind == "search":
            return _SEARCH_HINT
        return super()._valid_hint()

    def _invalid(self, why: str) -> StepResult:
        return StepResult(
            f"Invalid action: {why} {self._valid_hint()}",
            0.0,
            False,
            {"valid": False, "error": why},
        )

    def _step(self, action: str) -> StepResult:
        parsed = parse_action(action)
        if parsed is None:
            return self._invalid(f"{action!r} is not of the form search[...] or click[...].")
        verb, arg = parsed
        pg = self._page
        if verb == "search":
            if pg.kind != "search":
                return self._invalid("search is only possible on the search page.")
            if not tokens(arg):
                return self._invalid("the search query is empty.")
            results = tuple(self.catalog.search(arg, limit=self.max_results))
            self._page = _Page("results", arg, results, 0)
            return StepResult(self._render(), 0.0, False)
        if verb != "click":
            return self._invalid(f"unknown action {verb!r}; use search[...] or click[...].")
        if pg.kind == "search":
            return self._invalid("there is nothing to click on the search page.")
        target = arg.lower()
        allowed = {a[6:-1].lower() for a in self.admissible_actions() or ()}
        if target not in allowed:
            return self._invalid(f"{arg!r} cannot be clicked here.")
        if target == BACK:
            self._page = _Page()
        elif pg.kind == "results":
            if target == NEXT:
                self._page = replace(pg, page=pg.page + 1)
            elif target == PREV:
                self._page = replace(pg, page=pg.page - 1)
            else:
                self._page = replace(pg, kind="item", asin=target, selected=())
        elif target == PREV:
            self._page = replace(pg, kind="results", asin="", selected=())
        elif target == BUY:
            return self._buy()
        else:
            self._page = replace(pg, selected=self._select(target))
        return StepResult(self._render(), 0.0, False)

    def _select(self, value: str) -> tuple[tuple[str, str], ...]:
        sel = dict(self._page.selected)
        for dim, values in self._product().options:
            if value in values:
                sel[dim] = value
        return tuple((d, sel[d]) for d, _ in self._product().options if d in sel)

    def _buy(self) -> StepResult:
        assert self._task is not None
        product = self._product()
        br = shop_reward(product, self._task.goal, dict(self._page.selected))
        self._page = replace(self._page, kind="done")
        obs = (
            "Thank you for shopping with us! [SEP] Your score (min 0.0, max 1.0) "
            f"[SEP] {br.reward:.2f}"
        )
        info = {
            "valid": True,
            "success": br.reward >= 1.0,
            "purchased": product.asin,
            "options": dict(self._page.selected),
            "r_type": br.r_type,
            "num_attr_matches": br.num_attr_matches,
            "num_option_matches": br.num_option_matches,
            "r_price": br.r_price,
        }
        return StepResult(obs, br.reward, True, info)

    # ------------------------------------------------------------ rendering
    def _render(self) -> str:
        pg = self._page
        if pg.kind == "search":
            instr = self._task.goal.instruction if self._task else ""
            return f"WebShop [SEP] Instruction: [SEP] {instr} [SEP] [search]"
        if pg.kind == "results":
            parts = [f"[{BACK}]", f"Page {pg.page + 1} (Total results: {len(pg.results)})"]
            if pg.page > 0:
                parts.append(f"[{PREV}]")
            if self._has_next():
                parts.append(f"[{NEXT}]")
            if not pg.results:
                parts.append("No products match your search.")
            for a in self._page_items():
                p = self.catalog.by_asin[a]
                parts += [f"[{a}]", p.title, f"${p.price:.2f}"]
            return " [SEP] ".join(parts)
        p = self._product()
        parts = [f"[{BACK}]", f"[{PREV}]", p.title, f"Price: ${p.price:.2f}"]
        for dim, values in p.options:
            parts.append(f"{dim}: " + " ".join(f"[{v}]" for v in values))
        parts.append(f"Description: {p.description}")
        if pg.selected:
            parts.append("Selected: " + ", ".join(f"{d}: {v}" for d, v in pg.selected))
        parts.append(f"[{BUY}]")
        return " [SEP] ".join(parts)

    # ---------------------------------------------------------- expert hooks
    def oracle_action(self) -> str:
        assert self._task is not None, "call reset first"
        task, pg = self._task, self._page
        if pg.kind == "search":
            return f"search[{task.goal.search_query}]"
        if pg.kind == "results":
            on_page = [a for a in self._page_items() if a in task.perfect]
            if on_page:
                return f"click[{on_page[0]}]"
            ranks = [i for i, a in enumerate(pg.results) if a in task.perfect]
            if ranks:
                page = ranks[0] // self.page_size
                if pg.page < page <= pg.page + 2:
                    return f"click[{NEXT}]"
                if page < pg.page:
                    return f"click[{PREV}]"
            return f"click[{BACK}]"
        if pg.kind == "item":
            if pg.asin not in task.perfect:
                return f"click[{PREV}]"
            sel = dict(pg.selected)
            for dim, value in task.goal.options:
                if sel.get(dim) != value:
                    return f"click[{value}]"
            return f"click[{BUY}]"
        return f"click[{BUY}]"  # episode over; any action is refused

    def plausible_actions(self) -> tuple[str, ...]:
        assert self._task is not None, "call reset first"
        adm = self.admissible_actions()
        if adm is not None:
            return adm if adm else (f"click[{BUY}]",)
        goal = self._task.goal
        words = [w for w in tokens(goal.instruction) if w not in {"i", "need", "am", "a"}]
        queries = [goal.instruction, goal.category, goal.search_query, " ".join(words[:4])]
        queries += [f"{a} {goal.category}" for a in goal.attributes]
        queries += [f"{v} {goal.category}" for _, v in goal.options]
        queries += [" ".join(goal.attributes)]
        return tuple(dict.fromkeys(f"search[{q}]" for q in queries))
