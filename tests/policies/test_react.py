"""ReAct prompting and action parsing shared by the LLM policies."""

from __future__ import annotations

import math

import pytest

from qengine.data.prompts import render_state
from qengine.envs import TextState
from qengine.policies import Candidate
from qengine.policies.react import (
    GRAMMARS,
    ActionGrammar,
    action_complete,
    build_prompt,
    candidates_from_samples,
    grammar_for,
    match_admissible,
    parse_action_text,
    span_logprob,
)

SHOP, HOTPOT, TW = GRAMMARS["shop"], GRAMMARS["hotpot"], GRAMMARS["textworld"]
GENERIC = grammar_for("no-such-env")


def parsed(text: str, grammar: ActionGrammar = SHOP) -> str | None:
    p = parse_action_text(text, grammar)
    return None if p is None else p.action


@pytest.mark.parametrize(
    ("text", "want"),
    [
        ("Thought: buy it.\nAction: click[buy now]\nObservation: x", "click[buy now]"),
        ("Thought: I could search[mugs] but no.\nAction: click[b0abc]", "click[b0abc]"),  # marker
        ("thought : hmm . action : click [ next > ] observation :", "click[next >]"),  # word-level
        ("Action:   Click[ Buy Now ]", "click[Buy Now]"),  # verb lower-cased, argument stripped
        ("no marker, but search[red mug] here", "search[red mug]"),  # fallback: anywhere
        ("Action: webshop[SEP] then click[x]", "click[x]"),  # unknown verbs are skipped
        ("Action: click[] search[ ]", None),  # empty arguments
        ("Action: click[unclosed", None),
        ("", None),
        ("\x00\x01 ]][[ garbage ::: Action Action: [[]]", None),
        ("Action: lookup[x]", None),  # not a shop verb
    ],
)
def test_parse_bracket_actions(text: str, want: str | None) -> None:
    assert parsed(text) == want


def test_parse_other_grammars() -> None:
    assert parsed("Action: lookup[born]", HOTPOT) == "lookup[born]"
    assert parsed("Action: finish[Dora Lindova]", HOTPOT) == "finish[Dora Lindova]"
    assert parsed("Action: frobnicate[x]", GENERIC) == "frobnicate[x]"  # any verb when unknown
    # TextWorld commands are free text: the rest of the line after the first marker.
    assert parsed("Thought: go.\nAction: go  north\nObservation: ...", TW) == "go north"
    assert parsed("action : take coin observation : you take it", TW) == "take coin"
    assert parsed("Action: open door", TW) == "open door"
    assert parsed("Thought: no action here", TW) is None
    assert parsed("Action: \nObservation: x", TW) is None
    assert parse_action_text(None, SHOP) is None  # type: ignore[arg-type]


def test_parse_reports_the_span() -> None:
    text = "Thought: ok\nAction: click [ b0x ]\n"
    p = parse_action_text(text, SHOP)
    assert p is not None and text[p.start : p.end] == "click [ b0x ]"
    p = parse_action_text("Action: go north\nx", TW)
    assert p is not None and p.start == len("Action: ") and p.end == len("Action: go north")


def test_action_complete() -> None:
    assert not action_complete("Thought: I will click[", SHOP)
    assert not action_complete("Thought: search[a] is good", SHOP)  # no Action: marker yet
    assert action_complete("Thought: x\nAction: click[a]", SHOP)
    assert not action_complete("Action: go nor", TW)
    assert action_complete("Action: go north\n", TW)
    assert action_complete("action : go north observation :", TW)


def _state(admissible=None, history=()) -> TextState:
    return TextState(
        "shop", "train/00000", "buy a red mug", "[search]", history=history, admissible=admissible
    )


def test_build_prompt_embeds_the_q_model_rendering() -> None:
    hist = (("search[red mug]", "results: [b0a] red mug $3"),)
    s = _state(admissible=("click[b0a]", "click[back to search]"), history=hist)
    body = render_state(s)[: -len("Action: ")]
    p = build_prompt(s, SHOP, think=True)
    assert p.tail == "Thought:" and p.text == p.head + p.tail
    assert p.head.startswith(SHOP.description)
    assert body in p.head
    assert p.head.endswith("Valid actions: click[b0a], click[back to search]\n")
    q = build_prompt(s, SHOP, think=False)
    assert q.tail == "Action: " and "Thought" not in q.text
    # Without admissible actions the no-think prompt ends exactly like the Q-model's prompt.
    free = _state(history=hist)
    assert build_prompt(free, SHOP, think=False).text.endswith(render_state(free))
    # Dropping old steps keeps the instruction and says so.
    short = build_prompt(free, SHOP, skip_steps=1)
    assert "search[red mug]" not in short.text and "buy a red mug" in short.text
    assert "1 earlier steps are omitted" in short.text


def test_build_prompt_caps_the_admissible_list() -> None:
    s = _state(admissible=tuple(f"click[i{k}]" for k in range(60)))
    text = build_prompt(s, SHOP, max_admissible=5).text
    assert "click[i4]" in text and "click[i5]" not in text and "(and 55 more)" in text


def test_grammar_lookup_and_overrides() -> None:
    mine = ActionGrammar("mine", verbs=("go",))
    assert grammar_for("shop") is SHOP
    assert grammar_for("shop", {"shop": mine}) is mine
    assert grammar_for("unknown").verbs is None


def test_span_logprob() -> None:
    toks = ["Action", ":", " click", "[", "a", "]", "\n", "Obs"]
    vals = [-1.0, -2.0, -0.5, -0.25, -0.125, -0.0625, -3.0, -4.0]
    text = "".join(toks)
    start = text.index("click")
    end = text.index("]") + 1
    # " click" straddles the start: it counts whole; "\n" and later tokens do not.
    assert span_logprob(toks, vals, start, end) == pytest.approx(-0.9375)
    assert span_logprob(toks, [None] * len(toks), start, end) is None
    assert span_logprob(["", "ab"], [0.0, -1.0], 0, 2) == -1.0


def test_match_admissible() -> None:
    adm = ("click[Buy Now]", "click[b0a]")
    assert match_admissible("click[buy now]", adm) == "click[Buy Now]"
    assert match_admissible("click [ b0a ]", adm) == "click[b0a]"
    assert match_admissible("click[b0b]", adm) is None


def test_candidates_from_samples() -> None:
    s = _state(admissible=("click[b0a]", "click[b0b]"))
    toks = [" click", "[", "b0a", "]"]
    samples = [
        (
            " x\nAction: click[b0a]",
            ["", " x", "\n", "Action:", *toks],
            [0, -1, -1, -1, -1, -1, -1, -1],
        ),
        (" y\nAction: click[b0a]", None, []),  # duplicate: dropped, first kept
        ("garbage", None, []),
        (" z\nAction: click[b0b]", None, []),  # no log-probs: frequency prior
        (" w\nAction: click[b0c]", None, []),  # inadmissible
    ]
    cands = candidates_from_samples(s, SHOP, "Thought:", samples, 5)
    assert cands == [
        Candidate("click[b0a]", -4.0),
        Candidate("click[b0b]", math.log(1 / 5)),
        Candidate("click[b0c]", math.log(1 / 5)),
    ]
    restricted = candidates_from_samples(
        s, SHOP, "Thought:", samples, 5, restrict_to_admissible=True
    )
    assert [c.text for c in restricted] == ["click[b0a]", "click[b0b]"]
    assert len(candidates_from_samples(s, SHOP, "Thought:", samples, 1)) == 1
