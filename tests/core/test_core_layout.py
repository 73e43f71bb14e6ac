"""The node layout is defined once, in the core (``csrc/qengine/layout.h``), and exported as
``qengine._core.NODE_FIELDS`` etc.; these tests hold it to the documented contract
(docs/search-semantics.md, section 1) and check that both engines and ``Forest`` follow it."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from core_helpers import ENGINES

from qengine import Forest, SearchConfig, _layout
from qengine._native import core

DOCS = Path(__file__).resolve().parents[2] / "docs" / "search-semantics.md"
DOC_TYPES = {"int32": "int32", "uint16": "uint16", "float32": "float32", "int64": "int64"}


def documented_fields() -> dict[str, str]:
    """The table of section 1: {field: dtype}, in table order."""
    section = DOCS.read_text().split("## 1.")[1].split("## 2.")[0]
    rows = re.findall(r"^\|\s*`(\w+)`\s*\|\s*(\w+)\s*\|", section, flags=re.MULTILINE)
    return {name: DOC_TYPES[ctype] for name, ctype in rows}


@pytest.mark.skipif(not DOCS.exists(), reason="needs the source tree's docs")
def test_exported_layout_is_the_documented_one():
    assert core().NODE_FIELDS == documented_fields()


def test_status_bits_and_sentinels():
    c = core()
    assert c.STATUS_IN_FLIGHT_MASK == 2**14 - 1 == c.MAX_IN_FLIGHT  # bits 0-13
    assert c.STATUS_TERMINAL == 1 << 14 and c.STATUS_EXHAUSTED == 1 << 15
    assert (c.ROOT, c.NO_NODE, c.DEAD_SLOT) == (0, -1, -2)
    assert c.TREE_FIELDS == {"minmax_lo": "float64", "minmax_hi": "float64", "root_epoch": "uint64"}
    assert c.DERIVED_FIELDS == {"in_flight": "int32", "terminal": "bool", "exhausted": "bool"}
    sizes = [np.dtype(d).itemsize for d in c.NODE_FIELDS.values()]
    assert c.BYTES_PER_NODE == (sum(sizes), sum(sizes) - 8) == (40, 32)
    assert c.Forest.bytes_per_node == c.BYTES_PER_NODE


@pytest.mark.parametrize("engine", ENGINES)
def test_both_engines_export_the_layout(engine):
    forest = Forest(3, SearchConfig(), engine=engine)
    forest.run_synthetic(20, 3)
    for arrays in (forest.export_arrays(), forest.export_tree(1)):
        assert list(arrays) == list(_layout.EXPORT_DTYPES)
        assert {k: a.dtype for k, a in arrays.items()} == _layout.EXPORT_DTYPES
    for name in _layout.VIEW_FIELDS:
        assert forest.view(0, name).dtype == _layout.NODE_DTYPES[name]
    for name in _layout.DERIVED_FIELDS:
        assert forest.view(0, name).dtype == _layout.DERIVED_DTYPES[name]
    status = forest.export_tree(0)["status"]
    terminal = forest.view(0, "terminal")
    np.testing.assert_array_equal(_layout.terminal(status), terminal)


@pytest.mark.parametrize("engine", ENGINES)
def test_view_refuses_status_and_unknown_names(engine):
    forest = Forest(1, engine=engine)
    for name in ("status", "value_sum"):
        with pytest.raises(ValueError, match="field"):
            forest.view(0, name)


def documented_config() -> list[str]:
    """The names of the table of section 2, in order (a row may name two fields)."""
    section = DOCS.read_text().split("## 2.")[1].split("## 3.")[0]
    cells = re.findall(r"^\|\s*(`[^|]+)\|", section, flags=re.MULTILINE)
    return [name for cell in cells for name in re.findall(r"`(\w+)`", cell)]


@pytest.mark.skipif(not DOCS.exists(), reason="needs the source tree's docs")
def test_config_schema_is_the_documented_one_and_the_dataclass():
    schema = core().CONFIG_FIELDS
    names = [f["name"] for f in schema]
    assert names == documented_config()
    defaults = SearchConfig()
    for field in schema:
        assert getattr(defaults, field["name"]) == field["default"], field["name"]
        assert field["kind"] in ("str", "float", "int", "bool") and field["doc"]
        assert bool(field["choices"]) == (field["kind"] == "str")
    assert core().check_config({}) == SearchConfig().to_dict()


@pytest.mark.parametrize(
    ("changes", "error"),
    [({"c": "x"}, TypeError), ({"rule": "alphago"}, ValueError), ({"two_player": 1}, TypeError)],
)
def test_config_checks_are_the_cores(changes, error):
    with pytest.raises(error) as from_python:
        SearchConfig(**changes)
    with pytest.raises(error) as from_core:
        core().check_config(changes)
    assert str(from_python.value) == str(from_core.value)
