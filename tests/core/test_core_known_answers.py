"""Small hand-computed cases of docs/search-semantics.md, run on both engines (so a differential
failure can be settled by the doc), plus the reference's RNG and halving table."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qengine import Forest, SearchConfig
from qengine.reference import rng, select, synthetic

ENGINES = ["native", "reference"]


def grow_root(forest: Forest, priors, *, terminal=False, rewards=0.0, value=0.0) -> None:
    """Ask the root, give it children, back up ``value``."""
    leaves = forest.ask(1)
    assert leaves.node.tolist() == [0] * forest.num_trees
    counts = [len(priors)] * forest.num_trees
    forest.expand(
        leaves.tree, leaves.node, counts, list(priors) * forest.num_trees, rewards, terminal
    )
    forest.backup(leaves.tree, leaves.node, [value] * forest.num_trees)


def visit(forest: Forest, expected_node: int, value: float) -> None:
    leaves = forest.ask(1)
    assert leaves.node.tolist() == [expected_node]
    forest.expand(leaves.tree, leaves.node, [1], [1.0])
    forest.backup(leaves.tree, leaves.node, [value])


def test_splitmix64_and_uniform():
    assert rng.splitmix64(0) == 0xE220A8397B1DCDAF  # the canonical first output for seed 0
    u = [rng.uniform(1, 2, 3, a) for a in range(1000)]
    assert all(0.0 < x < 1.0 for x in u) and 0.45 < np.mean(u) < 0.55


def test_considered_visits_table_matches_mctx():
    expected = [0] * 16 + [1] * 8 + [2] * 8 + [3] * 4 + [4] * 4 + [5] * 4 + [6] * 4
    expected += [v for v in range(7, 15) for _ in range(2)]
    assert select.considered_visits(16, 64) == tuple(expected)
    assert select.considered_visits(1, 5) == (0, 1, 2, 3, 4)
    assert select.considered_visits(4, 4) == (0, 0, 0, 0)


def test_synthetic_evaluator_ranges():
    key = synthetic.root_key(3, 7)
    p = synthetic.priors(key, 8)
    assert abs(sum(p) - 1.0) < 1e-6 and all(x > 0 for x in p)
    assert -1.0 <= synthetic.value(key, 8) < 1.0
    assert synthetic.mix32(0) == 0 and synthetic.mix32(1) != 1


@pytest.mark.parametrize("engine", ENGINES)
def test_first_ask_collides_on_the_unexpanded_root(engine):
    forest = Forest(2, engine=engine)
    leaves = forest.ask(3)
    assert leaves.tree.tolist() == [0, 1] and leaves.node.tolist() == [0, 0]
    assert leaves.collisions.tolist() == [2, 2] and leaves.terminal_hits.tolist() == [0, 0]
    assert leaves.path_offsets.tolist() == [0, 1, 2]


@pytest.mark.parametrize("engine", ENGINES)
def test_mean_backup_two_player_discount(engine):
    config = SearchConfig(two_player=True, discount=0.5)
    forest = Forest(1, config, engine=engine)
    grow_root(forest, [0.5, 0.5], rewards=[0.25, 0.0], value=1.0)
    visit(forest, 1, 0.5)  # root G = 0.25 + 0.5 * -1 * 0.5 = 0.0
    a = forest.nodes(0)
    assert a["q"][1] == np.float32(0.5) and a["visits"][1] == 1
    assert a["q"][0] == np.float32(0.5) and a["visits"][0] == 2  # mean of 1.0 and 0.0
    assert forest.qvalues(0, 0)[0] == 0.25 + 0.5 * -1.0 * 0.5
    assert forest.minmax(0) == (0.0, 0.0)


@pytest.mark.parametrize("engine", ENGINES)
def test_max_backup(engine):
    forest = Forest(1, SearchConfig(backup="max", rule="uct"), engine=engine)
    grow_root(forest, [1.0], value=0.25)
    visit(forest, 1, 0.75)
    visit(forest, 2, 0.5)  # child 1 was expanded with one child (node 2), node 2 with node 3
    assert forest.view(0, "q").tolist() == [0.75, 0.75, 0.5, 0.0]


@pytest.mark.parametrize("engine", ENGINES)
def test_puct_scores(engine):
    forest = Forest(1, SearchConfig(rule="puct", c=1.25), engine=engine)
    grow_root(forest, [0.2, 0.8], value=0.5)
    visit(forest, 1, 1.0)  # unvisited children score +inf: the lowest id first
    visit(forest, 2, 0.0)
    # N=3: child 1: 1.0 + 1.25*0.2*sqrt(3)/2 = 1.2165; child 2: 0 + 1.25*0.8*sqrt(3)/2 = 0.866
    assert forest.ask(1).node.tolist() == [3]  # the child of node 1


@pytest.mark.parametrize("engine", ENGINES)
def test_lats_tries_unvisited_children_by_prior(engine):
    forest = Forest(1, SearchConfig(rule="lats"), engine=engine)
    grow_root(forest, [0.2, 0.5, 0.5], value=0.5)
    order = []
    for _ in range(3):
        leaves = forest.ask(1)
        order.append(int(leaves.node[0]))
        forest.expand(leaves.tree, leaves.node, [0], [])  # leaf becomes terminal
        forest.backup(leaves.tree, leaves.node, [0.5])
    assert order == [2, 3, 1]


@pytest.mark.parametrize("engine", ENGINES)
def test_uct_fpu_constant_and_bounds(engine):
    # uct, unvisited child scores its normalised FPU: bounds (-1, 1), fpu_value 0.9 -> 0.95;
    # visited child 1 (q=1) scores (1 + 1)/2 + 1 * sqrt(ln 2 / 1) = 1.83: child 1 again.
    config = SearchConfig(
        rule="uct",
        c=1.0,
        fpu="constant",
        fpu_value=0.9,
        qnorm="bounds",
        value_min=-1.0,
        value_max=1.0,
    )
    forest = Forest(1, config, engine=engine)
    grow_root(forest, [0.5, 0.5], value=0.0)
    visit(forest, 1, 1.0)  # first descent: FPU 0.95 for both children, the lowest id
    assert forest.ask(1).node.tolist() == [3]
    # with c = 0 the unvisited child (0.95) beats a visited one at (-0.9 + 1) / 2 = 0.05
    forest2 = Forest(1, config.replace(c=0.0), engine=engine)
    grow_root(forest2, [0.5, 0.5], value=0.0)
    visit(forest2, 1, -0.9)
    assert forest2.ask(1).node.tolist() == [2]


@pytest.mark.parametrize("engine", ENGINES)
def test_virtual_loss_spreads_leaves(engine):
    forest = Forest(1, SearchConfig(rule="puct"), engine=engine)
    grow_root(forest, [0.5, 0.3, 0.2], value=0.5)
    leaves = forest.ask(3)
    assert sorted(leaves.node.tolist()) == [1, 2, 3]
    assert forest.view(0, "in_flight").tolist() == [3, 1, 1, 1]
    assert leaves.path(2).tolist() == [0, 3] and leaves.actions(2).tolist() == [2]
    forest.cancel(leaves.tree, leaves.node)
    assert not forest.view(0, "in_flight").any()


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mark", [True, False])
def test_terminal_hits_and_exhaustion(engine, mark):
    forest = Forest(1, SearchConfig(mark_exhausted=mark), engine=engine)
    grow_root(forest, [0.5, 0.5], terminal=[True, True], rewards=[1.0, 0.0], value=0.0)
    leaves = forest.ask(4)
    assert len(leaves) == 0
    # exhausted root after two hits ends the tree's descents; without marking all 4 descend
    assert leaves.terminal_hits.tolist() == [2 if mark else 4]
    exhausted = forest.view(0, "exhausted").tolist()
    if mark:  # both children visited -> exhausted -> the root too, ending the search early
        assert exhausted == [True, True, True]
        assert forest.view(0, "visits").tolist() == [3, 1, 1]
    else:
        assert exhausted == [False, False, False]
        # puct: child 1 (Qraw 1) then the unvisited child 2 (+inf), then child 1 twice:
        # N=3: 1 + 1.25*0.5*sqrt(3)/2 = 1.54 > 0.54; N=4: 1 + 1.25*0.5*2/3 = 1.42 > 0.625
        assert forest.view(0, "visits").tolist() == [5, 3, 1]
    assert forest.view(0, "q")[1] == 0.0 and forest.qvalues(0, 0)[0] == 1.0


@pytest.mark.parametrize("engine", ENGINES)
def test_widening_relocates_the_children_block(engine):
    forest = Forest(1, SearchConfig(rule="uct"), engine=engine)
    grow_root(forest, [0.5, 0.5], value=0.0)
    visit(forest, 1, 1.0)  # node 1 gets child 3
    forest.expand([0], [0], [1], [0.25], payloads=[77])  # root block 1..2 is not at the end
    a = forest.nodes(0)
    assert a["parent"].tolist() == [-1, -2, -2, 4, 0, 0, 0]
    assert a["first_child"].tolist() == [4, -1, -1, -1, 3, -1, -1]
    assert a["num_children"].tolist() == [3, 0, 0, 0, 1, 0, 0]
    assert a["action"].tolist() == [0, 0, 0, 0, 0, 1, 2]
    assert a["visits"].tolist() == [2, 0, 0, 0, 1, 0, 0]
    assert a["payload"][6] == 77 and a["prior"][6] == np.float32(0.25)
    forest.expand([0], [0], [1], [0.5])  # the block now ends the arena: appended in place
    assert forest.size(0) == 8 and forest.view(0, "num_children")[0] == 4
    forest.compact(0)
    assert forest.view(0, "parent").tolist() == [-1, 0, 0, 0, 0, 1]


@pytest.mark.parametrize("engine", ENGINES)
def test_reroot_renumbers_breadth_first(engine):
    forest = Forest(1, SearchConfig(rule="uct"), engine=engine)
    grow_root(forest, [0.5, 0.5], value=0.0)
    visit(forest, 1, 1.0)  # 1 -> 3
    visit(forest, 2, 0.0)  # 2 -> 4
    leaves = forest.ask(1)
    assert leaves.node.tolist() == [3]
    forest.expand([0], [3], [2], [0.5, 0.5], payloads=[30, 31])  # 3 -> 5, 6
    forest.backup([0], [3], [1.0])
    forest.reroot(0, 1)
    a = forest.nodes(0)
    assert a["parent"].tolist() == [-1, 0, 1, 1]
    assert a["depth"].tolist() == [0, 1, 2, 2]
    assert a["payload"].tolist()[2:] == [30, 31]
    assert a["prior"][0] == 1.0 and a["reward"][0] == 0.0 and a["visits"][0] == 2
    assert forest._engine.root_epoch(0) == 1


@pytest.mark.parametrize("engine", ENGINES)
def test_prune_marks_exhausted(engine):
    forest = Forest(1, SearchConfig(rule="uct"), engine=engine)
    grow_root(forest, [0.5, 0.5], value=0.0)
    visit(forest, 1, 1.0)
    forest.prune(0, 1)
    a = forest.nodes(0)
    assert a["parent"].tolist() == [-1, 0, 0] and a["exhausted"].tolist() == [False, True, False]
    assert a["visits"].tolist() == [2, 1, 0]
    assert forest.ask(1).node.tolist() == [2]


@pytest.mark.parametrize("engine", ENGINES)
def test_gumbel_first_round_visits_each_considered_child(engine):
    config = SearchConfig(gumbel=True, gumbel_simulations=4, gumbel_max_considered=4)
    forest = Forest(3, config, engine=engine)
    grow_root(forest, [0.4, 0.3, 0.2, 0.1], value=0.0)
    seen = [set() for _ in range(3)]
    for _ in range(4):
        leaves = forest.ask(1)
        assert leaves.tree.tolist() == [0, 1, 2]
        for t, node in zip(leaves.tree.tolist(), leaves.node.tolist(), strict=True):
            seen[t].add(node)
        forest.expand(leaves.tree, leaves.node, [1] * 3, [1.0] * 3)
        forest.backup(leaves.tree, leaves.node, [0.5] * 3)
    assert seen == [{1, 2, 3, 4}] * 3


@pytest.mark.parametrize("engine", ENGINES)
def test_pairs_and_policy(engine):
    forest = Forest(1, SearchConfig(rule="uct", c=0.0), engine=engine)
    grow_root(forest, [0.3, 0.3, 0.4], value=0.5)
    for node, value in ((1, 0.9), (2, 0.1), (3, 0.5)):
        visit(forest, node, value)
    visit(forest, 4, 0.8)  # c = 0: greedy, child 1 (q 0.9) again; its child is node 4
    p = forest.pairs("max_min")
    assert p.parent.tolist() == [0] and p.chosen.tolist() == [1] and p.rejected.tolist() == [2]
    assert p.q_chosen[0] == np.float32(np.float32(0.9) + (np.float32(0.8) - np.float32(0.9)) / 2)
    assert forest.pairs("paper").as_dict()["chosen"].tolist() == [1]
    assert len(forest.pairs("max_min", min_visits=2)) == 0
    assert len(forest.pairs("max_min", min_q_gap=0.9)) == 0
    # max_all: the best child (1, q 0.85) against each other child, in id order; the gap filter
    # drops 3 (q 0.5) at 0.4 and keeps 2 (q 0.1)
    every = forest.pairs("max_all")
    assert every.parent.tolist() == [0, 0] and every.chosen.tolist() == [1, 1]
    assert every.rejected.tolist() == [2, 3]
    assert np.allclose(every.q_rejected, [0.1, 0.5])
    assert forest.pairs("max_all", min_q_gap=0.4).rejected.tolist() == [2]
    assert forest.best_action(0) == 0 and forest.best_path(0).tolist() == [0, 1, 4]
    assert forest.root_policy(0, 1.0).tolist() == [0.5, 0.25, 0.25]
    assert forest.root_policy(0, 0.0).tolist() == [1.0, 0.0, 0.0]
    assert math.isclose(forest.root_policy(0, 0.5)[0], 4 / 6)


@pytest.mark.parametrize("engine", ENGINES)
def test_one_expand_call_is_processed_in_order(engine):
    """Docs 5.5: nodes of one tree are processed in the order given. Widening node 1 (in place)
    and then the root (which moves node 1) in one call is valid; the other order refers to a
    node the call itself has moved, and is refused."""
    forest = Forest(1, SearchConfig(rule="uct"), engine=engine)
    grow_root(forest, [1.0], value=0.5)  # root -> 1
    visit(forest, 1, 0.5)  # 1 -> 2
    before = forest.export_arrays()
    with pytest.raises(ValueError, match=r"(?i)moved|dead|earlier"):
        forest.expand([0, 0], [0, 1], [1, 1], [0.5, 0.5])
    assert forest.export_arrays()["parent"].tolist() == before["parent"].tolist()
    forest.expand([0, 0], [1, 0], [1, 1], [0.25, 0.75], payloads=[10, 20])
    a = forest.nodes(0)
    assert a["parent"].tolist() == [-1, -2, 4, 4, 0, 0]
    assert a["first_child"].tolist() == [4, -1, -1, -1, 2, -1]
    assert a["num_children"].tolist() == [2, 0, 0, 0, 2, 0]
    assert a["payload"].tolist()[3:] == [10, 0, 20]


def run_constant(forest: Forest, descents: int, value: float) -> None:
    """``descents`` asks of one leaf; every leaf gets one child and ``value``."""
    for _ in range(descents):
        leaves = forest.ask(1)
        if len(leaves):
            forest.expand(leaves.tree, leaves.node, [1] * len(leaves), [1.0] * len(leaves))
            forest.backup(leaves.tree, leaves.node, [value] * len(leaves))


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize("mark", [True, False])
def test_best_child_prefers_a_solved_terminal_child(engine, mark):
    """Docs 5.6 step 2: the visited terminal child (Qraw = reward 1.0, exact) beats the most
    visited child (Qraw 0.5); with marking it keeps 1 visit while its siblings collect more."""
    forest = Forest(1, SearchConfig(mark_exhausted=mark), engine=engine)
    grow_root(forest, [0.6, 0.2, 0.2], terminal=[False, True, False], rewards=[0.0, 1.0, 0.0])
    run_constant(forest, 12, 0.5)
    visits = forest.view(0, "visits")[1:4].tolist()
    assert visits[1] >= 1 and forest.qvalues(0, 0).tolist() == [0.5, 1.0, 0.5]
    if mark:  # without marking the terminal child is simply the most visited one too
        assert visits[1] == 1 and visits[0] > 1
    assert forest.best_action(0) == 1
    assert forest.best_path(0).tolist() == [0, 2]
    assert forest.root_policy(0, 0.0).tolist() == [0.0, 1.0, 0.0]
    p = forest.pairs("paper")
    assert p.parent.tolist() == [0] and p.chosen.tolist() == [2] and p.rejected.tolist() == [3]
    assert p.q_chosen.tolist() == [1.0] and p.q_rejected.tolist() == [0.5]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(
    ("rewards", "terminal", "best"),
    [
        ([0.0, 0.5, 0.0], [False, True, False], 0),  # equal Qraw: not strictly better, visits win
        ([0.0, -1.0, 0.0], [False, True, False], 0),  # a losing terminal child changes nothing
        ([0.0, 0.75, 0.75], [False, True, True], 1),  # two solved children: the lower id
        ([0.0, 0.75, 0.8], [False, True, True], 2),  # two solved children: the higher Qraw
    ],
)
def test_best_child_solved_rule_ties(engine, rewards, terminal, best):
    forest = Forest(1, SearchConfig(), engine=engine)
    grow_root(forest, [0.6, 0.2, 0.2], terminal=terminal, rewards=rewards)
    run_constant(forest, 10, 0.5)
    assert forest.view(0, "visits")[1] > max(forest.view(0, "visits")[2:4])
    assert forest.best_action(0) == best


@pytest.mark.parametrize("engine", ENGINES)
def test_best_child_ignores_unvisited_terminal_children(engine):
    """Only visited terminal children count (an unvisited one has no value yet)."""
    forest = Forest(1, SearchConfig(rule="lats"), engine=engine)
    grow_root(forest, [0.6, 0.4], terminal=[False, True], rewards=[0.0, 1.0])
    run_constant(forest, 1, 0.5)  # lats: the higher prior first; the terminal child unvisited
    assert forest.view(0, "visits").tolist()[1:3] == [1, 0]
    assert forest.best_action(0) == 0
    run_constant(forest, 1, 0.5)  # now the terminal child is hit
    assert forest.best_action(0) == 1 and forest.best_path(0).tolist() == [0, 2]


@pytest.mark.parametrize("engine", ENGINES)
def test_engine_expand_none_is_all_zero(engine):
    """The engine's None for rewards / terminal / payloads (what Forest.expand passes for its
    defaults) gives the children the same fields as explicit zero arrays."""
    trees, nodes = np.array([0, 1], np.int32), np.array([0, 0], np.int32)
    counts, priors = np.array([2, 3], np.int32), np.full(5, 0.2, np.float32)
    fields = []
    for explicit in (True, False):
        forest = Forest(2, engine=engine)
        forest.ask(1)
        zeros = (np.zeros(5, np.float32), np.zeros(5, np.uint8), np.zeros(5, np.int64))
        extra = zeros if explicit else (None, None, None)
        forest._engine.expand(trees, nodes, counts, priors, *extra)
        fields.append(forest.export_arrays())
    assert sorted(fields[0]) == sorted(fields[1])
    for key, values in fields[0].items():
        np.testing.assert_array_equal(values, fields[1][key], err_msg=key)
    assert fields[1]["payload"][fields[1]["payload"] != 0].size == 0
