"""``Forest.export_tree``: one tree of ``export_arrays`` without exporting the others."""

from __future__ import annotations

import numpy as np
import pytest
from core_helpers import ENGINES, assert_arrays_equal

from qengine import Forest, SearchConfig

PER_TREE = ("minmax_lo", "minmax_hi", "root_epoch")


def searched(engine: str, num_trees: int = 5) -> Forest:
    """Trees of different sizes: tree b gets b + 1 rounds of a small search."""
    forest = Forest(
        num_trees,
        SearchConfig(two_player=True),
        num_threads=1,
        engine=engine,
        root_payloads=np.arange(num_trees) * 10,
    )
    rng = np.random.default_rng(3)
    for round_ in range(num_trees):
        leaves = forest.ask(2)
        keep = leaves.tree >= round_  # trees below `round_` stop growing
        forest.cancel(leaves.tree[~keep], leaves.node[~keep])
        trees, nodes = leaves.tree[keep], leaves.node[keep]
        counts = np.full(len(trees), 3, dtype=np.int32)
        forest.expand(
            trees,
            nodes,
            counts,
            rng.random(3 * len(trees)).astype(np.float32),
            rewards=rng.random(3 * len(trees)).astype(np.float32),
            payloads=np.arange(3 * len(trees)),
        )
        forest.backup(trees, nodes, rng.random(len(trees)))
    return forest


@pytest.mark.parametrize("engine", ENGINES)
def test_export_tree_is_one_tree_of_export_arrays(engine):
    forest = searched(engine)
    everything = forest.export_arrays()
    offsets = everything["tree_offsets"]
    for t in range(forest.num_trees):
        lo, hi = int(offsets[t]), int(offsets[t + 1])
        expected = {
            key: (value[t : t + 1] if key in PER_TREE else value[lo:hi])
            for key, value in everything.items()
            if key != "tree_offsets"
        }
        expected["tree_offsets"] = np.array([0, hi - lo], dtype=np.int64)
        assert_arrays_equal(forest.export_tree(t), expected, f"{engine} tree {t}")
        one = Forest.from_arrays(forest.export_tree(t), forest.config, engine=engine)
        assert one.num_trees == 1 and one.size(0) == hi - lo


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("tree", [-1, 5, 2**40])
def test_export_tree_refuses_a_tree_out_of_range(engine, tree):
    with pytest.raises(IndexError, match="tree"):
        searched(engine).export_tree(tree)
