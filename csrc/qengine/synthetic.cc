#include "qengine/synthetic.h"

#include <algorithm>
#include <cmath>

#include "qengine/ask.h"
#include "qengine/backup.h"
#include "qengine/expand.h"
#include "qengine/rng.h"

namespace qengine {

SyntheticTables::SyntheticTables(int32_t num_actions)
    : mixed_index(static_cast<size_t>(num_actions) + 1) {
  for (int32_t j = 0; j <= num_actions; ++j) {
    mixed_index[static_cast<size_t>(j)] = mix32(static_cast<uint32_t>(j) + 1U);
  }
}

uint32_t synthetic_root_key(uint32_t seed32, uint32_t tree_id) {
  return mix32(seed32 ^ mix32(tree_id));
}

namespace {
// unit(key, j) = (mix32(key ^ mix32(j + 1)) >> 8) * 2^-24, in [0, 1).
inline double unit(uint32_t key, uint32_t mixed_j) {
  return static_cast<double>(mix32(key ^ mixed_j) >> 8) * 0x1p-24;
}
}  // namespace

double synthetic_evaluate(uint32_t key, int32_t num_actions, const SyntheticTables& tables,
                          float* priors, int64_t* child_payloads) {
  // logits in [-1, 1); softmax in double: e = exp(l - max), summed left to right.
  double logits[64];
  std::vector<double> big;
  double* l = logits;
  if (num_actions > 64) {
    big.resize(static_cast<size_t>(num_actions));
    l = big.data();
  }
  double max_logit = -2.0;
  for (int32_t a = 0; a < num_actions; ++a) {
    l[a] = 2.0 * unit(key, tables.mixed_index[static_cast<size_t>(a)]) - 1.0;
    max_logit = std::max(max_logit, l[a]);
  }
  double sum = 0.0;
  for (int32_t a = 0; a < num_actions; ++a) {
    l[a] = std::exp(l[a] - max_logit);
    sum += l[a];
  }
  for (int32_t a = 0; a < num_actions; ++a) {
    priors[a] = static_cast<float>(l[a] / sum);
    child_payloads[a] = static_cast<int64_t>(mix32(key * 31U + static_cast<uint32_t>(a) + 1U));
  }
  return 2.0 * unit(key, tables.mixed_index[static_cast<size_t>(num_actions)]) - 1.0;
}

int64_t synthetic_search(Tree& t, const SearchConfig& cfg, uint64_t tree_id,
                         int64_t num_simulations, int32_t num_actions, int64_t leaves_per_ask,
                         uint32_t seed32, const SyntheticTables& tables) {
  t.payload[kRoot] =
      static_cast<int64_t>(synthetic_root_key(seed32, static_cast<uint32_t>(tree_id)));
  const size_t a = static_cast<size_t>(num_actions);
  std::vector<int32_t> leaves;
  leaves.reserve(static_cast<size_t>(leaves_per_ask));
  std::vector<float> priors(a * static_cast<size_t>(leaves_per_ask));
  std::vector<int64_t> payloads(a * static_cast<size_t>(leaves_per_ask));
  std::vector<double> values(static_cast<size_t>(leaves_per_ask));
  const std::vector<float> rewards(a, 0.0f);
  int64_t evaluated = 0;
  while (evaluated < num_simulations) {
    leaves.clear();
    for (int64_t k = 0; k < leaves_per_ask; ++k) {
      int32_t leaf = kNoNode;
      const Descent d = descend(t, cfg, tree_id, &leaf);
      if (d == Descent::kExhausted) break;
      if (d == Descent::kLeaf) leaves.push_back(leaf);
    }
    if (leaves.empty()) break;
    // Evaluate, then expand every leaf, then back every leaf up (the ask / expand / tell order).
    for (size_t i = 0; i < leaves.size(); ++i) {
      const uint32_t key = static_cast<uint32_t>(t.payload[leaves[i]]);
      values[i] = synthetic_evaluate(key, num_actions, tables, priors.data() + i * a,
                                     payloads.data() + i * a);
    }
    for (size_t i = 0; i < leaves.size(); ++i) {
      // A leaf at the deepest representable depth is backed up without children.
      if (t.depth[leaves[i]] >= kMaxDepth) continue;
      ChildBlock block;
      block.count = num_actions;
      block.priors = priors.data() + i * a;
      block.rewards = rewards.data();
      block.payloads = payloads.data() + i * a;
      expand_node(t, leaves[i], block, cfg.max_nodes);
    }
    for (size_t i = 0; i < leaves.size(); ++i) backup_leaf(t, cfg, leaves[i], values[i], true);
    evaluated += static_cast<int64_t>(leaves.size());
  }
  return evaluated;
}

}  // namespace qengine
