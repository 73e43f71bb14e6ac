// The synthetic evaluator of the benchmarks (docs/search-semantics.md, section 8): priors and
// values derived from a 32-bit key kept in each node's payload, so the tree is what is measured.
#pragma once

#include <cstdint>
#include <vector>

#include "qengine/config.h"
#include "qengine/tree.h"

namespace qengine {

// Precomputed per run: mix32(j + 1) for j = 0 .. A.
struct SyntheticTables {
  std::vector<uint32_t> mixed_index;  // [A+1]
  explicit SyntheticTables(int32_t num_actions);
};

// Key of the root of tree `tree_id`: mix32(seed32 ^ mix32(tree)).
uint32_t synthetic_root_key(uint32_t seed32, uint32_t tree_id);

// Evaluates key: A float32 priors (softmax) into priors[], A child keys into child_payloads[]
// and returns the value 2 * unit(key, A) - 1.
double synthetic_evaluate(uint32_t key, int32_t num_actions, const SyntheticTables& tables,
                          float* priors, int64_t* child_payloads);

// Runs the synthetic search on one tree (nothing in flight, capacity checked by the caller):
// writes the root key into payload[0], then while fewer than S leaves were evaluated: ask K,
// expand each leaf with A children, back up each leaf's value. Stops early if an ask returns no
// leaf. Returns the number of leaves evaluated.
int64_t synthetic_search(Tree& tree, const SearchConfig& config, uint64_t tree_id,
                         int64_t num_simulations, int32_t num_actions, int64_t leaves_per_ask,
                         uint32_t seed32, const SyntheticTables& tables);

}  // namespace qengine
