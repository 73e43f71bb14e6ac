"""Queries (docs 5.6) and step-level preference pairs (5.7)."""

from __future__ import annotations

import itertools

import numpy as np

from qengine.config import SearchConfig

from .select import q_raw
from .tree import ROOT, Tree


def best_child(tree: Tree, config: SearchConfig, node: int) -> int:
    """Visited child with the most visits, ties: higher Qraw, then lower id; -1 if none. A visited
    terminal child whose Qraw is strictly higher than that child's overrides it (the visited
    terminal child with the highest Qraw, ties: lower id): its value is exact (docs 5.6)."""
    best = -1
    for c in tree.children(node):
        if tree.visits[c] == 0:
            continue
        if best < 0:
            best = c
            continue
        if tree.visits[c] > tree.visits[best] or (
            tree.visits[c] == tree.visits[best]
            and q_raw(tree, config, c) > q_raw(tree, config, best)
        ):
            best = c
    if best < 0:
        return best
    solved = -1
    for c in tree.children(node):
        if tree.visits[c] == 0 or not tree.terminal[c]:
            continue
        if solved < 0 or q_raw(tree, config, c) > q_raw(tree, config, solved):
            solved = c
    if solved >= 0 and q_raw(tree, config, solved) > q_raw(tree, config, best):
        return solved
    return best


def best_action(tree: Tree, config: SearchConfig) -> int:
    c = best_child(tree, config, ROOT)
    return -1 if c < 0 else c - tree.first_child[ROOT]


def best_path(tree: Tree, config: SearchConfig) -> list[int]:
    path = [ROOT]
    while True:
        c = best_child(tree, config, path[-1])
        if c < 0:
            return path
        path.append(c)


def root_policy(tree: Tree, config: SearchConfig, temperature: float) -> np.ndarray:
    """N(a)^(1/temperature) normalised; temperature 0: one-hot on best_action. All zeros when no
    root child is visited. Computed as (N(a) / max N)^(1/temperature) (no overflow for a small
    temperature), summed left to right in double, as the native core does."""
    children = tree.children(ROOT)
    out = np.zeros(len(children), dtype=np.float64)
    if temperature == 0.0:
        a = best_action(tree, config)
        if a >= 0:
            out[a] = 1.0
        return out
    top = max((tree.visits[c] for c in children), default=0)
    if top == 0:
        return out
    exponent = 1.0 / temperature
    weights = [(tree.visits[c] / top) ** exponent for c in children]
    total = 0.0
    for w in weights:
        total += w
    for a, w in enumerate(weights):
        out[a] = w / total
    return out


def qvalues(tree: Tree, config: SearchConfig, node: int) -> np.ndarray:
    return np.array([q_raw(tree, config, c) for c in tree.children(node)], dtype=np.float64)


def edge_values(tree: Tree, config: SearchConfig) -> np.ndarray:
    """Qraw of every node [N] (docs section 3; a dead slot's fields are 0, so its value is 0)."""
    return np.array([q_raw(tree, config, c) for c in range(tree.size)], dtype=np.float64)


def tree_pairs(
    tree: Tree,
    config: SearchConfig,
    mode: str,
    min_visits: int,
    min_q_gap: float,
    max_depth: int,
    eligible: list[bool] | None = None,
) -> list[tuple[int, int, int, int, float, float]]:
    """(parent, chosen, rejected, depth, q_chosen, q_rejected) rows of one tree, by parent id.
    A child is eligible when visits >= max(min_visits, 1), or, given ``eligible`` [N], when
    ``eligible[c]``."""
    threshold = max(min_visits, 1)

    def ok(c: int) -> bool:
        return eligible[c] if eligible is not None else tree.visits[c] >= threshold

    if mode == "paper":
        path = best_path(tree, config)
        parents = {s: nxt for s, nxt in itertools.pairwise(path)}
    rows = []
    for s in range(tree.size):
        if not tree.is_expanded(s) or not tree.is_alive(s):
            continue
        if max_depth >= 0 and tree.depth[s] > max_depth:  # any negative: no limit
            continue
        kids = [c for c in tree.children(s) if ok(c)]
        if len(kids) < 2:
            continue
        q = {c: q_raw(tree, config, c) for c in kids}
        if mode == "all":  # every two eligible siblings, by Qraw (highest first, ties: lower id)
            ranked = sorted(kids, key=lambda c: (-q[c], c))
            for i, hi in enumerate(ranked):
                for lo in ranked[i + 1 :]:
                    if q[hi] > q[lo] and q[hi] - q[lo] >= min_q_gap:
                        rows.append((s, hi, lo, tree.depth[s], q[hi], q[lo]))
            continue
        lowest = kids[0]
        for c in kids[1:]:
            if q[c] <= q[lowest]:  # ties: higher id
                lowest = c
        if mode in ("max_min", "max_all"):
            chosen = kids[0]
            for c in kids[1:]:
                if q[c] > q[chosen]:  # ties: lower id
                    chosen = c
            if mode == "max_all":
                for c in kids:
                    if c != chosen and q[chosen] > q[c] and q[chosen] - q[c] >= min_q_gap:
                        rows.append((s, chosen, c, tree.depth[s], q[chosen], q[c]))
                continue
        else:
            if s not in parents or parents[s] not in q:
                continue
            chosen = parents[s]
            lowest = -1
            for c in kids:
                if c != chosen and (lowest < 0 or q[c] <= q[lowest]):
                    lowest = c
        rejected = lowest
        if q[chosen] > q[rejected] and q[chosen] - q[rejected] >= min_q_gap:
            rows.append((s, chosen, rejected, tree.depth[s], q[chosen], q[rejected]))
    return rows
