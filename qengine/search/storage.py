"""Searched trees on disk: a safetensors file (node arrays) and a JSONL file (texts) per tree.

A tree counts as written once its ``.safetensors`` file exists: the JSONL file is written first and
the arrays are renamed into place last, so a run killed at any moment leaves either a complete tree
or none, and a resumed run neither loses nor duplicates a tree. Each writer stages its files under
names of its own (``*.tmp``), so workers of a distributed run can share the directory; what a
killed writer leaves behind is removed by :meth:`TreeStore.clean` (the driver calls it when no
writer runs). Every completed write appends one line to ``writes.log`` (which writer, which tree):
a tree written twice shows there.

Layout of ``DIR/trees/``::

    00017.jsonl          line 0: {"task_id", "env", "instruction", "first_observation", ...}
                         line 1+: one text per line, in payload order: {"payload", "node",
                         "depth", "action", "observation", "reward", "done"}
    00017.safetensors    the one-tree export of Forest.export_arrays() (+ config in the metadata)
    writes.log           one JSON line per completed write: {"index", "writer": "host:pid"}
"""

from __future__ import annotations

import json
import os
import socket
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from .. import _layout
from ..config import SearchConfig
from ..forest import Forest

_FORMAT = "qengine.searched-tree/1"
_PER_NODE = _layout.NODE_FIELDS  # the core's node layout (csrc/qengine/layout.h)
_PER_TREE = _layout.TREE_FIELDS


@dataclass(frozen=True)
class NodeText:
    """The text of one node: the action that led to it and what the environment answered."""

    action: str  # "" for the root
    observation: str
    reward: float
    done: bool


@dataclass(frozen=True)
class SearchedTree:
    """One task's searched tree: its node arrays and the text of every node."""

    index: int  # position of the task in the collection
    header: dict[str, Any]  # task_id, env, instruction, first_observation, best_reward, ...
    texts: list[NodeText]  # indexed by the node's payload
    arrays: dict[str, np.ndarray]  # one-tree export (tree_offsets = [0, N])
    config: SearchConfig

    def forest(self) -> Forest:
        """A one-tree forest holding this tree (for queries and pair extraction)."""
        return Forest.from_arrays(self.arrays, self.config)

    def episode_ends(self) -> np.ndarray:
        """bool [N]: the node's step ended the episode (not merely cut at the depth cap)."""
        return np.array([self.texts[int(k)].done for k in self.arrays["payload"]], dtype=bool)


def concat_trees(parts: Sequence[dict[str, np.ndarray]]) -> dict[str, np.ndarray]:
    """Many one-tree exports (``Forest.export_tree``) → one forest export."""
    out = {name: np.concatenate([p[name] for p in parts]) for name in _PER_NODE + _PER_TREE}
    sizes = np.array([p["tree_offsets"][-1] for p in parts], dtype=np.int64)
    out["tree_offsets"] = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    return out


class TreeStore:
    """Reads and writes searched trees under ``root/trees``."""

    def __init__(self, root: str | Path) -> None:
        self.dir = Path(root) / "trees"
        self.dir.mkdir(parents=True, exist_ok=True)

    def _stem(self, index: int) -> Path:
        return self.dir / f"{index:05d}"

    def done(self) -> set[int]:
        """Indices of the trees already written completely."""
        return {int(p.stem) for p in self.dir.glob("*.safetensors") if p.stem.isdigit()}

    def has(self, index: int) -> bool:
        """Tree ``index`` is written completely (one stat, not a listing of the directory)."""
        return self._stem(index).with_suffix(".safetensors").exists()

    def clean(self) -> list[Path]:
        """Remove what killed writers left: staged ``*.tmp`` files and texts whose tree has no
        arrays. Call it only while no writer runs (it would delete a live writer's staging)."""
        done = self.done()
        stale = list(self.dir.glob("*.tmp"))
        texts = self.dir.glob("*.jsonl")
        stale += [p for p in texts if p.stem.isdigit() and int(p.stem) not in done]
        for path in stale:
            path.unlink(missing_ok=True)
        return stale

    def writes(self) -> list[dict[str, Any]]:
        """The write log: one ``{"index", "writer"}`` per completed write, in order."""
        log = self.dir / "writes.log"
        if not log.exists():
            return []
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]

    def write(
        self,
        index: int,
        header: dict[str, Any],
        texts: Sequence[NodeText],
        arrays: dict[str, np.ndarray],
        config: SearchConfig,
    ) -> bool:
        """Write tree ``index`` unless it is already complete (True if written). A complete tree
        is never rewritten: a stale writer (an actor of a killed driver still finishing its
        chunk while a restarted run searches the same task) loses instead of writing it twice."""
        from safetensors.numpy import save_file

        stem = self._stem(index)
        if self.has(index):
            return False
        lines = [json.dumps({"format": _FORMAT, **header})]
        parent, payload, depth = arrays["parent"], arrays["payload"], arrays["depth"]
        node_of = {int(payload[n]): n for n in range(len(parent)) if parent[n] != _layout.DEAD_SLOT}
        for i, text in enumerate(texts):
            node = node_of.get(i, -1)
            row = {
                "payload": i,
                "node": node,
                "depth": int(depth[node]) if node >= 0 else -1,
                "action": text.action,
                "observation": text.observation,
                "reward": text.reward,
                "done": text.done,
            }
            lines.append(json.dumps(row))
        writer = f"{socket.gethostname()}:{os.getpid()}"
        staged = f"{stem.name}.{os.getpid()}-{uuid.uuid4().hex[:8]}"  # this writer's own names
        tmp_jsonl = self.dir / f"{staged}.jsonl.tmp"
        tmp_jsonl.write_text("\n".join(lines) + "\n")
        os.replace(tmp_jsonl, stem.with_suffix(".jsonl"))
        tmp_arrays = self.dir / f"{staged}.safetensors.tmp"
        save_file(arrays, str(tmp_arrays), metadata={"format": _FORMAT, "config": config.to_json()})
        os.replace(tmp_arrays, stem.with_suffix(".safetensors"))
        # one write() of one short line with O_APPEND: lines of concurrent writers never mix
        line = (json.dumps({"index": index, "writer": writer}) + "\n").encode()
        fd = os.open(self.dir / "writes.log", os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        try:
            os.write(fd, line)
        finally:
            os.close(fd)
        return True

    def read(self, index: int) -> SearchedTree:
        from safetensors import safe_open

        stem = self._stem(index)
        with safe_open(str(stem.with_suffix(".safetensors")), framework="numpy") as handle:
            metadata = handle.metadata() or {}
            arrays = {key: handle.get_tensor(key) for key in handle.keys()}
        if metadata.get("format") != _FORMAT:
            raise ValueError(f"{stem}.safetensors is not a qengine searched tree")
        config = SearchConfig.from_dict(json.loads(metadata["config"]))
        lines = stem.with_suffix(".jsonl").read_text().splitlines()
        header = json.loads(lines[0])
        rows = [json.loads(line) for line in lines[1:]]
        ordered = [NodeText(r["action"], r["observation"], r["reward"], r["done"]) for r in rows]
        return SearchedTree(index, header, ordered, arrays, config)

    def __iter__(self) -> Iterator[SearchedTree]:
        for index in sorted(self.done()):
            yield self.read(index)
