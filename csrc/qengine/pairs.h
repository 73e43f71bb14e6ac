// Best child / best path and step-level preference pairs (docs/search-semantics.md, 5.6-5.7).
#pragma once

#include <cstdint>
#include <vector>

#include "qengine/config.h"
#include "qengine/tree.h"

namespace qengine {

// Which (chosen, rejected) pairs to emit.
enum class PairMode : uint8_t {
  kPaper,   // along the best path: next best-path node vs its lowest-Q eligible sibling
  kMaxMin,  // at every internal node: highest-Q vs lowest-Q eligible child
  kMaxAll,  // at every internal node: highest-Q vs each other eligible child (by id)
  kAll,     // at every internal node: every two eligible children with different Q
};

// Pairs over the forest, ordered by tree, then parent id.
struct PairsResult {
  std::vector<int32_t> tree;       // [M] tree id
  std::vector<int32_t> parent;     // [M] parent node id
  std::vector<int32_t> chosen;     // [M] chosen child id
  std::vector<int32_t> rejected;   // [M] rejected child id
  std::vector<int32_t> depth;      // [M] depth of the parent
  std::vector<double> q_chosen;    // [M] Qraw of the chosen child
  std::vector<double> q_rejected;  // [M] Qraw of the rejected child
  void clear();
  void append(const PairsResult& other);
};

// The child of s with the most visits (ties: higher Qraw, then lower id), unless a visited
// terminal child has a strictly higher Qraw: then the visited terminal child with the highest
// Qraw (ties: lower id), since its value is exact (docs 5.6). kNoNode if no child is visited.
int32_t best_child(const Tree& tree, const SearchConfig& config, int32_t s);

// Node ids root, best_child(root), ... until a node without a visited child.
std::vector<int32_t> best_path(const Tree& tree, const SearchConfig& config);

// Appends the pairs of one tree to `out`. A child is eligible when visits >= max(min_visits, 1),
// or, when `eligible` is given ([N] of this tree), when eligible[c] != 0 (the caller's rule).
void tree_pairs(const Tree& tree, const SearchConfig& config, int32_t tree_id, PairMode mode,
                int64_t min_visits, double min_q_gap, int64_t max_depth, const uint8_t* eligible,
                PairsResult* out);

// Qraw of every node [N] (docs section 3, with the two-player sign; the root's is
// discount * sign * q[root], a dead slot's 0).
std::vector<double> edge_values(const Tree& tree, const SearchConfig& config);

}  // namespace qengine
