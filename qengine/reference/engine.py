"""``ReferenceEngine``: the engine interface of docs section 9 in pure Python.

Legend: ``B`` trees, ``N`` nodes of one tree, ``L`` leaves in a batch, ``M`` nodes expanded in a
batch, ``C`` children given in a batch, ``P`` path entries.

Every public method validates its whole input first (dtypes: TypeError; shapes, values, state:
ValueError; tree or node ids out of range: IndexError; node cap: CapacityError) and only then
mutates, so a call that raises leaves every tree unchanged. The order of the checks is the native
core's (docs section 9, "Arguments"): every argument's type and shape in argument order, then the
values in argument order, batch entries in call order, then the state.
"""

from __future__ import annotations

import itertools
import math
import os
from typing import Any

import numpy as np

from qengine import _args
from qengine._layout import MAX_THREADS, MAX_TREES
from qengine.config import SearchConfig
from qengine.errors import CapacityError

from . import pairs as pairs_mod
from . import synthetic, tree_ops
from .ops import FLOAT32_OVERFLOW, backup_path, cancel_path, descend, expand_node
from .serialize import check_array_types, export_arrays, trees_from_arrays
from .tree import (
    DERIVED_DTYPES,
    MAX_CHILDREN,
    MAX_DEPTH,
    MAX_IN_FLIGHT,
    ROOT,
    VIEW_FIELDS,
    Tree,
)


# ---------------------------------------------------------------------- argument checks
def _array(name: str, value: Any, dtype: type) -> np.ndarray:
    """A 1-D C-contiguous numpy array of exactly ``dtype`` (what the native bindings take)."""
    if not isinstance(value, np.ndarray):
        raise TypeError(
            f"{name} must be a numpy array of {np.dtype(dtype)}, got {type(value).__name__}"
        )
    if value.dtype != dtype:
        raise TypeError(f"{name} must have dtype {np.dtype(dtype)}, got {value.dtype}")
    if value.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {value.shape}")
    if not value.flags.c_contiguous:
        raise ValueError(f"{name} must be C-contiguous (use numpy.ascontiguousarray)")
    return value


def _zeros(length: int, dtype: type) -> np.ndarray:
    """The array an absent (None) argument stands for."""
    return np.zeros(length, dtype=dtype)


def _config(config: Any) -> SearchConfig:
    if not isinstance(config, dict):
        raise TypeError(f"config must be a dict (SearchConfig.to_dict()), got {type(config)}")
    return SearchConfig.from_dict(config)


def _num_threads(n: int) -> int:
    """The thread count a pool of n threads runs (n already an int): range-checked, 0 -> cores."""
    if not 0 <= n <= MAX_THREADS:
        raise ValueError(f"num_threads must lie in [0, {MAX_THREADS}] (0 = all cores), got {n}")
    return n if n > 0 else min(os.cpu_count() or 1, MAX_THREADS)


PAIR_MODES = ("paper", "max_min", "max_all", "all")
_NO_VALUES = object()  # cancel: leaves without values


def _same_length(what: str, a: str, na: int, b: str, nb: int) -> None:
    if na != nb:
        raise ValueError(f"{what}: {a} has {na} entries but {b} has {nb}")


class ReferenceEngine:
    """B trees searched with the exact semantics of docs/search-semantics.md (slow, readable)."""

    bytes_per_node = (40, 32)

    def __init__(
        self, num_trees: int, config: Any, num_threads: int, root_payloads: np.ndarray
    ) -> None:
        num_trees = _args.integer("num_trees", num_trees)
        self._config = _config(config)
        threads = _args.integer("num_threads", num_threads)
        payloads = _array("root_payloads", root_payloads, np.int64)
        if not 1 <= num_trees <= MAX_TREES:
            raise ValueError(f"num_trees must lie in [1, 2**31 - 1], got {num_trees}")
        self._num_threads = _num_threads(threads)
        _same_length("Forest", "root_payloads", payloads.shape[0], "num_trees", num_trees)
        self._trees = [Tree(p) for p in payloads.tolist()]

    @staticmethod
    def from_arrays(config: Any, arrays: Any, num_threads: int) -> ReferenceEngine:
        cfg = _config(config)
        check_array_types(arrays)
        threads = _num_threads(_args.integer("num_threads", num_threads))
        engine = ReferenceEngine.__new__(ReferenceEngine)
        engine._config = cfg
        engine._num_threads = threads
        engine._trees = trees_from_arrays(arrays, cfg.max_nodes)
        return engine

    # ------------------------------------------------------------------ basics
    @property
    def num_trees(self) -> int:
        return len(self._trees)

    @property
    def num_threads(self) -> int:
        return self._num_threads

    def _tree_id(self, t: int) -> int:
        """Range check of an int tree id (IndexError)."""
        if not 0 <= t < len(self._trees):
            raise IndexError(f"tree {t} out of range [0, {len(self._trees)})")
        return t

    def _node_id(self, t: int, n: int, *, alive: bool = True) -> int:
        """Range check of an int node id of tree t (IndexError), then, if ``alive``, not a dead
        slot (ValueError)."""
        size = self._trees[t].size
        if not 0 <= n < size:
            raise IndexError(f"node {n} out of range [0, {size}) in tree {t}")
        if alive and not self._trees[t].is_alive(n):
            raise ValueError(f"node {n} of tree {t} is a dead slot (moved by widening)")
        return n

    def _leaf_batch(
        self, op: str, trees: Any, nodes: Any, values: Any = _NO_VALUES
    ) -> tuple[list[int], list[int], list[float]]:
        """Validate the asked leaves of backup / cancel (docs 5.2): arrays, lengths, then the
        entries in call order: ids, value finite as float32, a leaf in flight, not repeated.
        Cancel passes no values."""
        trees = _array("trees", trees, np.int32)
        nodes = _array("nodes", nodes, np.int32)
        if values is not _NO_VALUES:
            values = _array("values", values, np.float64)
        _same_length(op, "trees", trees.shape[0], "nodes", nodes.shape[0])
        if values is not _NO_VALUES:
            _same_length(op, "trees", trees.shape[0], "values", values.shape[0])
        else:
            values = None
        ts, ns = trees.tolist(), nodes.tolist()
        vs = values.tolist() if values is not None else [0.0] * len(ts)
        seen = set()
        for i, (t, n, v) in enumerate(zip(ts, ns, vs, strict=True)):
            self._node_id(self._tree_id(t), n, alive=False)
            if values is not None and not abs(v) < FLOAT32_OVERFLOW:
                raise ValueError(
                    f"{op}: entry {i}: value {v} is not finite as float32 (|v| must round below "
                    "2**128)"
                )
            if not self._trees[t].is_alive(n) or self._trees[t].own_in_flight(n) != 1:
                raise ValueError(
                    f"{op}: entry {i}: node {n} of tree {t} is not a leaf in flight (never "
                    "asked, or already told or cancelled)"
                )
            if (t, n) in seen:
                raise ValueError(f"{op}: entry {i}: leaf (tree {t}, node {n}) appears twice")
            seen.add((t, n))
        return ts, ns, vs

    # ------------------------------------------------------------------ search loop
    def ask(self, max_leaves: int, with_paths: bool) -> dict[str, np.ndarray]:
        k = _args.integer("max_leaves", max_leaves)
        with_paths = _args.flag("with_paths", with_paths)
        if k < 1:
            raise ValueError(f"max_leaves must be >= 1, got {k}")
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
        rewards: np.ndarray | None,
        terminal: np.ndarray | None,
        payloads: np.ndarray | None,
    ) -> None:
        """As the native ``expand``; None for rewards / terminal / payloads means all zero."""
        trees = _array("trees", trees, np.int32)
        nodes = _array("nodes", nodes, np.int32)
        counts = _array("counts", counts, np.int32)
        priors = _array("priors", priors, np.float32)
        total = priors.shape[0]
        rewards = (
            _zeros(total, np.float32) if rewards is None else _array("rewards", rewards, np.float32)
        )
        terminal = (
            _zeros(total, np.uint8) if terminal is None else _array("terminal", terminal, np.uint8)
        )
        payloads = (
            _zeros(total, np.int64) if payloads is None else _array("payloads", payloads, np.int64)
        )
        _same_length("expand", "trees", trees.shape[0], "nodes", nodes.shape[0])
        _same_length("expand", "trees", trees.shape[0], "counts", counts.shape[0])
        _same_length("expand", "priors", priors.shape[0], "rewards", rewards.shape[0])
        _same_length("expand", "priors", priors.shape[0], "terminal", terminal.shape[0])
        _same_length("expand", "priors", priors.shape[0], "payloads", payloads.shape[0])
        ts, ns, cs = trees.tolist(), nodes.tolist(), counts.tolist()
        priors_l, rewards_l = priors.tolist(), rewards.tolist()
        self._check_expand(ts, ns, cs, priors_l, rewards_l)
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

    def _check_expand(
        self, ts: list[int], ns: list[int], cs: list[int], priors: list[float], rewards: list[float]
    ) -> None:
        """docs 5.5: the entries in call order, each against the tree as the earlier entries of
        the call leave it (sizes, relocations), without mutating; then the counts' total, then the
        capacity of every tree (in tree order)."""
        size = {}
        dead: set[tuple[int, int]] = set()
        seen: set[tuple[int, int]] = set()
        offset = 0
        for i, (t, n, c) in enumerate(zip(ts, ns, cs, strict=True)):
            where = f"expand: entry {i}:"
            if c < 0:
                raise ValueError(f"{where} counts must be >= 0, got {c}")
            self._node_id(self._tree_id(t), n, alive=False)
            if c > len(priors) - offset:
                raise ValueError(
                    f"{where} its {c} children reach past the children arrays ({len(priors)} "
                    "entries); counts must sum to their length"
                )
            for j in range(offset, offset + c):
                if not (math.isfinite(priors[j]) and priors[j] >= 0):
                    raise ValueError(f"{where} priors[{j}] = {priors[j]} must be finite and >= 0")
                if not math.isfinite(rewards[j]):
                    raise ValueError(f"{where} rewards[{j}] = {rewards[j]} must be finite")
            offset += c
            tree = self._trees[t]
            if not tree.is_alive(n):
                raise ValueError(f"{where} node {n} of tree {t} is a dead slot (moved by widening)")
            if (t, n) in seen:
                raise ValueError(f"{where} node {n} of tree {t} appears twice in one expand call")
            seen.add((t, n))
            if (t, n) in dead:
                raise ValueError(
                    f"{where} node {n} of tree {t} was moved by an earlier widening in this call"
                )
            if tree.terminal[n]:
                raise ValueError(f"{where} node {n} of tree {t} is terminal and cannot be expanded")
            size.setdefault(t, tree.size)
            if c == 0:
                continue
            old = tree.num_children[n]
            if old + c > MAX_CHILDREN:
                raise ValueError(
                    f"{where} node {n} of tree {t} would have {old + c} children (max "
                    f"{MAX_CHILDREN})"
                )
            if tree.depth[n] + 1 > MAX_DEPTH:
                raise ValueError(
                    f"{where} node {n} of tree {t} is at the maximum depth {MAX_DEPTH}"
                )
            busy = [ch for ch in tree.children(n) if tree.in_flight[ch] > 0]
            if busy:
                # Refused whether or not the block would move (the literal reading of 5.5, and a
                # rule the caller can check without knowing the arena layout).
                raise ValueError(
                    f"{where} cannot widen node {n} of tree {t}: its child {busy[0]} has leaves in "
                    "flight (widening may renumber the children); tell or cancel them first"
                )
            if old > 0 and tree.first_child[n] + old != size[t]:
                dead.update((t, ch) for ch in tree.children(n))
                size[t] += old
            size[t] += c
        if offset != len(priors):
            raise ValueError(
                f"expand: counts sum to {offset} but the children arrays have {len(priors)} entries"
            )
        for t in sorted(size):
            if size[t] > self._config.max_nodes:
                raise CapacityError(
                    f"tree {t} would grow to {size[t]} nodes, past "
                    f"max_nodes={self._config.max_nodes}; raise the cap, or reroot / prune / "
                    "compact the tree"
                )

    def backup(self, trees: np.ndarray, nodes: np.ndarray, values: np.ndarray) -> None:
        ts, ns, vs = self._leaf_batch("backup", trees, nodes, values)
        for t, n, v in zip(ts, ns, vs, strict=True):
            backup_path(self._trees[t], self._config, n, v, tell=True)

    def cancel(self, trees: np.ndarray, nodes: np.ndarray) -> None:
        ts, ns, _ = self._leaf_batch("cancel", trees, nodes)
        for t, n in zip(ts, ns, strict=True):
            cancel_path(self._trees[t], n)

    # ------------------------------------------------------------------ queries
    def _tree_arg(self, tree: Any) -> int:
        return self._tree_id(_args.integer("tree", tree))

    def size(self, tree: int) -> int:
        return self._trees[self._tree_arg(tree)].size

    def view(self, tree: int, field: str) -> np.ndarray:
        t = _args.integer("tree", tree)
        field = _args.text("field", field)
        tree_ = self._trees[self._tree_id(t)]
        if field not in VIEW_FIELDS:
            raise ValueError(f"unknown field {field!r}; choose from {VIEW_FIELDS}")
        array = tree_.field_array(field)
        array.flags.writeable = False
        return array

    def derived(self, tree: int, field: str) -> np.ndarray:
        t = _args.integer("tree", tree)
        field = _args.text("field", field)
        tree_ = self._trees[self._tree_id(t)]
        if field not in DERIVED_DTYPES:
            raise ValueError(
                f"unknown derived field {field!r}; choose from {tuple(DERIVED_DTYPES)}"
            )
        return tree_.field_array(field)

    def qvalues(self, tree: int, node: int) -> np.ndarray:
        t = _args.integer("tree", tree)
        n = _args.integer("node", node)
        n = self._node_id(self._tree_id(t), n)
        return pairs_mod.qvalues(self._trees[t], self._config, n)

    def root_policy(self, tree: int, temperature: float) -> np.ndarray:
        t = _args.integer("tree", tree)
        temperature = _args.real("temperature", temperature)
        t = self._tree_id(t)
        if not math.isfinite(temperature) or temperature < 0:
            raise ValueError(f"temperature must be finite and >= 0, got {temperature}")
        return pairs_mod.root_policy(self._trees[t], self._config, temperature)

    def best_action(self, tree: int) -> int:
        return pairs_mod.best_action(self._trees[self._tree_arg(tree)], self._config)

    def best_path(self, tree: int) -> np.ndarray:
        path = pairs_mod.best_path(self._trees[self._tree_arg(tree)], self._config)
        return np.array(path, dtype=np.int32)

    def edge_values(self, tree: int) -> np.ndarray:
        return pairs_mod.edge_values(self._trees[self._tree_arg(tree)], self._config)

    def minmax(self, tree: int) -> tuple[float, float]:
        tree_ = self._trees[self._tree_arg(tree)]
        return tree_.minmax_lo, tree_.minmax_hi

    def root_epoch(self, tree: int) -> int:
        return self._trees[self._tree_arg(tree)].root_epoch

    def pairs(
        self,
        mode: str,
        min_visits: int,
        min_q_gap: float,
        max_depth: int,
        eligible: np.ndarray | None = None,
    ) -> dict[str, np.ndarray]:
        mode = _args.text("mode", mode)
        min_visits = _args.integer("min_visits", min_visits)
        min_q_gap = _args.real("min_q_gap", min_q_gap)
        max_depth = _args.integer("max_depth", max_depth)
        if eligible is not None:
            eligible = _array("eligible", eligible, np.uint8)
        if mode not in PAIR_MODES:
            raise ValueError(f"mode={mode!r}; choose 'paper', 'max_min', 'max_all' or 'all'")
        if min_visits < 0:
            raise ValueError(f"min_visits must be >= 0, got {min_visits}")
        if not math.isfinite(min_q_gap) or min_q_gap < 0:
            raise ValueError(f"min_q_gap must be finite and >= 0, got {min_q_gap}")
        if max_depth < -1:
            raise ValueError(f"max_depth must be >= -1 (-1: no limit), got {max_depth}")
        offsets = np.cumsum([0] + [tree.size for tree in self._trees]).tolist()
        if eligible is not None and eligible.shape[0] != offsets[-1]:
            raise ValueError(
                f"pairs: eligible has {eligible.shape[0]} entries, expected one per node of "
                f"every tree ({offsets[-1]}, as export_arrays)"
            )
        masks = (
            [None] * len(self._trees)
            if eligible is None
            else [(eligible[lo:hi] != 0).tolist() for lo, hi in itertools.pairwise(offsets)]
        )
        rows = []
        for t, tree in enumerate(self._trees):
            for row in pairs_mod.tree_pairs(
                tree, self._config, mode, min_visits, min_q_gap, max_depth, masks[t]
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
    def _idle_tree(self, t: int, what: str) -> int:
        if self._trees[t].in_flight[ROOT] > 0:
            raise ValueError(
                f"cannot {what} tree {t} while {self._trees[t].in_flight[ROOT]} leaves are in "
                "flight; tell or cancel them first"
            )
        return t

    def reroot(self, tree: int, node: int) -> None:
        t = _args.integer("tree", tree)
        n = _args.integer("node", node)
        n = self._node_id(self._tree_id(t), n)
        self._idle_tree(t, "reroot")
        self._trees[t] = tree_ops.reroot(self._trees[t], n)

    def prune(self, tree: int, node: int) -> None:
        t = _args.integer("tree", tree)
        n = _args.integer("node", node)
        n = self._node_id(self._tree_id(t), n)
        if n == ROOT:
            raise ValueError("cannot prune the root; use reset")
        self._idle_tree(t, "prune")
        self._trees[t] = tree_ops.prune(self._trees[t], n)

    def reserve(self, nodes: int) -> None:
        """A capacity hint of the native core: checked, then nothing to do (lists grow)."""
        nodes = _args.integer("nodes", nodes)
        if nodes < 0:
            raise ValueError(f"reserve: nodes must be >= 0, got {nodes}")

    def compact(self, tree: int) -> None:
        t = self._idle_tree(self._tree_arg(tree), "compact")
        self._trees[t] = tree_ops.compact(self._trees[t])

    def reset(self, tree: int, payload: int) -> None:
        t = _args.integer("tree", tree)
        payload = _args.integer("payload", payload)
        self._tree_id(t)
        if not _args.INT64_MIN <= payload <= _args.INT64_MAX:
            raise ValueError(f"reset: payload {payload} is outside the int64 range")
        self._idle_tree(t, "reset")
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
        s = _args.integer("num_simulations", num_simulations)
        a = _args.integer("num_actions", num_actions)
        k = _args.integer("leaves_per_ask", leaves_per_ask)
        seed = _args.integer("seed", seed)
        if s < 0:
            raise ValueError(f"num_simulations must be >= 0, got {s}")
        if not 1 <= a <= MAX_CHILDREN:
            raise ValueError(f"num_actions must lie in [1, {MAX_CHILDREN}], got {a}")
        if not 1 <= k <= MAX_IN_FLIGHT:
            raise ValueError(f"leaves_per_ask must lie in [1, {MAX_IN_FLIGHT}], got {k}")
        if not 0 <= seed <= _args.UINT64_MAX:
            raise ValueError(f"run_synthetic: seed must lie in [0, 2**64), got {seed}")
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

    def export_tree(self, tree: int) -> dict[str, np.ndarray]:
        return export_arrays([self._trees[self._tree_arg(tree)]])
