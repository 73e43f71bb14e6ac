"""Tree operations (docs 5.8): re-root, prune, compact, reset; all through one BFS renumbering."""

from __future__ import annotations

import math

from .ops import mark_ancestors_exhausted
from .tree import LIST_FIELDS, NO_CHILD, NO_PARENT, ROOT, Tree


def next_epoch(epoch: int) -> int:
    """root_epoch + 1, wrapping around at 2**64 like the core's uint64 (section 1)."""
    return (epoch + 1) & 0xFFFF_FFFF_FFFF_FFFF


def renumbered(tree: Tree, root: int, drop_below: int = -1) -> tuple[Tree, dict[int, int]]:
    """A copy of the subtree of ``root`` with ids in BFS order (children blocks contiguous, in
    action order), depths shifted so the root is at 0, dead slots gone. The descendants of
    ``drop_below`` (if >= 0) are left out and it becomes unexpanded. Returns (tree, old→new)."""
    order = [root]
    new_id = {root: 0}
    i = 0
    while i < len(order):
        old = order[i]
        i += 1
        if old == drop_below:
            continue
        for c in tree.children(old):
            new_id[c] = len(order)
            order.append(c)
    shift = tree.depth[root]
    out = Tree.empty()
    for old in order:
        rec = dict(zip(LIST_FIELDS, tree.record(old), strict=True))
        rec["parent"] = NO_PARENT if old == root else new_id[rec["parent"]]
        if rec["num_children"] > 0 and old != drop_below:
            rec["first_child"] = new_id[rec["first_child"]]
        else:
            rec["first_child"], rec["num_children"] = NO_CHILD, 0
        rec["depth"] -= shift
        out.append_record(tuple(rec[name] for name in LIST_FIELDS))
    out.minmax_lo, out.minmax_hi, out.root_epoch = tree.minmax_lo, tree.minmax_hi, tree.root_epoch
    return out, new_id


def reroot(tree: Tree, node: int) -> Tree:
    out, _ = renumbered(tree, node)
    out.action[ROOT] = 0
    out.reward[ROOT] = 0.0
    out.prior[ROOT] = 1.0
    out.root_epoch = next_epoch(tree.root_epoch)
    return out


def prune(tree: Tree, node: int) -> Tree:
    out, new_id = renumbered(tree, ROOT, drop_below=node)
    kept = new_id[node]
    out.exhausted[kept] = True
    mark_ancestors_exhausted(out, kept)
    return out


def compact(tree: Tree) -> Tree:
    out, _ = renumbered(tree, ROOT)
    return out


def reset(tree: Tree, payload: int) -> Tree:
    out = Tree(payload)
    out.minmax_lo, out.minmax_hi = math.inf, -math.inf
    out.root_epoch = next_epoch(tree.root_epoch)
    return out
