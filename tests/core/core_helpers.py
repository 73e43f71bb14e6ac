"""Helpers of the core tests: forests on both engines, whole-forest comparison, invariants.

Legend: ``B`` trees, ``N`` nodes of one tree.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

import numpy as np
from hypothesis import settings

import qengine
from qengine import CapacityError, Forest, SearchConfig

ENGINES = ("native", "reference")
ENGINE_ERRORS = (TypeError, ValueError, IndexError, CapacityError)
FLOAT_FIELDS = ("prior", "q", "reward")


def core_settings(**overrides: Any) -> settings:
    """The tests/core hypothesis profile (``ci`` unless QENGINE_CORE_PROFILE says otherwise)."""
    name = os.environ.get("QENGINE_CORE_PROFILE", "ci")
    if name != "ci":  # per-test example counts are tuned for CI time only
        overrides.pop("max_examples", None)
    return settings(settings.get_profile(name), **overrides)


def make_pair(
    num_trees: int, config: SearchConfig, *, num_threads: int = 1, root_payloads: Any = None
) -> tuple[Forest, Forest]:
    """The same fresh forest on the native core and on the reference."""
    return tuple(
        Forest(
            num_trees,
            config,
            num_threads=num_threads,
            root_payloads=root_payloads,
            engine=engine,
        )
        for engine in ENGINES
    )


def bits(array: np.ndarray) -> np.ndarray:
    """Floats as their raw bits (so -0.0 != 0.0 and NaN payloads count); other dtypes as is."""
    if array.dtype == np.float32:
        return array.view(np.uint32)
    if array.dtype == np.float64:
        return array.view(np.uint64)
    return array


def assert_arrays_equal(a: dict[str, np.ndarray], b: dict[str, np.ndarray], where: str) -> None:
    assert sorted(a) == sorted(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
    for key in a:
        x, y = np.asarray(a[key]), np.asarray(b[key])
        assert x.dtype == y.dtype, f"{where}: {key} dtype {x.dtype} != {y.dtype}"
        assert x.shape == y.shape, f"{where}: {key} shape {x.shape} != {y.shape}"
        if not np.array_equal(bits(x), bits(y)):
            diff = np.flatnonzero(bits(x) != bits(y)) if x.ndim == 1 else "?"
            raise AssertionError(
                f"{where}: {key} differs at {diff[:10] if not isinstance(diff, str) else diff}:\n"
                f"  first: {x[diff[:10]] if not isinstance(diff, str) else x}\n"
                f"  second: {y[diff[:10]] if not isinstance(diff, str) else y}"
            )


def assert_same_forest(native: Forest, ref: Forest, where: str = "") -> None:
    """Identical node arrays (bits), sizes, minmax and root epochs, tree by tree."""
    assert native.num_trees == ref.num_trees
    for t in range(native.num_trees):
        assert native.size(t) == ref.size(t), f"{where}: tree {t} size"
        assert_arrays_equal(native.nodes(t), ref.nodes(t), f"{where} tree {t}")
        lo_n, hi_n = native.minmax(t)
        lo_r, hi_r = ref.minmax(t)
        assert (lo_n, hi_n) == (lo_r, hi_r), (
            f"{where}: tree {t} minmax {lo_n, hi_n} != {lo_r, hi_r}"
        )
        assert native._engine.root_epoch(t) == ref._engine.root_epoch(t)
    assert_arrays_equal(native.export_arrays(), ref.export_arrays(), f"{where} export_arrays")


def assert_same_queries(native: Forest, ref: Forest, where: str = "") -> None:
    """Identical queries: pairs (both modes, a few filters), best path / action, root policy."""
    total = sum(native.size(t) for t in range(native.num_trees))
    mask = (np.arange(total) % 3 != 1) & (native.export_arrays()["visits"] > 0)  # a caller's rule
    for mode in ("paper", "max_min", "max_all", "all"):
        for kwargs in (
            {},
            {"min_visits": 2},
            {"min_q_gap": 0.05},
            {"max_depth": 1},
            {"eligible": mask},
        ):
            assert_arrays_equal(
                native.pairs(mode, **kwargs).as_dict(),
                ref.pairs(mode, **kwargs).as_dict(),
                f"{where} pairs {mode} {kwargs}",
            )
    for t in range(native.num_trees):
        assert native.best_action(t) == ref.best_action(t), f"{where}: best_action tree {t}"
        assert_arrays_equal(
            {"best_path": native.best_path(t), "q": native.qvalues(t, 0)},
            {"best_path": ref.best_path(t), "q": ref.qvalues(t, 0)},
            f"{where} tree {t}",
        )
        assert_arrays_equal(
            native.export_tree(t), ref.export_tree(t), f"{where} tree {t} export_tree"
        )
        assert_arrays_equal(
            {"edge_values": native.edge_values(t)},
            {"edge_values": ref.edge_values(t)},
            f"{where} tree {t} edge_values",
        )
        for tau in (0.0, 0.5, 1.0):
            assert_arrays_equal(
                {"policy": native.root_policy(t, tau)},
                {"policy": ref.root_policy(t, tau)},
                f"{where} tree {t} root_policy({tau})",
            )


def on_both(
    native: Forest, ref: Forest, call: Callable[[Forest], Any], where: str = ""
) -> tuple[Any, type | None]:
    """Run ``call`` on both forests: same result or same exception class, and a call that raises
    leaves its forest unchanged. Returns (native result, exception class or None)."""
    outcomes = []
    for forest in (native, ref):
        before = forest.export_arrays()
        try:
            outcomes.append((call(forest), None))
        except ENGINE_ERRORS as error:
            assert_arrays_equal(before, forest.export_arrays(), f"{where}: changed by {error!r}")
            outcomes.append((None, type(error), str(error)))
    (result_n, err_n, *msg_n), (result_r, err_r, *msg_r) = outcomes
    assert err_n == err_r, (
        f"{where}: native raised {err_n} {msg_n}, reference raised {err_r} {msg_r}"
    )
    if err_n is None and isinstance(result_n, dict):
        assert_arrays_equal(result_n, result_r, where)
    return result_n, err_n


def leaves_dict(leaves: qengine.Leaves) -> dict[str, np.ndarray]:
    return {name: getattr(leaves, name) for name in leaves.__dataclass_fields__}


# ---------------------------------------------------------------------- invariants
def check_invariants(
    forest: Forest,
    in_flight: set[tuple[int, int]],
    *,
    relocated: set[int] = frozenset(),
    q_bounds: tuple[float, float] | None = None,
) -> None:
    """Structural and statistical invariants of every tree.

    in_flight: the (tree, node) leaves asked and neither told nor cancelled.
    relocated: trees in which a widening moved a children block since the last renumbering.
    q_bounds: (lo, hi) every visited q must lie in (undiscounted single-player runs, zero rewards,
    values in the bounds).
    """
    for t in range(forest.num_trees):
        a = forest.nodes(t)
        n = forest.size(t)
        parent, first, count = a["parent"], a["first_child"], a["num_children"]
        alive = parent != -2
        assert parent[0] == -1 and a["depth"][0] == 0, f"tree {t}: bad root"
        dead = np.flatnonzero(~alive)
        if dead.size:
            assert t in relocated, f"tree {t}: dead slots {dead} without a relocating widening"
            for name in ("num_children", "action", "depth", "prior", "visits", "q", "reward"):
                assert not np.any(a[name][dead]), f"tree {t}: dead slot with {name} != 0"
            assert np.all(first[dead] == -1) and not np.any(a["in_flight"][dead])
        expected_flight = np.zeros(n, dtype=np.int64)
        for tree_id, leaf in in_flight:
            if tree_id == t:
                node = leaf
                while node != -1:
                    expected_flight[node] += 1
                    node = parent[node]
        assert np.array_equal(a["in_flight"], expected_flight), (
            f"tree {t}: in-flight {a['in_flight']} != leaves in flight {expected_flight}"
        )
        for s in np.flatnonzero(alive):
            k = int(count[s])
            assert (k == 0) == (first[s] == -1), f"tree {t} node {s}: first_child/num_children"
            if k == 0:
                continue
            assert not a["terminal"][s], f"tree {t} node {s}: terminal with children"
            kids = np.arange(first[s], first[s] + k)
            assert kids[-1] < n
            assert np.all(parent[kids] == s), f"tree {t} node {s}: children not contiguous"
            assert np.array_equal(a["action"][kids], np.arange(k))
            assert np.all(a["depth"][kids] == a["depth"][s] + 1)
            own = int(a["visits"][s]) - int(a["visits"][kids].sum())
            assert own in (0, 1), f"tree {t} node {s}: visits - children visits = {own}"
        assert np.all(a["visits"] >= 0)
        if q_bounds is not None:
            lo, hi = q_bounds
            q = a["q"][alive & (a["visits"] > 0)].astype(np.float64)
            slack = 1e-6 * max(1.0, abs(lo), abs(hi))
            assert np.all(q >= lo - slack) and np.all(q <= hi + slack), f"tree {t}: q {q}"
