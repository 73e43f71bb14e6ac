"""The collector grows the same trees, bit for bit, as the driver before the refactor did."""

from __future__ import annotations

import pytest
from search_helpers import CASES, GOLDEN, assert_same_trees, run_case


@pytest.mark.parametrize("case", sorted(CASES))
def test_collect_matches_the_golden_trees(case: str, tmp_path) -> None:
    run_case(case, tmp_path)
    assert_same_trees(GOLDEN / case, tmp_path)


@pytest.mark.parametrize("case", sorted(CASES))
def test_resumed_collect_matches_the_golden_trees(case: str, tmp_path) -> None:
    """Trees searched in a later run (other trees already on disk) are the same trees: a tree's
    search depends on its task, not on which other tasks share the forest."""
    import shutil

    from qengine.search import TreeStore

    golden = TreeStore(GOLDEN / case)
    out = TreeStore(tmp_path)
    for index in sorted(golden.done())[::2]:  # every other tree "already written"
        for suffix in (".jsonl", ".safetensors"):
            shutil.copy(golden.dir / f"{index:05d}{suffix}", out.dir)
    run_case(case, tmp_path)
    assert_same_trees(GOLDEN / case, tmp_path)


def test_collect_reports_what_it_did(tmp_path) -> None:
    from qengine.search import TreeStore

    stats = run_case("shop_rollouts", tmp_path)
    trees = list(TreeStore(tmp_path))
    assert stats.trees == len(trees) == 5 and stats.resumed == 0
    assert stats.seconds > 0 and 0 < stats.policy_seconds + stats.env_seconds <= stats.seconds
    assert stats.leaves == sum(int(t.arrays["visits"][0]) for t in trees)
    assert sorted(stats.best_rewards) == sorted(t.header["best_reward"] for t in trees)
    assert stats.policy_calls > 0 and stats.env_steps > 0
