"""Limits of the core (docs/search-semantics.md, sections 1, 5.2, 9): thread creation that fails,
sizes checked before any allocation, counters that saturate instead of wrapping, and backed-up
values at the edge of float32 — the same on both engines, and the forest still saves and loads."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from core_helpers import ENGINE_ERRORS, assert_arrays_equal, core_settings, make_pair
from hypothesis import given
from hypothesis import strategies as st

from qengine import CapacityError, Forest, SearchConfig, _layout
from qengine.reference import select

ENGINES = ("native", "reference")
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_OVERFLOW = float(2**128 - 2**103)  # the smallest double that rounds to float32 inf
MAX_VISITS = _layout.MAX_VISITS


def run_limited(code: str, tmp_path, *, address_space: int, timeout: float = 120) -> str:
    """Run ``code`` in a child process whose address space is capped; its stdout."""
    prelude = textwrap.dedent(
        f"""
        import resource
        resource.setrlimit(resource.RLIMIT_AS, ({address_space}, {address_space}))
        """
    )
    env = {**os.environ, "OPENBLAS_NUM_THREADS": "1", "OMP_NUM_THREADS": "1"}  # small imports
    out = subprocess.run(
        [sys.executable, "-c", prelude + textwrap.dedent(code)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,  # a hang fails the test instead of blocking the suite
    )
    assert out.returncode == 0, out.stdout + out.stderr
    return out.stdout


# ---------------------------------------------------------------------- threads (issue item 2)
def test_failed_thread_creation_raises_and_leaves_no_thread_behind(tmp_path):
    """2 GiB of address space holds a few hundred thread stacks: asking for 1024 threads must
    raise (not hang holding the GIL, as the pool's partial cleanup once did: issue 12), and the
    process goes on with its threads freed."""
    out = run_limited(
        """
        import os
        import qengine
        tasks = len(os.listdir("/proc/self/task"))
        for attempt in range(3):
            try:
                qengine.Forest(2, num_threads=1024)
                print("accepted")
            except RuntimeError as error:
                assert "thread" in str(error) and "num_threads" in str(error), error
                print("refused")
        forest = qengine.Forest(2, num_threads=4)  # the stacks of the failed pools were freed
        forest.run_synthetic(8, 2)
        arrays = forest.export_arrays()
        try:
            qengine.Forest.from_arrays(arrays, forest.config, num_threads=1024)
            print("accepted")
        except RuntimeError:
            print("refused")
        del forest
        print("threads left", len(os.listdir("/proc/self/task")) - tasks)
        """,
        tmp_path,
        address_space=2 << 30,
    )
    assert out.split() == ["refused"] * 4 + ["threads", "left", "0"], out


@pytest.mark.parametrize("engine", ENGINES)
def test_thread_count_range(engine):
    for n in (-1, _layout.MAX_THREADS + 1, 2**31, 2**64):
        with pytest.raises(ValueError, match="num_threads"):
            Forest(1, num_threads=n, engine=engine)
    assert Forest(1, num_threads=3, engine=engine).num_threads == 3
    assert 1 <= Forest(1, num_threads=0, engine=engine).num_threads <= _layout.MAX_THREADS


# ---------------------------------------------------------------------- sizes (issue item 3)
@pytest.mark.parametrize("engine", ENGINES)
def test_huge_sizes_are_refused_before_any_allocation(engine, tmp_path):
    """With 1 GiB of address space, a range error must come out as ValueError (an allocation
    first would be a MemoryError or a kill); an in-range size too large for memory is a clean
    MemoryError."""
    out = run_limited(
        f"""
        import qengine
        for n in (2**31, 2**40, 2**63, 2**64):
            try:
                qengine.Forest(n, engine={engine!r})
            except ValueError as error:
                assert "num_trees" in str(error)
                print("ValueError")
        try:
            qengine.Forest(2**31 - 1, engine={engine!r})
        except MemoryError:
            print("MemoryError")
        """,
        tmp_path,
        address_space=1 << 30,
    )
    assert out.split() == ["ValueError"] * 4 + ["MemoryError"], out


# ---------------------------------------------------------------------- counters (issue item 3)
def near_max_forest(
    engine: str, visits: tuple[int, int, int], *, q: tuple = (0.5, 0.5, 0.0), terminal: bool = False
) -> Forest:
    """One tree: root with children 1, 2 (2 terminal if asked), visit counts and q as given
    (loaded with from_arrays, as a very long search would leave them)."""
    cfg = SearchConfig(mark_exhausted=not terminal)
    forest = Forest(1, cfg, engine=engine)
    leaves = forest.ask(1)
    forest.expand(leaves.tree, leaves.node, [2], [0.6, 0.4], terminal=[False, terminal])
    forest.backup(leaves.tree, leaves.node, [0.5])
    arrays = forest.export_arrays()
    arrays["visits"][:] = visits
    arrays["q"][:] = q
    return Forest.from_arrays(arrays, cfg, engine=engine)


@pytest.mark.parametrize("engine", ENGINES)
def test_visit_counts_saturate_and_the_forest_still_saves(engine, tmp_path):
    forest = near_max_forest(engine, (MAX_VISITS - 2, MAX_VISITS - 4, 1000))
    for _ in range(6):
        leaves = forest.ask(1)
        forest.backup(leaves.tree, leaves.node, [0.25])
    visits = forest.view(0, "visits")
    assert visits[0] == MAX_VISITS and visits.min() > 0
    assert np.all(np.isfinite(forest.view(0, "q")))
    path = tmp_path / "saturated.safetensors"
    forest.save(path)
    for other in ENGINES:
        assert_arrays_equal(
            forest.export_arrays(), Forest.load(path, engine=other).export_arrays(), ""
        )


@pytest.mark.parametrize("engine", ENGINES)
def test_terminal_hits_saturate_too(engine):
    forest = near_max_forest(
        engine, (MAX_VISITS - 1, MAX_VISITS - 3, MAX_VISITS - 3), q=(0.5, 0.0, 0.9), terminal=True
    )
    hits = 0
    for _ in range(3):
        leaves = forest.ask(3)  # descents to the terminal child are backed up inside ask
        hits += int(leaves.terminal_hits.sum())
        forest.cancel(leaves.tree, leaves.node)
    assert hits >= 4
    assert forest.view(0, "visits")[[0, 2]].tolist() == [MAX_VISITS, MAX_VISITS]


@core_settings(max_examples=25)
@given(
    gap=st.integers(0, 12),
    values=st.lists(st.floats(-2.0, 2.0), min_size=1, max_size=14),
    backup=st.sampled_from(["mean", "max"]),
)
def test_saturation_is_identical_on_both_engines(gap, values, backup):
    forests = []
    for engine in ENGINES:
        forest = near_max_forest(engine, (MAX_VISITS - gap, MAX_VISITS - gap - 1, 0))
        if backup == "max":
            arrays = forest.export_arrays()
            forest = Forest.from_arrays(arrays, SearchConfig(backup="max"), engine=engine)
        for v in values:
            leaves = forest.ask(1)
            forest.backup(leaves.tree, leaves.node, [v])
        forests.append(forest)
    native, ref = forests
    assert_arrays_equal(native.export_arrays(), ref.export_arrays(), "saturation")
    assert native.view(0, "visits")[0] == min(MAX_VISITS - gap + len(values), MAX_VISITS)
    assert native.view(0, "visits").min() >= 0


@pytest.mark.parametrize("engine", ENGINES)
def test_root_epoch_wraps_like_uint64(engine):
    forest = Forest(1, engine=engine)
    arrays = forest.export_arrays()
    arrays["root_epoch"][:] = 2**64 - 1
    forest = Forest.from_arrays(arrays, forest.config, engine=engine)
    forest.reset(0, 7)
    assert forest.root_epoch(0) == 0
    assert forest.export_arrays()["root_epoch"].tolist() == [0]


@pytest.mark.parametrize("engine", ENGINES)
def test_huge_synthetic_budgets_are_capacity_errors(engine):
    forest = Forest(2, SearchConfig(max_nodes=2**31 - 1), engine=engine)
    for s, a, k in ((2**62, 1, 1), (2**63 - 1, 65535, 16383), (2**31, 1, 1), (2**30, 4, 1)):
        with pytest.raises(CapacityError, match="max_nodes"):
            forest.run_synthetic(s, a, leaves_per_ask=k)
    assert forest.size(0) == 1


def test_considered_visit_is_the_table_element():
    for m in range(1, 20):
        for n in range(1, 70):
            table = select.considered_visits(m, n)
            assert [select.considered_visit(m, n, k) for k in range(n)] == list(table), (m, n)


def test_huge_gumbel_budget_agrees_on_both_engines():
    """gumbel_simulations up to 2**63 - 1: the halving schedule must not overflow."""
    for n in (2**31, 2**62, 2**63 - 1):
        cfg = SearchConfig(gumbel=True, gumbel_simulations=n, gumbel_max_considered=5, seed=3)
        native, ref = make_pair(2, cfg)
        for f in (native, ref):
            f.run_synthetic(30, 6, leaves_per_ask=2, seed=1)
        assert_arrays_equal(native.export_arrays(), ref.export_arrays(), f"gumbel n={n}")


# ---------------------------------------------------------------------- float32 values (item 5)
EDGE_VALUES = [
    FLOAT32_MAX,
    3.4028235e38,  # FLOAT32_MAX as printed: above it as a double, rounds to it
    float(np.nextafter(FLOAT32_OVERFLOW, 0)),  # the largest double that rounds to a finite float32
    FLOAT32_OVERFLOW,  # rounds to inf: refused
    1e39,
    float(np.finfo(np.float64).max),
    math.inf,
    math.nan,
    1e38,
    -1e38,
    0.0,
    -0.0,
    5e-324,
]


@pytest.mark.parametrize("engine", ENGINES)
def test_float32_max_is_a_valid_value(engine):
    forest = Forest(1, engine=engine)
    leaves = forest.ask(1)
    forest.backup(leaves.tree, leaves.node, [3.4028235e38])
    assert forest.view(0, "q")[0] == np.float32(FLOAT32_MAX)
    leaves = forest.ask(1)
    with pytest.raises(ValueError, match="float32"):
        forest.backup(leaves.tree, leaves.node, [FLOAT32_OVERFLOW])


@core_settings(max_examples=40)
@given(
    values=st.lists(
        st.one_of(st.sampled_from(EDGE_VALUES), st.floats(-3.5e38, 3.5e38)),
        min_size=1,
        max_size=6,
    ).map(lambda vs: [v * s for v, s in zip(vs, [1, -1, 1, -1, -1, 1], strict=False)]),
    reward=st.sampled_from([0.0, 1e38, -3e38, FLOAT32_MAX]),
    backup=st.sampled_from(["mean", "max"]),
    discount=st.sampled_from([1.0, 0.5]),
    two_player=st.booleans(),
)
def test_extreme_values_agree_and_stay_finite(values, reward, backup, discount, two_player):
    """Returns at the float32 edge, of both signs, through edges with huge rewards: accepted iff
    finite as float32, identical on both engines, every q finite (saturated), and the forest
    saves. The first backups make q near +-FLOAT32_MAX so a later mean step overflows float32."""
    cfg = SearchConfig(backup=backup, discount=discount, two_player=two_player)
    native, ref = make_pair(1, cfg)
    for forest in (native, ref):
        leaves = forest.ask(1)
        forest.expand(leaves.tree, leaves.node, [2], [0.5, 0.5], [reward, -reward])
        forest.cancel(leaves.tree, leaves.node)
    for v in values:
        outcomes = []
        for forest in (native, ref):
            leaves = forest.ask(1)
            before = forest.export_arrays()
            try:
                forest.backup(leaves.tree, leaves.node, [v])
                outcomes.append(None)
            except ValueError:
                assert_arrays_equal(before, forest.export_arrays(), f"refused {v}")
                forest.cancel(leaves.tree, leaves.node)
                outcomes.append(ValueError)
        assert outcomes[0] == outcomes[1]
        assert (outcomes[0] is None) == (abs(v) < FLOAT32_OVERFLOW), v
        assert_arrays_equal(native.export_arrays(), ref.export_arrays(), f"after {v}")
    arrays = native.export_arrays()
    assert np.all(np.isfinite(arrays["q"])), arrays["q"]
    Forest.from_arrays(arrays, cfg, engine="native")
    Forest.from_arrays(arrays, cfg, engine="reference")


@pytest.mark.parametrize("engine", ENGINES)
def test_mean_of_opposite_extremes_does_not_overflow(engine):
    """float32(FLOAT32_MAX - (-FLOAT32_MAX)) is inf: the step falls back to double."""
    forest = Forest(1, engine=engine)
    for v in (-FLOAT32_MAX, FLOAT32_MAX, FLOAT32_MAX):
        leaves = forest.ask(1)
        forest.backup(leaves.tree, leaves.node, [v])
    q = float(forest.view(0, "q")[0])
    assert math.isfinite(q) and abs(q - FLOAT32_MAX / 3) <= FLOAT32_MAX * 1e-6


def test_engine_errors_are_the_documented_classes():
    assert all(issubclass(e, Exception) for e in ENGINE_ERRORS)
    assert issubclass(CapacityError, RuntimeError)
