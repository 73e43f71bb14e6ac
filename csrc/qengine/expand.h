// Expansion and progressive widening (docs/search-semantics.md, 5.5): the checks of a batch
// call, entry by entry, and the expansion of one node. Forest::expand (forest.cc) runs the
// checks in their passes over the batch, then the mutation.
#pragma once

#include <cstdint>
#include <exception>
#include <string>
#include <vector>

#include "qengine/tree.h"

namespace qengine {

// Input of expand (CSR): M nodes and C = sum(counts) children.
struct ExpandArgs {
  int64_t num_items = 0;              // M
  const int32_t* trees = nullptr;     // [M]
  const int32_t* nodes = nullptr;     // [M]
  const int32_t* counts = nullptr;    // [M] children per node
  int64_t num_children = 0;           // C, the length of the four arrays below
  const float* priors = nullptr;      // [C]
  const float* rewards = nullptr;     // [C] (nullptr: all 0)
  const uint8_t* terminal = nullptr;  // [C] nonzero = terminal (nullptr: none)
  const int64_t* payloads = nullptr;  // [C] (nullptr: all 0)
};

// A children block [first, end) that an earlier entry of the same call moved by widening.
struct MovedBlock {
  int32_t first, end;
};

// Pass 1, the checks of entry i that need no tree state, in order: count >= 0 (ValueError), tree
// and node ids in range (IndexError), its children inside the children arrays, their priors
// finite and >= 0, their rewards finite (ValueError). `offset` is the entry's first child (the
// counts of the earlier entries). Null when the entry passes.
std::exception_ptr check_entry(const ExpandArgs& args, int64_t i, int64_t offset,
                               const std::vector<Tree>& trees);

// Pass 2, the state checks of entry i against tree `t` (id `tree`) as the earlier entries of the
// call leave it: alive, not `repeated` (its node appears in an earlier entry), not in a block
// `moved` by an earlier widening, not terminal, the child and depth limits, no child in flight
// when widening. On success adds the slots the entry takes to *size (and a moved block to
// *moved) and returns ""; else the ValueError message.
std::string check_entry_state(const Tree& t, int64_t tree, const ExpandArgs& args, int64_t i,
                              bool repeated, std::vector<MovedBlock>* moved, int64_t* size);

// The CapacityError of a tree that would grow to `size` slots, past `max_nodes`.
std::exception_ptr capacity_error(int64_t tree, int64_t size, int64_t max_nodes);

// The children given to one node: `count` entries of each array (terminal may be null: none).
struct ChildBlock {
  int32_t count = 0;                  // number of new children
  const float* priors = nullptr;      // [count] priors
  const float* rewards = nullptr;     // [count] edge rewards (nullptr: all 0)
  const uint8_t* terminal = nullptr;  // [count] nonzero = terminal child (nullptr: none)
  const int64_t* payloads = nullptr;  // [count] user handles (nullptr: all 0)
};

// Slots a tree of `size` slots will use after expanding `node` with `count` children
// (moving the old children block when widening cannot happen in place).
int64_t size_after_expand(const Tree& tree, int32_t node, int64_t count, int64_t size);

// Applies one validated expansion: terminal marking (count 0 on an unexpanded node), plain
// expansion, or widening (in place or by moving the block). `limit` caps arena growth.
void expand_node(Tree& tree, int32_t node, const ChildBlock& children, int64_t limit);

}  // namespace qengine
