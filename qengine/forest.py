"""`Forest`: many MCTS trees searched together through an ask / expand / backup interface.

Legend: ``B`` trees, ``N`` nodes of one tree, ``L`` leaves in a batch, ``C`` children in a batch,
``P`` path entries (all leaves' root-to-leaf paths, concatenated).

The heavy lifting happens in an *engine*: the native core ``qengine._core.Forest`` (default) or the
pure-Python ``qengine.reference.ReferenceEngine`` (same semantics, for tests). Both implement the
strict low-level interface documented in ``docs/search-semantics.md``; this class turns friendly
Python input into the exact dtypes that interface takes and adds saving, loading and pickling.

Typical loop::

    forest = Forest(num_trees=64, config=SearchConfig(rule="puct"))
    for _ in range(iterations):
        leaves = forest.ask(max_leaves=4)
        priors, values = my_model(leaves)            # one batched LLM call
        forest.expand(leaves.tree, leaves.node, counts, priors)
        forest.backup(leaves.tree, leaves.node, values)
    pairs = forest.pairs(mode="paper")
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from . import _args, _forest_file, _layout
from ._layout import DERIVED_FIELDS, MAX_TREES, TERMINAL_BIT
from .config import SearchConfig

NODE_FIELDS: tuple[str, ...] = _layout.VIEW_FIELDS
"""Fields readable as zero-copy views with :meth:`Forest.view` (the layout of ``qengine._core``;
``DERIVED_FIELDS`` are unpacked from the status word, as copies; ``TERMINAL_BIT`` is the terminal
flag of an exported ``status`` word)."""

__all__ = ["DERIVED_FIELDS", "NODE_FIELDS", "TERMINAL_BIT", "Forest", "Leaves", "Pairs"]


@dataclass(frozen=True)
class Leaves:
    """Leaves returned by :meth:`Forest.ask`, tree by tree in descent order.

    Attributes:
      tree, node, depth: int32 [L].
      payload: int64 [L], the user handle of each leaf.
      path_offsets: int64 [L+1]; leaf i's path root→leaf is
        ``path_*[path_offsets[i] : path_offsets[i + 1]]``.
      path_nodes: int32 [P] node ids; path_actions: int32 [P] child indices (root: 0);
      path_payloads: int64 [P].
      terminal_hits: int64 [B] descents per tree that ended on a terminal node (backed up inside).
      collisions: int64 [B] descents per tree that reached a leaf already in flight.
    """

    tree: np.ndarray
    node: np.ndarray
    depth: np.ndarray
    payload: np.ndarray
    path_offsets: np.ndarray
    path_nodes: np.ndarray
    path_actions: np.ndarray
    path_payloads: np.ndarray
    terminal_hits: np.ndarray
    collisions: np.ndarray

    def __len__(self) -> int:
        return int(self.node.shape[0])

    def path(self, i: int) -> np.ndarray:
        """Node ids root→leaf of leaf ``i`` (int32)."""
        return self.path_nodes[self.path_offsets[i] : self.path_offsets[i + 1]]

    def actions(self, i: int) -> np.ndarray:
        """Child indices taken from the root to leaf ``i``, excluding the root's own 0 (int32)."""
        return self.path_actions[self.path_offsets[i] + 1 : self.path_offsets[i + 1]]

    def payloads(self, i: int) -> np.ndarray:
        """Payloads root→leaf of leaf ``i`` (int64)."""
        return self.path_payloads[self.path_offsets[i] : self.path_offsets[i + 1]]


@dataclass(frozen=True)
class Pairs:
    """Step-level preference pairs, one row per (tree, parent node).

    All arrays have length M: tree, parent, chosen, rejected, depth (int32; depth of the parent)
    and q_chosen, q_rejected (float64; the edge values Qraw of docs section 3).
    """

    tree: np.ndarray
    parent: np.ndarray
    chosen: np.ndarray
    rejected: np.ndarray
    depth: np.ndarray
    q_chosen: np.ndarray
    q_rejected: np.ndarray

    def __len__(self) -> int:
        return int(self.tree.shape[0])

    def as_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


# The dtypes of the fast path, as numpy's canonical descriptors: ``array.dtype is`` one of them
# for the arrays numpy creates (an identity test is ~0.1 us; ``== np.int32`` converts the type
# first). An equal but distinct descriptor falls back to ``==``.
_DTYPES = {t: np.dtype(t) for t in (np.int32, np.int64, np.float32, np.float64, np.uint8)}


def _ready(values: Any, dtype: type) -> bool:
    """True for a 1-D C-contiguous numpy array of exactly ``dtype`` (passed on as is: the hot
    loop's arrays usually are, and each skipped check or copy is a few microseconds per call)."""
    if type(values) is not np.ndarray:
        return False
    own = values.dtype
    return (
        (own is _DTYPES[dtype] or own == dtype) and values.ndim == 1 and values.flags.c_contiguous
    )


def _ids(name: str, values: Any, *, out_of_range: type[Exception] = IndexError) -> np.ndarray:
    """Any integer array-like → contiguous int32 [L], with range checks that say what is wrong
    (values outside int32 raise ``out_of_range``: IndexError for ids, which no tree has)."""
    if _ready(values, np.int32) and values.size:
        return values
    array = np.asarray(values)
    if array.ndim == 0:
        array = array.reshape(1)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size == 0:
        return np.zeros(0, dtype=np.int32)
    if array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.min() < -(2**31) or array.max() > 2**31 - 1:
        raise out_of_range(f"{name} has values outside the int32 range")
    return np.ascontiguousarray(array, dtype=np.int32)


def _numbers(name: str, values: Any, dtype: type, length: int | None) -> np.ndarray:
    if _ready(values, dtype) and (length is None or values.shape[0] == length):
        return values
    array = np.asarray(values)
    if array.size and array.dtype.kind not in "iuf":
        raise TypeError(f"{name} must hold real numbers, got dtype {array.dtype}")
    if array.ndim == 0 and length is not None:  # a scalar: fill at the target dtype
        return np.full(length, array, dtype=dtype)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if length is not None and array.shape[0] != length:
        raise ValueError(f"{name} has {array.shape[0]} entries, expected {length}")
    return np.ascontiguousarray(array, dtype=dtype)


def _is_zero(value: Any) -> bool:
    """True for the defaults 0 and 0.0 given as Python scalars (not bools, not arrays)."""
    return (type(value) is float or type(value) is int) and value == 0


def _is_false(value: Any) -> bool:
    return value is False


def _flags(name: str, values: Any, length: int) -> np.ndarray:
    if _ready(values, np.uint8) and values.shape[0] == length:
        return values  # already flags (0 / 1 from the cache or the caller)
    array = np.asarray(values)
    if array.ndim == 0 and array.dtype.kind in "biu":  # a scalar flag: fill at uint8
        return np.full(length, 1 if array != 0 else 0, dtype=np.uint8)
    if array.ndim == 0:
        array = np.full(length, array)
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(f"{name} must have shape ({length},), got {array.shape}")
    if array.size and array.dtype.kind not in "biu":
        raise TypeError(f"{name} must hold booleans, got dtype {array.dtype}")
    return np.ascontiguousarray(array != 0, dtype=np.uint8)


def _mask(name: str, values: Any) -> np.ndarray:
    """A 1-D boolean array-like → contiguous uint8 (its length is the engine's to check)."""
    array = np.asarray(values)
    if array.ndim != 1:
        raise ValueError(f"{name} must be 1-D, got shape {array.shape}")
    if array.size and array.dtype.kind not in "biu":
        raise TypeError(f"{name} must hold booleans, got dtype {array.dtype}")
    return np.ascontiguousarray(array != 0, dtype=np.uint8)


def _payloads(name: str, values: Any, length: int) -> np.ndarray:
    if _ready(values, np.int64) and values.shape[0] == length:
        return values
    array = np.asarray(values)
    if array.ndim == 0:
        array = np.full(length, array)
    if array.ndim != 1 or array.shape[0] != length:
        raise ValueError(f"{name} must have shape ({length},), got {array.shape}")
    if array.size and array.dtype.kind not in "iu":
        raise TypeError(f"{name} must hold integers, got dtype {array.dtype}")
    if array.size and array.dtype.kind == "u" and array.max() > 2**63 - 1:
        raise ValueError(f"{name} has values above the int64 range")
    return np.ascontiguousarray(array, dtype=np.int64)


def _native_engine() -> Any:
    from . import _native

    return _native.core().Forest


def _reference_engine() -> Any:
    from .reference import ReferenceEngine

    return ReferenceEngine


_ENGINES = {"native": _native_engine, "reference": _reference_engine}


def _engine_class(engine: Any) -> Any:
    """The engine class named ``engine`` (TypeError if not a str, ValueError if unknown)."""
    if _args.text("engine", engine) not in _ENGINES:
        raise ValueError(f"engine={engine!r}; choose 'native' or 'reference'")
    return _ENGINES[engine]()


def _search_config(config: Any) -> SearchConfig:
    if not isinstance(config, SearchConfig):
        raise TypeError(f"config must be a SearchConfig, got {type(config).__name__}")
    return config


class Forest:
    """B independent search trees, searched in batches.

    Args:
      num_trees: B, the number of trees (one per task / prompt).
      config: the search rules; defaults to ``SearchConfig()`` (AlphaZero PUCT, c = 1.25).
      num_threads: threads for batch operations (0: all cores, at most ``MAX_THREADS``).
        Results do not depend on it.
      root_payloads: int64 [B] handles of the roots (default 0).
      engine: ``"native"`` (the C++ core) or ``"reference"`` (pure Python, slow, for tests).

    Scalar arguments are never converted implicitly: ``Forest(1.5)``, ``ask("3")`` or
    ``reset(0, payload=1.5)`` raise TypeError (docs/search-semantics.md, section 9, "Arguments").
    """

    def __init__(
        self,
        num_trees: int,
        config: SearchConfig | None = None,
        *,
        num_threads: int = 0,
        root_payloads: Any = None,
        engine: Literal["native", "reference"] = "native",
    ) -> None:
        engine_cls = _engine_class(engine)
        num_trees = _args.integer("num_trees", num_trees)
        if not 1 <= num_trees <= MAX_TREES:  # before the payload array is allocated
            raise ValueError(f"num_trees must lie in [1, 2**31 - 1], got {num_trees}")
        self.config = _search_config(SearchConfig() if config is None else config)
        _args.integer("num_threads", num_threads)  # its range: the engine's
        if root_payloads is None:
            payloads = np.zeros(num_trees, dtype=np.int64)  # lazily zeroed pages
        else:
            payloads = _payloads("root_payloads", root_payloads, num_trees)
        self.engine_name = engine
        self._engine = engine_cls(num_trees, self.config.to_dict(), num_threads, payloads)

    # ------------------------------------------------------------------ search loop
    @property
    def num_trees(self) -> int:
        return int(self._engine.num_trees)

    @property
    def num_threads(self) -> int:
        return int(self._engine.num_threads)

    def ask(self, max_leaves: int = 1, *, paths: bool = True) -> Leaves:
        """Select up to ``max_leaves`` distinct leaves per tree (virtual loss keeps them apart).

        Each returned leaf is *in flight* until it is told (:meth:`backup`) or :meth:`cancel`-ed.
        With ``paths=False`` the path arrays are empty (faster).
        """
        # The engine's dict becomes the instance's fields directly: the frozen dataclass's
        # __init__ (one object.__setattr__ per field) cost ~5 us per call, as much as the
        # engine's own per-call work for a 256-tree batch.
        leaves = object.__new__(Leaves)
        leaves.__dict__.update(self._engine.ask(max_leaves, paths))
        return leaves

    def expand(
        self,
        trees: Any,
        nodes: Any,
        counts: Any,
        priors: Any,
        rewards: Any = 0.0,
        terminal: Any = False,
        payloads: Any = 0,
    ) -> None:
        """Give nodes their children (CSR layout).

        Args:
          trees, nodes, counts: [M] the nodes to expand and how many children each gets.
          priors: float [C], C = counts.sum(), children of node 0 first, then node 1, ...
          rewards: float [C] edge rewards (scalar broadcasts). terminal: bool [C].
          payloads: int64 [C] user handles of the children.
        Expanding an already expanded node adds children (progressive widening); a count of 0
        marks an unexpanded node terminal.
        """
        trees, nodes = _ids("trees", trees), _ids("nodes", nodes)
        counts = _ids("counts", counts, out_of_range=ValueError)
        if not (trees.shape == nodes.shape == counts.shape):
            raise ValueError(
                f"trees, nodes and counts must have the same length, got "
                f"{trees.shape[0]}, {nodes.shape[0]} and {counts.shape[0]}"
            )
        priors = _numbers("priors", priors, np.float32, None)
        # The children arrays are as long as priors (scalars broadcast to it); the counts, their
        # total and every entry are the engine's to check, in call order (docs 5.5). The
        # defaults (no reward, not terminal, payload 0) go to the engine as None, which reads no
        # array for them: converting three default arrays cost ~4 us per call.
        total = priors.shape[0]
        rewards = None if _is_zero(rewards) else _numbers("rewards", rewards, np.float32, total)
        terminal = None if _is_false(terminal) else _flags("terminal", terminal, total)
        payloads = None if _is_zero(payloads) else _payloads("payloads", payloads, total)
        self._engine.expand(trees, nodes, counts, priors, rewards, terminal, payloads)

    def backup(self, trees: Any, nodes: Any, values: Any) -> None:
        """Tell: back up the value of each asked leaf and remove its virtual loss."""
        trees, nodes = _ids("trees", trees), _ids("nodes", nodes)
        if trees.shape != nodes.shape:
            raise ValueError(f"trees {trees.shape} and nodes {nodes.shape} differ in length")
        values = _numbers("values", values, np.float64, trees.shape[0])
        self._engine.backup(trees, nodes, values)

    def cancel(self, trees: Any, nodes: Any) -> None:
        """Withdraw asked leaves whose evaluation failed: no backup, virtual loss removed."""
        trees, nodes = _ids("trees", trees), _ids("nodes", nodes)
        if trees.shape != nodes.shape:
            raise ValueError(f"trees {trees.shape} and nodes {nodes.shape} differ in length")
        self._engine.cancel(trees, nodes)

    # ------------------------------------------------------------------ queries
    def size(self, tree: int) -> int:
        """Number of node slots of a tree (dead slots left by widening included)."""
        return int(self._engine.size(tree))

    def view(self, tree: int, field: str) -> np.ndarray:
        """Read-only zero-copy view [N] of one node field (see ``NODE_FIELDS``).

        The view follows later updates until the tree's arena grows; it never dangles.
        """
        if isinstance(field, str) and field in DERIVED_FIELDS:
            return self._engine.derived(tree, field)
        return self._engine.view(tree, field)  # checks the tree, then the field name

    def nodes(self, tree: int) -> dict[str, np.ndarray]:
        """Copies of every node array of a tree (views and unpacked status fields)."""
        out = {name: np.array(self.view(tree, name)) for name in NODE_FIELDS}
        for name in DERIVED_FIELDS:
            out[name] = self.view(tree, name)
        return out

    def qvalues(self, tree: int, node: int = 0) -> np.ndarray:
        """Edge values Qraw [A] of a node's children (float64)."""
        return self._engine.qvalues(tree, node)

    def root_policy(self, tree: int, temperature: float = 1.0) -> np.ndarray:
        """Visit distribution [A] over the root's children, ∝ N^(1/τ); τ = 0 gives one-hot."""
        return self._engine.root_policy(tree, temperature)

    def best_action(self, tree: int) -> int:
        """Child index of the root's most visited child (-1 if none is visited)."""
        return int(self._engine.best_action(tree))

    def best_path(self, tree: int) -> np.ndarray:
        """Node ids [depth+1] from the root following the most visited child (int32)."""
        return self._engine.best_path(tree)

    def root_epoch(self, tree: int) -> int:
        """How many times the tree was re-rooted or reset (it seeds the Gumbel noise)."""
        return int(self._engine.root_epoch(tree))

    def minmax(self, tree: int) -> tuple[float, float]:
        """Tree-wide (low, high) of the edge values seen in backups (+inf, -inf when none)."""
        lo, hi = self._engine.minmax(tree)
        return float(lo), float(hi)

    def edge_values(self, tree: int) -> np.ndarray:
        """Qraw [N] (float64) of every node of a tree: the value of the edge parent → node as
        backup and selection see it from the parent, ``reward + discount * sign * q`` with the
        two-player sign (docs section 3). Dead slots give 0."""
        return self._engine.edge_values(tree)

    def pairs(
        self,
        mode: Literal["paper", "max_min", "max_all", "all"] = "paper",
        *,
        min_visits: int = 1,
        min_q_gap: float = 0.0,
        max_depth: int = -1,
        eligible: Any = None,
    ) -> Pairs:
        """Step-level preference pairs over every tree (docs section 5.7).

        ``"paper"``: along the best path, the next best-path node vs its lowest-Q sibling.
        ``"max_min"``: at every internal node, the highest-Q vs the lowest-Q child.
        ``"max_all"``: at every internal node, the highest-Q child vs each other child (by id);
        more pairs per state, e.g. the winning purchase vs re-selecting an option, not only vs
        the worst action.
        ``"all"``: at every internal node, every two children with different Q (children by Q,
        highest first, ties: lower id; the higher one chosen).

        A child takes part when it has ``visits >= max(min_visits, 1)``, or, when ``eligible``
        (bool [T], one entry per node of every tree, concatenated as in :meth:`export_arrays`)
        is given, when ``eligible`` says so: the caller's rule replaces the visits rule.
        """
        mask = None if eligible is None else _mask("eligible", eligible)
        raw = self._engine.pairs(mode, min_visits, min_q_gap, max_depth, mask)
        return Pairs(**raw)

    # ------------------------------------------------------------------ tree operations
    def reroot(self, tree: int, node: int) -> None:
        """Make ``node`` the root of its tree, keeping its subtree (nodes are renumbered)."""
        self._engine.reroot(tree, node)

    def prune(self, tree: int, node: int) -> None:
        """Drop the subtree below ``node`` and never select ``node`` again."""
        self._engine.prune(tree, node)

    def reserve(self, nodes: int) -> None:
        """Make room for ``nodes`` node slots per tree now (at most ``config.max_nodes``): a
        search that knows its budget (e.g. S simulations x A children + 1) allocates each tree
        once instead of regrowing it, as ``run_synthetic`` does. Results do not change."""
        self._engine.reserve(nodes)

    def compact(self, tree: int) -> None:
        """Renumber a tree without the dead slots left by progressive widening."""
        self._engine.compact(tree)

    def reset(self, tree: int, payload: int = 0) -> None:
        """Replace a tree by a fresh unexpanded root."""
        self._engine.reset(tree, payload)

    def run_synthetic(
        self, num_simulations: int, num_actions: int, *, leaves_per_ask: int = 1, seed: int = 0
    ) -> int:
        """Search every tree with the built-in hash evaluator (benchmarks; docs section 8).

        Returns the number of leaves evaluated over all trees.
        """
        return int(self._engine.run_synthetic(num_simulations, num_actions, leaves_per_ask, seed))

    # ------------------------------------------------------------------ persistence
    def export_arrays(self) -> dict[str, np.ndarray]:
        """All trees as flat arrays (fields concatenated; ``tree_offsets`` [B+1] int64)."""
        return self._engine.export_arrays()

    def export_tree(self, tree: int) -> dict[str, np.ndarray]:
        """One tree as flat arrays [N] (the keys of :meth:`export_arrays`; ``tree_offsets`` is
        ``[0, N]`` and the per-tree arrays have one entry): a one-tree forest's export, without
        copying the others. IndexError if ``tree`` is out of range."""
        return self._engine.export_tree(tree)

    @classmethod
    def from_arrays(
        cls,
        arrays: dict[str, np.ndarray],
        config: SearchConfig,
        *,
        num_threads: int = 0,
        engine: Literal["native", "reference"] = "native",
    ) -> Forest:
        """Rebuild a forest from :meth:`export_arrays` output (validated; ValueError if corrupt)."""
        engine_cls = _engine_class(engine)
        config = _search_config(config)
        forest = cls.__new__(cls)
        forest.config = config
        forest.engine_name = engine
        forest._engine = engine_cls.from_arrays(config.to_dict(), arrays, num_threads)
        return forest

    def save(self, path: str | Path) -> None:
        """Write the forest to a ``.safetensors`` file: the arrays of :meth:`export_arrays`, the
        config as JSON and a SHA-256 checksum of both in the metadata. Two saves of the same
        forest give identical bytes, whichever engine holds it (docs section 5.9)."""
        _forest_file.write(path, self.export_arrays(), self.config.to_json())

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        num_threads: int = 0,
        engine: Literal["native", "reference"] = "native",
    ) -> Forest:
        """Read a forest written by :meth:`save`. ValueError when the file is not a forest, is
        truncated, fails its checksum (a flipped bit, an edited header) or holds corrupt trees.
        Files of the previous format (no checksum) still load."""
        _engine_class(engine)
        arrays, config_json = _forest_file.read(path)
        try:
            config = SearchConfig.from_dict(json.loads(config_json))
        except (json.JSONDecodeError, TypeError, ValueError) as error:
            raise ValueError(
                f"{path} has no valid search config in its metadata: {error}"
            ) from error
        return cls.from_arrays(arrays, config, num_threads=num_threads, engine=engine)

    def __getstate__(self) -> dict[str, Any]:
        return {
            "config": self.config.to_dict(),
            "engine": self.engine_name,
            "num_threads": self.num_threads,
            "arrays": self.export_arrays(),
        }

    def __setstate__(self, state: Any) -> None:
        """Restore a pickled forest; TypeError / ValueError (never a bare KeyError) when the
        state is not one :meth:`__getstate__` wrote."""
        if not isinstance(state, Mapping):
            raise TypeError(f"Forest state must be a dict, got {type(state).__name__}")
        missing = sorted({"config", "engine", "num_threads", "arrays"} - set(state))
        if missing:
            raise ValueError(f"Forest state lacks {missing}; was it written by __getstate__?")
        engine_cls = _engine_class(state["engine"])
        config = SearchConfig.from_dict(state["config"])
        self._engine = engine_cls.from_arrays(
            config.to_dict(), state["arrays"], state["num_threads"]
        )
        self.config = config
        self.engine_name = state["engine"]

    def __repr__(self) -> str:
        return (
            f"Forest(num_trees={self.num_trees}, engine={self.engine_name!r}, "
            f"rule={self.config.rule!r}, num_threads={self.num_threads})"
        )
