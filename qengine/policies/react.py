"""ReAct prompting and action parsing shared by the LLM policies (HF, OpenAI-compatible, vLLM).

A prompt is ``head + tail``:

* ``head`` = the environment's preamble (its action grammar), then the state exactly as
  :func:`qengine.data.prompts.render_prompt` renders it for the Q-value model, minus the final
  ``"Action: "``, then the admissible actions when the environment knows them;
* ``tail`` = ``"Thought:"`` (``think=True``: the model reasons, then writes ``Action: ...``) or
  ``"Action: "`` (``think=False``: the model writes the action directly, as in the Q-model's data).

The model's continuation is parsed from ``tail + generated`` by :func:`parse_action_text`:
bracket grammars (``shop``, ``hotpot``, any unknown environment) take the first ``verb[...]``
after an ``Action:`` marker, falling back to the first ``verb[...]`` anywhere; the plain grammar
(``textworld``, whose commands are free text such as ``go north``) takes the rest of the line after
the first ``Action:`` marker. Matching is case-insensitive and tolerates the spaces a word-level
tokenizer puts around ``[`` and ``]``. Unparseable text gives ``None`` (the sample is dropped).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from qengine.data.prompts import ACTION_PREFIX, render_prompt
from qengine.envs.base import TextState

from .base import Candidate, dedupe

__all__ = [
    "GRAMMARS",
    "ActionGrammar",
    "ParsedAction",
    "ReactPrompt",
    "action_complete",
    "build_prompt",
    "candidates_from_samples",
    "grammar_for",
    "match_admissible",
    "parse_action_text",
    "span_logprob",
]

THOUGHT_TAIL = "Thought:"


@dataclass(frozen=True)
class ActionGrammar:
    """How actions of one environment look, and how the prompt describes them."""

    description: str  # the preamble: what the agent does and which actions exist
    verbs: tuple[str, ...] | None = None  # allowed lower-case verbs of ``verb[arg]``; None: any
    bracketed: bool = True  # False: actions are free text (one line), e.g. TextWorld commands


_REACT_FORMAT = (
    "Answer with a line 'Thought: <your reasoning>' followed by a line 'Action: <action>'."
)

GRAMMARS: dict[str, ActionGrammar] = {
    "shop": ActionGrammar(
        "You are shopping in a web store for the item the instruction describes. Actions: "
        "search[<query>] on the search page; click[<item id>], click[next >], click[< prev], "
        "click[back to search] on a results page; click[<option>], click[buy now], click[< prev] "
        "on an item page.",
        verbs=("search", "click"),
    ),
    "hotpot": ActionGrammar(
        "You answer a multi-hop question with a Wikipedia-like tool. Actions: search[<entity>] "
        "opens an article, lookup[<keyword>] shows the next sentence with the keyword, "
        "finish[<answer>] answers and ends the episode.",
        verbs=("search", "lookup", "finish"),
    ),
    "textworld": ActionGrammar(
        "You play a text adventure game. Actions are short commands such as 'go north', "
        "'open door', 'take coin'.",
        bracketed=False,
    ),
}

_GENERIC = ActionGrammar("You are an agent acting in a text environment. Actions: verb[argument].")


def grammar_for(
    env_name: str, overrides: Mapping[str, ActionGrammar] | None = None
) -> ActionGrammar:
    """The grammar of ``env_name`` (``overrides`` first, then :data:`GRAMMARS`, else generic)."""
    if overrides and env_name in overrides:
        return overrides[env_name]
    return GRAMMARS.get(env_name, _GENERIC)


@dataclass(frozen=True)
class ReactPrompt:
    """A prompt split where the model's own text begins (see the module docstring)."""

    head: str
    tail: str  # "Thought:" or "Action: "

    @property
    def text(self) -> str:
        return self.head + self.tail


def build_prompt(
    state: TextState,
    grammar: ActionGrammar,
    *,
    think: bool = True,
    skip_steps: int = 0,
    max_admissible: int = 50,
) -> ReactPrompt:
    """The ReAct prompt of ``state``; ``skip_steps`` drops the oldest steps (to fit a context)."""
    history = state.history[skip_steps:]
    body = render_prompt(state.instruction, state.first_observation, history)
    assert body.endswith(ACTION_PREFIX), body[-20:]
    body = body[: -len(ACTION_PREFIX)]  # ends with "\n"
    lines = [grammar.description]
    if think:
        lines.append(_REACT_FORMAT)
    if skip_steps:
        lines.append(f"({skip_steps} earlier steps are omitted.)")
    head = "\n".join(lines) + "\n" + body
    if state.admissible:
        shown = state.admissible[:max_admissible]
        more = len(state.admissible) - len(shown)
        head += "Valid actions: " + ", ".join(shown) + (f" (and {more} more)" if more else "")
        head += "\n"
    return ReactPrompt(head, THOUGHT_TAIL if think else ACTION_PREFIX)


@dataclass(frozen=True)
class ParsedAction:
    """An action found in generated text: ``text[start:end]`` is the raw match."""

    action: str  # canonical text: "verb[arg]" (lower-case verb, stripped arg) or a stripped line
    start: int
    end: int


_MARKER = re.compile(r"action\s*:", re.IGNORECASE)
_BRACKET = re.compile(r"([A-Za-z_]+)\s*\[([^\[\]\n]*)\]")
# Where a plain (one-line) action ends: a newline or the next ReAct field.
_PLAIN_END = re.compile(r"\n|(?:thought|action|observation)\s*:", re.IGNORECASE)


def _first_bracket(text: str, pos: int, verbs: tuple[str, ...] | None) -> ParsedAction | None:
    for m in _BRACKET.finditer(text, pos):
        verb, arg = m.group(1).lower(), m.group(2).strip()
        if verbs is not None and verb not in verbs:
            continue
        if not arg:
            continue
        return ParsedAction(f"{verb}[{arg}]", m.start(), m.end())
    return None


def parse_action_text(text: str, grammar: ActionGrammar) -> ParsedAction | None:
    """The first action in ``text`` (``tail + generated``), or ``None`` when there is none."""
    if not isinstance(text, str):
        return None
    marker = _MARKER.search(text)
    if grammar.bracketed:
        if marker is not None:
            found = _first_bracket(text, marker.end(), grammar.verbs)
            if found is not None:
                return found
        return _first_bracket(text, 0, grammar.verbs)
    if marker is None:
        return None
    start = marker.end()
    while start < len(text) and text[start] in " \t":
        start += 1
    stop = _PLAIN_END.search(text, start)
    end = stop.start() if stop else len(text)
    raw = text[start:end]
    action = " ".join(raw.split())
    if not action:
        return None
    return ParsedAction(action, start, start + len(raw.rstrip()))


def action_complete(text: str, grammar: ActionGrammar) -> bool:
    """Whether generation may stop: ``text`` (``tail + generated``) holds a finished action.

    A bracket action is finished at its ``]``; a plain one when its line (or field) ends.
    """
    marker = _MARKER.search(text)
    if marker is None:
        return False
    if grammar.bracketed:
        return _first_bracket(text, marker.end(), grammar.verbs) is not None
    stop = _PLAIN_END.search(text, marker.end())
    return stop is not None and bool(text[marker.end() : stop.start()].strip())


def span_logprob(
    token_texts: Sequence[str], token_logprobs: Sequence[float | None], start: int, end: int
) -> float | None:
    """Σ log-prob of the tokens overlapping ``[start, end)`` of ``"".join(token_texts)``.

    For APIs that return per-token log-probs of the sampled text: a token that straddles the
    span's edge (``" click"``, ``"]\\n"``) counts whole. ``None`` when a needed value is missing.
    """
    total, pos = 0.0, 0
    for tok, lp in zip(token_texts, token_logprobs, strict=True):
        lo, hi = pos, pos + len(tok)
        pos = hi
        if hi <= start or lo >= end or hi == lo:
            continue
        if lp is None:
            return None
        total += float(lp)
    return total


def match_admissible(action: str, admissible: Sequence[str]) -> str | None:
    """The admissible action equal to ``action`` ignoring case and spaces, else ``None``."""
    key = "".join(action.lower().split())
    for a in admissible:
        if "".join(a.lower().split()) == key:
            return a
    return None


def candidates_from_samples(
    state: TextState,
    grammar: ActionGrammar,
    tail: str,
    samples: Sequence[tuple[str, Sequence[str] | None, Sequence[float | None]]],
    n: int,
    *,
    restrict_to_admissible: bool = False,
) -> list[Candidate]:
    """Candidates from sampled texts with per-token log-probs (the HTTP and vLLM policies).

    ``samples`` holds ``(text, token_texts or None, token_logprobs)`` per sample, where
    ``"".join(token_texts) == text``. Each parsed action's log-prob is :func:`span_logprob` over
    its text in the first sample that produced it; without token log-probs it is the action's
    frequency among the samples, ``log(count / len(samples))``. Unparseable samples are dropped.
    """
    found: list[tuple[str, float | None]] = []
    for text, toks, vals in samples:
        parsed = parse_action_text(tail + text, grammar)
        if parsed is None:
            continue
        action: str | None = parsed.action
        if restrict_to_admissible and state.admissible:
            action = match_admissible(parsed.action, state.admissible)
            if action is None:
                continue
        lp = None
        if toks is not None:
            lo, hi = max(parsed.start - len(tail), 0), parsed.end - len(tail)
            lp = span_logprob(toks, vals, lo, hi)
        found.append((action, lp))
    counts: dict[str, int] = {}
    for action, _ in found:
        counts[action] = counts.get(action, 0) + 1
    total = max(len(samples), 1)
    cands = [
        Candidate(a, min(0.0, lp) if lp is not None else math.log(counts[a] / total))
        for a, lp in found
    ]
    return dedupe(cands)[:n]
