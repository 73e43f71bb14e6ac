"""The batched search driver, resumable storage and preference records, on the `shop` env."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from qengine.data import RECORD_COLUMNS, build_pairs, load_records, save_records
from qengine.envs import make_env
from qengine.policies import ScriptedPolicy
from qengine.search import CollectSettings, TreeStore, collect

SETTINGS = CollectSettings(iterations=12, candidates=4, max_depth=10, workers=2)


class CrashingPolicy:
    """Delegates to a policy and raises after ``limit`` calls (a killed run)."""

    def __init__(self, policy, limit: int) -> None:
        self.policy, self.limit, self.calls = policy, limit, 0

    def propose(self, states, n):
        self.calls += 1
        if self.calls > self.limit:
            raise KeyboardInterrupt("simulated kill")
        return self.policy.propose(states, n)


@pytest.fixture(scope="module")
def shop():
    env = make_env("shop")
    return env, env.task_ids("train")[:6]


def run(shop, out: Path, engine: str = "native", policy=None) -> None:
    env, tasks = shop
    policy = policy or ScriptedPolicy(env, p=0.5, seed=1)
    collect(env, policy, tasks, settings=SETTINGS, out_dir=out, progress=False, engine=engine)


def arrays_of(out: Path) -> dict[int, dict[str, np.ndarray]]:
    return {tree.index: tree.arrays for tree in TreeStore(out)}


def test_native_and_reference_engines_grow_identical_trees(shop, tmp_path) -> None:
    run(shop, tmp_path / "native", "native")
    run(shop, tmp_path / "reference", "reference")
    native, reference = arrays_of(tmp_path / "native"), arrays_of(tmp_path / "reference")
    assert sorted(native) == list(range(6))
    for index, arrays in native.items():
        for name, values in arrays.items():
            np.testing.assert_array_equal(values, reference[index][name], err_msg=name)


def test_trees_hold_texts_and_statistics(shop, tmp_path) -> None:
    run(shop, tmp_path)
    for tree in TreeStore(tmp_path):
        assert tree.header["task_id"].startswith("train/")
        visits = tree.arrays["visits"]
        assert visits[0] >= 1 and len(tree.texts) == len(visits)
        assert tree.texts[0].action == "" and tree.texts[0].observation
        children = np.flatnonzero(tree.arrays["parent"] == 0)
        assert all(tree.texts[int(tree.arrays["payload"][c])].action for c in children)


def test_killed_run_resumes_without_losing_or_duplicating(shop, tmp_path) -> None:
    env, _ = shop
    run(shop, tmp_path / "whole")
    crashing = CrashingPolicy(ScriptedPolicy(env, p=0.5, seed=1), limit=40)
    with pytest.raises(KeyboardInterrupt):
        run(shop, tmp_path / "resumed", policy=crashing)
    partial = TreeStore(tmp_path / "resumed").done()
    assert len(partial) < 6
    run(shop, tmp_path / "resumed")
    whole, resumed = arrays_of(tmp_path / "whole"), arrays_of(tmp_path / "resumed")
    assert sorted(resumed) == sorted(whole) == list(range(6))
    assert len(list((tmp_path / "resumed" / "trees").glob("*.safetensors"))) == 6
    for index in whole:
        for name in ("visits", "q", "parent", "payload"):
            np.testing.assert_array_equal(whole[index][name], resumed[index][name], err_msg=name)


def test_pairs_round_trip_through_datasets(shop, tmp_path) -> None:
    run(shop, tmp_path)
    records = build_pairs(tmp_path, mode="max_min")
    assert records, "the search produced no preference pair"
    for r in records:
        assert r["q_chosen"] > r["q_rejected"]
        assert r["chosen"] != r["rejected"] and r["prompt"].endswith("Action: ")
    for suffix in (".jsonl", ".parquet"):
        path = save_records(records, tmp_path / f"pairs{suffix}")
        dataset = load_records(path)
        assert dataset.column_names == list(RECORD_COLUMNS)
        assert len(dataset) == len(records)
        assert dataset[0]["chosen"] == records[0]["chosen"]
    paper = build_pairs(tmp_path, mode="paper")
    assert 0 < len(paper) <= len(records)


def test_bad_input_is_explained() -> None:
    with pytest.raises(ValueError, match="unknown"):
        make_env("no-such-env")
    with pytest.raises(ValueError, match=">= 1"):
        CollectSettings(iterations=0)
    with pytest.raises(ValueError, match="suffix"):
        save_records([], "pairs.csv")


def test_rollout_returns_are_discounted_like_the_tree(shop, tmp_path) -> None:
    """One iteration with the expert: the root's value is its rollout, gamma**(k-1) * reward."""
    from dataclasses import replace

    from qengine.search.driver import DEFAULT_SEARCH_CONFIG

    env, tasks = shop
    expert = env.fresh()
    expert.reset(tasks[0])
    k = 0
    while not expert.state().done:
        expert.step(expert.oracle_action())
        k += 1
    assert expert.state().total_reward == pytest.approx(1.0) and k >= 3
    roots = {}
    for gamma in (1.0, 0.5):
        settings = replace(
            SETTINGS, iterations=1, config=replace(DEFAULT_SEARCH_CONFIG, discount=gamma)
        )
        out = tmp_path / str(gamma)
        collect(env, ScriptedPolicy(env, p=1.0), tasks[:1], settings=settings, out_dir=out,
                progress=False)  # fmt: skip
        roots[gamma] = float(next(iter(TreeStore(out))).arrays["q"][0])
    assert roots[1.0] == pytest.approx(1.0)
    assert roots[0.5] == pytest.approx(0.5 ** (k - 1))


def test_q_guided_agent_counts_its_costs_and_reports_finished_episodes(shop) -> None:
    from qengine.agents import QGuidedAgent, run_episodes

    class LongestFirst:  # a stand-in Q-model: prefers the longest action text
        def score(self, prompt, candidates):
            return np.array([len(c) for c in candidates], dtype=np.float64)

    env, tasks = shop
    agent = QGuidedAgent(ScriptedPolicy(env, p=0.5, seed=3), LongestFirst(), n=4)
    finished = []
    result = run_episodes(env, agent, tasks[:3], progress=False, on_episode_end=finished.append)
    assert sorted(s.task_id for s in finished) == sorted(tasks[:3])
    assert all(s.done for s in finished)
    assert agent.stats["decisions"] == pytest.approx(result.mean_steps * 3)
    assert 0 < agent.stats["q_calls"] <= agent.stats["decisions"]
    assert (
        2
        <= agent.candidates_scored_per_decision
        * agent.stats["decisions"]
        / max(agent.stats["q_calls"], 1)
        <= 4
    )


def test_unvisited_episode_ends_count_with_their_exact_value(shop, tmp_path) -> None:
    """Children that end the episode but were never selected still enter pairs (Q = reward)."""
    env, tasks = shop
    settings = CollectSettings(
        iterations=20, candidates=5, max_depth=10, workers=1, early_stop_reward=None
    )
    collect(env, ScriptedPolicy(env, p=0.5, seed=0), tasks, settings=settings, out_dir=tmp_path)
    unvisited_ends = sum(
        int(
            (
                (t.arrays["visits"] == 0)
                & np.array([t.texts[int(k)].done for k in t.arrays["payload"]])
            ).sum()
        )
        for t in TreeStore(tmp_path)
    )
    assert unvisited_ends > 0, "every episode end was visited; the test checks nothing"
    key = lambda r: (r["prompt"], r["chosen"], r["rejected"])  # noqa: E731
    exact = build_pairs(tmp_path, mode="max_min")
    raw = build_pairs(tmp_path, mode="max_min", exact_terminals=False)
    assert {key(r) for r in raw} <= {key(r) for r in exact}
    extra = [r for r in exact if key(r) not in {key(x) for x in raw}]
    assert extra and all(r["q_chosen"] > r["q_rejected"] for r in extra)


def test_success_reward_backs_up_success_not_partial_scores(shop, tmp_path) -> None:
    """With ``success_reward`` a near-miss purchase (0 < reward < 1) is worth 0 in the tree."""
    env, tasks = shop
    settings = CollectSettings(
        iterations=30, candidates=5, max_depth=10, workers=1, success_reward=1.0
    )
    collect(env, ScriptedPolicy(env, p=0.5, seed=0), tasks, settings=settings, out_dir=tmp_path)
    partial = 0
    for tree in TreeStore(tmp_path):
        arrays = tree.arrays
        for i, k in enumerate(arrays["payload"][1:], start=1):
            raw = tree.texts[int(k)].reward
            assert arrays["reward"][i] == float(raw >= 1.0)  # the texts keep the raw reward
            partial += 0.0 < raw < 1.0
    assert partial > 0, "no near-miss purchase in the trees; the test checks nothing"
    with pytest.raises(ValueError, match="success_reward"):
        CollectSettings(success_reward=float("nan"))
