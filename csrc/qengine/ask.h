// One descent of ask (docs/search-semantics.md, 5.1).
#pragma once

#include <cstdint>

#include "qengine/config.h"
#include "qengine/tree.h"

namespace qengine {

// What a descent ended on.
enum class Descent : uint8_t {
  kLeaf,         // a new leaf: every node on its path got in-flight + 1
  kTerminalHit,  // a terminal node: value 0 backed up at once, no in-flight change
  kCollision,    // an unexpanded node already in flight: nothing changed
  kExhausted,    // the root is exhausted: the tree is done
};

// Walks from the root by select_child and applies the outcome. `*leaf` receives the node reached.
Descent descend(Tree& tree, const SearchConfig& config, uint64_t tree_id, int32_t* leaf);

}  // namespace qengine
