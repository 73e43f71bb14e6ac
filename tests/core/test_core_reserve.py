"""Forest.reserve with many trees: the growing trees move into one slab of huge pages shared by
their blocks (csrc/qengine/tree.h, SlabBlocks). Results must not change, and a view keeps its
block (hence the slab) alive after the tree moves again, after other trees move and after the
forest is gone."""

from __future__ import annotations

import gc

import numpy as np

from qengine import Forest, SearchConfig
from qengine._layout import BYTES_PER_NODE

TREES, ACTIONS = 64, 5


def loop(forest: Forest, steps: int, first: int = 0) -> None:
    """The Python search loop with a deterministic evaluator (depends on tree, node and step;
    steps ``first .. first + steps - 1``)."""
    for step in range(first, first + steps):
        leaves = forest.ask(2, paths=False)
        n = len(leaves)
        priors = np.linspace(0.1, 1.0, n * ACTIONS, dtype=np.float32)
        payloads = np.arange(n * ACTIONS, dtype=np.int64) + 1000 * step
        counts = np.full(n, ACTIONS, dtype=np.int32)
        forest.expand(leaves.tree, leaves.node, counts, priors, payloads=payloads)
        values = np.sin(leaves.tree * 0.7 + leaves.node * 0.3 + step)
        forest.backup(leaves.tree, leaves.node, values)


def test_reserved_slab_gives_the_same_bits_and_views_outlive_moves():
    config = SearchConfig(max_nodes=100_000)
    plain = Forest(TREES, config, num_threads=1)
    loop(plain, 30)
    reserved = Forest(TREES, config, num_threads=1)
    # 64 trees x 2000 slots x 40 bytes: past one huge page, so the slab path is taken.
    reserved.reserve(2000)
    loop(reserved, 10)
    # One slab: the 64 blocks (2000 slots each, the payload column first) follow each other
    # with no allocator header in between, each on a cache line.
    starts = [reserved.view(b, "payload").__array_interface__["data"][0] for b in range(TREES)]
    assert set(np.diff(starts).tolist()) == {2000 * BYTES_PER_NODE[0]}
    assert all(start % 64 == 0 for start in starts)
    early = {b: reserved.view(b, "visits") for b in (0, 31, 63)}
    early_copy = {b: view.copy() for b, view in early.items()}
    reserved.reserve(4000)  # every tree moves to a second slab; the views keep the first
    loop(reserved, 20, first=10)
    a, b = plain.export_arrays(), reserved.export_arrays()
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_array_equal(a[key], b[key], err_msg=key)
    late = reserved.view(5, "q")
    late_copy = late.copy()
    del reserved
    gc.collect()
    for tree, view in early.items():
        np.testing.assert_array_equal(view, early_copy[tree])  # readable, unchanged
    np.testing.assert_array_equal(late, late_copy)


def test_reserve_grows_trees_past_the_slab_and_threads_agree():
    config = SearchConfig(max_nodes=50_000)
    exports = []
    for threads in (1, 2):
        forest = Forest(TREES, config, num_threads=threads)
        forest.reserve(1500)
        loop(forest, 200)  # 200 x 2 x 5 children: every tree grows out of its slab block
        assert forest.size(0) > 1500
        exports.append(forest.export_arrays())
    for key in exports[0]:
        np.testing.assert_array_equal(exports[0][key], exports[1][key], err_msg=key)
