"""Multi-hop questions over the generated knowledge base, with gold action plans.

Bridge questions need an intermediate entity (the director of a film, then where the director
was born); comparison questions need two articles. Every question carries a *plan*: the actions
of an expert and, per action, the sentence it reveals, so the expert can resume from any state
(skipping steps whose sentence the agent has already seen).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

import numpy as np

from ..text import rng_for, stable_hash
from .kb import KnowledgeBase, build_kb

__all__ = ["PlanStep", "Question", "build_questions"]


@dataclass(frozen=True)
class PlanStep:
    """One expert action and what it reveals."""

    action: str  # "search[...]" or "lookup[...]"
    article: str  # the article searched, or the one a lookup needs open
    sentence: int  # index of the sentence of ``article`` this step reveals


@dataclass(frozen=True)
class Question:
    """A question, its answer and an expert plan."""

    task_id: str
    kind: str  # "bridge-*" or "compare-*"
    text: str
    answer: str
    plan: tuple[PlanStep, ...]  # then finish[answer]
    entities: tuple[str, ...]  # titles named in the question


def _s(title: str, sentence: int) -> PlanStep:
    return PlanStep(f"search[{title}]", title, sentence)


def _lookup(title: str, keyword: str, sentence: int) -> PlanStep:
    return PlanStep(f"lookup[{keyword}]", title, sentence)


def _make(kb: KnowledgeBase, rng: np.random.Generator) -> Question | None:
    arts = kb.articles
    pick = lambda kind: kb.by_kind[kind][int(rng.integers(len(kb.by_kind[kind])))]  # noqa: E731
    kind = [
        "bridge-director-birthplace",
        "bridge-director-nationality",
        "bridge-author-born",
        "bridge-person-country",
        "compare-born",
        "compare-film-year",
        "compare-founded",
        "compare-nationality",
    ][int(rng.integers(8))]
    if kind == "bridge-director-birthplace":
        film = pick("film")
        d = arts[film].fact("director")
        text = f"In which city was the director of {film} born?"
        plan = (_s(film, 1), _s(d, 0), _lookup(d, "born in", 3))
        return Question("", kind, text, arts[d].fact("born_in"), plan, (film,))
    if kind == "bridge-director-nationality":
        film = pick("film")
        d = arts[film].fact("director")
        text = f"What is the nationality of the director of {film}?"
        return Question(
            "", kind, text, arts[d].fact("nationality"), (_s(film, 1), _s(d, 0)), (film,)
        )
    if kind == "bridge-author-born":
        book = pick("book")
        a = arts[book].fact("author")
        text = f"In what year was the author of {book} born?"
        return Question("", kind, text, arts[a].fact("born"), (_s(book, 1), _s(a, 0)), (book,))
    if kind == "bridge-person-country":
        p = pick("person")
        city = arts[p].fact("born_in")
        text = f"Which country is the city where {p} was born located in?"
        plan = (_s(p, 0), _lookup(p, "born in", 3), _s(city, 0))
        return Question("", kind, text, arts[city].fact("country"), plan, (p,))
    if kind == "compare-born":
        a, b = pick("person"), pick("person")
        ya, yb = int(arts[a].fact("born")), int(arts[b].fact("born"))
        if a == b or ya == yb:
            return None
        text = f"Who was born first, {a} or {b}?"
        return Question("", kind, text, a if ya < yb else b, (_s(a, 0), _s(b, 0)), (a, b))
    if kind == "compare-film-year":
        a, b = pick("film"), pick("film")
        ya, yb = int(arts[a].fact("year")), int(arts[b].fact("year"))
        if a == b or ya == yb:
            return None
        text = f"Which film was released first, {a} or {b}?"
        return Question("", kind, text, a if ya < yb else b, (_s(a, 0), _s(b, 0)), (a, b))
    if kind == "compare-founded":
        a, b = pick("city"), pick("city")
        ya, yb = int(arts[a].fact("founded")), int(arts[b].fact("founded"))
        if a == b or ya == yb:
            return None
        text = f"Which city was founded earlier, {a} or {b}?"
        return Question("", kind, text, a if ya < yb else b, (_s(a, 1), _s(b, 1)), (a, b))
    a, b = pick("person"), pick("person")
    if a == b:
        return None
    same = arts[a].fact("nationality") == arts[b].fact("nationality")
    if not same and rng.random() < 0.5:  # balance yes / no
        return None
    text = f"Are {a} and {b} of the same nationality?"
    return Question("", kind, text, "yes" if same else "no", (_s(a, 0), _s(b, 0)), (a, b))


@lru_cache(maxsize=8)
def build_questions(seed: int, num_train: int, num_test: int) -> dict[str, tuple[Question, ...]]:
    """Questions per split; a question's split is fixed by a hash of its text, so the splits
    are disjoint and a question keeps its split when the counts change."""
    kb = build_kb(seed)
    rng = rng_for("hotpot-questions", seed)
    want = {"train": num_train, "test": num_test}
    got: dict[str, list[Question]] = {"train": [], "test": []}
    seen: set[str] = set()
    attempts = 0
    while any(len(got[s]) < want[s] for s in got):
        attempts += 1
        if attempts > 100 * (num_train + num_test) + 1000:
            raise RuntimeError("hotpot: could not generate enough distinct questions")
        q = _make(kb, rng)
        if q is None or q.text in seen:
            continue
        seen.add(q.text)
        split = "test" if stable_hash("hotpot-split", seed, q.text) % 5 == 0 else "train"
        if len(got[split]) >= want[split]:
            continue
        tid = f"{split}/{len(got[split]):05d}"
        got[split].append(Question(tid, q.kind, q.text, q.answer, q.plan, q.entities))
    return {s: tuple(v) for s, v in got.items()}
