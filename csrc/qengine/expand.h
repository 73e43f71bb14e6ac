// Expansion and progressive widening of one node (docs/search-semantics.md, 5.5).
#pragma once

#include <cstdint>

#include "qengine/tree.h"

namespace qengine {

// The children given to one node: `count` entries of each array (terminal may be null: none).
struct ChildBlock {
  int32_t count = 0;                  // number of new children
  const float* priors = nullptr;      // [count] priors
  const float* rewards = nullptr;     // [count] edge rewards
  const uint8_t* terminal = nullptr;  // [count] nonzero = terminal child (nullptr: none)
  const int64_t* payloads = nullptr;  // [count] user handles
};

// Slots a tree of `size` slots will use after expanding `node` with `count` children
// (moving the old children block when widening cannot happen in place).
int64_t size_after_expand(const Tree& tree, int32_t node, int64_t count, int64_t size);

// Applies one validated expansion: terminal marking (count 0 on an unexpanded node), plain
// expansion, or widening (in place or by moving the block). `limit` caps arena growth.
void expand_node(Tree& tree, int32_t node, const ChildBlock& children, int64_t limit);

}  // namespace qengine
