"""The search operations on one tree (docs section 5.1-5.5): descent, backup, cancel, expansion
and the exhausted flag. Argument validation lives in ``engine.py``; these functions assume valid
input and mutate the tree.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qengine._layout import MAX_VISITS
from qengine.config import SearchConfig

from .select import q_raw, select_child, sign
from .tree import ROOT, Tree


# ---------------------------------------------------------------------- exhaustion (5.3)
def qualifies_exhausted(tree: Tree, node: int) -> bool:
    """Terminal and visited, or expanded with every child exhausted."""
    if tree.terminal[node] and tree.visits[node] > 0:
        return True
    children = tree.children(node)
    return len(children) > 0 and all(tree.exhausted[c] for c in children)


def mark_ancestors_exhausted(tree: Tree, node: int) -> None:
    """Re-check the ancestors of node bottom-up, setting the flag where it now applies (prune)."""
    while node != ROOT:
        node = tree.parent[node]
        if not tree.exhausted[node] and qualifies_exhausted(tree, node):
            tree.exhausted[node] = True


def clear_exhausted_upwards(tree: Tree, node: int) -> None:
    """After widening node: clear the flag on it and on every ancestor that no longer qualifies."""
    while True:
        if tree.exhausted[node] and not qualifies_exhausted(tree, node):
            tree.exhausted[node] = False
        if node == ROOT:
            return
        node = tree.parent[node]


# ---------------------------------------------------------------------- backup (5.2)
FLOAT32_MAX = float(np.finfo(np.float32).max)
FLOAT32_OVERFLOW = float(2**128 - 2**103)
"""The smallest double that rounds to float32 infinity (FLOAT32_MAX plus half an ulp); backup
accepts the values strictly below it in magnitude (3.4028235e38, FLOAT32_MAX as printed, too)."""


def mean_step(q: float, g32: np.float32, visits: int) -> float:
    """float32(q + (g32 - q) / visits), every operation float32; where that overflows (returns
    near +-FLOAT32_MAX of opposite signs) the same step in double, rounded once."""
    q32 = np.float32(q)
    if abs(q) + abs(float(g32)) < FLOAT32_MAX:  # g32 - q cannot overflow: the common case
        return float(q32 + (g32 - q32) / np.float32(visits))
    with np.errstate(over="ignore"):
        step = q32 + (g32 - q32) / np.float32(visits)
    if np.isfinite(step):
        return float(step)
    return float(np.float32(q + (float(g32) - q) / visits))


def backup_path(tree: Tree, config: SearchConfig, leaf: int, value: float, *, tell: bool) -> None:
    """Back up ``value`` from ``leaf`` to the root; ``tell`` also removes one in-flight count."""
    g = float(value)
    node = leaf
    gamma_sign = config.discount * sign(config)
    while True:
        if tell:
            tree.in_flight[node] -= 1
        visits = min(tree.visits[node] + 1, MAX_VISITS)  # saturates, never wraps
        tree.visits[node] = visits
        g32 = np.float32(min(max(g, -FLOAT32_MAX), FLOAT32_MAX))  # saturating float32(G)
        if config.backup == "mean":
            if visits == 1:
                tree.q[node] = float(g32)
            else:
                tree.q[node] = mean_step(tree.q[node], g32, visits)
        else:
            tree.q[node] = float(g32) if visits == 1 else max(tree.q[node], float(g32))
        if node != ROOT:
            x = q_raw(tree, config, node)
            tree.minmax_lo = min(tree.minmax_lo, x)
            tree.minmax_hi = max(tree.minmax_hi, x)
        if config.mark_exhausted and not tree.exhausted[node] and qualifies_exhausted(tree, node):
            tree.exhausted[node] = True
        if node == ROOT:
            return
        g = tree.reward[node] + gamma_sign * g
        node = tree.parent[node]


def cancel_path(tree: Tree, leaf: int) -> None:
    node = leaf
    while True:
        tree.in_flight[node] -= 1
        if node == ROOT:
            return
        node = tree.parent[node]


# ---------------------------------------------------------------------- descent (5.1)
@dataclass
class Descent:
    kind: str  # "leaf", "terminal_hit", "collision" or "blocked" (no selectable child)
    path: list[int]


def descend(tree: Tree, config: SearchConfig, tree_id: int) -> Descent:
    """One walk from the root (the root must not be exhausted). Applies its effects: in-flight + 1
    along the path of a leaf, or the immediate backup of 0.0 of a terminal hit. (The 14-bit
    in-flight limit is checked by the caller, upfront.)"""
    node = ROOT
    path = [ROOT]
    while tree.is_expanded(node) and not tree.terminal[node]:
        child = select_child(tree, config, tree_id, node)
        if child < 0:
            # Every child exhausted but the node is not (only reachable through inconsistent
            # loaded flags): nothing to return, nothing changes; counted as a collision.
            return Descent("blocked", path)
        node = child
        path.append(node)
    if tree.terminal[node]:
        backup_path(tree, config, node, 0.0, tell=False)
        return Descent("terminal_hit", path)
    if tree.own_in_flight(node) >= 1:
        return Descent("collision", path)
    for p in path:
        tree.in_flight[p] += 1
    return Descent("leaf", path)


# ---------------------------------------------------------------------- expansion (5.5)
def expand_node(
    tree: Tree,
    node: int,
    priors: list[float],
    rewards: list[float],
    terminal: list[bool],
    payloads: list[int],
) -> None:
    """Give ``node`` len(priors) more children (validated beforehand)."""
    count = len(priors)
    old_count = tree.num_children[node]
    if count == 0:
        if old_count == 0:
            tree.terminal[node] = True  # no action possible
        return
    if old_count == 0:
        tree.first_child[node] = tree.size
    elif tree.first_child[node] + old_count != tree.size:
        relocate_children(tree, node)
    for j in range(count):
        tree.append_child(node, old_count + j, priors[j], rewards[j], terminal[j], payloads[j])
    tree.num_children[node] = old_count + count
    if old_count > 0:
        clear_exhausted_upwards(tree, node)


def relocate_children(tree: Tree, node: int) -> None:
    """Move node's children block to the arena end; the old slots become dead (widening)."""
    old = list(tree.children(node))
    new_first = tree.size
    for offset, c in enumerate(old):
        new_id = tree.append_record(tree.record(c))
        for grandchild in tree.children(c):
            tree.parent[grandchild] = new_id
        assert new_id == new_first + offset
    for c in old:
        tree.kill(c)
    tree.first_child[node] = new_first
