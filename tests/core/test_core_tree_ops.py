"""Re-rooting keeps exactly the subtree; save/load and pickle round-trip bit for bit and search on
identically; results do not depend on the thread count (docs 5.8, 5.9, 6)."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from core_helpers import assert_arrays_equal, assert_same_forest, check_invariants

from qengine import Forest, SearchConfig
from qengine.forest import DERIVED_FIELDS, NODE_FIELDS

ENGINES = ["native", "reference"]
FIELDS = NODE_FIELDS + DERIVED_FIELDS


def search(forest: Forest, seed: int, iterations: int, *, widen: bool = True) -> None:
    """A deterministic ask / expand / backup loop (inputs depend only on the forest's answers)."""
    rng = np.random.default_rng(seed)
    for i in range(iterations):
        leaves = forest.ask(3)
        n = len(leaves)
        counts = rng.integers(1, 4, n)
        counts[(rng.random(n) < 0.1) & (leaves.depth > 0)] = 0  # some leaves become terminal
        c = int(counts.sum())
        forest.expand(
            leaves.tree,
            leaves.node,
            counts,
            rng.random(c).astype(np.float32),
            rng.uniform(-0.1, 0.1, c),
            rng.random(c) < 0.1,
            rng.integers(0, 1 << 40, c),
        )
        forest.backup(leaves.tree, leaves.node, rng.random(n))
        if widen and i % 7 == 6:  # progressive widening of the root (relocates its block)
            trees = np.arange(forest.num_trees)
            forest.expand(
                trees, np.zeros_like(trees), np.ones_like(trees), np.full(len(trees), 0.05)
            )


def subtree_arrays(arrays: dict[str, np.ndarray], root: int) -> dict[str, np.ndarray]:
    """The subtree of ``root`` renumbered breadth-first (computed here, independently)."""
    order, new_id = [root], {root: 0}
    i = 0
    while i < len(order):
        old = order[i]
        i += 1
        first, count = int(arrays["first_child"][old]), int(arrays["num_children"][old])
        for child in range(first, first + count):
            new_id[child] = len(order)
            order.append(child)
    idx = np.array(order)
    out = {name: arrays[name][idx].copy() for name in FIELDS}
    out["parent"] = np.array([-1] + [new_id[int(p)] for p in arrays["parent"][idx[1:]]], np.int32)
    out["first_child"] = np.array(
        [new_id[int(f)] if f >= 0 else -1 for f in arrays["first_child"][idx]], np.int32
    )
    out["depth"] = (out["depth"] - out["depth"][0]).astype(np.uint16)
    out["action"][0], out["reward"][0], out["prior"][0] = 0, 0.0, 1.0
    return out


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("rule", ["puct", "uct"])
def test_reroot_equals_the_original_subtree(engine, rule):
    forest = Forest(2, SearchConfig(rule=rule, two_player=True), engine=engine)
    search(forest, 1, 40)
    for t in range(2):
        before = forest.nodes(t)
        assert np.any(before["parent"] == -2), "the search should have left dead slots"
        root_children = range(
            before["first_child"][0], before["first_child"][0] + before["num_children"][0]
        )
        node = max(root_children, key=lambda c: before["visits"][c])  # the most visited child
        lo, hi = forest.minmax(t)
        epoch = forest._engine.root_epoch(t)
        forest.reroot(t, int(node))
        assert_arrays_equal(subtree_arrays(before, int(node)), forest.nodes(t), f"reroot {t}")
        assert forest.minmax(t) == (lo, hi) and forest._engine.root_epoch(t) == epoch + 1
        check_invariants(forest, set(), relocated=set(range(t + 1, 2)))
    search(forest, 2, 10)  # the re-rooted forest searches on
    check_invariants(forest, set(), relocated={0, 1})


@pytest.mark.parametrize("engine", ENGINES)
def test_compact_and_prune_keep_the_rest(engine):
    forest = Forest(1, SearchConfig(rule="muzero"), engine=engine)
    search(forest, 3, 30)
    before = forest.nodes(0)
    forest.compact(0)
    assert_arrays_equal(subtree_arrays(before, 0), forest.nodes(0), "compact")
    compacted = forest.nodes(0)
    node = int(compacted["first_child"][0]) + 1
    forest.prune(0, node)
    after = forest.nodes(0)
    assert after["exhausted"][node] and after["num_children"][node] == 0
    assert (
        after["visits"][0] == compacted["visits"][0]
        and after["visits"][node] == compacted["visits"][node]
    )
    check_invariants(forest, set())


@pytest.mark.parametrize("engine", ENGINES)
def test_save_load_and_pickle_round_trip(engine, tmp_path):
    config = SearchConfig(rule="lats", gumbel=True, qnorm="tree_minmax", seed=99)
    forest = Forest(3, config, root_payloads=[5, 6, 7], engine=engine)
    search(forest, 4, 25)
    leaves = forest.ask(2)  # save with leaves in flight: they stay in flight after loading
    path = tmp_path / "forest.safetensors"
    forest.save(path)
    loaded = Forest.load(path, engine=engine)
    unpickled = pickle.loads(pickle.dumps(forest))
    other_engine = Forest.load(path, engine="reference" if engine == "native" else "native")
    for copy in (loaded, unpickled, other_engine):
        assert copy.config == config
        assert_arrays_equal(forest.export_arrays(), copy.export_arrays(), "round trip")
    for f in (forest, loaded, unpickled, other_engine):
        f.backup(leaves.tree, leaves.node, np.full(len(leaves), 0.5))
        search(f, 5, 15)
    for copy in (loaded, unpickled):
        assert_arrays_equal(forest.export_arrays(), copy.export_arrays(), "search after load")
    native, ref = (forest, other_engine) if engine == "native" else (other_engine, forest)
    assert_same_forest(native, ref, "search after load on the other engine")


@pytest.mark.parametrize("rule", ["puct", "uct", "lats", "muzero"])
def test_same_seed_same_trees_for_1_and_2_threads(rule):
    config = SearchConfig(
        rule=rule, gumbel=True, gumbel_simulations=32, seed=123, qnorm="parent_minmax"
    )
    forests = [Forest(64, config, num_threads=n, engine="native") for n in (1, 2)]
    assert [f.num_threads for f in forests] == [1, 2]
    for f in forests:
        f.run_synthetic(48, 6, leaves_per_ask=4, seed=9)
        search(f, 6, 12)
        f.run_synthetic(16, 3, seed=10)
    assert_arrays_equal(forests[0].export_arrays(), forests[1].export_arrays(), "threads")
    for mode in ("paper", "max_min", "max_all"):
        assert_arrays_equal(
            forests[0].pairs(mode).as_dict(), forests[1].pairs(mode).as_dict(), "pairs"
        )
    # and the reference agrees on a slice of the work (the first 4 trees' results depend only on
    # their tree ids, config and seed)
    ref = Forest(4, config, engine="reference")
    ref.run_synthetic(48, 6, leaves_per_ask=4, seed=9)
    few = Forest(4, config, num_threads=2, engine="native")
    few.run_synthetic(48, 6, leaves_per_ask=4, seed=9)
    assert_same_forest(few, ref, "synthetic")
