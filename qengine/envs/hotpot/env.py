"""``hotpot``: HotPotQA-like multi-hop questions over a generated knowledge base.

Actions (ReAct's Wikipedia tool): ``search[entity]`` opens the article titled ``entity`` and
shows its first two sentences (or suggests similar titles), ``lookup[keyword]`` shows the next
sentence of the open article containing ``keyword``, ``finish[answer]`` ends the episode with
reward 1 when the answer matches the gold answer after HotPotQA's normalisation, else 0.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import Any

from ..base import StepResult, TextEnv, parse_action
from .kb import KnowledgeBase, build_kb
from .questions import Question, build_questions
from .reward import exact_match, f1_score

__all__ = ["HotpotEnv"]

_HINT = "Valid actions: search[<entity>], lookup[<keyword>], finish[<answer>]."
_LOOKUP_WORDS = ("born in", "founded", "directed", "written", "population", "studied")


@dataclass(frozen=True)
class _Ctx:
    """Immutable episode state (the snapshot payload)."""

    question: Question
    article: str = ""  # title of the open article
    keyword: str = ""  # last lookup keyword
    hit: int = 0  # lookup results shown for ``keyword``
    seen: frozenset[tuple[str, int]] = frozenset()  # (title, sentence) revealed
    mentions: tuple[str, ...] = ()  # answer-like spans seen, in order of appearance


class HotpotEnv(TextEnv):
    """Multi-hop question answering; see the module docstring.

    Args (keyword-only): ``seed`` fixes knowledge base and questions; ``num_train`` /
    ``num_test`` questions; ``max_steps`` step cap (reaching it ends with reward 0).
    """

    name = "hotpot"

    def __init__(
        self, *, seed: int = 0, num_train: int = 500, num_test: int = 100, max_steps: int = 8
    ) -> None:
        config = dict(seed=seed, num_train=num_train, num_test=num_test, max_steps=max_steps)
        super().__init__(max_steps=max_steps, config=config)
        self.kb: KnowledgeBase = build_kb(seed)
        self._questions = build_questions(seed, num_train, num_test)
        self._by_id = {q.task_id: q for qs in self._questions.values() for q in qs}
        self._ctx: _Ctx | None = None

    def task_ids(self, split: str = "train") -> list[str]:
        self._check_split(split)
        return [q.task_id for q in self._questions[split]]

    def question(self, task_id: str) -> Question:
        """The question record (text, answer, expert plan)."""
        try:
            return self._by_id[task_id]
        except KeyError:
            raise KeyError(
                f"hotpot: unknown task id {task_id!r}; ids look like 'train/00000' "
                "(see task_ids(split))"
            ) from None

    def _reset(self, task_id: str) -> tuple[str, str]:
        q = self.question(task_id)
        self._ctx = _Ctx(q, mentions=q.entities)
        return q.text, f"Question: {q.text} {_HINT}"

    def _get_payload(self) -> Any:
        return self._ctx

    def _set_payload(self, payload: Any) -> None:
        self._ctx = payload

    def admissible_actions(self) -> tuple[str, ...] | None:
        return None  # free-form

    def _valid_hint(self) -> str:
        return _HINT

    def _invalid(self, why: str) -> StepResult:
        return StepResult(
            f"Invalid action: {why} {_HINT}", 0.0, False, {"valid": False, "error": why}
        )

    @staticmethod
    def _add(mentions: tuple[str, ...], spans: tuple[str, ...] | list[str]) -> tuple[str, ...]:
        return tuple(dict.fromkeys((*mentions, *spans)))

    def _step(self, action: str) -> StepResult:
        ctx = self._ctx
        assert ctx is not None
        parsed = parse_action(action)
        if parsed is None:
            return self._invalid(f"{action!r} is not of the form verb[argument].")
        verb, arg = parsed
        if verb not in ("search", "lookup", "finish"):
            return self._invalid(f"unknown action {verb!r}.")
        if not arg:
            return self._invalid(f"{verb}[] needs an argument.")
        if verb == "search":
            art = self.kb.find(arg)
            if art is None:
                similar = self.kb.similar(arg)
                self._ctx = replace(ctx, mentions=self._add(ctx.mentions, similar))
                return StepResult(f"Could not find [{arg}]. Similar: {similar}.", 0.0, False)
            shown = art.sentences[:2]
            seen = ctx.seen | {(art.title, i) for i in range(len(shown))}
            spans = [s for sent in shown for s in sent.spans]
            self._ctx = replace(
                ctx,
                article=art.title,
                keyword="",
                hit=0,
                seen=seen,
                mentions=self._add(ctx.mentions, spans),
            )
            return StepResult(" ".join(s.text for s in shown), 0.0, False)
        if verb == "lookup":
            if not ctx.article:
                return StepResult("No article is open; use search[<entity>] first.", 0.0, False)
            sents = self.kb.articles[ctx.article].sentences
            kw = arg.lower()
            hits = [i for i, s in enumerate(sents) if kw in s.text.lower()]
            k = ctx.hit if kw == ctx.keyword else 0
            if k >= len(hits):
                self._ctx = replace(ctx, keyword=kw, hit=k)
                return StepResult("No more results.", 0.0, False)
            i = hits[k]
            self._ctx = replace(
                ctx,
                keyword=kw,
                hit=k + 1,
                seen=ctx.seen | {(ctx.article, i)},
                mentions=self._add(ctx.mentions, sents[i].spans),
            )
            return StepResult(f"(Result {k + 1} / {len(hits)}) {sents[i].text}", 0.0, False)
        em = exact_match(arg, ctx.question.answer)
        info = {"success": em >= 1.0, "em": em, "f1": f1_score(arg, ctx.question.answer)}
        return StepResult(f"Episode finished, reward = {em:g}", em, True, info)

    # ---------------------------------------------------------- expert hooks
    def oracle_action(self) -> str:
        ctx = self._ctx
        assert ctx is not None, "call reset first"
        for step in ctx.question.plan:
            if (step.article, step.sentence) in ctx.seen:
                continue
            if step.action.startswith("lookup") and ctx.article != step.article:
                return f"search[{step.article}]"
            return step.action
        return f"finish[{ctx.question.answer}]"

    def plausible_actions(self) -> tuple[str, ...]:
        ctx = self._ctx
        assert ctx is not None, "call reset first"
        titles = [m for m in ctx.mentions if m in self.kb.articles]
        acts = [f"search[{t}]" for t in titles]
        if ctx.article:
            acts += [f"lookup[{k}]" for k in _LOOKUP_WORDS]
        acts += [f"finish[{m}]" for m in ctx.mentions]
        if ctx.question.text.startswith("Are "):
            acts += ["finish[yes]", "finish[no]"]
        return tuple(dict.fromkeys(acts))
