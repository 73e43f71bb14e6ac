"""Value records and sibling pairs from searched trees: texts, targets, filters."""

from __future__ import annotations

import numpy as np
import pytest

from qengine.critics import node_values, sibling_pairs, split_by_task, value_records
from qengine.data import state_prompt
from qengine.data.prompts import render_state
from qengine.search import TreeStore

TERMINAL = 1 << 14


def _actions(tree, node: int) -> list[str]:
    parent, payload = tree.arrays["parent"], tree.arrays["payload"]
    out = []
    while node > 0:
        out.append(tree.texts[int(payload[node])].action)
        node = int(parent[node])
    return out[::-1]


def test_state_texts_are_the_replayed_environment_states(tree_dir, shop) -> None:
    for tree in TreeStore(tree_dir):
        for node in range(0, len(tree.arrays["parent"]), 3):
            state = shop.replay(tree.header["task_id"], _actions(tree, node))
            assert state_prompt(tree, node) == render_state(state)


def test_targets_are_edge_values_of_eligible_nodes(tree_dir) -> None:
    records = value_records(tree_dir)
    assert records
    expected = []
    for tree in TreeStore(tree_dir):
        a = tree.arrays
        q, done = node_values(tree)
        np.testing.assert_allclose(q, a["reward"] + a["q"].astype(np.float64))
        capped = ((a["status"] & TERMINAL) != 0) & ~done
        keep = ((a["visits"] >= 1) | done) & ~capped
        expected += [float(q[n]) for n in np.flatnonzero(keep)]
    assert [r["value"] for r in records] == pytest.approx(expected)
    assert all(0.0 <= r["value"] <= 1.0 for r in records)  # shop rewards lie in [0, 1]
    terminal = [r for r in records if r["terminal"]]
    assert terminal, "the search found no finished episode"
    assert all(r["state"].endswith("Action: ") for r in records)


def test_filters(tree_dir) -> None:
    every = value_records(tree_dir)
    assert len(value_records(tree_dir, include_root=False)) == len(every) - 6
    deep = value_records(tree_dir, min_visits=3)
    assert all(r["visits"] >= 3 or r["terminal"] for r in deep) and len(deep) < len(every)
    assert all(r["depth"] <= 1 for r in value_records(tree_dir, max_depth=1))


def test_sibling_pairs_prefer_the_higher_value_child(tree_dir) -> None:
    one = sibling_pairs(tree_dir)
    every = sibling_pairs(TreeStore(tree_dir), mode="all")
    assert one and len(every) >= len(one)
    for p in every:
        assert p["q_chosen"] > p["q_rejected"] and p["chosen"] != p["rejected"]
        # Siblings: the same history up to the parent, one more step each.
        assert (
            p["chosen"].count("\nAction: ") == p["rejected"].count("\nAction: ") == p["depth"] + 2
        )
    gap = sibling_pairs(tree_dir, mode="all", min_q_gap=0.3)
    assert all(p["q_chosen"] - p["q_rejected"] >= 0.3 for p in gap) and len(gap) < len(every)


def test_split_by_task_holds_out_whole_tasks() -> None:
    records = [{"task": f"t{i % 10}", "i": i} for i in range(100)]
    train, held = split_by_task(records, 0.3, seed=1)
    assert len(train) + len(held) == 100 and len(held) == 30
    assert not {r["task"] for r in train} & {r["task"] for r in held}
    assert split_by_task(records, 0.0)[1] == []


def test_bad_input_is_explained(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="no searched trees"):
        value_records(tmp_path / "nowhere")
    with pytest.raises(ValueError, match="mode"):
        sibling_pairs([], mode="best")
    with pytest.raises(ValueError, match="min_q_gap"):
        sibling_pairs([], min_q_gap=float("nan"))
    with pytest.raises(ValueError, match="fraction"):
        split_by_task([], 1.0)
