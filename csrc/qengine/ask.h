// One descent of ask (docs/search-semantics.md, 5.1).
#pragma once

#include <cstdint>
#include <vector>

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

// A leaf returned by ask_trees.
struct AskedLeaf {
  int32_t tree;     // tree id
  int32_t node;     // node id
  int32_t depth;    // depth of the node
  int64_t payload;  // payload of the node
};

// K descents in each tree of [begin, end) (trees[b] is tree id b), exactly as K calls of descend
// per tree in order, but with the descents of several trees interleaved one level at a time and
// the next children block prefetched, so the cache misses of different trees overlap. Appends the
// leaves to `leaves` in tree order (descent order within a tree); counts terminal hits and
// collisions into hits[b - begin] and collisions[b - begin].
void ask_trees(Tree* trees, const SearchConfig& config, int64_t begin, int64_t end, int64_t k,
               std::vector<AskedLeaf>* leaves, int64_t* hits, int64_t* collisions);

// Prefetches the selection data of node x's children block; for an unexpanded node, the fields
// ask returns for a leaf.
inline void prefetch_children(const Tree& t, int32_t x) {
  const int32_t nc = t.num_children[x];
  if (nc == 0) {
    __builtin_prefetch(t.depth + x);
    __builtin_prefetch(t.payload + x);
    return;
  }
  // The block's records, 28 bytes each (8 children span 4 or 5 lines); at most kLines lines, the
  // hardware prefetcher streams the rest of a wide block.
  constexpr int kLines = 6;
  const char* p = reinterpret_cast<const char*>(t.hot + t.first_child[x]);
  const char* last = reinterpret_cast<const char*>(t.hot + t.first_child[x] + nc) - 1;
  for (int i = 0; i < kLines && p <= last; ++i, p += 64) __builtin_prefetch(p);
  if (p > last) __builtin_prefetch(last);
}

}  // namespace qengine
