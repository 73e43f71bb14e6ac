"""``ReferenceEngine``: the engine interface of docs section 9 in pure Python.

Legend: ``B`` trees, ``N`` nodes of one tree, ``L`` leaves in a batch, ``M`` nodes expanded in a
batch, ``C`` children given in a batch, ``P`` path entries.

Every public method validates its whole input first (dtypes: TypeError; shapes, values, state:
ValueError; tree or node ids out of range: IndexError; node cap: CapacityError) and only then
mutates, so a call that raises leaves every tree unchanged.
"""

from __future__ import annotations

import math
import operator
import os
from typing import Any

import numpy as np

from qengine.config import SearchConfig
from qengine.errors import CapacityError

from . import pairs as pairs_mod
from . import synthetic, tree_ops
from .ops import backup_path, cancel_path, descend, expand_node
from .serialize import export_arrays, trees_from_arrays
from .tree import (
    DERIVED_DTYPES,
    MAX_CHILDREN,
    MAX_DEPTH,
    MAX_IN_FLIGHT,
    ROOT,
    VIEW_FIELDS,
    Tree,
)

FLOAT32_MAX = float(np.finfo(np.float32).max)


# ---------------------------------------------------------------------- argument checks
def _array(name: str, value: Any, dtype: type) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a numpy array of {np.dtype(dtype)}, got {type(value)}")
    if value.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {value.dtype}")
    if value.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {value.shape}")
    return value


def _int(name: str, value: Any) -> int:
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an integer, got {type(value).__name__}") from None


def _config(config: Any) -> SearchConfig:
    if isinstance(config, SearchConfig):
        return config
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict, got {type(config).__name__}")
    return SearchConfig.from_dict(config)


def _num_threads(num_threads: Any) -> int:
    n = _int("num_threads", num_threads)
    if n < 0:
        raise ValueError(f"num_threads must be >= 0 (0 = all cores), got {n}")
    return n if n > 0 else (os.cpu_count() or 1)


class ReferenceEngine:
    """B trees searched with the exact semantics of docs/search-semantics.md (slow, readable)."""

    bytes_per_node = (40, 32)

    def __init__(
        self, num_trees: int, config: Any, num_threads: int, root_payloads: np.ndarray
    ) -> None:
        num_trees = _int("num_trees", num_trees)
        if num_trees < 1:
            raise ValueError(f"num_trees must be >= 1, got {num_trees}")
        self._config = _config(config)
        self._num_threads = _num_threads(num_threads)
        payloads = _array("root_payloads", root_payloads, np.int64)
        if payloads.shape[0] != num_trees:
            raise ValueError(f"root_payloads has {payloads.shape[0]} entries, expected {num_trees}")
        self._trees = [Tree(p) for p in payloads.tolist()]

    @staticmethod
    def from_arrays(config: Any, arrays: Any, num_threads: int) -> ReferenceEngine:
        cfg = _config(config)
        trees = trees_from_arrays(arrays, cfg.max_nodes)
        engine = ReferenceEngine.__new__(ReferenceEngine)
        engine._config = cfg
        engine._num_threads = _num_threads(num_threads)
        engine._trees = trees
        return engine

    # ------------------------------------------------------------------ basics
    @property
    def num_trees(self) -> int:
        return len(self._trees)

    @property
    def num_threads(self) -> int:
        return self._num_threads

    def _tree_id(self, tree: Any) -> int:
        t = _int("tree", tree)
        if not 0 <= t < len(self._trees):
            raise IndexError(f"tree {t} out of range [0, {len(self._trees)})")
        return t

    def _node_id(self, t: int, node: Any, *, alive: bool = True) -> int:
        n = _int("node", node)
        size = self._trees[t].size
        if not 0 <= n < size:
            raise IndexError(f"node {n} out of range [0, {size}) in tree {t}")
        if alive and not self._trees[t].is_alive(n):
            raise ValueError(f"node {n} of tree {t} is a dead slot (moved by widening)")
        return n

    def _leaf_batch(self, trees: Any, nodes: Any) -> tuple[list[int], list[int]]:
        """Validate (tree, node) pairs of asked leaves in flight (backup / cancel)."""
        trees = _array("trees", trees, np.int32)
        nodes = _array("nodes", nodes, np.int32)
        if trees.shape != nodes.shape:
            raise ValueError(f"trees {trees.shape} and nodes {nodes.shape} differ in length")
        seen = set()
        ts, ns = trees.tolist(), nodes.tolist()
        for t, n in zip(ts, ns, strict=True):
            t = self._tree_id(t)
            n = self._node_id(t, n)
            if (t, n) in seen:
                raise ValueError(f"leaf (tree {t}, node {n}) appears twice in one call")
            seen.add((t, n))
            if self._trees[t].own_in_flight(n) != 1:
                raise ValueError(
                    f"node {n} of tree {t} is not a leaf in flight (never asked, or already "
                    "told or cancelled)"
                )
        return ts, ns

    # ------------------------------------------------------------------ search loop
    def ask(self, max_leaves: int, with_paths: bool) -> dict[str, np.ndarray]:
        k = _int("max_leaves", max_leaves)
        if k < 1:
            raise ValueError(f"max_leaves must be >= 1, got {k}")
        with_paths = bool(with_paths)
        for t, tree in enumerate(self._trees):  # 5.1: checked upfront, with K, in every tree
            if tree.in_flight[ROOT] + k > MAX_IN_FLIGHT:
                raise CapacityError(
                    f"ask: tree {t} has {tree.in_flight[ROOT]} leaves in flight; {k} more could "
                    f"pass the limit of {MAX_IN_FLIGHT} (tell or cancel leaves, or ask fewer)"
                )
        out: dict[str, list] = {
            key: [] for key in ("tree", "node", "depth", "payload", "nodes", "actions", "payloads")
        }
        offsets = [0]
        hits = [0] * len(self._trees)
        collisions = [0] * len(self._trees)
        for t, tree in enumerate(self._trees):
            for leaf, path in self._ask_tree(t, k, hits, collisions):
                out["tree"].append(t)
                out["node"].append(leaf)
                out["depth"].append(tree.depth[leaf])
                out["payload"].append(tree.payload[leaf])
                if with_paths:
                    out["nodes"].extend(path)
                    out["actions"].extend(tree.action[p] for p in path)
                    out["payloads"].extend(tree.payload[p] for p in path)
                offsets.append(len(out["nodes"]))
        return dict(
            tree=np.array(out["tree"], dtype=np.int32),
            node=np.array(out["node"], dtype=np.int32),
            depth=np.array(out["depth"], dtype=np.int32),
            payload=np.array(out["payload"], dtype=np.int64),
            path_offsets=np.array(offsets, dtype=np.int64),
            path_nodes=np.array(out["nodes"], dtype=np.int32),
            path_actions=np.array(out["actions"], dtype=np.int32),
            path_payloads=np.array(out["payloads"], dtype=np.int64),
            terminal_hits=np.array(hits, dtype=np.int64),
            collisions=np.array(collisions, dtype=np.int64),
        )

    def _ask_tree(self, t: int, k: int, hits: list[int], collisions: list[int]):
        """Up to k descents in tree t (5.1); yields (leaf, path) for every leaf returned."""
        tree = self._trees[t]
        for _ in range(k):
            if tree.exhausted[ROOT]:
                return
            d = descend(tree, self._config, t)
            if d.kind == "leaf":
                yield d.path[-1], d.path
            elif d.kind == "terminal_hit":
                hits[t] += 1
            else:
                collisions[t] += 1

    def expand(
        self,
        trees: np.ndarray,
        nodes: np.ndarray,
        counts: np.ndarray,
        priors: np.ndarray,
        rewards: np.ndarray,
        terminal: np.ndarray,
        payloads: np.ndarray,
    ) -> None:
        trees = _array("trees", trees, np.int32)
        nodes = _array("nodes", nodes, np.int32)
        counts = _array("counts", counts, np.int32)
        priors = _array("priors", priors, np.float32)
        rewards = _array("rewards", rewards, np.float32)
        terminal = _array("terminal", terminal, np.uint8)
        payloads = _array("payloads", payloads, np.int64)
        if not trees.shape == nodes.shape == counts.shape:
            raise ValueError(
                f"trees, nodes and counts differ in length: {trees.shape[0]}, {nodes.shape[0]}, "
                f"{counts.shape[0]}"
            )
        if counts.size and counts.min() < 0:
            raise ValueError(f"counts must be >= 0, got {int(counts.min())}")
        total = int(counts.sum(dtype=np.int64))
        for name, array in (
            ("priors", priors),
            ("rewards", rewards),
            ("terminal", terminal),
            ("payloads", payloads),
        ):
            if array.shape[0] != total:
                raise ValueError(f"{name} has {array.shape[0]} entries but counts sum to {total}")
        if not np.all(np.isfinite(priors)) or (priors.size and priors.min() < 0):
            raise ValueError("priors must be finite and >= 0")
        if not np.all(np.isfinite(rewards)):
            raise ValueError("rewards must be finite")
        ts, ns, cs = trees.tolist(), nodes.tolist(), counts.tolist()
        self._check_expand(ts, ns, cs)
        priors_l, rewards_l = priors.tolist(), rewards.tolist()
        terminal_l, payloads_l = (terminal != 0).tolist(), payloads.tolist()
        start = 0
        for t, n, c in zip(ts, ns, cs, strict=True):
            end = start + c
            expand_node(
                self._trees[t],
                n,
                priors_l[start:end],
                rewards_l[start:end],
                terminal_l[start:end],
                payloads_l[start:end],
            )
            start = end

    def _check_expand(self, ts: list[int], ns: list[int], cs: list[int]) -> None:
        """Simulate the expansions in call order (sizes, relocations) without mutating."""
        size = {}
        dead: set[tuple[int, int]] = set()
        seen: set[tuple[int, int]] = set()
        for t, n, c in zip(ts, ns, cs, strict=True):
            t = self._tree_id(t)
            n = self._node_id(t, n)
            tree = self._trees[t]
            if (t, n) in seen:
                raise ValueError(f"node {n} of tree {t} appears twice in one expand call")
            seen.add((t, n))
            if (t, n) in dead:
                raise ValueError(
                    f"node {n} of tree {t} was moved by an earlier widening in this same call"
                )
            if tree.terminal[n]:
                raise ValueError(f"node {n} of tree {t} is terminal and cannot be expanded")
            size.setdefault(t, tree.size)
            if c == 0:
                continue
            old = tree.num_children[n]
            if old + c > MAX_CHILDREN:
                raise ValueError(
                    f"node {n} of tree {t} would have {old + c} children (max {MAX_CHILDREN})"
                )
            if tree.depth[n] + 1 > MAX_DEPTH:
                raise ValueError(f"node {n} of tree {t} is at the maximum depth {MAX_DEPTH}")
            busy = [ch for ch in tree.children(n) if tree.in_flight[ch] > 0]
            if busy:
                # Refused whether or not the block would move (the literal reading of 5.5, and a
                # rule the caller can check without knowing the arena layout).
                raise ValueError(
                    f"cannot widen node {n} of tree {t}: its child {busy[0]} has leaves in "
                    "flight (widening may renumber the children); tell or cancel them first"
                )
            if old > 0 and tree.first_child[n] + old != size[t]:
                dead.update((t, ch) for ch in tree.children(n))
                size[t] += old
            size[t] += c
        for t, s in size.items():
            if s > self._config.max_nodes:
                raise CapacityError(
                    f"tree {t} would grow to {s} nodes, past max_nodes={self._config.max_nodes}; "
                    "raise the cap, or reroot / prune / compact the tree"
                )

    def backup(self, trees: np.ndarray, nodes: np.ndarray, values: np.ndarray) -> None:
        values = _array("values", values, np.float64)
        ts, ns = self._leaf_batch(trees, nodes)
        if values.shape[0] != len(ts):
            raise ValueError(f"values has {values.shape[0]} entries, expected {len(ts)}")
        if not np.all(np.isfinite(values)) or np.any(np.abs(values) > FLOAT32_MAX):
            raise ValueError("values must be finite, also as float32 (|v| <= 3.4028235e38)")
        for t, n, v in zip(ts, ns, values.tolist(), strict=True):
            backup_path(self._trees[t], self._config, n, v, tell=True)

    def cancel(self, trees: np.ndarray, nodes: np.ndarray) -> None:
        ts, ns = self._leaf_batch(trees, nodes)
        for t, n in zip(ts, ns, strict=True):
            cancel_path(self._trees[t], n)

    # ------------------------------------------------------------------ queries
    def size(self, tree: int) -> int:
        return self._trees[self._tree_id(tree)].size

    def view(self, tree: int, field: str) -> np.ndarray:
        tree_ = self._trees[self._tree_id(tree)]
        if field not in VIEW_FIELDS:
            raise ValueError(f"unknown field {field!r}; choose from {VIEW_FIELDS}")
        array = tree_.field_array(field)
        array.flags.writeable = False
        return array

    def derived(self, tree: int, field: str) -> np.ndarray:
        tree_ = self._trees[self._tree_id(tree)]
        if field not in DERIVED_DTYPES:
            raise ValueError(
                f"unknown derived field {field!r}; choose from {tuple(DERIVED_DTYPES)}"
            )
        return tree_.field_array(field)

    def qvalues(self, tree: int, node: int) -> np.ndarray:
        t = self._tree_id(tree)
        n = self._node_id(t, node)
        return pairs_mod.qvalues(self._trees[t], self._config, n)

    def root_policy(self, tree: int, temperature: float) -> np.ndarray:
        t = self._tree_id(tree)
        temperature = float(temperature)
        if not math.isfinite(temperature) or temperature < 0:
            raise ValueError(f"temperature must be finite and >= 0, got {temperature}")
        return pairs_mod.root_policy(self._trees[t], self._config, temperature)

    def best_action(self, tree: int) -> int:
        return pairs_mod.best_action(self._trees[self._tree_id(tree)], self._config)

    def best_path(self, tree: int) -> np.ndarray:
        path = pairs_mod.best_path(self._trees[self._tree_id(tree)], self._config)
        return np.array(path, dtype=np.int32)

    def minmax(self, tree: int) -> tuple[float, float]:
        tree_ = self._trees[self._tree_id(tree)]
        return tree_.minmax_lo, tree_.minmax_hi

    def root_epoch(self, tree: int) -> int:
        return self._trees[self._tree_id(tree)].root_epoch

    def pairs(
        self, mode: str, min_visits: int, min_q_gap: float, max_depth: int
    ) -> dict[str, np.ndarray]:
        if mode not in ("paper", "max_min", "max_all"):
            raise ValueError(f"mode={mode!r}; choose 'paper', 'max_min' or 'max_all'")
        min_visits = _int("min_visits", min_visits)
        max_depth = _int("max_depth", max_depth)
        min_q_gap = float(min_q_gap)
        if min_visits < 0:
            raise ValueError(f"min_visits must be >= 0, got {min_visits}")
        if not math.isfinite(min_q_gap) or min_q_gap < 0:
            raise ValueError(f"min_q_gap must be finite and >= 0, got {min_q_gap}")
        if max_depth < -1:
            raise ValueError(f"max_depth must be >= -1 (-1: no limit), got {max_depth}")
        rows = []
        for t, tree in enumerate(self._trees):
            for row in pairs_mod.tree_pairs(
                tree, self._config, mode, min_visits, min_q_gap, max_depth
            ):
                rows.append((t, *row))
        columns = list(zip(*rows, strict=True)) if rows else [()] * 7
        dtypes = (np.int32, np.int32, np.int32, np.int32, np.int32, np.float64, np.float64)
        names = ("tree", "parent", "chosen", "rejected", "depth", "q_chosen", "q_rejected")
        return {
            name: np.array(col, dtype=dtype)
            for name, col, dtype in zip(names, columns, dtypes, strict=True)
        }

    # ------------------------------------------------------------------ tree operations
    def _idle_tree(self, tree: Any, what: str) -> int:
        t = self._tree_id(tree)
        if self._trees[t].in_flight[ROOT] > 0:
            raise ValueError(
                f"cannot {what} tree {t} while {self._trees[t].in_flight[ROOT]} leaves are in "
                "flight; tell or cancel them first"
            )
        return t

    def reroot(self, tree: int, node: int) -> None:
        t = self._tree_id(tree)
        n = self._node_id(t, node)
        t = self._idle_tree(t, "reroot")
        self._trees[t] = tree_ops.reroot(self._trees[t], n)

    def prune(self, tree: int, node: int) -> None:
        t = self._tree_id(tree)
        n = self._node_id(t, node)
        if n == ROOT:
            raise ValueError("cannot prune the root; use reset")
        t = self._idle_tree(t, "prune")
        self._trees[t] = tree_ops.prune(self._trees[t], n)

    def compact(self, tree: int) -> None:
        t = self._idle_tree(tree, "compact")
        self._trees[t] = tree_ops.compact(self._trees[t])

    def reset(self, tree: int, payload: int) -> None:
        t = self._tree_id(tree)
        payload = _int("payload", payload)
        if not -(2**63) <= payload < 2**63:
            raise ValueError(f"payload {payload} is outside the int64 range")
        t = self._idle_tree(t, "reset")
        self._trees[t] = tree_ops.reset(self._trees[t], payload)

    # ------------------------------------------------------------------ synthetic evaluator
    def run_synthetic(
        self, num_simulations: int, num_actions: int, leaves_per_ask: int, seed: int
    ) -> int:
        """Docs section 8: per tree, ask K leaves, expand each with A hashed children, back up
        each leaf's hashed value, until S leaves were evaluated (or no leaf can be found).

        Readings shared with the native core (the doc leaves them open): the trees must have
        nothing in flight (ValueError); the capacity check is upfront and uses the worst case
        (S + K - 1) * A new nodes per tree, so the call is all-or-nothing; the root's payload is
        set to the root key (the key of a node lives in its payload); a leaf at the maximum depth
        is backed up without children.
        """
        s = _int("num_simulations", num_simulations)
        a = _int("num_actions", num_actions)
        k = _int("leaves_per_ask", leaves_per_ask)
        seed = _int("seed", seed)
        if s < 0:
            raise ValueError(f"num_simulations must be >= 0, got {s}")
        if not 1 <= a <= MAX_CHILDREN:
            raise ValueError(f"num_actions must lie in [1, {MAX_CHILDREN}], got {a}")
        if not 1 <= k <= MAX_IN_FLIGHT:
            raise ValueError(f"leaves_per_ask must lie in [1, {MAX_IN_FLIGHT}], got {k}")
        if s == 0:
            return 0
        growth = (s + k - 1) * a
        for t, tree in enumerate(self._trees):
            self._idle_tree(t, "run_synthetic on")
            if tree.size + growth > self._config.max_nodes:
                raise CapacityError(
                    f"run_synthetic: tree {t} ({tree.size} nodes) may grow by up to {growth} "
                    f"nodes, past max_nodes={self._config.max_nodes}"
                )
        return sum(self._synthetic_tree(t, s, a, k, seed) for t in range(len(self._trees)))

    def _synthetic_tree(self, t: int, s: int, a: int, k: int, seed: int) -> int:
        tree = self._trees[t]
        tree.payload[ROOT] = synthetic.root_key(seed, t)
        done = 0
        while done < s:
            scratch = [0] * len(self._trees)
            leaves = [leaf for leaf, _ in self._ask_tree(t, k, scratch, list(scratch))]
            if not leaves:
                break
            keys = [tree.payload[leaf] & synthetic.MASK32 for leaf in leaves]
            for leaf, key in zip(leaves, keys, strict=True):
                if tree.depth[leaf] >= MAX_DEPTH:
                    continue
                children = [synthetic.child_key(key, j) for j in range(a)]
                zeros = [0.0] * a
                expand_node(tree, leaf, synthetic.priors(key, a), zeros, [False] * a, children)
            for leaf, key in zip(leaves, keys, strict=True):
                backup_path(tree, self._config, leaf, synthetic.value(key, a), tell=True)
            done += len(leaves)
        return done

    # ------------------------------------------------------------------ persistence
    def export_arrays(self) -> dict[str, np.ndarray]:
        return export_arrays(self._trees)
