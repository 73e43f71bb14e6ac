"""Node storage of one tree of the reference engine (docs section 1).

Legend: ``N`` nodes of one tree.

A tree is a struct of Python lists, one list per field, indexed by the int32 node id (root = 0).
The float fields hold Python floats that are exactly representable in float32 (every write goes
through ``f32``), so exporting them to ``np.float32`` arrays is exact. The packed ``status`` word of
the native core is kept here as three lists (``in_flight``, ``terminal``, ``exhausted``) and packed
only on export.
"""

from __future__ import annotations

import math

import numpy as np

from .._layout import (
    DEAD_SLOT,
    DERIVED_DTYPES,
    EXHAUSTED_BIT,
    MAX_CHILDREN,
    MAX_DEPTH,
    MAX_IN_FLIGHT,
    NO_NODE,
    NODE_DTYPES,
    ROOT,
    STATUS,
    TERMINAL_BIT,
    VIEW_FIELDS,
)

# The layout's names for the roles of its sentinels (csrc/qengine/layout.h).
NO_PARENT = NO_NODE  # parent of the root
NO_CHILD = NO_NODE  # first_child of an unexpanded node
DEAD = DEAD_SLOT  # parent of a slot freed by relocating widening

STORED_DTYPES: dict[str, np.dtype] = NODE_DTYPES
"""Dtype of every stored field, as exported (docs section 9, ``export_arrays``)."""

# The per-node lists of a Tree, in record order (see Tree.record / Tree.append_record): the
# stored fields with the status word kept unpacked, as its derived fields.
LIST_FIELDS: tuple[str, ...] = tuple(
    f for name in NODE_DTYPES for f in (DERIVED_DTYPES if name == STATUS else (name,))
)

__all__ = [
    "DEAD",
    "DERIVED_DTYPES",
    "EXHAUSTED_BIT",
    "LIST_FIELDS",
    "MAX_CHILDREN",
    "MAX_DEPTH",
    "MAX_IN_FLIGHT",
    "NO_CHILD",
    "NO_PARENT",
    "ROOT",
    "STORED_DTYPES",
    "TERMINAL_BIT",
    "VIEW_FIELDS",
    "Tree",
    "f32",
]


def f32(x: float) -> float:
    """Round a double to the nearest float32 (as a Python float)."""
    return float(np.float32(x))


class Tree:
    """One search tree: per-node lists plus the per-tree minmax statistics and root epoch."""

    def __init__(self, root_payload: int = 0) -> None:
        self.parent: list[int] = [NO_PARENT]
        self.first_child: list[int] = [NO_CHILD]
        self.num_children: list[int] = [0]
        self.action: list[int] = [0]
        self.depth: list[int] = [0]
        self.in_flight: list[int] = [0]
        self.terminal: list[bool] = [False]
        self.exhausted: list[bool] = [False]
        self.prior: list[float] = [1.0]
        self.visits: list[int] = [0]
        self.q: list[float] = [0.0]
        self.reward: list[float] = [0.0]
        self.payload: list[int] = [int(root_payload)]
        self.minmax_lo: float = math.inf
        self.minmax_hi: float = -math.inf
        self.root_epoch: int = 0

    @classmethod
    def empty(cls) -> Tree:
        """A tree with no node at all (to be filled with append_record)."""
        tree = cls()
        for name in LIST_FIELDS:
            getattr(tree, name).clear()
        return tree

    def copy(self) -> Tree:
        tree = Tree.empty()
        for name in LIST_FIELDS:
            setattr(tree, name, list(getattr(self, name)))
        tree.minmax_lo, tree.minmax_hi = self.minmax_lo, self.minmax_hi
        tree.root_epoch = self.root_epoch
        return tree

    # ------------------------------------------------------------------ structure
    @property
    def size(self) -> int:
        return len(self.parent)

    def children(self, node: int) -> range:
        first = self.first_child[node]
        return range(first, first + self.num_children[node])

    def is_expanded(self, node: int) -> bool:
        return self.num_children[node] > 0

    def is_alive(self, node: int) -> bool:
        return self.parent[node] != DEAD

    def own_in_flight(self, node: int) -> int:
        """In-flight count of the node as a leaf: f(x) - sum of f over its children (5.1)."""
        return self.in_flight[node] - sum(self.in_flight[c] for c in self.children(node))

    def status(self, node: int) -> int:
        return (
            self.in_flight[node]
            | (TERMINAL_BIT if self.terminal[node] else 0)
            | (EXHAUSTED_BIT if self.exhausted[node] else 0)
        )

    # ------------------------------------------------------------------ records
    def record(self, node: int) -> tuple:
        """Every field of one node, in LIST_FIELDS order."""
        return tuple(getattr(self, name)[node] for name in LIST_FIELDS)

    def append_record(self, record: tuple) -> int:
        for name, value in zip(LIST_FIELDS, record, strict=True):
            getattr(self, name).append(value)
        return self.size - 1

    def append_child(
        self, parent: int, action: int, prior: float, reward: float, terminal: bool, payload: int
    ) -> int:
        """A fresh unexpanded child (visits 0, q 0, not in flight, not exhausted)."""
        return self.append_record(
            (
                parent,
                NO_CHILD,
                0,
                action,
                self.depth[parent] + 1,
                0,
                bool(terminal),
                False,
                f32(prior),
                0,
                0.0,
                f32(reward),
                int(payload),
            )
        )

    def kill(self, node: int) -> None:
        """Turn a slot into a dead slot: parent -2, first_child -1, everything else zero."""
        dead = (DEAD, NO_CHILD, 0, 0, 0, 0, False, False, 0.0, 0, 0.0, 0.0, 0)
        for name, value in zip(LIST_FIELDS, dead, strict=True):
            getattr(self, name)[node] = value

    # ------------------------------------------------------------------ export
    def field_array(self, name: str) -> np.ndarray:
        """A fresh numpy array [N] of a stored or derived field."""
        if name == STATUS:
            return np.array([self.status(i) for i in range(self.size)], dtype=STORED_DTYPES[STATUS])
        if name in DERIVED_DTYPES:
            return np.array(getattr(self, name), dtype=DERIVED_DTYPES[name])
        return np.array(getattr(self, name), dtype=STORED_DTYPES[name])
