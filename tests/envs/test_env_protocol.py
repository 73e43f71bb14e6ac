"""Registry, action parsing and the protocol's error behaviour."""

from __future__ import annotations

import pickle

import pytest

from qengine.envs import (
    LEGACY_RENDERING_ENV,
    SPLITS,
    Rendering,
    UnknownEnvironmentError,
    list_envs,
    make_env,
    parse_action,
    register_env,
    rendering_for,
)
from qengine.errors import UsageError


def test_list_envs_names_the_builtins():
    assert {"shop", "hotpot", "textworld"} <= set(list_envs())


@pytest.mark.parametrize("name", ["nope", "", "Shop", None])
def test_unknown_environment_lists_valid_names(name):
    with pytest.raises(UnknownEnvironmentError, match=r"valid names: .*hotpot.*shop"):
        make_env(name)
    # a user's mistake: the CLI prints the one line; still a ValueError for library callers
    with pytest.raises(UsageError):
        make_env(name)
    if name is not None:
        with pytest.raises(ValueError, match=r"valid names: .*hotpot.*shop"):
            rendering_for(name)


def test_every_environment_has_rendering_hooks():
    from qengine.envs.shop import ShopEnv
    from qengine.envs.shop.render import ShopRendering

    for name in list_envs():
        assert isinstance(rendering_for(name), Rendering)
    assert rendering_for("shop") is ShopEnv.rendering and isinstance(
        ShopEnv.rendering, ShopRendering
    )
    assert type(rendering_for("hotpot")) is Rendering  # the neutral defaults
    assert rendering_for(None) is rendering_for(LEGACY_RENDERING_ENV)
    neutral = Rendering()
    assert neutral.content_words("I need a Red x-large T-shirt") == {"red", "x-large", "t-shirt"}
    assert neutral.price_bound("price lower than 50.00 dollars") is None
    assert neutral.mark_prices("$3", 50.0, "^") == "$3"
    options = dict(label=True, with_price=True, flag_visited=True)
    assert neutral.action_notes("page", [], ["a", "b"], **options) == ["", ""]


def test_register_env_with_its_own_rendering():
    class Loud(Rendering):
        def price_bound(self, instruction):
            return "7"

    made = []
    register_env("loud-test", lambda **kw: made.append(kw), rendering=lambda: Loud())
    try:
        hooks = rendering_for("loud-test")
        assert isinstance(hooks, Loud) and rendering_for("loud-test") is hooks  # built once
        assert made == []  # looking the hooks up builds no environment
    finally:
        from qengine.envs import registry

        del registry._FACTORIES["loud-test"], registry._RENDERINGS["loud-test"]


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("search[red shoes]", ("search", "red shoes")),
        ("  Click[ buy now ] ", ("click", "buy now")),
        ("finish[]", ("finish", "")),
        ("lookup[a [nested] thing]", ("lookup", "a [nested] thing")),
        ("buy now", None),
        ("search red shoes]", None),
        ("[x]", None),
        ("", None),
    ],
)
def test_parse_action(text, parsed):
    assert parse_action(text) == parsed


@pytest.mark.parametrize("name", ["shop", "hotpot"])
def test_programming_errors_raise_clearly(name):
    env = make_env(name, num_train=5, num_test=5)
    with pytest.raises(RuntimeError, match="reset"):
        env.step("search[x]")
    with pytest.raises(KeyError, match="unknown task id"):
        env.reset("train/99999")
    with pytest.raises(ValueError, match="unknown split"):
        env.task_ids("validation")
    assert set(SPLITS) == {"train", "test"}


@pytest.mark.parametrize("name", ["shop", "hotpot"])
@pytest.mark.parametrize("bad", ["", "   ", "dance", "jump[now]", "search[", 42])
def test_bad_actions_get_feedback_and_cost_a_step(name, bad):
    env = make_env(name, num_train=5, num_test=5)
    env.reset(env.task_ids("train")[0])
    res = env.step(bad)
    assert res.observation.startswith("Invalid action")
    assert "Valid actions" in res.observation
    assert res.info["valid"] is False and res.reward == 0.0 and not res.done
    assert env.state().depth == 1


@pytest.mark.parametrize("name", ["shop", "hotpot"])
def test_step_cap_ends_the_episode(name):
    env = make_env(name, num_train=5, num_test=5, max_steps=3)
    env.reset(env.task_ids("train")[0])
    results = [env.step("nonsense") for _ in range(3)]
    assert [r.done for r in results] == [False, False, True]
    assert results[-1].info.get("truncated") is True
    after = env.step("nonsense")
    assert after.done and after.info["valid"] is False and env.state().depth == 3


@pytest.mark.parametrize("name", ["shop", "hotpot"])
def test_fresh_twin_has_the_same_tasks(name):
    env = make_env(name, seed=5, num_train=8, num_test=4)
    twin = env.fresh()
    assert twin is not env and twin.config == env.config
    for tid in env.task_ids("test"):
        assert env.reset(tid) == twin.reset(tid)


@pytest.mark.parametrize("name", ["shop", "hotpot"])
def test_fresh_twin_made_mid_episode_is_independent(name):
    env = make_env(name, seed=5, num_train=8, num_test=4)
    tid = env.task_ids("train")[2]
    env.reset(tid)
    env.step(env.oracle_action())
    before = env.state()
    twin = pickle.loads(pickle.dumps(env)).fresh()  # (as in a Ray actor)
    assert twin.task_id is None and not twin.done
    with pytest.raises(RuntimeError, match="reset"):
        twin.step("look")
    twin.reset(tid)
    twin.step(twin.oracle_action())
    twin.step(twin.oracle_action())
    assert env.state() == before and twin.state().depth == 2
    assert twin.state().history[0] == before.history[0]


@pytest.mark.parametrize("fixture", ["shop", "hotpot"])
def test_pickled_environment_continues_the_same_episode(fixture, request):
    """Environments are shipped to Ray actors by pickle: the copy is in the same state and
    steps the same way (TextWorld's own test: test_env_textworld.py)."""
    env = request.getfixturevalue(fixture)
    env.reset(env.task_ids("train")[1])
    env.step(env.oracle_action())
    copy = pickle.loads(pickle.dumps(env))
    assert copy.state() == env.state()
    for _ in range(2):
        action = env.oracle_action()
        assert copy.oracle_action() == action and copy.step(action) == env.step(action)
    assert copy.state() == env.state()
