"""Tree math in the core: ``edge_values`` (docs section 3, two-player sign included), the
``"all"`` pairs mode and a caller's ``eligible`` mask (5.7), on both engines. Random trees are
compared between the engines by the differential tests (core_helpers.assert_same_queries)."""

from __future__ import annotations

import numpy as np
import pytest
from core_helpers import ENGINES

from qengine import Forest, SearchConfig


def four_children(engine: str, **config) -> Forest:
    """A root with 4 children (rewards 0.1, 0.2, 0.3, 0.4), visited with values 0.5, 0.9, 0.5,
    -0.2 (children 1 and 3 tie on q)."""
    forest = Forest(1, SearchConfig(fpu="constant", **config), num_threads=1, engine=engine)
    forest.expand([0], [0], [4], np.full(4, 0.25), rewards=np.array([0.1, 0.2, 0.3, 0.4]))
    for node, value in zip((1, 2, 3, 4), (0.5, 0.9, 0.5, -0.2), strict=True):
        leaves = forest.ask(1)
        assert leaves.node.tolist() == [node]
        forest.expand(leaves.tree, leaves.node, [0], np.zeros(0))  # a terminal leaf
        forest.backup(leaves.tree, leaves.node, [value])
    return forest


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("two_player", [False, True])
def test_edge_values_carry_the_two_player_sign(engine, two_player):
    forest = four_children(engine, two_player=two_player, discount=0.5)
    a = forest.export_tree(0)
    sign = -1.0 if two_player else 1.0
    reward, q = a["reward"].astype(np.float64), a["q"].astype(np.float64)
    expected = reward + 0.5 * sign * q
    np.testing.assert_array_equal(forest.edge_values(0), expected)
    np.testing.assert_array_equal(forest.edge_values(0)[1:], forest.qvalues(0, 0))


@pytest.mark.parametrize("engine", ENGINES)
def test_all_mode_pairs_every_two_siblings_with_different_values(engine):
    forest = four_children(engine)
    q = forest.edge_values(0)
    pairs = forest.pairs("all")
    rows = list(zip(pairs.chosen.tolist(), pairs.rejected.tolist(), strict=True))
    ranked = sorted(range(1, 5), key=lambda c: (-q[c], c))
    expected = [(hi, lo) for i, hi in enumerate(ranked) for lo in ranked[i + 1 :] if q[hi] > q[lo]]
    assert rows == expected and len(rows) == 6  # all values differ (rewards break the q tie)
    np.testing.assert_array_equal(pairs.q_chosen, q[pairs.chosen])
    assert (pairs.q_chosen > pairs.q_rejected).all()
    gap = forest.pairs("all", min_q_gap=0.3)
    assert (gap.q_chosen - gap.q_rejected >= 0.3).all() and 0 < len(gap) < len(pairs)


@pytest.mark.parametrize("engine", ENGINES)
def test_eligible_mask_replaces_the_visits_rule(engine):
    forest = four_children(engine)
    mask = np.array([False, True, False, True, True])  # child 2 (the best) left out
    pairs = forest.pairs("max_min", eligible=mask)
    assert (pairs.chosen.tolist(), pairs.rejected.tolist()) == ([3], [4])
    assert len(forest.pairs("all", eligible=mask.astype(np.uint8))) == 3
    assert len(forest.pairs("max_min", eligible=np.zeros(5, dtype=bool))) == 0


@pytest.mark.parametrize("engine", ENGINES)
def test_eligible_mask_is_checked(engine):
    forest = four_children(engine)
    with pytest.raises(ValueError, match="eligible"):
        forest.pairs("all", eligible=np.ones(4, dtype=bool))  # one entry per node: 5
    with pytest.raises(ValueError, match="eligible"):
        forest.pairs("all", eligible=np.ones((5, 1), dtype=bool))
    with pytest.raises(TypeError, match="eligible"):
        forest.pairs("all", eligible=np.ones(5))
    with pytest.raises(TypeError, match="eligible"):
        forest._engine.pairs("all", 1, 0.0, -1, np.ones(5, dtype=bool))  # engine: exact uint8
    with pytest.raises(IndexError):
        forest.edge_values(1)


@pytest.mark.parametrize("engine", ENGINES)
def test_reserve_changes_no_result(engine):
    """reserve is a capacity hint: the same search with and without it gives the same bits."""
    exports = []
    for hint in (None, 10_000, 3):
        forest = Forest(3, SearchConfig(max_nodes=5000), num_threads=1, engine=engine)
        if hint is not None:
            forest.reserve(hint)  # above max_nodes: clamped; below the size: nothing to do
        forest.run_synthetic(40, 4)
        exports.append(forest.export_arrays())
    for other in exports[1:]:
        assert all(np.array_equal(exports[0][k], other[k]) for k in exports[0])
    with pytest.raises(ValueError, match="nodes"):
        forest.reserve(-1)
    with pytest.raises(TypeError, match="nodes"):
        forest.reserve(1.5)
