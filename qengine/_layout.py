"""The node layout and limits of the native core, as Python and numpy values.

Legend: ``N`` nodes of one tree, ``B`` trees.

Defined once, in ``csrc/qengine/layout.h`` (an X-macro table that also generates the core's
columns, its export / import structs and the binding's dicts), and exported by
``qengine._core``; ``qengine.forest``, the reference engine, the searched-tree store and the
critics read it from here instead of restating it (docs/search-semantics.md, section 1).
"""

from __future__ import annotations

import numpy as np

from ._native import core

_core = core()

NODE_DTYPES: dict[str, np.dtype] = {name: np.dtype(d) for name, d in _core.NODE_FIELDS.items()}
"""Every stored node field [N] and its dtype, in the order of ``export_arrays``."""
TREE_DTYPES: dict[str, np.dtype] = {name: np.dtype(d) for name, d in _core.TREE_FIELDS.items()}
"""The per-tree fields [B] of an export (after ``tree_offsets``, int64 [B+1])."""
DERIVED_DTYPES: dict[str, np.dtype] = {
    name: np.dtype(d) for name, d in _core.DERIVED_FIELDS.items()
}
"""The fields unpacked from ``status`` (served by ``Forest.view`` as copies)."""

STATUS = "status"  # the packed word: in-flight count | terminal bit | exhausted bit
NODE_FIELDS: tuple[str, ...] = tuple(NODE_DTYPES)
VIEW_FIELDS: tuple[str, ...] = tuple(n for n in NODE_FIELDS if n != STATUS)
"""Fields readable as zero-copy views (status is served unpacked, as ``DERIVED_FIELDS``)."""
DERIVED_FIELDS: tuple[str, ...] = tuple(DERIVED_DTYPES)
TREE_FIELDS: tuple[str, ...] = tuple(TREE_DTYPES)
EXPORT_DTYPES: dict[str, np.dtype] = {
    **NODE_DTYPES,
    "tree_offsets": np.dtype(np.int64),
    **TREE_DTYPES,
}
"""Every array of ``export_arrays`` / ``export_tree``, in order."""

ROOT: int = _core.ROOT  # id of the root of every tree
NO_NODE: int = _core.NO_NODE  # parent of the root; first_child of an unexpanded node
DEAD_SLOT: int = _core.DEAD_SLOT  # parent of a slot left behind by progressive widening
IN_FLIGHT_MASK: int = _core.STATUS_IN_FLIGHT_MASK  # status bits 0-13
TERMINAL_BIT: int = _core.STATUS_TERMINAL  # status bit 14
EXHAUSTED_BIT: int = _core.STATUS_EXHAUSTED  # status bit 15
BYTES_PER_NODE: tuple[int, int] = tuple(_core.BYTES_PER_NODE)  # with, without the payload

MAX_IN_FLIGHT: int = _core.MAX_IN_FLIGHT  # largest in-flight count (14 status bits)
MAX_CHILDREN: int = _core.MAX_CHILDREN  # uint16 child count
MAX_DEPTH: int = _core.MAX_DEPTH  # uint16 depth
MAX_VISITS: int = _core.MAX_VISITS  # visit counts saturate here (int32), never wrap
MAX_TREES: int = _core.MAX_TREES  # trees per forest (int32 tree ids)
MAX_THREADS: int = _core.MAX_THREADS  # threads per forest (num_threads 0: all cores)


def alive(parent: np.ndarray) -> np.ndarray:
    """bool [N]: the slot holds a node (not a dead slot left by widening)."""
    return parent != DEAD_SLOT


def terminal(status: np.ndarray) -> np.ndarray:
    """bool [N]: the terminal bit of exported status words."""
    return (status & TERMINAL_BIT) != 0
