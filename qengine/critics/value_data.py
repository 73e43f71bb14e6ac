"""Training data for a state-value model, read from searched trees (``qengine.search.collect``).

A node's **state text** is ``state_prompt(tree, node)``: ``render_prompt`` of the path
root → node (the same rendering the Q-model and the agents use; a prompt style is applied later,
by the value model). A node's **target** is its edge value, the number MCTS ranks it by among
its siblings (``docs/search-semantics.md`` § 3), computed by the core (``Forest.edge_values``):

    Q(node) = reward[node] + discount · sign · q[node]      (sign = -1 in two-player trees)

where ``q[node]`` is the mean return backed up *below* the node. On ``shop`` every reward comes at
the end, so ``Q`` lies in [0, 1] and, for a node that is not terminal, equals ``q``. A terminal
node (the episode really ended: its text says ``done``) has the exact value ``reward[node]``, so
it is kept even when the search never visited it again; a node the search only *treated* as
terminal because it hit ``max_depth`` (not done) has no return behind it and is dropped.

Two record kinds:

* :func:`value_records` — one per eligible node: ``state``, ``value``, ``visits``, ``depth``,
  ``task``, ``terminal`` (regression, visits as optional weights);
* :func:`sibling_pairs` — successor states of one parent with different values: ``chosen`` (the
  child state with the higher Q), ``rejected``, ``q_chosen``, ``q_rejected``, ``depth`` (of the
  parent), ``task`` (Bradley-Terry).
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np
from tqdm.auto import tqdm

from .. import _layout
from ..data.pairs import state_prompt
from ..search.storage import SearchedTree, TreeStore
from ..train.heldout import split_by_task  # the one held-out split (re-exported here)

__all__ = ["node_values", "sibling_pairs", "split_by_task", "value_records"]

PairMode = Literal["max_min", "all"]


def _trees(trees: Iterable[SearchedTree] | str | Path) -> Iterable[SearchedTree]:
    if isinstance(trees, (str, Path)):
        root = Path(trees)
        if not (root / "trees").is_dir():
            raise FileNotFoundError(
                f"{root} holds no searched trees (no trees/ folder); write some with "
                "`qengine collect` or qengine.search.collect(..., out_dir=...)"
            )
        return TreeStore(root)
    return trees


def node_values(tree: SearchedTree) -> tuple[np.ndarray, np.ndarray]:
    """Per node: the edge value Q = reward + discount·sign·q (float64 [N], the core's
    ``Forest.edge_values``) and whether the node's episode really ended (bool [N])."""
    return tree.forest().edge_values(0), tree.episode_ends()


def _eligible(tree: SearchedTree, done: np.ndarray, min_visits: int, max_depth: int) -> np.ndarray:
    """Nodes with a trustworthy value: alive, visited ``min_visits`` times or really terminal
    (``done``, bool [N]), not merely depth-capped, within ``max_depth``."""
    a = tree.arrays
    capped = _layout.terminal(a["status"]) & ~done
    ok = _layout.alive(a["parent"]) & ~capped & ((a["visits"] >= max(min_visits, 1)) | done)
    if max_depth >= 0:
        ok &= a["depth"] <= max_depth
    return ok


def value_records(
    trees: Iterable[SearchedTree] | str | Path,
    *,
    min_visits: int = 1,
    max_depth: int = -1,
    include_root: bool = True,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Regression records ``{state, value, visits, depth, task, terminal}`` of every eligible
    node (see the module docstring) of ``trees`` (searched trees or a ``collect`` output dir)."""
    if min_visits < 0 or max_depth < -1:
        raise ValueError("min_visits must be >= 0 and max_depth >= -1")
    records = []
    for tree in tqdm(_trees(trees), desc="value records", unit="tree", disable=not progress):
        values, done = node_values(tree)
        ok = _eligible(tree, done, min_visits, max_depth)
        if not include_root:
            ok[0] = False
        task = str(tree.header["task_id"])
        for node in np.flatnonzero(ok):
            records.append(
                {
                    "state": state_prompt(tree, int(node)),
                    "value": float(values[node]),
                    "visits": int(tree.arrays["visits"][node]),
                    "depth": int(tree.arrays["depth"][node]),
                    "task": task,
                    "terminal": bool(done[node]),
                }
            )
    return records


def sibling_pairs(
    trees: Iterable[SearchedTree] | str | Path,
    *,
    mode: PairMode = "max_min",
    min_visits: int = 1,
    min_q_gap: float = 0.0,
    max_depth: int = -1,
    progress: bool = False,
) -> list[dict[str, Any]]:
    """Bradley-Terry records: successor states of one parent, the higher-Q one ``chosen``.

    Each record also holds the parent's state (``prompt``) and the two actions
    (``chosen_action``, ``rejected_action``), so a Q-model can be scored on the same pair, and
    ``terminal``: whether either successor ends the episode.

    Args:
      mode: ``"max_min"`` one pair per parent (best vs worst eligible child); ``"all"`` every
        pair of eligible children whose values differ (the ``Forest.pairs`` modes).
      min_q_gap: keep a pair only when ``q_chosen - q_rejected >= min_q_gap`` (and always > 0).
      max_depth: parents deeper than this are skipped (-1: no limit).
    """
    if mode not in ("max_min", "all"):
        raise ValueError(f"unknown mode {mode!r}; choose 'max_min' or 'all'")
    if not (np.isfinite(min_q_gap) and min_q_gap >= 0):
        raise ValueError(f"min_q_gap must be finite and >= 0, got {min_q_gap}")
    records = []
    for tree in tqdm(_trees(trees), desc="sibling pairs", unit="tree", disable=not progress):
        forest = tree.forest()
        values, done = forest.edge_values(0), tree.episode_ends()
        # The core's pairs among the eligible children (Forest.pairs, docs 5.7): "max_min" best
        # vs worst per parent, "all" every two with different values; by parent id.
        ok = _eligible(tree, done, min_visits, -1)
        pairs = forest.pairs(mode, min_q_gap=min_q_gap, max_depth=max_depth, eligible=ok)
        a = tree.arrays
        task = str(tree.header["task_id"])
        texts: dict[int, str] = {}

        def text(node: int, tree: SearchedTree = tree, texts: dict[int, str] = texts) -> str:
            if node not in texts:
                texts[node] = state_prompt(tree, node)
            return texts[node]

        for parent, w, lo in zip(
            pairs.parent.tolist(), pairs.chosen.tolist(), pairs.rejected.tolist(), strict=True
        ):
            records.append(
                {
                    "chosen": text(w),
                    "rejected": text(lo),
                    "q_chosen": float(values[w]),
                    "q_rejected": float(values[lo]),
                    "depth": int(a["depth"][parent]),
                    "task": task,
                    # the parent's state and the two actions: the same pair, for a Q-model
                    "prompt": text(parent),
                    "chosen_action": tree.texts[int(a["payload"][w])].action,
                    "rejected_action": tree.texts[int(a["payload"][lo])].action,
                    "terminal": bool(done[w] or done[lo]),  # a successor ends the episode
                }
            )
    return records
