"""Flat arrays of a whole forest (docs 5.9 and section 9 ``export_arrays`` / ``from_arrays``).

Legend: ``B`` trees, ``T`` nodes of all trees together.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .._layout import EXPORT_DTYPES, TREE_DTYPES
from .tree import (
    DEAD,
    EXHAUSTED_BIT,
    LIST_FIELDS,
    MAX_IN_FLIGHT,
    NO_CHILD,
    NO_PARENT,
    STORED_DTYPES,
    TERMINAL_BIT,
    Tree,
)

DEAD_RECORD_TAIL = (0, 0, 0, 0, False, False, 0.0, 0, 0.0, 0.0, 0)  # fields after first_child
ALL_KEYS = tuple(EXPORT_DTYPES)


def export_arrays(trees: list[Tree]) -> dict[str, np.ndarray]:
    """Every stored field [T] with the trees concatenated, tree_offsets [B+1] and per-tree stats."""
    out: dict[str, np.ndarray] = {}
    for name in STORED_DTYPES:
        parts = [tree.field_array(name) for tree in trees]
        out[name] = np.concatenate(parts).astype(STORED_DTYPES[name], copy=False)
    sizes = [tree.size for tree in trees]
    out["tree_offsets"] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    for name, dtype in TREE_DTYPES.items():  # Tree attributes of the same names
        out[name] = np.array([getattr(t, name) for t in trees], dtype=dtype)
    return out


def _corrupt(message: str) -> ValueError:
    return ValueError(f"corrupt forest arrays: {message}")


def check_array_types(arrays: Any) -> None:
    """The ``arrays`` argument of ``from_arrays`` (the native bindings' order): a dict (TypeError)
    with every key (ValueError) and no other (ValueError), then key by key a numpy array
    (TypeError) of its dtype (TypeError), 1-D (ValueError)."""
    if not isinstance(arrays, dict):
        raise TypeError(f"arrays must be a dict of numpy arrays, got {type(arrays).__name__}")
    missing = [k for k in ALL_KEYS if k not in arrays]
    if missing:
        raise _corrupt(f"missing arrays {missing}")
    unknown = sorted(repr(k) for k in arrays if not (isinstance(k, str) and k in ALL_KEYS))
    if unknown:
        raise _corrupt(f"unknown arrays {', '.join(unknown)}")
    for key, dtype in EXPORT_DTYPES.items():
        array = arrays[key]
        if not isinstance(array, np.ndarray):
            raise TypeError(f"arrays[{key!r}] must be a numpy array, got {type(array).__name__}")
        if array.dtype != dtype:
            raise TypeError(f"arrays[{key!r}] must have dtype {np.dtype(dtype)}, got {array.dtype}")
        if array.ndim != 1:
            raise _corrupt(f"{key} must be 1-D, got shape {array.shape}")


def trees_from_arrays(arrays: Any, max_nodes: int) -> list[Tree]:
    """Validate ``export_arrays`` output and rebuild the trees (ValueError if corrupt, TypeError
    for a wrong dtype)."""
    check_array_types(arrays)
    offsets = arrays["tree_offsets"].tolist()
    num_trees = len(offsets) - 1
    if num_trees < 1:
        raise _corrupt("tree_offsets must have at least 2 entries")
    if offsets[0] != 0:
        raise _corrupt(f"tree_offsets[0] must be 0, got {offsets[0]}")
    total = offsets[-1]
    for key in STORED_DTYPES:
        if arrays[key].shape[0] != total:
            raise _corrupt(f"{key} has {arrays[key].shape[0]} entries, tree_offsets says {total}")
    for key in TREE_DTYPES:
        if arrays[key].shape[0] != num_trees:
            raise _corrupt(f"{key} has {arrays[key].shape[0]} entries, expected {num_trees}")
    columns = {key: arrays[key].tolist() for key in STORED_DTYPES}
    trees = []
    for t in range(num_trees):
        lo, hi = offsets[t], offsets[t + 1]
        if hi <= lo:
            raise _corrupt(f"tree {t} is empty (tree_offsets must increase strictly)")
        if hi - lo > max_nodes:
            raise _corrupt(f"tree {t} has {hi - lo} nodes, above max_nodes={max_nodes}")
        tree = _tree_from_columns({k: v[lo:hi] for k, v in columns.items()}, t)
        tree.minmax_lo = float(arrays["minmax_lo"][t])
        tree.minmax_hi = float(arrays["minmax_hi"][t])
        tree.root_epoch = int(arrays["root_epoch"][t])
        if math.isnan(tree.minmax_lo) or math.isnan(tree.minmax_hi):
            raise _corrupt(f"tree {t}: minmax is NaN")
        empty = tree.minmax_lo == math.inf and tree.minmax_hi == -math.inf
        finite = math.isfinite(tree.minmax_lo) and math.isfinite(tree.minmax_hi)
        if not empty and not (finite and tree.minmax_lo <= tree.minmax_hi):
            raise _corrupt(f"tree {t}: minmax ({tree.minmax_lo}, {tree.minmax_hi}) is invalid")
        trees.append(tree)
    return trees


def _tree_from_columns(col: dict[str, list], t: int) -> Tree:
    n = len(col["parent"])
    tree = Tree.empty()
    for i in range(n):
        status = col["status"][i]
        in_flight = status & MAX_IN_FLIGHT
        record = dict(
            parent=col["parent"][i],
            first_child=col["first_child"][i],
            num_children=col["num_children"][i],
            action=col["action"][i],
            depth=col["depth"][i],
            in_flight=in_flight,
            terminal=bool(status & TERMINAL_BIT),
            exhausted=bool(status & EXHAUSTED_BIT),
            prior=col["prior"][i],
            visits=col["visits"][i],
            q=col["q"][i],
            reward=col["reward"][i],
            payload=col["payload"][i],
        )
        tree.append_record(tuple(record[name] for name in LIST_FIELDS))

    def bad(i: int, what: str) -> ValueError:
        return _corrupt(f"tree {t} node {i}: {what}")

    for i in range(n):
        p, fc, nc = tree.parent[i], tree.first_child[i], tree.num_children[i]
        if p == DEAD:
            if i == 0:
                raise bad(i, "the root is a dead slot")
            if fc != NO_CHILD or tree.record(i)[2:] != DEAD_RECORD_TAIL:
                raise bad(i, "dead slot with non-zero fields")
            continue
        if i == 0:
            if p != NO_PARENT or tree.depth[i] != 0 or tree.action[i] != 0:
                raise bad(i, "the root must have parent -1, depth 0, action 0")
        else:
            if not 0 <= p < n or p == i:
                raise bad(i, f"parent {p} out of range")
            pfc, pnc = tree.first_child[p], tree.num_children[p]
            if not (pnc > 0 and pfc <= i < pfc + pnc):
                raise bad(i, f"not inside the children block of its parent {p}")
            if tree.action[i] != i - pfc:
                raise bad(i, f"action {tree.action[i]} != position {i - pfc} in its block")
            if tree.depth[i] != tree.depth[p] + 1:
                raise bad(i, f"depth {tree.depth[i]} != parent depth + 1")
        if (nc == 0) != (fc == NO_CHILD):
            raise bad(i, f"first_child {fc} inconsistent with num_children {nc}")
        if nc > 0:
            if not (1 <= fc and fc + nc <= n):
                raise bad(i, f"children block {fc}..{fc + nc - 1} out of range")
            if any(tree.parent[c] != i for c in range(fc, fc + nc)):
                raise bad(i, "a child in its block does not point back to it")
            if tree.terminal[i]:
                raise bad(i, "terminal node with children")
        if tree.visits[i] < 0:
            raise bad(i, f"negative visits {tree.visits[i]}")
        if not (math.isfinite(tree.prior[i]) and tree.prior[i] >= 0):
            raise bad(i, f"prior {tree.prior[i]} is not finite and >= 0")
        if not (math.isfinite(tree.q[i]) and math.isfinite(tree.reward[i])):
            raise bad(i, "non-finite q or reward")
        if nc > 0 and not tree.exhausted[i] and all(tree.exhausted[c] for c in tree.children(i)):
            raise bad(i, "every child is exhausted but the node is not marked exhausted")
        own = tree.in_flight[i] - sum(tree.in_flight[c] for c in tree.children(i))
        if own not in (0, 1):
            raise bad(i, f"in-flight count {tree.in_flight[i]} inconsistent with its children")
    return tree
