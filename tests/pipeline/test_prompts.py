"""The prompt styles: one rendering of a state for training and selection, and the marks that
hand a small from-scratch Q-model what a pretrained LM reads by itself."""

from __future__ import annotations

import json
import os
import sys

import pytest

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))  # prompt_golden, under any mode

from qengine.data.prompts import (
    PROMPT_STYLES,
    PromptStyle,
    compact_prompt,
    parse_prompt,
    render_prompt,
    style_action,
    style_actions,
    style_prompt,
)
from qengine.envs import Rendering, rendering_for
from qengine.envs.shop.render import action_label, episode_clicks

SHOP = rendering_for("shop")


def _last_page(prompt: str) -> str:
    _, first, history = parse_prompt(prompt)
    return history[-1][1] if history else first


def _clicks(prompt: str) -> tuple[frozenset[str], frozenset[str]]:
    _, first, history = parse_prompt(prompt)
    return episode_clicks(first, history)


def _price_limit(prompt: str) -> float | None:
    bound = SHOP.price_bound(parse_prompt(prompt)[0])
    return None if bound is None else float(bound)


def test_compact_prompt_keeps_instruction_actions_and_last_observation() -> None:
    full = render_prompt(
        "buy a red shirt", "home", [("search[red]", "page 1"), ("click[a]", "item a")]
    )
    assert compact_prompt(full) == (
        "Instruction: buy a red shirt\nPrevious actions: search[red] | click[a]\n"
        "Observation: item a\nAction: "
    )
    assert style_prompt(full, "full") == full
    with pytest.raises(ValueError, match="prompt style"):
        style_prompt(full, "tiny")


def test_marked_style_marks_instruction_words_and_labels_clicked_ids() -> None:
    results = (
        "[back to search] [SEP] Page 1 [SEP] [next >] [SEP] [b0abc12345] [SEP] Zosa red "
        "t-shirt plus [SEP] $19.99 [SEP] [b0def67890] [SEP] Hulia blue shirt [SEP] $9.99"
    )
    full = render_prompt(
        "i need a red t-shirt with size: x-large",
        "search page",
        [("search[red t-shirt]", results)],
    )
    assert style_prompt(full, "compact-marked") == (
        "Instruction: i need a red t-shirt with size: x-large\n"
        "Previous actions: search[^red ^t-shirt]\n"
        "Observation: [back to search] [SEP] Page 1 [SEP] [next >] [SEP] [b0abc12345] [SEP] "
        "Zosa ^red ^t-shirt plus [SEP] $19.99 [SEP] [b0def67890] [SEP] Hulia blue shirt [SEP] "
        "$9.99\nAction: "
    )
    assert action_label(_last_page(full), "click[b0abc12345]") == "Zosa red t-shirt plus"
    assert action_label(_last_page(full), "click[b0def67890]") == "Hulia blue shirt"
    for no_label in ("click[next >]", "click[back to search]", "click[b0zzz]", "search[red]"):
        assert action_label(_last_page(full), no_label) == ""
    assert style_action(full, "click[b0abc12345]", "compact-marked") == (
        "click[b0abc12345] Zosa ^red ^t-shirt plus"
    )
    assert style_action(full, "click[x-large]", "compact-marked") == "click[^x-large]"
    assert style_action(full, "click[x-large]", "compact") == "click[x-large]"
    with pytest.raises(ValueError, match="prompt style"):
        style_action(full, "click[x-large]", "tiny")  # type: ignore[arg-type]


def test_visited_style_flags_opened_items_and_selected_options() -> None:
    results = (
        "[back to search] [SEP] Page 1 [SEP] [next >] [SEP] [b0abc12345] [SEP] Zosa red "
        "t-shirt plus [SEP] $19.99 [SEP] [b0def67890] [SEP] Hulia blue shirt [SEP] $9.99"
    )
    item = "[< prev] [SEP] Zosa red t-shirt plus [SEP] color: [red] [blue] [SEP] [buy now]"
    history = [
        ("search[red t-shirt]", results),
        ("click[b0abc12345]", item),
        ("click[red]", item),
    ]

    def after(*steps: tuple[str, str]) -> str:
        return render_prompt("i need a red t-shirt", "search page", list(steps))

    on_item = after(*history)
    assert _clicks(on_item) == ({"b0abc12345"}, {"red"})
    options = ["click[red]", "click[blue]", "click[buy now]"]
    assert style_actions(on_item, options, "compact-marked-visited") == [
        "click[^red] selected",
        "click[blue]",
        "click[buy now]",
    ]
    back = after(*history, ("click[< prev]", results))
    assert _clicks(back) == ({"b0abc12345"}, {"red"})  # "< prev" is navigation
    candidates = ["click[b0abc12345]", "click[b0def67890]", "click[next >]"]
    assert style_actions(back, candidates, "compact-marked-visited") == [
        "click[b0abc12345] Zosa ^red ^t-shirt plus visited",
        "click[b0def67890] Hulia blue shirt",
        "click[next >]",
    ]
    # Opening another item starts its page afresh: "red" is no longer selected there.
    other = after(*history, ("click[< prev]", results), ("click[b0def67890]", item))
    assert _clicks(other) == ({"b0abc12345", "b0def67890"}, frozenset())
    # The prompt is the marked one.
    assert style_prompt(back, "compact-marked-visited") == style_prompt(back, "compact-marked")
    # The plain marked style flags nothing.
    plain = " ".join(style_actions(back, candidates, "compact-marked"))
    assert "visited" not in plain and "selected" not in plain
    # Before any click nothing is flagged.
    first = after(*history[:1])
    assert _clicks(first) == (frozenset(), frozenset())


def test_price_style_marks_prices_within_the_instruction_bound() -> None:
    results = (
        "[back to search] [SEP] Page 1 [SEP] [b0abc12345] [SEP] Zosa red t-shirt [SEP] $50.00 "
        "[SEP] [b0def67890] [SEP] Hulia red shirt [SEP] $50.01 [SEP] [b0ghi24680] [SEP] Kanel tee"
    )
    instruction = "i need a red t-shirt, and price lower than 50.00 dollars"
    full = render_prompt(instruction, "search page", [("search[red t-shirt]", results)])
    assert _price_limit(full) == 50.0
    assert _price_limit(render_prompt("a red shirt under $7.5", "home", [])) == 7.5
    assert _price_limit(render_prompt("a red shirt", "home", [])) is None
    # At most the bound counts (WebShop's price reward), and only dollar amounts are prices.
    assert SHOP.mark_prices("$50.00 $50.01 $3 50.00", 50.0, "^") == "^$50.00 $50.01 ^$3 50.00"

    style = "compact-marked-visited-price"
    assert style_prompt(full, style).endswith(
        "[b0abc12345] [SEP] Zosa ^red ^t-shirt [SEP] ^$50.00 [SEP] [b0def67890] [SEP] Hulia "
        "^red shirt [SEP] $50.01 [SEP] [b0ghi24680] [SEP] Kanel tee\nAction: "
    )
    # The instruction line itself is never marked.
    assert style_prompt(full, style).startswith(f"Instruction: {instruction}\n")
    # A listed item's click carries its price; an item listed without one, its title only.
    assert (
        action_label(_last_page(full), "click[b0def67890]", with_price=True)
        == "Hulia red shirt $50.01"
    )
    assert action_label(_last_page(full), "click[b0ghi24680]", with_price=True) == "Kanel tee"
    assert style_actions(full, ["click[b0abc12345]", "click[b0def67890]"], style) == [
        "click[b0abc12345] Zosa ^red ^t-shirt ^$50.00",
        "click[b0def67890] Hulia ^red shirt $50.01",
    ]
    # The visited style's flags still apply, after the price.
    item = "[< prev] [SEP] Zosa red t-shirt [SEP] Price: $50.00 [SEP] [buy now]"
    back = render_prompt(
        instruction,
        "search page",
        [("search[red t-shirt]", results), ("click[b0abc12345]", item), ("click[< prev]", results)],
    )
    assert style_action(back, "click[b0abc12345]", style) == (
        "click[b0abc12345] Zosa ^red ^t-shirt ^$50.00 visited"
    )
    # The other styles leave prices alone.
    assert "^$" not in style_prompt(full, "compact-marked-visited")
    assert style_action(full, "click[b0abc12345]", "compact-marked-visited") == (
        "click[b0abc12345] Zosa ^red ^t-shirt"
    )


@pytest.mark.parametrize("env", ["shop", "hotpot", "textworld"])
def test_every_style_renders_byte_identical_to_the_golden_digests(env, tmp_path) -> None:
    """The demo's numbers stand on these bytes: every style over many walk states of every
    built-in environment hashes as recorded before environments owned their rendering, both as
    the pipeline styles (with the state's environment) and as text saved without one."""
    if env == "textworld":
        pytest.importorskip("textworld", reason="optional extra: pip install textworld")
    import prompt_golden

    golden = json.loads(prompt_golden.GOLDEN.read_text())[env]
    walked = prompt_golden.states(env, str(tmp_path))
    assert len(walked) == int(golden["states"]) > 10
    assert prompt_golden.digests(walked, prompt_golden.env_styler) == golden
    assert prompt_golden.digests(walked, prompt_golden.legacy_styler) == golden


def test_styles_compose_and_the_presets_keep_their_names() -> None:
    for name, style in PROMPT_STYLES.items():
        assert PromptStyle.parse(name) is style and style.name == name == str(style)
    priced = PromptStyle.parse("compact+mark_prices")
    assert (
        priced == PromptStyle(compact=True, mark_prices=True)
        and priced.name == "compact+mark_prices"
    )
    assert PromptStyle.parse(priced.name) == priced
    assert (
        PromptStyle.parse("mark_instruction+compact+label_actions")
        == PROMPT_STYLES["compact-marked"]
    )
    for bad in ("tiny", "compact+tiny", "", "compact-marked+"):
        with pytest.raises(ValueError, match="prompt style"):
            PromptStyle.parse(bad)
    # An option alone does what it says and nothing else.
    results = (
        "[b0abc12345] [SEP] Zosa red tee [SEP] $9.99 [SEP] [b0def67890] [SEP] Kanel tee [SEP] "
        "$60.00"
    )
    full = render_prompt(
        "a red tee, price lower than 50.00 dollars", "home", [("search[tee]", results)]
    )
    only_prices = style_prompt(full, "mark_prices", "shop")
    assert only_prices == full.replace("$9.99", "^$9.99")
    assert style_actions(full, ["click[b0abc12345]"], "label_actions", "shop") == [
        "click[b0abc12345] Zosa red tee"
    ]


def test_the_environment_owns_what_the_marks_mean() -> None:
    results = "[b0abc12345] [SEP] Zosa red tee [SEP] $9.99"
    full = render_prompt(
        "a red tee, price lower than 50.00 dollars", "home", [("search[tee]", results)]
    )
    style = "compact-marked-visited-price"
    # Neutral hooks (hotpot's): instruction words are marked, no label, no price, no flag.
    assert style_actions(full, ["click[b0abc12345]"], style, "hotpot") == ["click[b0abc12345]"]
    assert "^$9.99" not in style_prompt(full, style, "hotpot")
    assert "^red ^tee" in style_prompt(full, style, "hotpot")
    # The shop's hooks label, price and mark.
    assert style_actions(full, ["click[b0abc12345]"], style, "shop") == [
        "click[b0abc12345] Zosa ^red ^tee ^$9.99"
    ]
    # Text saved without its environment reads as it always did (the shop's hooks).
    assert style_prompt(full, style) == style_prompt(full, style, "shop")

    class Upper(Rendering):  # a third-party environment's hooks, passed directly
        def action_notes(self, first_observation, history, actions, **options):
            return [a.upper() for a in actions]

    assert style_actions(full, ["go[north]"], style, Upper()) == ["go[north] GO[NORTH]"]
    with pytest.raises(ValueError, match="unknown environment"):
        style_prompt(full, style, "nowhere")


def test_parse_prompt_inverts_render_prompt() -> None:
    history = [("search[red]", "page 1\nline 2"), ("click[a]", "item a")]
    assert parse_prompt(render_prompt(" buy a red shirt ", " home ", history)) == (
        "buy a red shirt",
        "home",
        history,
    )
    assert parse_prompt(render_prompt("x", "start", [])) == ("x", "start", [])


def test_records_name_one_environment() -> None:
    from qengine.data.pairs import records_env

    assert records_env([{"env": "shop"}, {"env": "shop"}]) == "shop"
    assert records_env([{"prompt": "saved before records named it"}]) is None
    assert records_env([]) is None
    with pytest.raises(ValueError, match=r"environments \(hotpot, shop\): train one"):
        records_env([{"env": "shop"}, {"env": "hotpot"}])
