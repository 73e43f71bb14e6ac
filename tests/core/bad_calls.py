"""A catalogue of malformed calls at every entry point of the search core, and its runner.

``catalogue()`` lists every case: a distinct name, the call, and the exception class it must raise
(docs/search-semantics.md, section 9). ``test_core_bad_calls.py`` runs slices of it in child
processes, one per engine (a crash kills only the child, a hang hits its timeout), and checks
that every call raised its class on both engines (0 silent acceptances) and left the forest it
was called on unchanged.

Classes of calls: scalar arguments of the wrong type or out of range (through ``qengine.Forest``
and on the engine directly), arrays of the wrong dtype / shape / layout, batches whose entries
fail in call order, non-finite and overflowing values, state errors, config dicts, corrupt
``from_arrays`` input, damaged saved files and pickled states.

Run directly: ``python bad_calls.py ENGINE START STOP`` prints one JSON line per case, after a
``start`` line on stderr (so a crash names its case).
"""

from __future__ import annotations

import itertools
import json
import math
import struct
import sys
import tempfile
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np

from qengine import CapacityError, Forest, SearchConfig

i32, i64, f32, f64, u8, u16 = np.int32, np.int64, np.float32, np.float64, np.uint8, np.uint16
NAN, INF = math.nan, math.inf


# ---------------------------------------------------------------------- the forests calls run on
def busy_forest(engine: str) -> Forest:
    """2 trees, max_nodes 40: root 0 with children 1..3 (payloads 0..2); node 1 asked, expanded
    with children 4 (terminal) and 5, and in flight. Node 2 and 3 are unexpanded leaves."""
    forest = Forest(2, SearchConfig(max_nodes=40), engine=engine)
    leaves = forest.ask(1)
    forest.expand(leaves.tree, leaves.node, [3, 3], [0.5, 0.3, 0.2] * 2, payloads=np.arange(6))
    forest.backup(leaves.tree, leaves.node, [0.5, 0.5])
    leaves = forest.ask(1)
    forest.expand(leaves.tree, leaves.node, [2, 2], [0.5] * 4, terminal=[True, False] * 2)
    return forest


def idle_forest(engine: str) -> Forest:
    """busy_forest with its two leaves told: nothing in flight."""
    forest = busy_forest(engine)
    forest.backup([0, 1], [1, 1], [0.25, 0.75])
    return forest


@dataclass
class Context:
    engine: str
    directory: Path  # scratch files
    forest: Forest  # the forest the call runs on (checked unchanged afterwards)
    good_file: Path  # a saved idle forest


@dataclass(frozen=True)
class Case:
    name: str  # distinct
    call: Callable[[Context], Any]
    expected: type  # the exception class both engines raise
    idle: bool = False  # run on idle_forest instead of busy_forest


# ---------------------------------------------------------------------- bad scalar values
class Opaque:
    """An object of no numeric kind at all."""


def wrong_types(kind: str) -> list[tuple[str, Callable[[], Any]]]:
    """(label, factory) of values that are not of ``kind`` (int, real, str, bool)."""
    common = [
        ("None", lambda: None),
        ("list", lambda: [1]),
        ("tuple", lambda: (1,)),
        ("dict", lambda: {}),
        ("bytes", lambda: b"3"),
        ("object", Opaque),
        ("complex", lambda: 1 + 0j),
        ("array1", lambda: np.array([1])),
        ("array0d", lambda: np.array(1)),
        ("Decimal", lambda: Decimal(1)),
        ("Fraction", lambda: Fraction(1)),
    ]
    numbers = [
        ("float", lambda: 1.5),
        ("integral-float", lambda: 1.0),
        ("np.float64", lambda: np.float64(1.0)),
        ("np.float32", lambda: np.float32(2.0)),
        ("nan", lambda: NAN),
        ("inf", lambda: INF),
    ]
    bools = [("bool", lambda: True), ("np.bool", lambda: np.bool_(False))]
    strings = [("str-digit", lambda: "3"), ("str", lambda: "paper")]
    ints = [("int", lambda: 1), ("np.int64", lambda: np.int64(1))]
    if kind == "int":
        return common + numbers + bools + strings
    if kind == "real":
        return common + bools + [("str-number", lambda: "0.5"), ("str", lambda: "x")]
    if kind == "str":
        return [*common, *numbers, *bools, *ints]
    if kind == "bool":
        return [*common, *numbers, *ints, ("str-true", lambda: "True")]
    raise AssertionError(kind)


# Out-of-range values per int slot role: (label, value, exception).
def ids_out_of_range(size: int) -> list[tuple[str, int, type]]:
    return [
        ("-1", -1, IndexError),
        (str(size), size, IndexError),
        ("2**31", 2**31, IndexError),
        ("2**63", 2**63, IndexError),
        ("-2**63-1", -(2**63) - 1, IndexError),
        ("2**64", 2**64, IndexError),
        ("-2**200", -(2**200), IndexError),
    ]


def below(lowest: int, role_error: type = ValueError) -> list[tuple[str, int, type]]:
    return [
        (str(lowest - 1), lowest - 1, role_error),
        ("-2**63", -(2**63), role_error),
        ("-2**64", -(2**64), role_error),
    ]


# ---------------------------------------------------------------------- the scalar slots
@dataclass(frozen=True)
class Slot:
    """One scalar argument of one method: how to call it with a value in that position."""

    label: str
    kind: str  # int, real, str, bool
    call: Callable[[Context, Any], Any]
    out_of_range: tuple[tuple[str, Any, type], ...] = ()
    idle: bool = False


def _wrapper_slots() -> list[Slot]:
    tree_ids = tuple(ids_out_of_range(2))
    node_ids = tuple(ids_out_of_range(6))

    def ctor(**kw: Any) -> Callable[[Context, Any], Any]:
        def call(ctx: Context, v: Any) -> Any:
            args = {"num_trees": 2, "num_threads": 1, "engine": ctx.engine}
            args.update({k: (v if val is ... else val) for k, val in kw.items()})
            return Forest(args.pop("num_trees"), **args)

        return call

    return [
        Slot(
            "Forest(num_trees)",
            "int",
            ctor(num_trees=...),
            (*below(1), ("2**31", 2**31, ValueError), ("2**64", 2**64, ValueError)),
        ),
        Slot(
            "Forest(num_threads)",
            "int",
            ctor(num_threads=...),
            (*below(0), ("1025", 1025, ValueError), ("2**40", 2**40, ValueError)),
        ),
        Slot("Forest(engine)", "str", lambda c, v: Forest(2, engine=v)),
        Slot(
            "ask(max_leaves)",
            "int",
            lambda c, v: c.forest.ask(v),
            (
                *below(1),
                ("16383", 16383, CapacityError),
                ("2**63", 2**63, CapacityError),
                ("2**80", 2**80, CapacityError),
            ),
        ),
        Slot("ask(paths)", "bool", lambda c, v: c.forest.ask(1, paths=v)),
        Slot("size(tree)", "int", lambda c, v: c.forest.size(v), tree_ids),
        Slot("view(tree)", "int", lambda c, v: c.forest.view(v, "q"), tree_ids),
        Slot("view(tree) derived", "int", lambda c, v: c.forest.view(v, "in_flight"), tree_ids),
        Slot("nodes(tree)", "int", lambda c, v: c.forest.nodes(v), tree_ids),
        Slot("qvalues(tree)", "int", lambda c, v: c.forest.qvalues(v, 0), tree_ids),
        Slot("qvalues(node)", "int", lambda c, v: c.forest.qvalues(0, v), node_ids),
        Slot("root_policy(tree)", "int", lambda c, v: c.forest.root_policy(v, 1.0), tree_ids),
        Slot("best_action(tree)", "int", lambda c, v: c.forest.best_action(v), tree_ids),
        Slot("best_path(tree)", "int", lambda c, v: c.forest.best_path(v), tree_ids),
        Slot("root_epoch(tree)", "int", lambda c, v: c.forest.root_epoch(v), tree_ids),
        Slot("export_tree(tree)", "int", lambda c, v: c.forest.export_tree(v), tree_ids),
        Slot("reserve(nodes)", "int", lambda c, v: c.forest.reserve(v), tuple(below(0))),
        Slot("edge_values(tree)", "int", lambda c, v: c.forest.edge_values(v), tree_ids),
        Slot("minmax(tree)", "int", lambda c, v: c.forest.minmax(v), tree_ids),
        Slot(
            "pairs(min_visits)",
            "int",
            lambda c, v: c.forest.pairs("paper", min_visits=v),
            tuple(below(0)),
        ),
        Slot(
            "pairs(max_depth)",
            "int",
            lambda c, v: c.forest.pairs("max_min", max_depth=v),
            tuple(below(-1)),
        ),
        Slot("reroot(tree)", "int", lambda c, v: c.forest.reroot(v, 0), tree_ids, idle=True),
        Slot("reroot(node)", "int", lambda c, v: c.forest.reroot(0, v), node_ids, idle=True),
        Slot("prune(tree)", "int", lambda c, v: c.forest.prune(v, 2), tree_ids, idle=True),
        Slot("prune(node)", "int", lambda c, v: c.forest.prune(0, v), node_ids, idle=True),
        Slot("compact(tree)", "int", lambda c, v: c.forest.compact(v), tree_ids, idle=True),
        Slot("reset(tree)", "int", lambda c, v: c.forest.reset(v, 1), tree_ids, idle=True),
        Slot(
            "reset(payload)",
            "int",
            lambda c, v: c.forest.reset(0, payload=v),
            (
                ("2**63", 2**63, ValueError),
                ("-2**63-1", -(2**63) - 1, ValueError),
                ("2**64", 2**64, ValueError),
            ),
            idle=True,
        ),
        Slot(
            "run_synthetic(num_simulations)",
            "int",
            lambda c, v: c.forest.run_synthetic(v, 2),
            (*below(0), ("2**63", 2**63, CapacityError), ("2**64", 2**64, CapacityError)),
            idle=True,
        ),
        Slot(
            "run_synthetic(num_actions)",
            "int",
            lambda c, v: c.forest.run_synthetic(2, v),
            (*below(1), ("65536", 65536, ValueError), ("2**64", 2**64, ValueError)),
            idle=True,
        ),
        Slot(
            "run_synthetic(leaves_per_ask)",
            "int",
            lambda c, v: c.forest.run_synthetic(2, 2, leaves_per_ask=v),
            (*below(1), ("16384", 16384, ValueError), ("2**64", 2**64, ValueError)),
            idle=True,
        ),
        Slot(
            "run_synthetic(seed)",
            "int",
            lambda c, v: c.forest.run_synthetic(2, 2, seed=v),
            (("-1", -1, ValueError), ("2**64", 2**64, ValueError)),
            idle=True,
        ),
        Slot(
            "root_policy(temperature)",
            "real",
            lambda c, v: c.forest.root_policy(0, v),
            (
                ("nan", NAN, ValueError),
                ("inf", INF, ValueError),
                ("-1", -1.0, ValueError),
                ("2**1100", 2**1100, ValueError),
            ),
        ),
        Slot(
            "pairs(min_q_gap)",
            "real",
            lambda c, v: c.forest.pairs("paper", min_q_gap=v),
            (
                ("nan", NAN, ValueError),
                ("-inf", -INF, ValueError),
                ("-0.5", -0.5, ValueError),
                ("-2**1100", -(2**1100), ValueError),
            ),
        ),
        Slot(
            "view(field)",
            "str",
            lambda c, v: c.forest.view(0, v),
            tuple(
                (repr(s), s, ValueError)
                for s in ("bogus", "", "Q", "status", "q ", "in_flight\x00", "\ud800")
            ),
        ),
        Slot(
            "pairs(mode)",
            "str",
            lambda c, v: c.forest.pairs(v),
            tuple((repr(s), s, ValueError) for s in ("best", "", "PAPER", "\ud800")),
        ),
        Slot(
            "from_arrays(num_threads)",
            "int",
            lambda c, v: Forest.from_arrays(
                c.forest.export_arrays(), c.forest.config, num_threads=v, engine=c.engine
            ),
            (*below(0), ("1025", 1025, ValueError), ("2**64", 2**64, ValueError)),
        ),
        Slot(
            "from_arrays(engine)",
            "str",
            lambda c, v: Forest.from_arrays(c.forest.export_arrays(), c.forest.config, engine=v),
            (("'cuda'", "cuda", ValueError),),
        ),
        Slot(
            "load(num_threads)",
            "int",
            lambda c, v: Forest.load(c.good_file, num_threads=v, engine=c.engine),
            (*below(0), ("1025", 1025, ValueError)),
        ),
    ]


def _engine_slots() -> list[Slot]:
    """The same arguments on the engine class itself (qengine._core.Forest or the reference)."""
    tree_ids = tuple(ids_out_of_range(2))
    node_ids = tuple(ids_out_of_range(6))
    config = SearchConfig().to_dict()

    def ctor(position: int) -> Callable[[Context, Any], Any]:
        def call(ctx: Context, v: Any) -> Any:
            args: list[Any] = [2, config, 1, np.zeros(2, i64)]
            args[position] = v
            return type(ctx.forest._engine)(*args)

        return call

    def e(ctx: Context) -> Any:
        return ctx.forest._engine

    return [
        Slot(
            "Engine(num_trees)",
            "int",
            ctor(0),
            (*below(1), ("2**31", 2**31, ValueError), ("2**64", 2**64, ValueError)),
        ),
        Slot(
            "Engine(num_threads)",
            "int",
            ctor(2),
            (*below(0), ("1025", 1025, ValueError), ("2**64", 2**64, ValueError)),
        ),
        Slot(
            "engine ask(max_leaves)",
            "int",
            lambda c, v: e(c).ask(v, True),
            (*below(1), ("16383", 16383, CapacityError), ("2**64", 2**64, CapacityError)),
        ),
        Slot("engine ask(with_paths)", "bool", lambda c, v: e(c).ask(1, v)),
        Slot("engine size(tree)", "int", lambda c, v: e(c).size(v), tree_ids),
        Slot("engine view(tree)", "int", lambda c, v: e(c).view(v, "q"), tree_ids),
        Slot(
            "engine view(field)",
            "str",
            lambda c, v: e(c).view(0, v),
            tuple((repr(s), s, ValueError) for s in ("in_flight", "status", "bogus", "\ud800")),
        ),
        Slot("engine derived(tree)", "int", lambda c, v: e(c).derived(v, "exhausted"), tree_ids),
        Slot(
            "engine derived(field)",
            "str",
            lambda c, v: e(c).derived(0, v),
            tuple((repr(s), s, ValueError) for s in ("q", "status", "")),
        ),
        Slot("engine qvalues(tree)", "int", lambda c, v: e(c).qvalues(v, 0), tree_ids),
        Slot("engine qvalues(node)", "int", lambda c, v: e(c).qvalues(0, v), node_ids),
        Slot("engine root_policy(tree)", "int", lambda c, v: e(c).root_policy(v, 1.0), tree_ids),
        Slot(
            "engine root_policy(temperature)",
            "real",
            lambda c, v: e(c).root_policy(0, v),
            (("nan", NAN, ValueError), ("-inf", -INF, ValueError), ("-1", -1, ValueError)),
        ),
        Slot("engine best_action(tree)", "int", lambda c, v: e(c).best_action(v), tree_ids),
        Slot("engine best_path(tree)", "int", lambda c, v: e(c).best_path(v), tree_ids),
        Slot("engine minmax(tree)", "int", lambda c, v: e(c).minmax(v), tree_ids),
        Slot("engine root_epoch(tree)", "int", lambda c, v: e(c).root_epoch(v), tree_ids),
        Slot("engine export_tree(tree)", "int", lambda c, v: e(c).export_tree(v), tree_ids),
        Slot("engine reserve(nodes)", "int", lambda c, v: e(c).reserve(v), tuple(below(0))),
        Slot("engine edge_values(tree)", "int", lambda c, v: e(c).edge_values(v), tree_ids),
        Slot(
            "engine pairs(mode)",
            "str",
            lambda c, v: e(c).pairs(v, 1, 0.0, -1),
            (("'max'", "max", ValueError),),
        ),
        Slot(
            "engine pairs(min_visits)",
            "int",
            lambda c, v: e(c).pairs("paper", v, 0.0, -1),
            tuple(below(0)),
        ),
        Slot(
            "engine pairs(min_q_gap)",
            "real",
            lambda c, v: e(c).pairs("paper", 1, v, -1),
            (("inf", INF, ValueError), ("-1", -1, ValueError)),
        ),
        Slot(
            "engine pairs(max_depth)",
            "int",
            lambda c, v: e(c).pairs("paper", 1, 0.0, v),
            tuple(below(-1)),
        ),
        Slot("engine reroot(tree)", "int", lambda c, v: e(c).reroot(v, 0), tree_ids, idle=True),
        Slot("engine reroot(node)", "int", lambda c, v: e(c).reroot(0, v), node_ids, idle=True),
        Slot("engine prune(tree)", "int", lambda c, v: e(c).prune(v, 2), tree_ids, idle=True),
        Slot("engine prune(node)", "int", lambda c, v: e(c).prune(0, v), node_ids, idle=True),
        Slot("engine compact(tree)", "int", lambda c, v: e(c).compact(v), tree_ids, idle=True),
        Slot("engine reset(tree)", "int", lambda c, v: e(c).reset(v, 0), tree_ids, idle=True),
        Slot(
            "engine reset(payload)",
            "int",
            lambda c, v: e(c).reset(0, v),
            (("2**63", 2**63, ValueError), ("-2**64", -(2**64), ValueError)),
            idle=True,
        ),
        Slot(
            "engine run_synthetic(num_simulations)",
            "int",
            lambda c, v: e(c).run_synthetic(v, 2, 1, 0),
            (*below(0), ("2**63-1", 2**63 - 1, CapacityError), ("2**70", 2**70, CapacityError)),
            idle=True,
        ),
        Slot(
            "engine run_synthetic(num_actions)",
            "int",
            lambda c, v: e(c).run_synthetic(2, v, 1, 0),
            (*below(1), ("65536", 65536, ValueError)),
            idle=True,
        ),
        Slot(
            "engine run_synthetic(leaves_per_ask)",
            "int",
            lambda c, v: e(c).run_synthetic(2, 2, v, 0),
            (*below(1), ("16384", 16384, ValueError)),
            idle=True,
        ),
        Slot(
            "engine run_synthetic(seed)",
            "int",
            lambda c, v: e(c).run_synthetic(2, 2, 1, v),
            (
                ("-1", -1, ValueError),
                ("2**64", 2**64, ValueError),
                ("-2**70", -(2**70), ValueError),
            ),
            idle=True,
        ),
        Slot(
            "engine from_arrays(num_threads)",
            "int",
            lambda c, v: type(e(c)).from_arrays(config, e(c).export_arrays(), v),
            (*below(0), ("1025", 1025, ValueError)),
        ),
    ]


def scalar_cases() -> list[Case]:
    cases = []
    for slot in _wrapper_slots() + _engine_slots():
        for label, make in wrong_types(slot.kind):
            cases.append(
                Case(
                    f"{slot.label} = {label}",
                    lambda c, s=slot, m=make: s.call(c, m()),
                    TypeError,
                    slot.idle,
                )
            )
        for label, value, error in slot.out_of_range:
            cases.append(
                Case(
                    f"{slot.label} = {label} (range)",
                    lambda c, s=slot, v=value: s.call(c, v),
                    error,
                    slot.idle,
                )
            )
    return cases


# ---------------------------------------------------------------------- array arguments
def bad_arrays(dtype: type, length: int) -> list[tuple[str, Callable[[], Any], type]]:
    """Engine-level array arguments that are not 1-D C-contiguous arrays of exactly ``dtype``."""
    other = [d for d in (i32, i64, f32, f64, u8, u16, np.bool_, np.int8) if d is not dtype]
    out: list[tuple[str, Callable[[], Any], type]] = [
        (f"dtype {np.dtype(d)}", lambda d=d: np.zeros(length, d), TypeError) for d in other
    ]
    out += [
        ("list", lambda: [0] * length, TypeError),
        ("None", lambda: None, TypeError),
        ("scalar", lambda: dtype(0), TypeError),
        ("object array", lambda: np.zeros(length, object), TypeError),
        ("big-endian", lambda: np.zeros(length, np.dtype(dtype).newbyteorder(">")), TypeError),
        ("2-D", lambda: np.zeros((length, 1), dtype), ValueError),
        ("0-D", lambda: np.zeros((), dtype), ValueError),
    ]
    if length > 1:  # a 1-element array is contiguous whatever its stride
        out.append(("strided", lambda: np.zeros(2 * length, dtype)[::2], ValueError))
    if np.dtype(dtype).itemsize == 1:
        out = [o for o in out if o[0] != "big-endian"]
    return out


def array_cases() -> list[Case]:
    cases = []
    expand_ok = dict(
        trees=lambda: np.array([0], i32),
        nodes=lambda: np.array([2], i32),
        counts=lambda: np.array([2], i32),
        priors=lambda: np.full(2, 0.5, f32),
        rewards=lambda: np.zeros(2, f32),
        terminal=lambda: np.zeros(2, u8),
        payloads=lambda: np.zeros(2, i64),
    )
    dtypes = dict(trees=i32, nodes=i32, counts=i32, priors=f32, rewards=f32, terminal=u8)
    dtypes["payloads"] = i64
    optional = ("rewards", "terminal", "payloads")  # None is "all zero" (test_core_known_answers)
    for name, dtype in dtypes.items():
        length = 1 if name in ("trees", "nodes", "counts") else 2
        for label, make, error in bad_arrays(dtype, length):
            if name in optional and label == "None":
                continue

            def call(c: Context, name: str = name, make: Callable = make) -> Any:
                args = {k: f() for k, f in expand_ok.items()}
                args[name] = make()
                return c.forest._engine.expand(**args)

            cases.append(Case(f"engine expand({name}) = {label}", call, error))
    leaf = dict(trees=lambda: np.array([0], i32), nodes=lambda: np.array([1], i32))
    for op, names in (("backup", ("trees", "nodes", "values")), ("cancel", ("trees", "nodes"))):
        for name in names:
            dtype = f64 if name == "values" else i32
            for label, make, error in bad_arrays(dtype, 1):

                def call(c: Context, op=op, names=names, name=name, make=make) -> Any:
                    args = {"values": np.full(1, 0.5), **{k: f() for k, f in leaf.items()}}
                    args = {k: args[k] for k in names}
                    args[name] = make()
                    return getattr(c.forest._engine, op)(**args)

                cases.append(Case(f"engine {op}({name}) = {label}", call, error))
    for label, make, error in bad_arrays(i64, 2):

        def call(c: Context, make=make) -> Any:
            return type(c.forest._engine)(2, SearchConfig().to_dict(), 1, make())

        cases.append(Case(f"Engine(root_payloads) = {label}", call, error))
    # lengths that disagree (ValueError)
    for name, length in (("nodes", 2), ("counts", 0), ("rewards", 1), ("terminal", 3)):

        def call(c: Context, name=name, length=length) -> Any:
            args = {k: f() for k, f in expand_ok.items()}
            args[name] = np.zeros(length, dtypes[name])
            return c.forest._engine.expand(**args)

        cases.append(Case(f"engine expand {name} length {length}", call, ValueError))
    for name, length in (("nodes", 0), ("values", 2)):

        def call(c: Context, name=name, length=length) -> Any:
            args = {"trees": np.array([0], i32), "nodes": np.array([1], i32)}
            args["values"] = np.full(1, 0.5)
            args[name] = np.zeros(length, f64 if name == "values" else i32)
            return c.forest._engine.backup(**args)

        cases.append(Case(f"engine backup {name} length {length}", call, ValueError))
    cases.append(
        Case(
            "Engine(root_payloads) length 3",
            lambda c: type(c.forest._engine)(2, SearchConfig().to_dict(), 1, np.zeros(3, i64)),
            ValueError,
        )
    )
    # friendly input through qengine.Forest that still cannot be taken
    wrapper = [
        ("expand trees floats", lambda f: f.expand([0.0], [2], [1], [0.5]), TypeError),
        ("expand nodes strings", lambda f: f.expand([0], ["2"], [1], [0.5]), TypeError),
        ("expand counts bools", lambda f: f.expand([0], [2], [True], [0.5]), TypeError),
        ("expand counts 2**40", lambda f: f.expand([0], [2], [2**40], [0.5]), ValueError),
        ("expand counts float", lambda f: f.expand([0], [2], 1.0, [0.5]), TypeError),
        ("expand trees 2-D", lambda f: f.expand([[0]], [2], [1], [0.5]), ValueError),
        ("expand trees 2**31", lambda f: f.expand([2**31], [2], [1], [0.5]), IndexError),
        ("expand trees big ints", lambda f: f.expand([2**70], [2], [1], [0.5]), TypeError),
        ("expand priors strings", lambda f: f.expand([0], [2], [1], ["0.5"]), TypeError),
        ("expand priors complex", lambda f: f.expand([0], [2], [1], [0.5j]), TypeError),
        ("expand priors None", lambda f: f.expand([0], [2], [1], None), TypeError),
        ("expand priors 1e39", lambda f: f.expand([0], [2], [1], [1e39]), ValueError),
        ("expand rewards strings", lambda f: f.expand([0], [2], [1], [0.5], "0"), TypeError),
        ("expand rewards 3 for 1", lambda f: f.expand([0], [2], [1], [0.5], [0, 0, 0]), ValueError),
        ("expand terminal floats", lambda f: f.expand([0], [2], [1], [0.5], 0, [0.5]), TypeError),
        ("expand terminal 'yes'", lambda f: f.expand([0], [2], [1], [0.5], 0, "yes"), TypeError),
        (
            "expand payloads floats",
            lambda f: f.expand([0], [2], [1], [0.5], 0, 0, [1.5]),
            TypeError,
        ),
        (
            "expand payloads 2**64-1",
            lambda f: f.expand([0], [2], [1], [0.5], 0, 0, np.array([2**64 - 1], np.uint64)),
            ValueError,
        ),
        ("expand lengths differ", lambda f: f.expand([0, 1], [2], [1], [0.5]), ValueError),
        ("backup values strings", lambda f: f.backup([0], [1], ["0.5"]), TypeError),
        ("backup values bools", lambda f: f.backup([0], [1], [True]), TypeError),
        ("backup values None", lambda f: f.backup([0], [1], None), TypeError),
        ("backup values big ints", lambda f: f.backup([0], [1], [2**70]), TypeError),
        ("backup values 2 for 1", lambda f: f.backup([0], [1], [0.5, 0.5]), ValueError),
        ("backup trees floats", lambda f: f.backup([0.0], [1], [0.5]), TypeError),
        ("backup nodes 2-D", lambda f: f.backup([0], [[1]], [0.5]), ValueError),
        ("backup trees/nodes lengths", lambda f: f.backup([0, 1], [1], [0.5]), ValueError),
        ("cancel nodes floats", lambda f: f.cancel([0], [1.0]), TypeError),
        ("cancel trees -2**31-1", lambda f: f.cancel([-(2**31) - 1], [1]), IndexError),
        ("Forest root_payloads floats", lambda f: Forest(2, root_payloads=[1.5, 2]), TypeError),
        ("Forest root_payloads 3 for 2", lambda f: Forest(2, root_payloads=[1, 2, 3]), ValueError),
        ("Forest root_payloads str", lambda f: Forest(2, root_payloads="ab"), TypeError),
        ("Forest config dict", lambda f: Forest(2, SearchConfig().to_dict()), TypeError),
        ("Forest config str", lambda f: Forest(2, "puct"), TypeError),
        ("from_arrays config dict", lambda f: Forest.from_arrays(f.export_arrays(), {}), TypeError),
    ]
    for name, fn, error in wrapper:
        cases.append(Case(name, lambda c, fn=fn: fn(c.forest), error))
    return cases


# ---------------------------------------------------------------------- batches in call order
# busy_forest: leaves (0, 1) and (1, 1) in flight; nodes 2, 3 unexpanded; 4 terminal; 6 nodes.
BACKUP_ENTRIES = {
    "ok0": ((0, 1, 0.5), None),
    "ok1": ((1, 1, 0.25), None),
    "notleaf": ((0, 2, 0.5), ValueError),
    "inner": ((1, 0, 0.5), ValueError),
    "terminal": ((0, 4, 0.5), ValueError),
    "tree9": ((9, 1, 0.5), IndexError),
    "tree-1": ((-1, 1, 0.5), IndexError),
    "node99": ((0, 99, 0.5), IndexError),
    "nan": ((0, 1, NAN), ValueError),
    "inf": ((1, 1, -INF), ValueError),
    "2**128": ((1, 1, 2.0**128), ValueError),
}


def _first_failure(kinds: list[str], table: dict, key: Callable[[Any], Any]) -> type | None:
    """The exception of the first failing entry (a repeated entry fails as a duplicate)."""
    seen = set()
    for kind in kinds:
        entry, error = table[kind]
        if error is not None:
            return error
        if key(entry) in seen:
            return ValueError
        seen.add(key(entry))
    return None


def batch_cases() -> list[Case]:
    cases = []
    names = list(BACKUP_ENTRIES)
    combos = [list(p) for p in itertools.product(names, repeat=2)]
    combos += [["ok0", a, b] for a, b in itertools.product(names[2:], repeat=2)]
    for kinds in combos:
        error = _first_failure(kinds, BACKUP_ENTRIES, lambda e: e[:2])
        if error is None:
            continue
        entries = [BACKUP_ENTRIES[k][0] for k in kinds]
        t, n, v = (list(col) for col in zip(*entries, strict=True))

        def call(c: Context, t=t, n=n, v=v) -> Any:
            e = c.forest._engine
            return e.backup(np.array(t, i32), np.array(n, i32), np.array(v, f64))

        cases.append(Case(f"engine backup [{', '.join(kinds)}]", call, error))
        if not any(k in ("nan", "inf", "2**128") for k in kinds):

            def call(c: Context, t=t, n=n) -> Any:
                return c.forest.cancel(t, n)

            cases.append(Case(f"cancel [{', '.join(kinds)}]", call, error))
    # expand: (tree, node, priors, rewards), error
    expand_entries = {
        "ok": ((0, 2, [0.5], [0.0]), None),
        "ok1": ((1, 3, [0.5, 0.5], [0.0, 1.0]), None),
        "ok-terminal0": ((0, 3, [], []), None),
        "count-1": ((0, 2, None, None), ValueError),
        "tree7": ((7, 2, [0.5], [0.0]), IndexError),
        "node-1": ((1, -1, [0.5], [0.0]), IndexError),
        "nanprior": ((0, 2, [NAN], [0.0]), ValueError),
        "negprior": ((1, 2, [0.5, -1.0], [0.0, 0.0]), ValueError),
        "infreward": ((1, 2, [0.5], [INF]), ValueError),
        "terminal": ((0, 4, [0.5], [0.0]), ValueError),
        "busywiden": ((0, 0, [0.5], [0.0]), ValueError),
        "busywiden1": ((1, 0, [0.5], [0.0]), ValueError),
    }
    names = list(expand_entries)
    combos = [list(p) for p in itertools.product(names, repeat=2)]
    combos += [["ok", "ok1", b] for b in names[3:]]
    for kinds in combos:
        error = _first_failure(kinds, expand_entries, lambda e: e[:2])
        if error is None:
            continue
        trees, nodes, counts, priors, rewards = [], [], [], [], []
        for k in kinds:
            t, n, p, r = expand_entries[k][0]
            trees.append(t)
            nodes.append(n)
            counts.append(-1 if p is None else len(p))
            priors += p or []
            rewards += r or []

        def call(c: Context, a=(trees, nodes, counts, priors, rewards)) -> Any:
            t, n, k, p, r = a
            return c.forest._engine.expand(
                np.array(t, i32),
                np.array(n, i32),
                np.array(k, i32),
                np.array(p, f32),
                np.array(r, f32),
                np.zeros(len(p), u8),
                np.zeros(len(p), i64),
            )

        cases.append(Case(f"engine expand [{', '.join(kinds)}]", call, error))

        def call(c: Context, a=(trees, nodes, counts, priors, rewards)) -> Any:
            return c.forest.expand(*a)

        cases.append(Case(f"expand [{', '.join(kinds)}]", call, error))
    # the counts' total, and capacity after every entry passed
    cases += [
        Case(
            "expand children arrays longer than the counts",
            lambda c: c.forest.expand([0], [2], [1], [0.5, 0.5]),
            ValueError,
        ),
        Case(
            "expand counts reach past the children arrays, then a bad tree",
            lambda c: c.forest._engine.expand(
                np.array([0, 5], i32),
                np.array([2, 2], i32),
                np.array([3, 1], i32),
                np.zeros(2, f32),
                np.zeros(2, f32),
                np.zeros(2, u8),
                np.zeros(2, i64),
            ),
            ValueError,
        ),
        Case(
            "expand past max_nodes",
            lambda c: c.forest.expand([0], [2], [40], np.full(40, 0.01)),
            CapacityError,
        ),
        Case(
            "expand past max_nodes, then a bad node",
            lambda c: c.forest.expand([0, 1], [2, 77], [40, 1], np.full(41, 0.01)),
            IndexError,
        ),
        Case(
            "expand past max_nodes, then a NaN prior",
            lambda c: c.forest.expand([0, 1], [2, 2], [40, 1], [*[0.01] * 40, NAN]),
            ValueError,
        ),
        Case(
            "expand 65536 children",
            lambda c: c.forest.expand([1], [2], [65536], np.full(65536, 1e-5)),
            ValueError,
        ),
    ]
    # state errors of single-argument operations
    cases += [
        Case("reroot a busy tree", lambda c: c.forest.reroot(0, 1), ValueError),
        Case("prune a busy tree", lambda c: c.forest.prune(1, 2), ValueError),
        Case("compact a busy tree", lambda c: c.forest.compact(1), ValueError),
        Case("reset a busy tree", lambda c: c.forest.reset(0, 3), ValueError),
        Case("reset a busy tree, payload 2**64", lambda c: c.forest.reset(0, 2**64), ValueError),
        Case("reset tree 5, payload 2**64", lambda c: c.forest.reset(5, 2**64), IndexError),
        Case("prune the root", lambda c: c.forest.prune(0, 0), ValueError, idle=True),
        Case("run_synthetic on busy trees", lambda c: c.forest.run_synthetic(2, 2), ValueError),
        Case(
            "run_synthetic on busy trees, seed -1",
            lambda c: c.forest.run_synthetic(2, 2, seed=-1),
            ValueError,
        ),
        Case(
            "run_synthetic past max_nodes",
            lambda c: c.forest.run_synthetic(50, 4),
            CapacityError,
            idle=True,
        ),
        Case("ask past the in-flight limit", lambda c: c.forest.ask(16383), CapacityError),
    ]
    return cases


# ---------------------------------------------------------------------- config dicts
def config_cases() -> list[Case]:
    defaults = SearchConfig().to_dict()
    kinds = {
        name: "str" if isinstance(v, str) else type(v).__name__ for name, v in defaults.items()
    }
    kinds = {n: {"float": "real"}.get(k, k) for n, k in kinds.items()}
    out_of_range: dict[str, list[Any]] = {
        "rule": ["alphago", "PUCT", ""],
        "fpu": ["zero"],
        "qnorm": ["minmax"],
        "backup": ["sum"],
        "c": [-0.5, NAN, INF],
        "c1": [-1.0],
        "c2": [0.0, -1.0],
        "fpu_value": [NAN],
        "fpu_reduction": [INF],
        "value_min": [2.0, NAN],
        "value_max": [-1.0],
        "minmax_floor": [0.0, -1e-9],
        "discount": [1.5, -0.1],
        "virtual_loss_value": [-INF],
        "gumbel_simulations": [0, -(2**63), 2**63],
        "gumbel_max_considered": [0, 2**70],
        "gumbel_c_visit": [NAN],
        "gumbel_c_scale": [INF],
        "max_nodes": [0, 2**31, 2**64],
        "seed": [-1, 2**64],
    }
    cases = []
    for name, kind in kinds.items():
        for label, make in wrong_types(kind):

            def call(c: Context, name=name, make=make) -> Any:
                config = {**defaults, name: make()}
                return type(c.forest._engine)(2, config, 1, np.zeros(2, i64))

            cases.append(Case(f"Engine(config[{name!r}] = {label})", call, TypeError))
        for value in out_of_range.get(name, []):

            def call(c: Context, name=name, value=value) -> Any:
                config = {**defaults, name: value}
                return type(c.forest._engine)(2, config, 1, np.zeros(2, i64))

            cases.append(Case(f"Engine(config[{name!r}] = {value!r})", call, ValueError))

            def call(c: Context, name=name, value=value) -> Any:
                return SearchConfig(**{name: value})

            cases.append(Case(f"SearchConfig({name}={value!r})", call, ValueError))
    more = [
        ("unknown key", {"bogus": 1}, ValueError),
        ("int key", {1: 2}, ValueError),
        ("None key", {None: 2}, ValueError),
        ("unknown key before a wrong type", {"bogus": 1, "c": "x"}, ValueError),
        ("wrong type before a bad enum", {"rule": "alphago", "c": "x"}, TypeError),
        ("wrong type before a bad range", {"c": -1.0, "max_nodes": 1.5}, TypeError),
    ]
    for label, extra, error in more:

        def call(c: Context, extra=extra) -> Any:
            config = {**defaults, **extra}
            return type(c.forest._engine)(2, config, 1, np.zeros(2, i64))

        cases.append(Case(f"Engine(config {label})", call, error))
    for label, value in (("list", [("c", 1.0)]), ("None", None), ("SearchConfig", SearchConfig())):

        def call(c: Context, value=value) -> Any:
            return type(c.forest._engine)(2, value, 1, np.zeros(2, i64))

        cases.append(Case(f"Engine(config = {label})", call, TypeError))
    return cases


# ---------------------------------------------------------------------- from_arrays
def _arrays_with(arrays: dict[str, np.ndarray], key: str, index: int, value: Any) -> dict:
    out = {k: v.copy() for k, v in arrays.items()}
    out[key][index] = value
    return out


def from_arrays_cases() -> list[Case]:
    corruptions: list[tuple[str, Callable[[dict], Any], type]] = [
        ("parent out of range", lambda a: _arrays_with(a, "parent", 2, 40), ValueError),
        ("parent -3", lambda a: _arrays_with(a, "parent", 2, -3), ValueError),
        ("root with a parent", lambda a: _arrays_with(a, "parent", 0, 1), ValueError),
        ("root dead", lambda a: _arrays_with(a, "parent", 0, -2), ValueError),
        ("child not pointing back", lambda a: _arrays_with(a, "parent", 2, 3), ValueError),
        ("first_child out of range", lambda a: _arrays_with(a, "first_child", 1, 100), ValueError),
        ("first_child -5", lambda a: _arrays_with(a, "first_child", 0, -5), ValueError),
        (
            "first_child int32 max",
            lambda a: _arrays_with(a, "first_child", 0, 2**31 - 1),
            ValueError,
        ),
        ("num_children past the end", lambda a: _arrays_with(a, "num_children", 0, 50), ValueError),
        ("num_children 65535", lambda a: _arrays_with(a, "num_children", 0, 65535), ValueError),
        ("depth inconsistent", lambda a: _arrays_with(a, "depth", 4, 7), ValueError),
        ("action inconsistent", lambda a: _arrays_with(a, "action", 3, 0), ValueError),
        ("terminal with children", lambda a: _arrays_with(a, "status", 1, 1 << 14), ValueError),
        ("in-flight 16383 leaf", lambda a: _arrays_with(a, "status", 2, 16383), ValueError),
        ("visits -1", lambda a: _arrays_with(a, "visits", 2, -1), ValueError),
        ("visits int32 min", lambda a: _arrays_with(a, "visits", 0, -(2**31)), ValueError),
        ("q NaN", lambda a: _arrays_with(a, "q", 1, np.nan), ValueError),
        ("q inf", lambda a: _arrays_with(a, "q", 1, np.inf), ValueError),
        ("prior negative", lambda a: _arrays_with(a, "prior", 1, -1.0), ValueError),
        ("reward -inf", lambda a: _arrays_with(a, "reward", 3, -np.inf), ValueError),
        ("minmax NaN", lambda a: _arrays_with(a, "minmax_lo", 0, np.nan), ValueError),
        ("minmax lo > hi", lambda a: _arrays_with(a, "minmax_lo", 1, 5.0), ValueError),
        ("offsets past the end", lambda a: _arrays_with(a, "tree_offsets", 2, 100), ValueError),
        ("offsets decreasing", lambda a: _arrays_with(a, "tree_offsets", 1, 0), ValueError),
        ("offsets start at 1", lambda a: _arrays_with(a, "tree_offsets", 0, 1), ValueError),
        ("offsets int64 max", lambda a: _arrays_with(a, "tree_offsets", 1, 2**63 - 1), ValueError),
        ("offsets int64 min", lambda a: _arrays_with(a, "tree_offsets", 1, -(2**63)), ValueError),
        (
            "offsets int64 max then min",
            lambda a: {**a, "tree_offsets": np.array([0, 2**63 - 1, -(2**63)], i64)},
            ValueError,
        ),
        ("offsets one entry", lambda a: {**a, "tree_offsets": np.array([0], i64)}, ValueError),
        ("offsets empty", lambda a: {**a, "tree_offsets": np.zeros(0, i64)}, ValueError),
        ("missing array", lambda a: {k: v for k, v in a.items() if k != "q"}, ValueError),
        ("extra array", lambda a: {**a, "value_sum": a["q"]}, ValueError),
        ("int key", lambda a: {**a, 7: a["q"]}, ValueError),
        ("missing and wrong dtype", lambda a: {**_drop(a, "q"), "parent": a["q"]}, ValueError),
        ("short array", lambda a: {**a, "visits": a["visits"][:-1]}, ValueError),
        ("short minmax", lambda a: {**a, "minmax_lo": a["minmax_lo"][:1]}, ValueError),
        ("2-D array", lambda a: {**a, "q": a["q"][:, None]}, ValueError),
        ("visits int64", lambda a: {**a, "visits": a["visits"].astype(i64)}, TypeError),
        ("status int16", lambda a: {**a, "status": a["status"].astype(np.int16)}, TypeError),
        ("q a list", lambda a: {**a, "q": a["q"].tolist()}, TypeError),
        ("root_epoch int64", lambda a: {**a, "root_epoch": a["root_epoch"].astype(i64)}, TypeError),
        ("not a dict", lambda a: list(a.items()), TypeError),
        ("None", lambda a: None, TypeError),
    ]
    cases = []
    for name, damage, error in corruptions:
        for level in ("wrapper", "engine"):

            def call(c: Context, damage=damage, level=level) -> Any:
                arrays = damage(c.forest.export_arrays())
                if level == "engine":
                    return type(c.forest._engine).from_arrays(c.forest.config.to_dict(), arrays, 1)
                return Forest.from_arrays(arrays, c.forest.config, engine=c.engine)

            cases.append(Case(f"{level} from_arrays: {name}", call, error))
    return cases


def _drop(arrays: dict, key: str) -> dict:
    return {k: v for k, v in arrays.items() if k != key}


# ---------------------------------------------------------------------- saved files and pickles
def _header(data: bytes) -> tuple[int, dict]:
    (n,) = struct.unpack("<Q", data[:8])
    return n, json.loads(data[8 : 8 + n])


def _with_header(data: bytes, header: dict) -> bytes:
    n, _ = _header(data)
    text = json.dumps(header, sort_keys=True, separators=(",", ":")).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text + data[8 + n :]


def _swap_offsets(a: str, b: str) -> Callable[[bytes], bytes]:
    def damage(data: bytes) -> bytes:
        _, header = _header(data)
        header[a]["data_offsets"], header[b]["data_offsets"] = (
            header[b]["data_offsets"],
            header[a]["data_offsets"],
        )
        return _with_header(data, header)

    return damage


def _edit_metadata(**changes: Any) -> Callable[[bytes], bytes]:
    def damage(data: bytes) -> bytes:
        _, header = _header(data)
        for key, value in changes.items():
            if value is None:
                header["__metadata__"].pop(key, None)
            else:
                header["__metadata__"][key] = value
        return _with_header(data, header)

    return damage


def _edit_config(**changes: Any) -> Callable[[bytes], bytes]:
    def damage(data: bytes) -> bytes:
        _, header = _header(data)
        config = json.loads(header["__metadata__"]["config"])
        config.update(changes)
        header["__metadata__"]["config"] = json.dumps(config, sort_keys=True)
        return _with_header(data, header)

    return damage


def _flip(position: float, bit: int) -> Callable[[bytes], bytes]:
    """Flip one bit at a fraction of the data region (0..1) or, for negative positions, of the
    header."""

    def damage(data: bytes) -> bytes:
        n, _ = _header(data)
        if position >= 0:
            offset = 8 + n + int(position * (len(data) - 8 - n - 1))
        else:
            offset = 8 + int(-position * (n - 1))
        out = bytearray(data)
        out[offset] ^= 1 << bit
        return bytes(out)

    return damage


def file_cases() -> list[Case]:
    damages: list[tuple[str, Callable[[bytes], bytes]]] = []
    for i in range(48):
        damages.append((f"data bit flip {i}", _flip(i / 47, i % 8)))
    for i in range(24):
        damages.append((f"header bit flip {i}", _flip(-(i + 0.5) / 24, (3 * i) % 8)))
    for a, b in (("q", "prior"), ("q", "reward"), ("parent", "first_child"), ("visits", "parent")):
        damages.append((f"offsets of {a} and {b} swapped", _swap_offsets(a, b)))
    damages += [
        ("offsets of prior and reward swapped", _swap_offsets("prior", "reward")),
        ("offsets of action and depth swapped", _swap_offsets("action", "depth")),
        ("offsets of num_children and status swapped", _swap_offsets("num_children", "status")),
        ("checksum removed", _edit_metadata(checksum=None)),
        ("checksum of zeros", _edit_metadata(checksum="sha256:" + "0" * 64)),
        ("checksum upper case", lambda d: _edit_metadata(checksum=_checksum(d).upper())(d)),
        ("format /3", _edit_metadata(format="qengine.forest/3")),
        ("format /1 with a checksum", _edit_metadata(format="qengine.forest/1")),
        ("format missing", _edit_metadata(format=None)),
        ("config missing", _edit_metadata(config=None)),
        ("config not JSON", _edit_metadata(config="{not json")),
        ("config edited c", _edit_config(c=2.5)),
        ("config edited max_nodes", _edit_config(max_nodes=5)),
        ("truncated by 1", lambda d: d[:-1]),
        ("truncated by 8", lambda d: d[:-8]),
        ("truncated to the header", lambda d: d[: 8 + _header(d)[0]]),
        ("truncated to 7 bytes", lambda d: d[:7]),
        ("empty file", lambda d: b""),
        ("one extra byte", lambda d: d + b"\0"),
        ("header size 2**63", lambda d: struct.pack("<Q", 2**63) + d[8:]),
        ("header size 0", lambda d: struct.pack("<Q", 0) + d[8:]),
        ("header not JSON", lambda d: d[:8] + b"[" * _header(d)[0] + d[8 + _header(d)[0] :]),
        ("random bytes", lambda d: bytes(np.random.default_rng(0).integers(0, 256, 512, u8))),
    ]
    cases = []
    for name, damage in damages:

        def call(c: Context, name=name, damage=damage) -> Any:
            path = c.directory / f"damaged-{abs(hash(name))}.safetensors"
            path.write_bytes(damage(c.good_file.read_bytes()))
            return Forest.load(path, engine=c.engine)

        cases.append(Case(f"load: {name}", call, ValueError))

    def state(c: Context, **changes: Any) -> dict:
        s = c.forest.__getstate__()
        for key, value in changes.items():
            if value is None:
                s.pop(key)
            else:
                s[key] = value
        return s

    states: list[tuple[str, Callable[[Context], Any], type]] = [
        ("engine 'gpu'", lambda c: state(c, engine="gpu"), ValueError),
        ("engine missing", lambda c: state(c, engine=None), ValueError),
        ("engine 3", lambda c: state(c, engine=3), TypeError),
        ("no arrays", lambda c: state(c, arrays=None), ValueError),
        ("no config", lambda c: state(c, config=None), ValueError),
        ("config a str", lambda c: state(c, config="puct"), TypeError),
        ("config unknown key", lambda c: state(c, config={"bogus": 1}), ValueError),
        ("num_threads 1.5", lambda c: state(c, num_threads=1.5), TypeError),
        ("num_threads -1", lambda c: state(c, num_threads=-1), ValueError),
        ("arrays a list", lambda c: state(c, arrays=[]), TypeError),
        ("not a dict", lambda c: [("engine", "native")], TypeError),
        ("an int", lambda c: 0, TypeError),
        ("engine a list", lambda c: {**state(c), "engine": ["native"]}, TypeError),
    ]
    for name, make, error in states:

        def call(c: Context, make=make) -> Any:
            forest = Forest.__new__(Forest)
            forest.__setstate__(make(c))

        cases.append(Case(f"__setstate__: {name}", call, error))
    return cases


def _checksum(data: bytes) -> str:
    return _header(data)[1]["__metadata__"]["checksum"]


# ---------------------------------------------------------------------- all of it
def catalogue() -> list[Case]:
    return (
        scalar_cases()
        + array_cases()
        + batch_cases()
        + config_cases()
        + from_arrays_cases()
        + (file_cases())
    )


def run(engine: str, start: int, stop: int) -> list[dict[str, Any]]:
    """Run cases [start, stop) on ``engine``; one result dict per case."""
    from core_helpers import assert_arrays_equal

    cases = catalogue()[start:stop]
    results = []
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        good = directory / "good.safetensors"
        idle_forest(engine).save(good)
        for i, case in enumerate(cases, start):
            print(f"start {i} {case.name}", file=sys.stderr, flush=True)
            forest = idle_forest(engine) if case.idle else busy_forest(engine)
            before = forest.export_arrays()
            ctx = Context(engine, directory, forest, good)
            outcome: dict[str, Any] = {"index": i, "name": case.name}
            try:
                case.call(ctx)
                outcome["raised"] = None
            except Exception as error:  # every class is recorded and compared
                outcome["raised"] = type(error).__name__
                outcome["message"] = str(error)[:300]
                if not isinstance(error, (TypeError, ValueError, IndexError, RuntimeError)):
                    outcome["traceback"] = traceback.format_exc()[-2000:]
            try:
                assert_arrays_equal(before, forest.export_arrays(), case.name)
                outcome["unchanged"] = True
            except AssertionError as error:
                outcome["unchanged"] = False
                outcome["change"] = str(error)[:300]
            outcome["expected"] = case.expected.__name__
            results.append(outcome)
    return results


if __name__ == "__main__":
    engine, start, stop = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    for result in run(engine, start, stop):
        print(json.dumps(result))
