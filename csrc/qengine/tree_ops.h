// Whole-tree operations (docs/search-semantics.md, 5.8). The caller checks ids and that nothing is
// in flight; these only transform.
#pragma once

#include <cstdint>

#include "qengine/tree.h"

namespace qengine {

// The one renumbering routine: the subtree of `new_root` copied into a fresh arena in BFS order
// (children blocks contiguous, in action order), dead slots dropped, depths shifted so the new root
// has depth 0. Children of `cut` (if not kNoNode) are dropped and `cut` left unexpanded. The new
// root gets parent -1, action 0, reward 0, prior 1. minmax and root_epoch are copied unchanged.
// Returns the new id of `cut` through `cut_new_id` (if given).
Tree renumber(const Tree& tree, int32_t new_root, int32_t cut, int32_t* cut_new_id);

// reroot: renumber from `node`; root_epoch + 1.
void reroot_tree(Tree& tree, int32_t node);
// prune: drop the descendants of `node` (not the root), mark it exhausted, re-check ancestors.
void prune_tree(Tree& tree, int32_t node);
// compact: renumber from the root (removes dead slots).
void compact_tree(Tree& tree);
// reset: one fresh root with `payload`; minmax cleared; root_epoch + 1.
void reset_tree(Tree& tree, int64_t payload);

}  // namespace qengine
