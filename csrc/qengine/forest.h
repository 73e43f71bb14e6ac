// Forest: B independent trees searched together (docs/search-semantics.md, sections 5 and 9).
//
// Every batch operation first validates the whole batch (ids, values, node states, duplicates,
// capacity) and throws before changing anything; only then does it mutate, tree by tree, with the
// trees partitioned statically over the thread pool. All public methods are serialised by a mutex,
// so the forest may be used from several threads (the bindings release the GIL).
//
// File map: ask.cc (descent), select.cc (the rules), backup.cc (tell / cancel / exhaustion),
// expand.cc (expansion, widening), tree_ops.cc (reroot / prune / compact / reset), pairs.cc,
// serialize.cc (export / import), synthetic.cc (the benchmark evaluator), forest.cc (batching).
#pragma once

#include <cstdint>
#include <memory>
#include <mutex>
#include <utility>
#include <vector>

#include "qengine/ask.h"
#include "qengine/config.h"
#include "qengine/expand.h"
#include "qengine/pairs.h"
#include "qengine/serialize.h"
#include "qengine/thread_pool.h"
#include "qengine/tree.h"

namespace qengine {

// Most trees in a forest (tree ids are int32).
constexpr int64_t kMaxTrees = 2147483647;

// Output of ask: L leaves, tree by tree in descent order, plus P path entries.
struct AskResult {
  std::vector<int32_t> tree;           // [L] tree id
  std::vector<int32_t> node;           // [L] node id
  std::vector<int32_t> depth;          // [L] depth of the leaf
  std::vector<int64_t> payload;        // [L] payload of the leaf
  std::vector<int64_t> path_offsets;   // [L+1] offsets into the path arrays (zeros without paths)
  std::vector<int32_t> path_nodes;     // [P] node ids root..leaf
  std::vector<int32_t> path_actions;   // [P] action of each path node (root: 0)
  std::vector<int64_t> path_payloads;  // [P] payload of each path node
  std::vector<int64_t> terminal_hits;  // [B] descents that ended on a terminal node
  std::vector<int64_t> collisions;     // [B] descents that reached a leaf already in flight
};

class Forest {
 public:
  // `root_payloads` has num_trees entries (nullptr: all 0). num_threads 0: hardware concurrency.
  // num_trees (1 .. kMaxTrees) and num_threads (0 .. kMaxThreads) are range-checked before
  // anything is allocated or started (ValueError).
  Forest(int64_t num_trees, const SearchConfig& config, int num_threads,
         const int64_t* root_payloads);
  // ValueError unless 1 <= num_trees <= kMaxTrees and 0 <= num_threads <= kMaxThreads (what the
  // constructor checks first; callers use it to check before they allocate).
  static void check_sizes(int64_t num_trees, int64_t num_threads);
  // Rebuilds a forest from export_arrays() output; throws ValueError if the arrays are corrupt.
  static std::unique_ptr<Forest> from_arrays(const SearchConfig& config, const ArraysIn& arrays,
                                             int num_threads);

  int64_t num_trees() const { return static_cast<int64_t>(trees_.size()); }
  int num_threads() const { return pool_->size(); }
  const SearchConfig& config() const { return config_; }

  // ---- the search loop (5.1 - 5.5)
  AskResult ask(int64_t max_leaves, bool with_paths);
  void expand(const ExpandArgs& args);
  void backup(int64_t n, const int32_t* trees, const int32_t* nodes, const double* values);
  void cancel(int64_t n, const int32_t* trees, const int32_t* nodes);

  // ---- queries (5.6)
  // Throws IndexError (naming `op`) unless 0 <= tree < num_trees (for callers that must check a
  // tree id before arguments of their own).
  void check_tree(int64_t tree, const char* op) const;
  int64_t size(int64_t tree) const;
  ColumnView view(int64_t tree, Field field) const;
  std::vector<int32_t> in_flight(int64_t tree) const;             // [N] f(x)
  std::vector<uint8_t> flag(int64_t tree, uint16_t bit) const;    // [N] status & bit != 0
  std::vector<double> qvalues(int64_t tree, int64_t node) const;  // [A] Qraw of the children
  std::vector<double> root_policy(int64_t tree, double temperature) const;  // [A]
  int64_t best_action(int64_t tree) const;
  std::vector<int32_t> best_path(int64_t tree) const;
  std::pair<double, double> minmax(int64_t tree) const;
  uint64_t root_epoch(int64_t tree) const;
  // `eligible` (optional, nullptr: the visits rule) has one entry per node of every tree, the
  // trees concatenated as in export_arrays (`eligible_size` entries; ValueError otherwise).
  PairsResult pairs(PairMode mode, int64_t min_visits, double min_q_gap, int64_t max_depth,
                    const uint8_t* eligible = nullptr, int64_t eligible_size = 0) const;
  std::vector<double> edge_values(int64_t tree) const;  // [N] Qraw of every node (section 3)

  // ---- tree operations (5.8)
  void reroot(int64_t tree, int64_t node);
  void prune(int64_t tree, int64_t node);
  void compact(int64_t tree);
  // Grows every tree's arena to hold at least min(nodes, max_nodes) slots now (ValueError if
  // nodes < 0): a search that knows its budget allocates once instead of regrowing (each regrowth
  // copies the tree into fresh pages). A capacity hint only: no node changes, and a reroot /
  // compact / reset / import sizes the tree afresh.
  void reserve(int64_t nodes);
  void reset(int64_t tree, int64_t payload);

  // ---- benchmarks (section 8): returns the number of leaves evaluated over all trees
  // The argument checks run_synthetic makes first (ValueError), without the trees' state.
  static void check_synthetic_args(int64_t num_simulations, int64_t num_actions,
                                   int64_t leaves_per_ask);
  int64_t run_synthetic(int64_t num_simulations, int64_t num_actions, int64_t leaves_per_ask,
                        uint64_t seed);

  // ---- serialisation (5.9)
  ArraysOut export_arrays() const;
  // One tree as export_arrays() of a one-tree forest (tree_offsets [0, N]); IndexError if
  // `tree` is out of range.
  ArraysOut export_tree(int64_t tree) const;

 private:
  Forest() = default;  // for from_arrays
  // Validates config_ and num_threads, then starts the pool.
  void init(int num_threads);
  const Tree& tree_at(int64_t tree, const char* op) const;
  Tree& tree_at(int64_t tree, const char* op);
  void check_node(const Tree& t, int64_t tree, int64_t node, const char* op) const;
  void check_idle(const Tree& t, int64_t tree, const char* op) const;
  // Validation shared by backup and cancel (entries in call order, docs 5.2); fills group_.
  void validate_leaves(int64_t n, const int32_t* trees, const int32_t* nodes, const double* values,
                       const char* op);
  // Stable counting sort of the item indices 0 .. n-1 by tree id (their ids already validated).
  void group_by_tree(int64_t n, const int32_t* trees);

  mutable std::mutex mutex_;            // serialises every public method
  SearchConfig config_;                 // validated configuration
  std::vector<Tree> trees_;             // [B]
  std::unique_ptr<ThreadPool> pool_;    // persistent workers
  std::vector<int64_t> group_begin_;    // [B+1] scratch: items of tree b are
  std::vector<int64_t> group_items_;    // group_items_[group_begin_[b] .. group_begin_[b+1])
  std::vector<int64_t> scratch_sizes_;  // [B] scratch: fill cursors of group_by_tree
  std::vector<int64_t> child_offsets_;  // [M+1] scratch: CSR offsets of expand
  std::vector<std::vector<AskedLeaf>> ask_leaves_;  // per thread scratch of ask
};

}  // namespace qengine
