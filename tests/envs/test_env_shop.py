"""The shop environment: WebShop reward on hand-worked cases, pages, determinism, difficulty."""

from __future__ import annotations

import pytest
from envs_helpers import SHOP_KW, run_episode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qengine.envs import make_env
from qengine.envs.shop import Goal, Product, shop_reward
from qengine.envs.shop.reward import type_reward
from qengine.policies import ScriptedPolicy

GOAL = Goal(
    target="b0target00",
    category="running shoes",
    path="clothing › shoes › athletic",
    type_words=frozenset({"running", "shoes"}),
    attributes=("lightweight", "non-slip"),
    options=(("color", "red"), ("size", "9")),
    price_upper=50.0,
    instruction="i need lightweight and non-slip running shoes with color: red, and size: 9, "
    "and price lower than 50.00 dollars",
    search_query="lightweight non-slip running shoes",
)


def product(**kw) -> Product:
    base = dict(
        asin="b0aaaaaaaa",
        category="running shoes",
        path="clothing › shoes › athletic",
        brand="Zonova",
        title="Zonova lightweight running shoes sport",
        attributes=("breathable", "lightweight", "non-slip"),
        options=(("color", ("black", "red")), ("size", ("8", "9"))),
        price=39.99,
        description="Zonova running shoes. Features: breathable, lightweight, non-slip.",
    )
    base.update(kw)
    return Product(**base)


@pytest.mark.parametrize(
    ("prod", "selected", "expected"),
    [
        # (attrs 2 + options 2 + price 1) / (2 + 2 + 1)
        (product(), {"color": "red", "size": "9"}, 1.0),
        (product(), {}, 3 / 5),  # nothing selected: no option points
        (product(), {"color": "black", "size": "9"}, 4 / 5),
        (product(price=59.99), {"color": "red", "size": "9"}, 4 / 5),
        (
            product(attributes=("breathable",), description="plain.", title="Zonova running shoes"),
            {"color": "red", "size": "9"},
            3 / 5,
        ),
        # attribute found in the description only still counts (WebShop's fallback)
        (
            product(attributes=("breathable",), description="very lightweight and non-slip"),
            {"color": "red", "size": "9"},
            1.0,
        ),
        # token-set containment: "non-slip sole" satisfies "non-slip"
        (
            product(attributes=("lightweight", "non-slip sole"), description="x"),
            {"color": "red", "size": "9"},
            1.0,
        ),
        # other type, no shared type word: r_type = 0
        (
            product(category="hiking boots", path="clothing › shoes › outdoor"),
            {"color": "red", "size": "9"},
            0.0,
        ),
    ],
)
def test_reward_hand_worked(prod, selected, expected):
    assert shop_reward(prod, GOAL, selected).reward == pytest.approx(expected)


def test_type_reward_thresholds():
    wide = Goal(**{**GOAL.__dict__, "type_words": frozenset("abcdef"), "category": "x"})
    # 1 of 6 type words shared, no query or category match -> 0.5
    p = product(category="a z", path="p › q › r")
    assert type_reward(p, wide)[0] == 0.5
    wider = Goal(**{**GOAL.__dict__, "type_words": frozenset("abcdefghijk"), "category": "x"})
    assert type_reward(p, wider)[0] == 0.1  # 1 / 11 < 0.1
    # same type name: query match -> 1.0
    assert type_reward(product(), GOAL) == (1.0, True, True, 1.0)


def test_option_points_capped_by_goal_options():
    goal = Goal(**{**GOAL.__dict__, "options": (("color", "red"),)})
    br = shop_reward(product(), goal, {"color": "red", "size": "9"})
    assert br.num_option_matches == 1 and br.reward == pytest.approx(1.0)


def test_buy_pays_webshop_reward(shop):
    tid = shop.task_ids("test")[0]
    task = shop.task(tid)
    shop.reset(tid)
    shop.step(f"search[{task.goal.search_query}]")
    while not any(a == f"click[{task.goal.target}]" for a in shop.admissible_actions()):
        shop.step("click[next >]")
    shop.step(f"click[{task.goal.target}]")
    dim, wrong = next(
        (d, v)
        for d, vs in shop.catalog.by_asin[task.goal.target].options
        for v in vs
        if v != dict(task.goal.options)[d]
    )
    shop.step(f"click[{wrong}]")
    res = shop.step("click[buy now]")
    assert res.done and res.info["purchased"] == task.goal.target
    expected = shop_reward(shop.catalog.by_asin[task.goal.target], task.goal, {dim: wrong})
    assert res.reward == pytest.approx(expected.reward) and res.reward < 1.0
    assert res.info["success"] is False


def test_pages_and_admissible_actions(shop):
    shop.reset(shop.task_ids("train")[0])
    assert shop.admissible_actions() is None  # free-form search
    shop.step("search[shoes]")
    adm = shop.admissible_actions()
    assert adm[0] == "click[back to search]" and "click[next >]" in adm
    assert "click[< prev]" not in adm and sum(a.startswith("click[b0") for a in adm) == 5
    shop.step("click[next >]")
    assert "click[< prev]" in shop.admissible_actions()
    assert "Page 2" in shop.state().observation
    item = next(a for a in shop.admissible_actions() if a.startswith("click[b0"))
    shop.step(item)
    assert "click[buy now]" in shop.admissible_actions()
    shop.step("click[< prev]")
    assert "Page 2" in shop.state().observation
    shop.step("click[back to search]")
    assert shop.admissible_actions() is None


@pytest.mark.parametrize(
    ("setup", "bad", "why"),
    [
        ([], "click[buy now]", "nothing to click"),
        ([], "search[  ]", "empty"),
        (["search[shoes]"], "search[boots]", "only possible on the search page"),
        (["search[shoes]"], "click[b0notthere]", "cannot be clicked"),
        (["search[shoes]"], "click[buy now]", "cannot be clicked"),
    ],
)
def test_invalid_actions_leave_the_page_unchanged(shop, setup, bad, why):
    shop.reset(shop.task_ids("train")[1])
    for a in setup:
        shop.step(a)
    before = shop.snapshot().payload[1]
    res = shop.step(bad)
    assert res.info["valid"] is False and why in res.observation
    assert shop.snapshot().payload[1] == before


def test_splits_disjoint(shop):
    train = [shop.task(t) for t in shop.task_ids("train")]
    test = [shop.task(t) for t in shop.task_ids("test")]
    assert len(train) == SHOP_KW["num_train"] and len(test) == SHOP_KW["num_test"]
    assert not {t.task_id for t in train} & {t.task_id for t in test}
    assert not {t.goal.target for t in train} & {t.goal.target for t in test}
    instructions = [t.goal.instruction for t in train + test]
    assert len(set(instructions)) == len(instructions)


def test_same_seed_same_store_other_seed_other_store():
    a, b = make_env("shop", **SHOP_KW), make_env("shop", **SHOP_KW)
    c = make_env("shop", **{**SHOP_KW, "seed": 4})
    ids = a.task_ids("test")
    assert [a.task(t) for t in ids] == [b.task(t) for t in ids]
    assert [a.task(t).goal.instruction for t in ids] != [c.task(t).goal.instruction for t in ids]


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(choices=st.lists(st.integers(0, 10**6), min_size=1, max_size=14), task=st.integers(0, 39))
def test_replay_and_snapshot_are_deterministic(shop, choices, task):
    tid = shop.task_ids("test")[task]
    shop.reset(tid)
    trace, snaps = [], []
    for c in choices:
        if shop.done:
            break
        snaps.append((shop.snapshot(), shop.state()))
        acts = shop.plausible_actions()
        trace.append(shop.step(acts[c % len(acts)]))
    final = shop.state()
    twin = shop.fresh()
    assert twin.replay(tid, final.actions) == final
    for (snap, state), res in zip(snaps, trace, strict=True):
        assert shop.restore(snap) == state
        assert shop.step(final.actions[state.depth]) == res


def test_oracle_solves_every_task_and_random_agent_fails(shop):
    ids = shop.task_ids("test") + shop.task_ids("train")[:20]
    oracle = ScriptedPolicy(shop, p=1.0)
    assert all(run_episode(shop, oracle, t) == pytest.approx(1.0) for t in ids)
    rand = ScriptedPolicy(shop, p=0.0, seed=1)
    rewards = [run_episode(shop, rand, t) for t in ids]
    assert sum(r >= 1.0 for r in rewards) <= 0.1 * len(ids)
    noisy = ScriptedPolicy(shop, p=0.5, seed=1)
    wins = sum(run_episode(shop, noisy, t) >= 1.0 for t in ids)
    assert 0.15 * len(ids) <= wins <= 0.85 * len(ids)  # hard, but not hopeless
