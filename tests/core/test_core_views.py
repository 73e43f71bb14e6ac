"""Zero-copy views: the native engine's views share memory, are read-only, follow updates, and
stay memory-safe after the arena grows or the forest is gone."""

from __future__ import annotations

import gc

import numpy as np
import pytest

from qengine import Forest, SearchConfig
from qengine.forest import NODE_FIELDS

DTYPES = {
    "parent": np.int32,
    "first_child": np.int32,
    "num_children": np.uint16,
    "action": np.uint16,
    "depth": np.uint16,
    "prior": np.float32,
    "visits": np.int32,
    "q": np.float32,
    "reward": np.float32,
    "payload": np.int64,
}


def grown_forest(engine: str) -> Forest:
    forest = Forest(2, SearchConfig(rule="uct"), engine=engine)
    forest.run_synthetic(20, 4)
    return forest


@pytest.mark.parametrize("engine", ["native", "reference"])
def test_views_are_read_only_with_the_stored_dtypes(engine):
    forest = grown_forest(engine)
    for field in NODE_FIELDS:
        view = forest.view(1, field)
        assert view.dtype == DTYPES[field] and view.shape == (forest.size(1),)
        assert not view.flags.writeable
        with pytest.raises(ValueError):
            view[0] = 1
    assert forest._engine.bytes_per_node == (40, 32)


def test_native_views_share_memory_and_follow_updates():
    forest = grown_forest("native")
    for field in NODE_FIELDS:
        a, b = forest.view(0, field), forest.view(0, field)
        assert np.shares_memory(a, b), f"{field}: two views do not share memory (not zero-copy)"
    leaves = forest.ask(1)
    forest.expand(leaves.tree, leaves.node, [2, 2], [0.5] * 4)
    visits, q = forest.view(0, "visits"), forest.view(0, "q")
    root_visits = int(visits[0])
    leaf = int(leaves.node[0])
    forest.backup(leaves.tree, leaves.node, [0.75, 0.25])  # no growth: the views see it
    assert visits[0] == root_visits + 1 and visits[leaf] == forest.view(0, "visits")[leaf]
    assert q[leaf] == forest.view(0, "q")[leaf]


def test_native_views_survive_growth_and_deletion():
    forest = grown_forest("native")
    old = {field: forest.view(0, field) for field in NODE_FIELDS}
    snapshot = {field: np.array(view) for field, view in old.items()}
    forest.run_synthetic(3000, 8)  # many reallocations of tree 0's arena
    for field, view in old.items():  # still readable; either the old values or the live prefix
        live = forest.view(0, field)[: view.shape[0]]
        assert np.array_equal(view, snapshot[field]) or np.array_equal(view, live), field
    del forest, live
    gc.collect()
    junk = [np.full(1 << 16, 7, dtype=np.int64) for _ in range(64)]  # reuse freed memory
    for field, view in old.items():
        assert view.shape == snapshot[field].shape
        if field not in ("visits", "q", "first_child", "num_children"):  # unchanged by search
            assert np.array_equal(view, snapshot[field]), f"{field}: view lost its memory"
    del junk
