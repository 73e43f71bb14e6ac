"""The hotpot environment: HotPotQA answer scoring, search/lookup, determinism, difficulty."""

from __future__ import annotations

import pytest
from envs_helpers import HOTPOT_KW, run_episode
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from qengine.envs.hotpot import exact_match, f1_score, normalize_answer
from qengine.policies import ScriptedPolicy


@pytest.mark.parametrize(
    ("raw", "norm"),
    [
        ("The Eiffel Tower!", "eiffel tower"),
        ("  an   Apple, ", "apple"),
        ("Halmouth.", "halmouth"),
        ("A Tale of Two Cities", "tale of two cities"),
        ("theatre", "theatre"),  # "the" only as a whole word
        ("1955", "1955"),
    ],
)
def test_normalize_answer(raw, norm):
    assert normalize_answer(raw) == norm


def test_exact_match_and_f1():
    assert exact_match("the Valdorian", "Valdorian") == 1.0
    assert exact_match("Valdoria", "Valdorian") == 0.0
    assert f1_score("Ada Lindberg", "Ada Lindberg") == 1.0
    assert f1_score("Ada", "Ada Lindberg") == pytest.approx(2 * 1.0 * 0.5 / 1.5)
    assert f1_score("yes", "no") == 0.0 and f1_score("no", "no") == 1.0


def _question(env, kind: str):
    return next(env.question(t) for t in env.task_ids("train") if env.question(t).kind == kind)


def test_search_lookup_finish_bridge_question(hotpot):
    q = _question(hotpot, "bridge-director-birthplace")
    film = q.entities[0]
    director = hotpot.kb.articles[film].fact("director")
    hotpot.reset(q.task_id)
    obs = hotpot.step(f"search[{film.upper()}]").observation  # titles match case-insensitively
    assert f"directed by {director}" in obs
    obs = hotpot.step(f"search[{director}]").observation
    assert "born in" not in obs  # the birthplace needs a lookup
    assert hotpot.step("lookup[born in]").observation.startswith("(Result 1 / 1)")
    assert hotpot.step("lookup[born in]").observation == "No more results."
    res = hotpot.step(f"finish[the {q.answer}.]")  # normalised exact match
    assert res.done and res.reward == 1.0 and res.info["success"]


def test_search_miss_suggests_titles_and_lookup_needs_an_article(hotpot):
    q = _question(hotpot, "compare-born")
    hotpot.reset(q.task_id)
    assert hotpot.step("lookup[born]").observation.startswith("No article is open")
    obs = hotpot.step(f"search[{q.entities[0].split()[0]}]").observation
    assert obs.startswith("Could not find") and "Similar:" in obs
    res = hotpot.step("finish[somebody else]")
    assert res.done and res.reward == 0.0 and res.info["em"] == 0.0


@pytest.mark.parametrize(
    ("bad", "why"),
    [("search[]", "needs an argument"), ("click[x]", "unknown action"), ("who knows", "form")],
)
def test_invalid_actions(hotpot, bad, why):
    hotpot.reset(hotpot.task_ids("train")[0])
    res = hotpot.step(bad)
    assert res.info["valid"] is False and why in res.observation and not res.done


def test_splits_disjoint_and_all_kinds_present(hotpot):
    train = [hotpot.question(t) for t in hotpot.task_ids("train")]
    test = [hotpot.question(t) for t in hotpot.task_ids("test")]
    assert len(train) == HOTPOT_KW["num_train"] and len(test) == HOTPOT_KW["num_test"]
    assert not {q.text for q in train} & {q.text for q in test}
    assert len({q.kind for q in train}) == 8


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(choices=st.lists(st.integers(0, 10**6), min_size=1, max_size=8), task=st.integers(0, 59))
def test_replay_and_snapshot_are_deterministic(hotpot, choices, task):
    tid = hotpot.task_ids("test")[task]
    hotpot.reset(tid)
    trace, snaps = [], []
    for c in choices:
        if hotpot.done:
            break
        snaps.append((hotpot.snapshot(), hotpot.state()))
        acts = hotpot.plausible_actions()
        trace.append(hotpot.step(acts[c % len(acts)]))
    final = hotpot.state()
    assert hotpot.fresh().replay(tid, final.actions) == final
    for (snap, state), res in zip(snaps, trace, strict=True):
        assert hotpot.restore(snap) == state
        assert hotpot.step(final.actions[state.depth]) == res


def test_oracle_solves_every_task_and_random_agent_fails(hotpot):
    ids = hotpot.task_ids("test") + hotpot.task_ids("train")[:40]
    oracle = ScriptedPolicy(hotpot, p=1.0)
    assert all(run_episode(hotpot, oracle, t) == 1.0 for t in ids)
    rand = ScriptedPolicy(hotpot, p=0.0, seed=2)
    assert sum(run_episode(hotpot, rand, t) for t in ids) <= 0.3 * len(ids)
