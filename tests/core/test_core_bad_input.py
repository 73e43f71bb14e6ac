"""Bad input at every entry point: the documented exception class with a useful message, no
crash, and the forest unchanged (docs section 9: TypeError for dtypes, ValueError for shapes,
values and state, IndexError for ids, CapacityError for the node cap)."""

from __future__ import annotations

import math
import re

import numpy as np
import pytest
from core_helpers import assert_arrays_equal, core_settings, on_both
from hypothesis import given
from hypothesis import strategies as st

from qengine import CapacityError, Forest, SearchConfig

ENGINES = ["native", "reference"]
i32, i64, f32, f64, u8 = np.int32, np.int64, np.float32, np.float64, np.uint8


def busy_forest(engine: str, **config) -> Forest:
    """2 trees: root 0 with children 1..3; node 1 (asked, in flight, expanded) with children
    4 (terminal) and 5."""
    forest = Forest(2, SearchConfig(**config), engine=engine)
    leaves = forest.ask(1)
    forest.expand(leaves.tree, leaves.node, [3, 3], [0.5, 0.3, 0.2] * 2, payloads=np.arange(6))
    forest.backup(leaves.tree, leaves.node, [0.5, 0.5])
    leaves = forest.ask(1)
    assert leaves.node.tolist() == [1, 1]
    forest.expand(leaves.tree, leaves.node, [2, 2], [0.5] * 4, terminal=[True, False] * 2)
    return forest


def expand_args(**overrides):
    """Engine-level expand arguments (node 2 of tree 0 gets 2 children) in the exact dtypes,
    with some replaced."""
    c = 2
    args = dict(
        trees=np.array([0], i32),
        nodes=np.array([2], i32),
        counts=np.array([c], i32),
        priors=np.full(c, 0.5, f32),
        rewards=np.zeros(c, f32),
        terminal=np.zeros(c, u8),
        payloads=np.zeros(c, i64),
    )
    args.update(overrides)
    return args


# (name, call, exception, message pattern)
CASES = [
    # ---- ask
    ("ask K=0", lambda f: f.ask(0), ValueError, r"max_leaves|>= ?1"),
    ("engine ask K=0", lambda f: f._engine.ask(0, True), ValueError, r"max_leaves|>= ?1|leaves"),
    # ---- expand: dtypes (engine called directly), shapes, values, state
    (
        "expand trees float32",
        lambda f: f._engine.expand(**expand_args(trees=np.zeros(1, f32))),
        TypeError,
        r"trees|int32|dtype",
    ),
    (
        "expand nodes int64",
        lambda f: f._engine.expand(**expand_args(nodes=np.array([2], i64))),
        TypeError,
        r"nodes|int32|dtype",
    ),
    (
        "expand counts float",
        lambda f: f._engine.expand(**expand_args(counts=np.array([2.0]))),
        TypeError,
        r"counts|int32|dtype",
    ),
    (
        "expand priors float64",
        lambda f: f._engine.expand(**expand_args(priors=np.ones(2, f64))),
        TypeError,
        r"priors|float32|dtype",
    ),
    (
        "expand rewards float64",
        lambda f: f._engine.expand(**expand_args(rewards=np.ones(2, f64))),
        TypeError,
        r"rewards|float32|dtype",
    ),
    (
        "expand terminal bool",
        lambda f: f._engine.expand(**expand_args(terminal=np.ones(2, bool))),
        TypeError,
        r"terminal|uint8|dtype",
    ),
    (
        "expand payloads int32",
        lambda f: f._engine.expand(**expand_args(payloads=np.ones(2, i32))),
        TypeError,
        r"payloads|int64|dtype",
    ),
    (
        "expand trees 2-D",
        lambda f: f._engine.expand(**expand_args(trees=np.zeros((1, 1), i32))),
        ValueError,
        r"trees|1-D|dim|shape",
    ),
    (
        "expand priors too short",
        lambda f: f._engine.expand(**expand_args(priors=np.ones(1, f32))),
        ValueError,
        r"priors|counts|length|entries|size",
    ),
    (
        "expand lengths differ",
        lambda f: f.expand([0, 1], [2], [1], [0.5]),
        ValueError,
        r"length|same|shape",
    ),
    (
        "expand tree out of range",
        lambda f: f.expand([2], [2], [1], [0.5]),
        IndexError,
        r"tree|range",
    ),
    ("expand negative tree", lambda f: f.expand([-1], [2], [1], [0.5]), IndexError, r"tree|range"),
    (
        "expand node out of range",
        lambda f: f.expand([0], [6], [1], [0.5]),
        IndexError,
        r"node|range",
    ),
    ("expand negative node", lambda f: f.expand([0], [-1], [1], [0.5]), IndexError, r"node|range"),
    (
        "expand NaN prior",
        lambda f: f.expand([0], [2], [2], [0.5, np.nan]),
        ValueError,
        r"prior|finite|nan",
    ),
    (
        "expand inf prior",
        lambda f: f.expand([0], [2], [1], [np.inf]),
        ValueError,
        r"prior|finite|inf",
    ),
    (
        "expand negative prior",
        lambda f: f.expand([0], [2], [1], [-0.5]),
        ValueError,
        r"prior|negative|>= ?0",
    ),
    (
        "expand NaN reward",
        lambda f: f.expand([0], [2], [1], [0.5], [np.nan]),
        ValueError,
        r"reward|finite|nan",
    ),
    (
        "expand negative count",
        lambda f: f._engine.expand(
            **expand_args(
                counts=np.array([-1], i32),
                priors=np.ones(0, f32),
                rewards=np.ones(0, f32),
                terminal=np.ones(0, u8),
                payloads=np.ones(0, i64),
            )
        ),
        ValueError,
        r"count|negative|>= ?0",
    ),
    ("expand terminal node", lambda f: f.expand([0], [4], [1], [0.5]), ValueError, r"terminal"),
    (
        "expand same node twice",
        lambda f: f.expand([0, 0], [2, 2], [1, 1], [0.5, 0.5]),
        ValueError,
        r"twice|duplicate|once",
    ),
    (
        "widen while a child is in flight (block must move)",
        lambda f: f.expand([1], [0], [1], [0.5]),
        ValueError,
        r"flight",
    ),
    (
        "expand past max_nodes",
        lambda f: f.expand([1], [2], [40], np.full(40, 0.1)),
        CapacityError,
        r"max_nodes|capacity|cap|nodes",
    ),
    # ---- backup / cancel
    (
        "backup ids float32",
        lambda f: f._engine.backup(np.zeros(1, f32), np.ones(1, i32), np.ones(1, f64)),
        TypeError,
        r"trees|int32|dtype",
    ),
    (
        "backup nodes int64",
        lambda f: f._engine.backup(np.zeros(1, i32), np.ones(1, i64), np.ones(1, f64)),
        TypeError,
        r"nodes|int32|dtype",
    ),
    (
        "backup values float32",
        lambda f: f._engine.backup(np.zeros(1, i32), np.ones(1, i32), np.ones(1, f32)),
        TypeError,
        r"values|float64|dtype",
    ),
    (
        "backup values length",
        lambda f: f._engine.backup(np.zeros(1, i32), np.ones(1, i32), np.ones(2, f64)),
        ValueError,
        r"values|length|entries|shape|size",
    ),
    ("backup NaN value", lambda f: f.backup([0], [1], [np.nan]), ValueError, r"finite|nan|value"),
    ("backup inf value", lambda f: f.backup([0], [1], [np.inf]), ValueError, r"finite|inf|value"),
    (
        "backup value overflowing float32",
        lambda f: f.backup([0], [1], [1e39]),
        ValueError,
        r"finite|float32|value",
    ),
    (
        "backup never-asked leaf",
        lambda f: f.backup([0], [2], [0.5]),
        ValueError,
        r"flight|asked|leaf",
    ),
    ("backup an inner node", lambda f: f.backup([0], [0], [0.5]), ValueError, r"flight|asked|leaf"),
    (
        "backup duplicate leaves",
        lambda f: f.backup([0, 0], [1, 1], [0.5, 0.5]),
        ValueError,
        r"twice|duplicate|once",
    ),
    (
        "backup valid + never asked",
        lambda f: f.backup([0, 1], [1, 3], [0.5, 0.5]),
        ValueError,
        r"flight|asked|leaf",
    ),
    ("backup tree out of range", lambda f: f.backup([5], [1], [0.5]), IndexError, r"tree|range"),
    ("backup node out of range", lambda f: f.backup([0], [99], [0.5]), IndexError, r"node|range"),
    ("cancel never-asked leaf", lambda f: f.cancel([0], [3]), ValueError, r"flight|asked|leaf"),
    (
        "cancel ids float32",
        lambda f: f._engine.cancel(np.zeros(1, f32), np.ones(1, i32)),
        TypeError,
        r"trees|int32|dtype",
    ),
    ("cancel node out of range", lambda f: f.cancel([0], [-3]), IndexError, r"node|range"),
    # ---- queries
    ("view unknown field", lambda f: f._engine.view(0, "status_word"), ValueError, r"field"),
    ("view tree out of range", lambda f: f.view(2, "q"), IndexError, r"tree|range"),
    ("derived unknown field", lambda f: f._engine.derived(0, "q"), ValueError, r"field"),
    ("qvalues node out of range", lambda f: f.qvalues(0, 6), IndexError, r"node|range"),
    (
        "root_policy negative temperature",
        lambda f: f._engine.root_policy(0, -1.0),
        ValueError,
        r"temperature",
    ),
    (
        "root_policy NaN temperature",
        lambda f: f._engine.root_policy(0, float("nan")),
        ValueError,
        r"temperature",
    ),
    ("best_path tree out of range", lambda f: f.best_path(-1), IndexError, r"tree|range"),
    ("pairs unknown mode", lambda f: f._engine.pairs("best", 1, 0.0, -1), ValueError, r"mode"),
    (
        "pairs negative min_visits",
        lambda f: f._engine.pairs("paper", -1, 0.0, -1),
        ValueError,
        r"min_visits",
    ),
    (
        "pairs NaN gap",
        lambda f: f._engine.pairs("paper", 1, float("nan"), -1),
        ValueError,
        r"min_q_gap|gap|finite",
    ),
    (
        "pairs max_depth -2",
        lambda f: f._engine.pairs("paper", 1, 0.0, -2),
        ValueError,
        r"max_depth|depth",
    ),
    # ---- tree operations
    ("reroot with a leaf in flight", lambda f: f.reroot(0, 1), ValueError, r"flight"),
    ("prune with a leaf in flight", lambda f: f.prune(0, 2), ValueError, r"flight"),
    ("compact with a leaf in flight", lambda f: f.compact(0), ValueError, r"flight"),
    ("reset with a leaf in flight", lambda f: f.reset(0, 1), ValueError, r"flight"),
    ("prune the root", lambda f: f.prune(1, 0), ValueError, r"root"),
    ("reroot node out of range", lambda f: f.reroot(0, 6), IndexError, r"node|range"),
    ("reroot tree out of range", lambda f: f.reroot(3, 0), IndexError, r"tree|range"),
    # ---- synthetic evaluator
    ("run_synthetic zero actions", lambda f: f.run_synthetic(4, 0), ValueError, r"action"),
    (
        "run_synthetic zero leaves per ask",
        lambda f: f.run_synthetic(4, 2, leaves_per_ask=0),
        ValueError,
        r"leaves",
    ),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("name", "call", "error", "pattern"), CASES, ids=[c[0] for c in CASES])
def test_rejected_and_unchanged(engine, name, call, error, pattern):
    forest = busy_forest(engine, max_nodes=40)
    before = forest.export_arrays()
    with pytest.raises(error) as info:
        call(forest)
    message = str(info.value)
    assert len(message) >= 10, f"{name}: message too short to help: {message!r}"
    assert re.search(pattern, message, re.IGNORECASE), f"{name}: unhelpful message {message!r}"
    assert_arrays_equal(before, forest.export_arrays(), f"{name} changed the forest")
    # still usable: the in-flight leaves can be told, and the search goes on
    forest.backup([0, 1], [1, 1], [0.25, 0.75])
    assert len(forest.ask(2)) > 0


@pytest.mark.parametrize("engine", ENGINES)
def test_leaf_told_twice(engine):
    forest = busy_forest(engine)
    forest.backup([0], [1], [0.5])
    before = forest.export_arrays()
    with pytest.raises(ValueError, match=r"(?i)flight|asked|leaf"):
        forest.backup([0], [1], [0.5])
    with pytest.raises(ValueError, match=r"(?i)flight|asked|leaf"):
        forest.cancel([0], [1])
    assert_arrays_equal(before, forest.export_arrays(), "told twice")


@pytest.mark.parametrize("engine", ENGINES)
def test_expand_dead_slot(engine):
    forest = busy_forest(engine)
    forest.backup([0, 1], [1, 1], [0.5, 0.5])
    forest.expand([0], [0], [1], [0.5])  # root block 1..3 moves to 6..8; 1..3 are dead
    assert forest.view(0, "parent")[1] == -2
    before = forest.export_arrays()
    with pytest.raises(ValueError, match=r"(?i)dead|alive|moved"):
        forest.expand([0], [2], [1], [0.5])
    assert_arrays_equal(before, forest.export_arrays(), "expand dead slot")


@pytest.mark.parametrize("engine", ENGINES)
def test_capacity_all_or_nothing_across_trees(engine):
    """Tree 0 fits, tree 1 does not: nothing is applied anywhere."""
    forest = busy_forest(engine, max_nodes=10)
    before = forest.export_arrays()
    with pytest.raises(CapacityError):
        forest.expand([0, 1], [2, 2], [1, 5], np.full(6, 0.1))
    assert_arrays_equal(before, forest.export_arrays(), "capacity")
    with pytest.raises(ValueError, match=r"(?i)flight"):  # leaves of the caller are in flight
        forest.run_synthetic(2, 2)
    forest.backup([0, 1], [1, 1], [0.5, 0.5])
    before = forest.export_arrays()
    with pytest.raises(CapacityError):  # checked upfront for the worst case: (S + K - 1) * A
        forest.run_synthetic(50, 4)
    assert_arrays_equal(before, forest.export_arrays(), "run_synthetic capacity")
    assert issubclass(CapacityError, RuntimeError)


@pytest.mark.parametrize("engine", ENGINES)
def test_bad_construction(engine):
    cls = type(Forest(1, engine=engine)._engine)
    config = SearchConfig().to_dict()
    with pytest.raises(ValueError, match=r"(?i)num_trees|tree"):
        cls(0, config, 1, np.zeros(0, i64))
    with pytest.raises(TypeError, match=r"(?i)payload|int64|dtype"):
        cls(2, config, 1, np.zeros(2, i32))
    with pytest.raises(ValueError, match=r"(?i)payload|length|entries|shape|size"):
        cls(2, config, 1, np.zeros(3, i64))
    with pytest.raises(ValueError, match=r"(?i)unknown|field|key|bogus"):
        cls(1, {**config, "bogus": 1}, 1, np.zeros(1, i64))
    with pytest.raises(ValueError, match=r"(?i)rule"):
        cls(1, {**config, "rule": "alphago"}, 1, np.zeros(1, i64))


# ---------------------------------------------------------------------- corrupt saved forests
def corrupt(arrays: dict[str, np.ndarray], key: str, index: int, value) -> dict:
    out = {k: v.copy() for k, v in arrays.items()}
    out[key][index] = value
    return out


def exhaust(arrays: dict[str, np.ndarray], nodes: list[int]) -> dict:
    out = {k: v.copy() for k, v in arrays.items()}
    out["status"][nodes] |= np.uint16(1 << 15)
    return out


CORRUPTIONS = [
    ("parent out of range", lambda a: corrupt(a, "parent", 2, 40)),
    ("root with a parent", lambda a: corrupt(a, "parent", 0, 1)),
    ("child not pointing back", lambda a: corrupt(a, "parent", 2, 3)),
    ("first_child out of range", lambda a: corrupt(a, "first_child", 1, 100)),
    ("num_children past the end", lambda a: corrupt(a, "num_children", 0, 50)),
    ("depth inconsistent", lambda a: corrupt(a, "depth", 4, 7)),
    ("action inconsistent", lambda a: corrupt(a, "action", 3, 0)),
    ("terminal node with children", lambda a: corrupt(a, "status", 1, 1 << 14)),
    ("offsets past the end", lambda a: corrupt(a, "tree_offsets", 2, 100)),
    ("offsets decreasing", lambda a: corrupt(a, "tree_offsets", 1, 0)),
    ("missing array", lambda a: {k: v for k, v in a.items() if k != "q"}),
    ("extra array", lambda a: {**a, "value_sum": a["q"]}),
    ("children exhausted, parent not", lambda a: exhaust(a, [1, 2, 3])),
    ("minmax NaN", lambda a: corrupt(a, "minmax_lo", 0, np.nan)),
    ("short array", lambda a: {**a, "visits": a["visits"][:-1]}),
    ("short minmax", lambda a: {**a, "minmax_lo": a["minmax_lo"][:1]}),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("name", "damage"), CORRUPTIONS, ids=[c[0] for c in CORRUPTIONS])
def test_from_arrays_refuses_corrupt_arrays(engine, name, damage):
    forest = busy_forest(engine)
    forest.backup([0, 1], [1, 1], [0.5, 0.5])
    arrays = forest.export_arrays()
    with pytest.raises(ValueError) as info:
        Forest.from_arrays(damage(arrays), forest.config, engine=engine)
    assert len(str(info.value)) >= 10, f"{name}: {info.value!r}"
    Forest.from_arrays(arrays, forest.config, engine=engine)  # the undamaged arrays load


@pytest.mark.parametrize("engine", ENGINES)
def test_from_arrays_wrong_dtype(engine):
    forest = busy_forest(engine)
    arrays = forest.export_arrays()
    arrays["visits"] = arrays["visits"].astype(np.int64)
    with pytest.raises(TypeError, match=r"(?i)visits|int32|dtype"):
        Forest.from_arrays(arrays, forest.config, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_load_refuses_corrupt_files(engine, tmp_path):
    from safetensors.numpy import save_file

    forest = busy_forest(engine)
    forest.backup([0, 1], [1, 1], [0.5, 0.5])
    good = tmp_path / "good.safetensors"
    forest.save(good)
    # a structurally corrupt forest in a well-formed file
    arrays = corrupt(forest.export_arrays(), "parent", 5, 9)
    metadata = {"format": "qengine.forest/1", "config": forest.config.to_json()}
    bad = tmp_path / "bad.safetensors"
    save_file(arrays, str(bad), metadata=metadata)
    with pytest.raises(ValueError):
        Forest.load(bad, engine=engine)
    # not a forest at all
    other = tmp_path / "other.safetensors"
    save_file({"x": np.zeros(3)}, str(other))
    with pytest.raises(ValueError, match=r"(?i)forest|format"):
        Forest.load(other, engine=engine)
    # a truncated file (docs 5.9: a corrupt file is refused with ValueError)
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-16])
    with pytest.raises(ValueError):
        Forest.load(truncated, engine=engine)
    Forest.load(good, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_child_count_limit(engine):
    forest = busy_forest(engine)
    before = forest.export_arrays()
    with pytest.raises(ValueError, match=r"(?i)children|65535|limit"):
        forest.expand([0], [2], [65536], np.full(65536, 1e-5))
    assert_arrays_equal(before, forest.export_arrays(), "child count limit")


def test_in_flight_overflow_is_all_or_nothing():
    """docs 5.1: ask fails, changing nothing, if an in-flight count would pass 16383 (native only:
    16k descents over 16k children are too slow for the reference)."""
    forest = Forest(2, engine="native")
    leaves = forest.ask(1)
    forest.expand(leaves.tree, leaves.node, [16384, 1], np.full(16385, 1.0 / 16384))
    forest.backup(leaves.tree, leaves.node, [0.5, 0.5])
    before = forest.export_arrays()
    with pytest.raises(CapacityError, match=r"(?i)flight|16383"):
        forest.ask(16384)
    assert_arrays_equal(before, forest.export_arrays(), "in-flight overflow")
    leaves = forest.ask(16383)
    assert len(leaves) == 16383 + 1 and forest.view(0, "in_flight")[0] == 16383


# ---------------------------------------------------------------------- silent coercion (issue 12)
ISSUE_CALLS = [
    ("Forest(1.5)", lambda f, e: Forest(1.5, engine=e)),
    ("Forest('3')", lambda f, e: Forest("3", engine=e)),
    ("Forest(True)", lambda f, e: Forest(True, engine=e)),
    ("ask(1.5)", lambda f, e: f.ask(1.5)),
    ("ask(paths='no')", lambda f, e: f.ask(1, paths="no")),
    ("view(1.5, 'q')", lambda f, e: f.view(1.5, "q")),
    ("view(0, b'q')", lambda f, e: f.view(0, b"q")),
    ("pairs(min_visits=1.5)", lambda f, e: f.pairs(min_visits=1.5)),
    ("pairs(min_q_gap='0')", lambda f, e: f.pairs(min_q_gap="0")),
    ("reset(0, payload=1.5)", lambda f, e: f.reset(0, payload=1.5)),
    ("root_policy(0, '1')", lambda f, e: f.root_policy(0, "1")),
    ("run_synthetic(2.0, 2)", lambda f, e: f.run_synthetic(2.0, 2)),
    ("SearchConfig(max_nodes=1.5)", lambda f, e: SearchConfig(max_nodes=1.5)),
    ("SearchConfig(two_player=1)", lambda f, e: SearchConfig(two_player=1)),
]


@pytest.mark.parametrize("engine", ENGINES)
@pytest.mark.parametrize(("name", "call"), ISSUE_CALLS, ids=[c[0] for c in ISSUE_CALLS])
def test_no_silent_coercion(engine, name, call):
    forest = busy_forest(engine)
    forest.backup([0, 1], [1, 1], [0.5, 0.5])
    before = forest.export_arrays()
    with pytest.raises(TypeError, match="must be"):
        call(forest, engine)
    assert_arrays_equal(before, forest.export_arrays(), name)


NOT_AN_INT = st.one_of(
    st.floats(allow_nan=True),
    st.text(max_size=4),
    st.binary(max_size=4),
    st.none(),
    st.booleans(),
    st.complex_numbers(max_magnitude=10),
    st.lists(st.integers(0, 3), max_size=2),
    st.decimals(allow_nan=False, allow_infinity=False, places=2),
    st.fractions(max_denominator=5),
    st.builds(np.float64, st.floats(-10, 10)),
    st.builds(np.bool_, st.booleans()),
)
INT_ARGS = [
    lambda f, v: f.ask(v),
    lambda f, v: f.size(v),
    lambda f, v: f.view(v, "q"),
    lambda f, v: f.qvalues(0, v),
    lambda f, v: f.best_path(v),
    lambda f, v: f.pairs("max_min", min_visits=v),
    lambda f, v: f.pairs("max_min", max_depth=v),
    lambda f, v: f.reset(v, 0),
    lambda f, v: f.reset(0, v),
    lambda f, v: f.reroot(0, v),
    lambda f, v: f.run_synthetic(v, 2),
    lambda f, v: f.run_synthetic(1, 2, seed=v),
    lambda f, v: f._engine.prune(v, 1),
    lambda f, v: f._engine.ask(v, True),
]


@core_settings(max_examples=60)
@given(value=NOT_AN_INT, which=st.integers(0, len(INT_ARGS) - 1))
def test_int_arguments_take_ints_only(value, which):
    """Any value that is not an int (numpy integers are) is a TypeError on both engines, before
    any range or state check, and changes nothing."""
    native, ref = (busy_forest(e) for e in ENGINES)
    for forest in (native, ref):
        before = forest.export_arrays()
        with pytest.raises(TypeError, match="must be an int"):
            INT_ARGS[which](forest, value)
        assert_arrays_equal(before, forest.export_arrays(), "int argument")


@core_settings(max_examples=40)
@given(value=st.integers(-(2**70), 2**70) | st.sampled_from([2**31, 2**63, 2**64, -(2**63) - 1]))
def test_ints_outside_int64_are_range_errors_on_both_engines(value):
    """Big ints are never truncated: the engines raise the range error the value deserves (or
    accept it identically)."""
    native, ref = (busy_forest(e) for e in ENGINES)
    calls = [
        lambda f: f.ask(value),
        lambda f: f.size(value),
        lambda f: f.qvalues(0, value),
        lambda f: f.pairs(min_visits=value, max_depth=value),
        lambda f: f.reset(value, value),
        lambda f: f.run_synthetic(value, 2, seed=abs(value)),
        lambda f: f._engine.reset(1, value),
    ]
    for call in calls:
        on_both(native, ref, call, f"{value}")


# entries of a backup batch on busy_forest: (tree, node, value) -> class of its first failed check
BATCH_ENTRIES = [
    ((0, 1, 0.5), None),
    ((1, 1, -0.5), None),
    ((0, 2, 0.5), ValueError),  # not in flight
    ((1, 0, 0.5), ValueError),  # an inner node
    ((2, 1, 0.5), IndexError),
    ((0, -7, 0.5), IndexError),
    ((1, 6, 0.5), IndexError),
    ((0, 1, float("nan")), ValueError),
    ((1, 1, 3.5e38), ValueError),  # not finite as float32
    ((0, 1, 3.4028235e38), None),  # float32 max as printed: finite
]


@core_settings(max_examples=60)
@given(picks=st.lists(st.integers(0, len(BATCH_ENTRIES) - 1), min_size=1, max_size=5))
def test_batch_entries_are_validated_in_call_order(picks):
    """docs 5.2: the error is the first failing entry's, so both engines raise the same class
    (the native core once checked every id before any state, the reference entry by entry)."""
    entries = [BATCH_ENTRIES[p] for p in picks]
    expected, seen = None, set()
    for (t, n, _), error in entries:
        if error is None and (t, n) in seen:
            error = ValueError  # told twice in one call
        if error is not None:
            expected = error
            break
        seen.add((t, n))
    trees, nodes, values = (list(col) for col in zip(*(e for e, _ in entries), strict=True))
    native, ref = (busy_forest(e) for e in ENGINES)
    _, error = on_both(native, ref, lambda f: f.backup(trees, nodes, values), str(picks))
    assert error is expected, (picks, error, expected)
    if not any(math.isnan(v) or abs(v) >= 3.5e38 for v in values):  # the same checks, no values
        native, ref = (busy_forest(e) for e in ENGINES)
        _, error = on_both(native, ref, lambda f: f.cancel(trees, nodes), str(picks))
        assert error is expected, (picks, error, expected)


def test_setstate_with_an_unknown_engine_is_a_clear_error():
    forest = busy_forest("native")
    state = forest.__getstate__()
    clone = Forest.__new__(Forest)
    with pytest.raises(ValueError, match="engine='gpu'; choose 'native' or 'reference'"):
        clone.__setstate__({**state, "engine": "gpu"})
    with pytest.raises(ValueError, match="lacks"):
        clone.__setstate__({k: v for k, v in state.items() if k != "engine"})
    with pytest.raises(TypeError, match="dict"):
        clone.__setstate__(None)
    clone.__setstate__(state)
    assert_arrays_equal(state["arrays"], clone.export_arrays(), "setstate")
