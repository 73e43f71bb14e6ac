"""Searched trees → step-level preference records (prompt, chosen, rejected, Q-values).

The pairs themselves are computed by the native core (``Forest.pairs``); this module maps node ids
back to text and writes records that ``datasets.load_dataset`` and TRL's ``DPOTrainer`` read as they
are: columns ``prompt``, ``chosen``, ``rejected`` plus ``q_chosen``, ``q_rejected``, ``depth``,
``task`` and ``env`` (the environment's registry name: its hooks style the prompt, see
``qengine.data.prompts``).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any, Literal

import numpy as np

from ..errors import UsageFileNotFoundError, UsageValueError
from ..forest import TERMINAL_BIT, Forest
from ..search.storage import SearchedTree, TreeStore, concat_trees
from .prompts import render_prompt

# What a search that yields no pair means and what to do, for every step that meets it.
NO_PAIRS = (
    "the search gave no preference pair: in every searched state the sibling actions had the "
    "same Q (with a success reward only won episodes count, so every Q is 0 when no rollout won). "
    "Search for the environment's progress instead (CollectSettings(success_reward=None), "
    "`qengine collect` without --success-reward: TextWorld then backs up its game score), search "
    "more (more iterations, candidates or rollout depth, easier tasks), or relax the pair "
    "filters (--min-q-gap, --min-visits)"
)

RECORD_COLUMNS = (
    "prompt", "chosen", "rejected", "q_chosen", "q_rejected", "depth", "task", "env"
)  # fmt: skip


def state_history(tree: SearchedTree, node: int) -> list[tuple[str, str]]:
    """(action, observation) of every step from the root down to ``node`` (``TextState.history``
    of the node's state)."""
    parent, payload = tree.arrays["parent"], tree.arrays["payload"]
    chain = []
    while node > 0:
        chain.append(node)
        node = int(parent[node])
    texts = [tree.texts[int(payload[n])] for n in reversed(chain)]
    return [(t.action, t.observation) for t in texts]


def state_prompt(tree: SearchedTree, node: int) -> str:
    """``render_prompt`` of the path root → ``node``: what the agent saw in that state, exactly
    ``render_state`` of the replayed environment state. The prompt of a preference record, the
    state text of a value record."""
    header = tree.header
    history = state_history(tree, node)
    return render_prompt(header["instruction"], header["first_observation"], history)


def with_exact_terminals(tree: SearchedTree) -> dict[str, np.ndarray]:
    """``tree``'s arrays with every unvisited episode end counted as visited once.

    A child that ends the episode has an exact value, its edge reward (there is no future to
    estimate), yet it has no visit until a later selection walks into it. The expansion that finds
    a winning action is the one that stops a tree early, so without this the winning action, the
    most informative sibling of all, would never become ``chosen`` in a pair. Only nodes whose
    step ended the episode (``done``) are credited, not nodes cut at the search's depth cap.
    """
    arrays = dict(tree.arrays)
    status, visits = arrays["status"], arrays["visits"]
    credit = ((status & TERMINAL_BIT) != 0) & (visits == 0) & tree.episode_ends()
    credit[0] = False  # the root has no siblings
    if credit.any():
        arrays["visits"] = np.where(credit, 1, visits).astype(visits.dtype)
    return arrays


def pairs_from_trees(
    trees: Iterable[SearchedTree],
    *,
    mode: Literal["paper", "max_min", "max_all"] = "paper",
    min_visits: int = 1,
    min_q_gap: float = 0.0,
    max_depth: int = -1,
    exact_terminals: bool = True,
) -> list[dict[str, Any]]:
    """Preference records from searched trees (see ``Forest.pairs`` for the modes and filters).

    ``exact_terminals``: count unvisited episode ends as visited once with their reward as Q (see
    :func:`with_exact_terminals`); False uses the trees' visits as they are.
    """
    trees = list(trees)
    if not trees:
        return []
    config = trees[0].config
    arrays = [with_exact_terminals(t) if exact_terminals else t.arrays for t in trees]
    forest = Forest.from_arrays(concat_trees(arrays), config)
    pairs = forest.pairs(mode=mode, min_visits=min_visits, min_q_gap=min_q_gap, max_depth=max_depth)
    records = []
    for row in range(len(pairs)):
        tree = trees[int(pairs.tree[row])]
        payload = tree.arrays["payload"]
        records.append(
            {
                "prompt": state_prompt(tree, int(pairs.parent[row])),
                "chosen": tree.texts[int(payload[pairs.chosen[row]])].action,
                "rejected": tree.texts[int(payload[pairs.rejected[row]])].action,
                "q_chosen": float(pairs.q_chosen[row]),
                "q_rejected": float(pairs.q_rejected[row]),
                "depth": int(pairs.depth[row]),
                "task": str(tree.header["task_id"]),
                "env": tree.header.get("env"),  # whose rendering hooks style the prompt
            }
        )
    return records


def records_env(records: Iterable[dict[str, Any]]) -> str | None:
    """The one environment the records come from (their ``env``), None when they do not say:
    a Q-model reads the states of one environment, through its rendering hooks."""
    envs = {r.get("env") for r in records}
    if len(envs) > 1:
        names = ", ".join(sorted(str(e) for e in envs))
        raise UsageValueError(
            f"the records come from several environments ({names}): train one Q-model per "
            "environment (filter the records by their env column)"
        )
    return envs.pop() if envs else None


def build_pairs(tree_dir: str | Path, **filters: Any) -> list[dict[str, Any]]:
    """Preference records of every tree written by ``qengine.search.collect`` under ``tree_dir``."""
    if not (Path(tree_dir) / "trees").is_dir():
        raise UsageFileNotFoundError(
            f"{tree_dir} holds no searched trees (no trees/ folder): give the directory written "
            "by `qengine collect --out` (or qengine.search.collect(..., out_dir=...))"
        )
    return pairs_from_trees(TreeStore(tree_dir), **filters)


def record_format(path: str | Path) -> str:
    """``"json"`` or ``"parquet"``: how records at ``path`` are stored, by its suffix."""
    kind = {".jsonl": "json", ".parquet": "parquet"}.get(Path(path).suffix)
    if kind is None:
        raise UsageValueError(
            f"{path}: unsupported suffix {Path(path).suffix!r}; name the file .jsonl or .parquet"
        )
    return kind


def save_records(records: list[dict[str, Any]], path: str | Path) -> Path:
    """Write records as ``.jsonl`` or ``.parquet`` (by suffix); both load with ``datasets``."""
    path = Path(path)
    kind = record_format(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    if kind == "parquet":
        import pyarrow as pa
        import pyarrow.parquet as pq

        columns = {c: [_cell(r, c) for r in records] for c in RECORD_COLUMNS}
        pq.write_table(pa.table(columns), path)
    else:
        path.write_text(
            "".join(json.dumps({c: _cell(r, c) for c in RECORD_COLUMNS}) + "\n" for r in records)
        )
    return path


def _cell(record: dict[str, Any], column: str) -> Any:
    # records made before they named their environment (or by hand) have no "env": null
    return record.get(column) if column == "env" else record[column]


def load_records(path: str | Path) -> Any:
    """The records as a Hugging Face ``datasets.Dataset``."""
    from datasets import load_dataset

    kind = record_format(path)
    if not Path(path).is_file():
        raise UsageFileNotFoundError(f"{path} does not exist: write records with `qengine pairs`")
    return load_dataset(kind, data_files=str(path), split="train")


def q_gap_summary(records: list[dict[str, Any]]) -> dict[str, float]:
    q_w = np.array([r["q_chosen"] for r in records])
    q_l = np.array([r["q_rejected"] for r in records])
    if not records:
        return {"pairs": 0}
    return {
        "pairs": len(records),
        "q_chosen_mean": float(q_w.mean()),
        "q_rejected_mean": float(q_l.mean()),
        "q_gap_mean": float((q_w - q_l).mean()),
    }
