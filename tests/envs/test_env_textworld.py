"""The TextWorld adapter (skipped when the optional ``textworld`` package is not installed)."""

from __future__ import annotations

import pytest
from envs_helpers import run_episode

pytest.importorskip("textworld", reason="optional extra: pip install textworld")

from qengine.envs import make_env
from qengine.policies import ScriptedPolicy


@pytest.fixture(scope="module")
def tw(tmp_path_factory):
    env = make_env(
        "textworld",
        challenge="tw-coin_collector",
        settings={"level": 3},
        num_train=1,
        num_test=1,
        max_steps=20,
        cache_dir=str(tmp_path_factory.mktemp("tw-games")),
    )
    yield env
    env.close()


def test_expert_wins_and_reward_sums_to_one(tw):
    tid = tw.task_ids("test")[0]
    assert run_episode(tw, ScriptedPolicy(tw, p=1.0), tid) == pytest.approx(1.0)
    assert tw.state().history[-1][0] in tw.state().actions


def test_inadmissible_command_gets_feedback(tw):
    state = tw.reset(tw.task_ids("train")[0])
    assert state.admissible and "look" in state.admissible
    res = tw.step("fly to the moon")
    assert res.info["valid"] is False and "not admissible" in res.observation
    assert not res.done and tw.state().depth == 1


def test_replay_and_snapshot(tw):
    tid = tw.task_ids("test")[0]
    tw.reset(tid)
    tw.step(tw.plausible_actions()[0])
    snap, mid = tw.snapshot(), tw.state()
    tw.step(tw.oracle_action())
    end = tw.state()
    assert tw.restore(snap) == mid
    tw.step(end.actions[-1])
    assert tw.state() == end
    assert tw.fresh().replay(tid, end.actions) == end


def test_splits_disjoint(tw):
    assert tw.game_seed(tw.task_ids("train")[0]) != tw.game_seed(tw.task_ids("test")[0])


def test_games_generate_and_load_from_many_threads(tmp_path):
    """collect's worker threads generate and load games concurrently: the parser is locked."""
    from concurrent.futures import ThreadPoolExecutor

    env = make_env(
        "textworld",
        challenge="tw-coin_collector",
        settings={"level": 2},
        num_train=4,
        num_test=0,
        cache_dir=str(tmp_path),
    )
    tasks = env.task_ids("train")
    envs = [env.fresh() for _ in tasks]
    with ThreadPoolExecutor(max_workers=4) as pool:
        states = list(pool.map(lambda e, t: e.reset(t), envs, tasks))
    assert [s.task_id for s in states] == tasks
    assert all(s.admissible for s in states)
    for e in [env, *envs]:
        e.close()
