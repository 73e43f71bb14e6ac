// Backup (tell), cancel and the exhausted flag (docs/search-semantics.md, 5.2-5.4).
#pragma once

#include <cstdint>

#include "qengine/config.h"
#include "qengine/tree.h"

namespace qengine {

// Backs value `value` up from node x to the root (5.2). `tell`: remove one in-flight count per
// node on the path (an asked leaf); false for the terminal hits of ask. No validation.
void backup_leaf(Tree& tree, const SearchConfig& config, int32_t x, double value, bool tell);

// Removes one in-flight count on every node of the path root..x (5.4). No validation.
void cancel_leaf(Tree& tree, int32_t x);

// Adds one in-flight count on every node of the path root..x (a leaf returned by ask).
void add_in_flight(Tree& tree, int32_t x);

// True when expanded node s has every child exhausted.
bool all_children_exhausted(const Tree& tree, int32_t s);

// Terminal and visited, or expanded with every child exhausted (5.3).
bool qualifies_exhausted(const Tree& tree, int32_t s);

// Every ancestor of `node` (exclusive), bottom-up to the root, that qualifies gets the flag
// (prune, 5.8).
void recheck_ancestors_exhausted(Tree& tree, int32_t node);

// `node` and every ancestor up to the root: the flag is cleared where it no longer qualifies
// (after widening, 5.3).
void clear_exhausted_upwards(Tree& tree, int32_t node);

}  // namespace qengine
