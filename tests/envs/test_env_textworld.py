"""The TextWorld adapter (skipped when the optional ``textworld`` package is not installed)."""

from __future__ import annotations

import pickle

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


def _count_calls(monkeypatch, obj, name):
    calls = []
    real = getattr(obj, name)

    def counted(*args, **kwargs):
        calls.append(args)
        return real(*args, **kwargs)

    monkeypatch.setattr(obj, name, counted)
    return calls


def test_games_stay_loaded_across_tasks(tmp_path, monkeypatch):
    """Moving between games reuses the loaded ones (no tw.start again); max_loaded_games=1
    reloads on every change of game, as the environment did before."""
    cfg = dict(challenge="tw-coin_collector", settings={"level": 1}, num_train=2, num_test=0,
               cache_dir=str(tmp_path))  # fmt: skip
    for keep, loads in ((64, 2), (1, 4)):
        env = make_env("textworld", max_loaded_games=keep, **cfg)
        a, b = env.task_ids("train")
        env.game_file(a), env.game_file(b)  # generation starts games of its own
        starts = _count_calls(monkeypatch, env._tw, "start")
        first = env.reset(a)
        env.reset(b)
        assert env.reset(a) == first
        env.reset(b)
        assert len(starts) == loads
        env.close()


def test_restore_ahead_steps_without_a_reset(tw, monkeypatch):
    """Restoring a snapshot that extends the current state steps only the missing actions; the
    state equals the one a full replay gives."""
    tid = tw.task_ids("test")[0]
    tw.reset(tid)
    here = tw.snapshot()
    tw.step(tw.oracle_action())
    tw.step(tw.oracle_action())
    ahead, want = tw.snapshot(), tw.state()
    tw.restore(here)
    resets = _count_calls(monkeypatch, tw._game, "reset")
    assert tw.restore(ahead) == want
    assert resets == []
    tw.restore(here)  # behind the current state: a reset and a replay
    assert len(resets) == 1
    assert tw.fresh().replay(tid, want.actions) == want


def test_a_game_that_cannot_be_generated_takes_the_next_seed(tmp_path, monkeypatch):
    """QuestGenerationError for a task's seed: a warning naming it, the next derived seed, the
    same choice in a fresh environment (the failed seed is remembered in the cache)."""
    from textworld.generator.chaining import QuestGenerationError

    from qengine.envs.textworld import TextWorldEnv

    cfg = dict(challenge="tw-coin_collector", settings={"level": 1}, num_train=2, num_test=0,
               cache_dir=str(tmp_path))  # fmt: skip
    env = make_env("textworld", **cfg)
    tid = env.task_ids("train")[1]
    bad = env.game_seed(tid)
    real = TextWorldEnv._generate

    def generate(self, game_seed, path):
        if game_seed == bad:
            raise QuestGenerationError(
                "Current map configuration doesn't permit quest of length: 5"
            )
        return real(self, game_seed, path)

    monkeypatch.setattr(TextWorldEnv, "_generate", generate)
    with pytest.warns(RuntimeWarning, match=f"seed {bad}.*next derived seed"):
        env.reset(tid)
    good = env.game_seed(tid)
    assert good != bad and good != env.game_seed(env.task_ids("train")[0])
    twin = env.fresh()
    with pytest.warns(RuntimeWarning, match="permit quest"):
        assert twin.reset(tid) == env.reset(tid)
    assert twin.game_seed(tid) == good
    env.close()
    twin.close()


def test_pickled_mid_episode_continues_the_same_game(tw):
    """Loaded games hold native handles: a pickle (how Ray ships environments to its actors)
    carries the episode's actions and the copy replays them."""
    tid = tw.task_ids("train")[0]
    tw.reset(tid)
    tw.step(tw.plausible_actions()[0])
    copy = pickle.loads(pickle.dumps(tw))
    assert copy.state() == tw.state() and copy.game_seed(tid) == tw.game_seed(tid)
    for _ in range(3):
        action = tw.oracle_action()
        assert copy.oracle_action() == action
        assert copy.step(action) == tw.step(action)
    assert copy.state() == tw.state()
    fresh = pickle.loads(pickle.dumps(make_env("textworld", **tw.config)))  # no episode yet
    assert fresh.reset(tid) == tw.reset(tid)
    copy.close()
    fresh.close()
