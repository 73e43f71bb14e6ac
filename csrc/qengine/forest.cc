#include "qengine/forest.h"

#include <algorithm>
#include <cfloat>
#include <cmath>
#include <exception>
#include <limits>
#include <string>

#include "qengine/ask.h"
#include "qengine/backup.h"
#include "qengine/errors.h"
#include "qengine/expand.h"
#include "qengine/select.h"
#include "qengine/synthetic.h"
#include "qengine/tree_ops.h"

namespace qengine {
namespace {

// Batch operations run inline below this many trees per extra thread (a pool wake-up costs
// about as much as this many small per-tree jobs).
constexpr int64_t kMinTreesPerThread = 16;
// Initial arena capacity of a fresh tree (grows geometrically).
constexpr int64_t kInitialCapacity = 16;

// Items ahead whose node data is prefetched by the validation and mutation loops (each batch
// touches every tree once, cold: overlapping the misses of different trees is most of the speed).
constexpr int64_t kPrefetchAhead = 8;

std::string str(int64_t v) { return std::to_string(v); }

// Prefetches the per-node fields of x that validation reads.
inline void prefetch_node(const Tree& t, int32_t x) {
  __builtin_prefetch(t.hot + x);
  __builtin_prefetch(reinterpret_cast<const char*>(t.hot + x + 1) - 1);
  __builtin_prefetch(t.depth + x);
}

// Prefetches, for writing, the arena end of t where expansion appends `count` children (at
// least the first two lines of records): the stores of a batched expand go to a different tree
// each time, so without this every children block costs a few write-allocate misses in a row.
inline void prefetch_arena_end(const Tree& t, int64_t count = 2) {
  const int32_t e = t.size;
  if (e >= t.capacity) return;
  __builtin_prefetch(t.payload + e, 1);
  const char* hot = reinterpret_cast<const char*>(t.hot + e);
  const int64_t bytes = std::min<int64_t>(std::max<int64_t>(count, 2), t.capacity - e) *
                        static_cast<int64_t>(sizeof(HotNode));
  for (int64_t b = 0; b < bytes; b += 64) __builtin_prefetch(hot + b, 1);
  __builtin_prefetch(t.action + e, 1);
  __builtin_prefetch(t.depth + e, 1);
}

// True if nodes[items[0..k)] has a repeated value; *dup receives the later item of the pair.
bool find_duplicate(const int32_t* nodes, const int64_t* items, int64_t k, int64_t* dup) {
  if (k < 2) return false;
  if (k <= 16) {
    for (int64_t i = 1; i < k; ++i) {
      for (int64_t j = 0; j < i; ++j) {
        if (nodes[items[i]] == nodes[items[j]]) {
          *dup = items[i];
          return true;
        }
      }
    }
    return false;
  }
  std::vector<std::pair<int32_t, int64_t>> sorted(static_cast<size_t>(k));
  for (int64_t i = 0; i < k; ++i) sorted[static_cast<size_t>(i)] = {nodes[items[i]], items[i]};
  std::sort(sorted.begin(), sorted.end());
  bool found = false;
  for (size_t i = 1; i < sorted.size(); ++i) {
    if (sorted[i].first == sorted[i - 1].first) {
      const int64_t later = std::max(sorted[i].second, sorted[i - 1].second);
      if (!found || later < *dup) *dup = later;
      found = true;
    }
  }
  return found;
}

}  // namespace

// ------------------------------------------------------------------------------- construction

void Forest::check_sizes(int64_t num_trees, int64_t num_threads) {
  if (num_trees < 1 || num_trees > kMaxTrees) {
    throw ValueError("num_trees must lie in [1, 2**31 - 1], got " + str(num_trees));
  }
  if (num_threads < 0 || num_threads > kMaxThreads) {
    throw ValueError("num_threads must lie in [0, " + str(kMaxThreads) + "] (0 = all cores), got " +
                     str(num_threads));
  }
}

void Forest::init(int num_threads) {
  config_.validate();
  check_sizes(1, num_threads);
  pool_ = std::make_unique<ThreadPool>(num_threads);
  ask_leaves_.resize(static_cast<size_t>(pool_->size()));
}

Forest::Forest(int64_t num_trees, const SearchConfig& config, int num_threads,
               const int64_t* root_payloads)
    : config_(config) {
  check_sizes(num_trees, num_threads);  // before any allocation or thread
  init(num_threads);
  trees_.reserve(static_cast<size_t>(num_trees));
  const int64_t capacity = std::min(kInitialCapacity, config_.max_nodes);
  for (int64_t b = 0; b < num_trees; ++b) {
    trees_.push_back(Tree::make(root_payloads ? root_payloads[b] : 0, capacity));
  }
}

std::unique_ptr<Forest> Forest::from_arrays(const SearchConfig& config, const ArraysIn& arrays,
                                            int num_threads) {
  std::unique_ptr<Forest> forest(new Forest());
  forest->config_ = config;
  forest->init(num_threads);
  const int64_t b = check_array_shapes(arrays, forest->config_);
  if (b > std::numeric_limits<int32_t>::max()) throw ValueError("from_arrays: too many trees");
  forest->trees_.resize(static_cast<size_t>(b));
  forest->pool_->parallel_for(
      b,
      [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i)
          forest->trees_[static_cast<size_t>(i)] = import_tree(arrays, i);
      },
      1);
  return forest;
}

// ------------------------------------------------------------------------------- helpers

const Tree& Forest::tree_at(int64_t tree, const char* op) const {
  if (tree < 0 || tree >= num_trees()) {
    throw IndexError(std::string(op) + ": tree " + str(tree) + " is out of range [0, " +
                     str(num_trees()) + ")");
  }
  return trees_[static_cast<size_t>(tree)];
}

Tree& Forest::tree_at(int64_t tree, const char* op) {
  return const_cast<Tree&>(static_cast<const Forest*>(this)->tree_at(tree, op));
}

void Forest::check_tree(int64_t tree, const char* op) const {
  std::lock_guard<std::mutex> lock(mutex_);
  tree_at(tree, op);
}

void Forest::check_node(const Tree& t, int64_t tree, int64_t node, const char* op) const {
  if (node < 0 || node >= t.size) {
    throw IndexError(std::string(op) + ": node " + str(node) + " is out of range [0, " +
                     str(t.size) + ") in tree " + str(tree));
  }
  if (!t.alive(static_cast<int32_t>(node))) {
    throw ValueError(std::string(op) + ": tree " + str(tree) + " node " + str(node) +
                     " is a dead slot left by progressive widening (its children moved; use the "
                     "node's current id)");
  }
}

void Forest::check_idle(const Tree& t, int64_t tree, const char* op) const {
  if (t.in_flight(kRoot) != 0) {
    throw ValueError(std::string(op) + ": tree " + str(tree) + " has " + str(t.in_flight(kRoot)) +
                     " leaves in flight; tell (backup) or cancel them first");
  }
}

void Forest::group_by_tree(int64_t n, const int32_t* trees) {
  const size_t b = trees_.size();
  group_begin_.assign(b + 1, 0);
  for (int64_t i = 0; i < n; ++i) ++group_begin_[static_cast<size_t>(trees[i]) + 1];
  for (size_t i = 0; i < b; ++i) group_begin_[i + 1] += group_begin_[i];
  group_items_.resize(static_cast<size_t>(n));
  scratch_sizes_.assign(group_begin_.begin(), group_begin_.end() - 1);  // fill cursors
  for (int64_t i = 0; i < n; ++i) {
    group_items_[static_cast<size_t>(scratch_sizes_[static_cast<size_t>(trees[i])]++)] = i;
  }
}

void Forest::validate_leaves(int64_t n, const int32_t* trees, const int32_t* nodes,
                             const double* values, const char* op) {
  // docs 5.2: entries in call order, each checked for (1) tree and node ids in range, (2) a value
  // finite as float32, (3) a leaf in flight, (4) no earlier entry with the same leaf; the error is
  // the first check the first failing entry fails. Pass 1 runs (1)-(2) in order and stops at the
  // first failure `bad`; (3) and (4) read the trees and cover the entries before it.
  const int64_t b = num_trees();
  int64_t bad = n;
  std::exception_ptr bad_error;
  for (int64_t i = 0; i < n; ++i) {
    if (trees[i] < 0 || trees[i] >= b) {
      bad_error = std::make_exception_ptr(IndexError(entry_where(op, i) + "tree " + str(trees[i]) +
                                                     " is out of range [0, " + str(b) + ")"));
    } else if (nodes[i] < 0 || nodes[i] >= trees_[static_cast<size_t>(trees[i])].size) {
      bad_error = std::make_exception_ptr(IndexError(
          entry_where(op, i) + "node " + str(nodes[i]) + " is out of range [0, " +
          str(trees_[static_cast<size_t>(trees[i])].size) + ") in tree " + str(trees[i])));
    } else if (values != nullptr && !finite_as_float32(values[i])) {
      bad_error = std::make_exception_ptr(
          ValueError(entry_where(op, i) + "value " + std::to_string(values[i]) +
                     " is not finite as float32 (|v| must round below 2**128); give every leaf a "
                     "finite value, or cancel the leaves whose evaluation failed"));
    } else {
      continue;
    }
    bad = i;
    break;
  }
  group_by_tree(bad, trees);
  // The state checks read the trees (cold memory): on the thread pool, with the partition of the
  // mutation that follows, each thread keeping its earliest failing entry (the error is the one a
  // sequential pass in call order meets first).
  std::vector<int64_t> fail(static_cast<size_t>(pool_->size()), n);
  pool_->parallel_for(
      b,
      [&](int64_t begin, int64_t end, int thread) {
        int64_t& first_fail = fail[static_cast<size_t>(thread)];
        const int64_t g0 = group_begin_[static_cast<size_t>(begin)];
        const int64_t g1 = group_begin_[static_cast<size_t>(end)];
        for (int64_t g = g0; g < g1; ++g) {
          if (g + kPrefetchAhead < g1) {
            const int64_t ahead = group_items_[static_cast<size_t>(g + kPrefetchAhead)];
            prefetch_node(trees_[static_cast<size_t>(trees[ahead])], nodes[ahead]);
          }
          const int64_t i = group_items_[static_cast<size_t>(g)];
          const Tree& t = trees_[static_cast<size_t>(trees[i])];
          if (i < first_fail && (!t.alive(nodes[i]) || t.own_in_flight(nodes[i]) != 1)) {
            first_fail = i;
          }
        }
      },
      kMinTreesPerThread);
  const int64_t state_fail = *std::min_element(fail.begin(), fail.end());
  int64_t dup_fail = n;
  for (int64_t tb = 0; tb < b; ++tb) {
    const int64_t begin = group_begin_[static_cast<size_t>(tb)];
    const int64_t k = group_begin_[static_cast<size_t>(tb) + 1] - begin;
    int64_t dup = -1;
    if (find_duplicate(nodes, group_items_.data() + begin, k, &dup))
      dup_fail = std::min(dup_fail, dup);
  }
  if (state_fail < bad && state_fail <= dup_fail) {
    const int64_t i = state_fail;
    throw ValueError(entry_where(op, i) + "tree " + str(trees[i]) + " node " + str(nodes[i]) +
                     " is not a leaf in flight (was it asked and not yet told or cancelled?)");
  }
  if (dup_fail < bad) {
    const int64_t i = dup_fail;
    throw ValueError(entry_where(op, i) + "tree " + str(trees[i]) + " node " + str(nodes[i]) +
                     " appears twice in one call; each asked leaf is told or cancelled once");
  }
  if (bad_error) std::rethrow_exception(bad_error);
}

// ------------------------------------------------------------------------------- search loop

AskResult Forest::ask(int64_t max_leaves, bool with_paths) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (max_leaves < 1) throw ValueError("ask: max_leaves must be >= 1, got " + str(max_leaves));
  for (size_t b = 0; b < trees_.size(); ++b) {
    if (max_leaves > kMaxInFlight - trees_[b].in_flight(kRoot)) {  // no overflow for any K
      throw CapacityError("ask: tree " + str(static_cast<int64_t>(b)) + " has " +
                          str(trees_[b].in_flight(kRoot)) + " leaves in flight; asking " +
                          str(max_leaves) + " more could exceed the in-flight limit " +
                          str(kMaxInFlight) + " (tell or cancel leaves, or ask fewer)");
    }
  }
  const int64_t nb = num_trees();
  AskResult result;
  result.terminal_hits.assign(static_cast<size_t>(nb), 0);
  result.collisions.assign(static_cast<size_t>(nb), 0);
  for (auto& part : ask_leaves_) part.clear();
  pool_->parallel_for(
      nb,
      [&](int64_t begin, int64_t end, int thread) {
        ask_trees(trees_.data(), config_, begin, end, max_leaves,
                  &ask_leaves_[static_cast<size_t>(thread)], result.terminal_hits.data() + begin,
                  result.collisions.data() + begin);
      },
      kMinTreesPerThread);
  // Outputs, tree by tree (the parts are contiguous tree ranges in thread order). Paths are read
  // after all descents: descents change counts, never the structure.
  size_t leaves = 0;
  for (const auto& part : ask_leaves_) leaves += part.size();
  result.tree.resize(leaves);
  result.node.resize(leaves);
  result.depth.resize(leaves);
  result.payload.resize(leaves);
  result.path_offsets.assign(leaves + 1, 0);
  size_t i = 0;
  int64_t entries = 0;
  for (const auto& part : ask_leaves_) {
    for (const AskedLeaf& l : part) {
      result.tree[i] = l.tree;
      result.node[i] = l.node;
      result.depth[i] = l.depth;
      result.payload[i] = l.payload;
      entries += l.depth + 1;
      if (with_paths) result.path_offsets[i + 1] = entries;
      ++i;
    }
  }
  if (with_paths) {
    result.path_nodes.resize(static_cast<size_t>(entries));
    result.path_actions.resize(static_cast<size_t>(entries));
    result.path_payloads.resize(static_cast<size_t>(entries));
    for (size_t j = 0; j < leaves; ++j) {
      const Tree& t = trees_[static_cast<size_t>(result.tree[j])];
      size_t pos = static_cast<size_t>(result.path_offsets[j + 1]);
      for (int32_t x = result.node[j]; x != kNoNode; x = t.parent[x]) {
        --pos;
        result.path_nodes[pos] = x;
        result.path_actions[pos] = t.action[x];
        result.path_payloads[pos] = t.payload[x];
      }
    }
  }
  return result;
}

void Forest::expand(const ExpandArgs& a) {
  std::lock_guard<std::mutex> lock(mutex_);
  const int64_t m = a.num_items;
  const int64_t nb = num_trees();
  // docs 5.5: the entries are validated in call order; the error is the first check the first
  // failing entry fails (the checks themselves: expand.cc). Pass 1 runs the checks that need no
  // tree state, in order, and stops at the first failing entry `bad`. The state checks (pass 2)
  // cover the entries before `bad`; the counts' total (pass 3) and the capacity (pass 4) apply
  // to a call whose every entry passed.
  child_offsets_.resize(static_cast<size_t>(m) + 1);
  child_offsets_[0] = 0;
  int64_t bad = m;
  std::exception_ptr bad_error;
  for (int64_t i = 0; i < m && bad == m; ++i) {
    const int64_t off = child_offsets_[static_cast<size_t>(i)];
    bad_error = check_entry(a, i, off, trees_);
    if (bad_error) {
      bad = i;
    } else {
      child_offsets_[static_cast<size_t>(i) + 1] = off + a.counts[i];
    }
  }
  // 2. Per tree, the entries before `bad` in call order against the tree as the earlier entries
  //    of this call leave it, and the size it reaches. These read the trees (cold memory): they
  //    run on the thread pool with the same static partition as the mutation below, each thread
  //    keeping its earliest failing entry (and its first tree over capacity), so the error is
  //    the one a sequential pass would meet first, whatever the thread count.
  group_by_tree(bad, a.trees);
  const int parts = pool_->size();
  std::vector<int64_t> fail_item(static_cast<size_t>(parts), m);
  std::vector<int64_t> fail_tree(static_cast<size_t>(parts), nb);
  std::vector<std::exception_ptr> fail_error(static_cast<size_t>(parts));
  std::vector<std::exception_ptr> over_capacity(static_cast<size_t>(parts));
  pool_->parallel_for(
      nb,
      [&](int64_t begin, int64_t end, int thread) {
        const size_t th = static_cast<size_t>(thread);
        std::vector<MovedBlock> moved;
        const int64_t g_end = group_begin_[static_cast<size_t>(end)];
        for (int64_t tb = begin; tb < end; ++tb) {
          const int64_t g0 = group_begin_[static_cast<size_t>(tb)];
          const int64_t g1 = group_begin_[static_cast<size_t>(tb) + 1];
          if (g0 == g1) continue;
          const Tree& t = trees_[static_cast<size_t>(tb)];
          int64_t size = t.size;
          moved.clear();
          int64_t dup = -1;  // the earliest entry repeating a node of an earlier one, if any
          if (!find_duplicate(a.nodes, group_items_.data() + g0, g1 - g0, &dup)) dup = -1;
          std::string error;
          for (int64_t g = g0; g < g1 && error.empty(); ++g) {
            if (g + kPrefetchAhead < g_end) {
              const int64_t ahead = group_items_[static_cast<size_t>(g + kPrefetchAhead)];
              const Tree& at = trees_[static_cast<size_t>(a.trees[ahead])];
              prefetch_node(at, a.nodes[ahead]);
              prefetch_arena_end(at);
            }
            const int64_t i = group_items_[static_cast<size_t>(g)];
            error = check_entry_state(t, tb, a, i, i == dup, &moved, &size);
            if (!error.empty() && i < fail_item[th]) {
              fail_item[th] = i;
              fail_error[th] = std::make_exception_ptr(ValueError(error));
            }
          }
          if (error.empty() && size > config_.max_nodes && tb < fail_tree[th]) {
            fail_tree[th] = tb;
            over_capacity[th] = capacity_error(tb, size, config_.max_nodes);
          }
        }
      },
      kMinTreesPerThread);
  size_t worst = 0;
  for (size_t th = 1; th < fail_item.size(); ++th) {
    if (fail_item[th] < fail_item[worst]) worst = th;
  }
  if (fail_error[worst]) std::rethrow_exception(fail_error[worst]);  // before `bad` if set
  if (bad_error) std::rethrow_exception(bad_error);
  // 3. The counts' total (every entry's children fit, so only extra entries are left to find).
  if (child_offsets_[static_cast<size_t>(m)] != a.num_children) {
    throw ValueError("expand: counts sum to " + str(child_offsets_[static_cast<size_t>(m)]) +
                     " but the children arrays have " + str(a.num_children) + " entries");
  }
  // 4. Capacity, in tree order.
  worst = 0;
  for (size_t th = 1; th < fail_tree.size(); ++th) {
    if (fail_tree[th] < fail_tree[worst]) worst = th;
  }
  if (over_capacity[worst]) std::rethrow_exception(over_capacity[worst]);
  // Mutation (same partition as the checks).
  pool_->parallel_for(
      nb,
      [&](int64_t begin, int64_t end, int) {
        const int64_t g_end = group_begin_[static_cast<size_t>(end)];
        for (int64_t tb = begin; tb < end; ++tb) {
          Tree& t = trees_[static_cast<size_t>(tb)];
          for (int64_t g = group_begin_[static_cast<size_t>(tb)];
               g < group_begin_[static_cast<size_t>(tb) + 1]; ++g) {
            if (g + kPrefetchAhead < g_end) {  // the node and the arena end of a later item
              const int64_t ahead = group_items_[static_cast<size_t>(g + kPrefetchAhead)];
              const Tree& at = trees_[static_cast<size_t>(a.trees[ahead])];
              prefetch_node(at, a.nodes[ahead]);
              prefetch_arena_end(at, a.counts[ahead]);
            }
            const int64_t i = group_items_[static_cast<size_t>(g)];
            const int64_t off = child_offsets_[static_cast<size_t>(i)];
            ChildBlock block;
            block.count = a.counts[i];
            if (block.count > 0) {
              block.priors = a.priors + off;
              block.rewards = a.rewards != nullptr ? a.rewards + off : nullptr;
              block.terminal = a.terminal != nullptr ? a.terminal + off : nullptr;
              block.payloads = a.payloads != nullptr ? a.payloads + off : nullptr;
            }
            expand_node(t, a.nodes[i], block, config_.max_nodes);
          }
        }
      },
      kMinTreesPerThread);
}

void Forest::backup(int64_t n, const int32_t* trees, const int32_t* nodes, const double* values) {
  std::lock_guard<std::mutex> lock(mutex_);
  validate_leaves(n, trees, nodes, values, "backup");
  // The walks leaf -> root chase parents (a cache miss per level: each call visits every tree,
  // cold). kWalkSlots trees are walked together, one level each in turn, with the next node
  // prefetched, so the misses of different trees overlap (as ask_trees does for descents).
  // Within a tree the leaves are backed up one after the other in call order: same results.
  pool_->parallel_for(
      num_trees(),
      [&](int64_t begin, int64_t end, int) {
        constexpr int kWalkSlots = 8;
        struct Slot {
          int64_t g = 0;      // the group entry being backed up
          int64_t g_end = 0;  // the end of its tree's group
          Tree* t = nullptr;  // its tree; null when the slot is idle
          BackupWalk walk;
        };
        int64_t next_tree = begin;
        auto start_item = [&](Slot& s) {
          const int64_t i = group_items_[static_cast<size_t>(s.g)];
          s.walk = BackupWalk(config_, nodes[i], values[i], /*tell=*/true);
          prefetch_node(*s.t, nodes[i]);
        };
        auto start_tree = [&](Slot& s) {
          for (; next_tree < end; ++next_tree) {
            const int64_t g0 = group_begin_[static_cast<size_t>(next_tree)];
            const int64_t g1 = group_begin_[static_cast<size_t>(next_tree) + 1];
            if (g0 == g1) continue;
            s.t = &trees_[static_cast<size_t>(next_tree++)];
            s.g = g0;
            s.g_end = g1;
            start_item(s);
            return true;
          }
          s.t = nullptr;
          return false;
        };
        Slot slots[kWalkSlots];
        int active = 0;
        for (Slot& s : slots) active += start_tree(s) ? 1 : 0;
        while (active > 0) {
          for (Slot& s : slots) {
            if (s.t == nullptr) continue;
            if (s.walk.step(*s.t)) {
              __builtin_prefetch(s.t->hot + s.walk.node);
              continue;
            }
            if (++s.g < s.g_end) {
              start_item(s);
            } else if (!start_tree(s)) {
              --active;
            }
          }
        }
      },
      kMinTreesPerThread);
}

void Forest::cancel(int64_t n, const int32_t* trees, const int32_t* nodes) {
  std::lock_guard<std::mutex> lock(mutex_);
  validate_leaves(n, trees, nodes, nullptr, "cancel");
  for (int64_t i = 0; i < n; ++i) cancel_leaf(trees_[static_cast<size_t>(trees[i])], nodes[i]);
}

// ------------------------------------------------------------------------------- queries

int64_t Forest::size(int64_t tree) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return tree_at(tree, "size").size;
}

ColumnView Forest::view(int64_t tree, Field field) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return tree_at(tree, "view").view(field);
}

std::vector<int32_t> Forest::in_flight(int64_t tree) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const Tree& t = tree_at(tree, "derived");
  std::vector<int32_t> out(static_cast<size_t>(t.size));
  for (int32_t i = 0; i < t.size; ++i) out[static_cast<size_t>(i)] = t.in_flight(i);
  return out;
}

std::vector<uint8_t> Forest::flag(int64_t tree, uint16_t bit) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const Tree& t = tree_at(tree, "derived");
  std::vector<uint8_t> out(static_cast<size_t>(t.size));
  for (int32_t i = 0; i < t.size; ++i) out[static_cast<size_t>(i)] = (t.status[i] & bit) ? 1 : 0;
  return out;
}

std::vector<double> Forest::qvalues(int64_t tree, int64_t node) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const Tree& t = tree_at(tree, "qvalues");
  check_node(t, tree, node, "qvalues");
  const double ds = config_.discount * config_.sign();
  const int32_t first = t.first_child[node];
  std::vector<double> out(t.num_children[node]);
  for (size_t j = 0; j < out.size(); ++j)
    out[j] = edge_value(t, ds, first + static_cast<int32_t>(j));
  return out;
}

std::vector<double> Forest::root_policy(int64_t tree, double temperature) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const Tree& t = tree_at(tree, "root_policy");
  if (!std::isfinite(temperature) || temperature < 0) {
    throw ValueError("root_policy: temperature must be finite and >= 0, got " +
                     std::to_string(temperature));
  }
  const int32_t first = t.first_child[kRoot];
  std::vector<double> out(t.num_children[kRoot], 0.0);
  if (out.empty()) return out;
  if (temperature == 0.0) {
    const int32_t best = best_child(t, config_, kRoot);
    if (best != kNoNode) out[static_cast<size_t>(best - first)] = 1.0;
    return out;
  }
  int32_t max_visits = 0;
  for (size_t j = 0; j < out.size(); ++j) max_visits = std::max(max_visits, t.visits[first + j]);
  if (max_visits == 0) return out;
  const double exponent = 1.0 / temperature;
  double sum = 0.0;
  for (size_t j = 0; j < out.size(); ++j) {
    out[j] = std::pow(static_cast<double>(t.visits[first + j]) / max_visits, exponent);
    sum += out[j];
  }
  for (double& p : out) p /= sum;
  return out;
}

int64_t Forest::best_action(int64_t tree) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const Tree& t = tree_at(tree, "best_action");
  const int32_t best = best_child(t, config_, kRoot);
  return best == kNoNode ? -1 : t.action[best];
}

std::vector<int32_t> Forest::best_path(int64_t tree) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return qengine::best_path(tree_at(tree, "best_path"), config_);
}

std::pair<double, double> Forest::minmax(int64_t tree) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const Tree& t = tree_at(tree, "minmax");
  return {t.minmax_lo, t.minmax_hi};
}

uint64_t Forest::root_epoch(int64_t tree) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return tree_at(tree, "root_epoch").root_epoch;
}

PairsResult Forest::pairs(PairMode mode, int64_t min_visits, double min_q_gap, int64_t max_depth,
                          const uint8_t* eligible, int64_t eligible_size) const {
  std::lock_guard<std::mutex> lock(mutex_);
  if (min_visits < 0) throw ValueError("pairs: min_visits must be >= 0");
  if (!std::isfinite(min_q_gap) || min_q_gap < 0) {
    throw ValueError("pairs: min_q_gap must be finite and >= 0");
  }
  if (max_depth < -1) throw ValueError("pairs: max_depth must be >= -1 (-1: no limit)");
  std::vector<int64_t> offsets(trees_.size() + 1, 0);  // of each tree's rows in `eligible`
  for (size_t b = 0; b < trees_.size(); ++b) offsets[b + 1] = offsets[b] + trees_[b].size;
  if (eligible != nullptr && eligible_size != offsets.back()) {
    throw ValueError("pairs: eligible has " + str(eligible_size) +
                     " entries, expected one per node of every tree (" + str(offsets.back()) +
                     ", as export_arrays)");
  }
  std::vector<PairsResult> parts(static_cast<size_t>(pool_->size()));
  pool_->parallel_for(
      num_trees(),
      [&](int64_t begin, int64_t end, int thread) {
        for (int64_t b = begin; b < end; ++b) {
          const size_t k = static_cast<size_t>(b);
          tree_pairs(trees_[k], config_, static_cast<int32_t>(b), mode, min_visits, min_q_gap,
                     max_depth, eligible ? eligible + offsets[k] : nullptr,
                     &parts[static_cast<size_t>(thread)]);
        }
      },
      1);
  if (parts.size() == 1) return std::move(parts[0]);
  PairsResult out;
  for (const auto& part : parts) out.append(part);
  return out;
}

std::vector<double> Forest::edge_values(int64_t tree) const {
  std::lock_guard<std::mutex> lock(mutex_);
  return qengine::edge_values(tree_at(tree, "edge_values"), config_);
}

// ------------------------------------------------------------------------------- tree operations

void Forest::reroot(int64_t tree, int64_t node) {
  std::lock_guard<std::mutex> lock(mutex_);
  Tree& t = tree_at(tree, "reroot");
  check_node(t, tree, node, "reroot");
  check_idle(t, tree, "reroot");
  reroot_tree(t, static_cast<int32_t>(node));
}

void Forest::prune(int64_t tree, int64_t node) {
  std::lock_guard<std::mutex> lock(mutex_);
  Tree& t = tree_at(tree, "prune");
  check_node(t, tree, node, "prune");
  if (node == kRoot) {
    throw ValueError("prune: cannot prune the root of tree " + str(tree) + "; use reset");
  }
  check_idle(t, tree, "prune");
  prune_tree(t, static_cast<int32_t>(node));
}

void Forest::reserve(int64_t nodes) {
  std::lock_guard<std::mutex> lock(mutex_);
  if (nodes < 0) throw ValueError("reserve: nodes must be >= 0, got " + str(nodes));
  const int64_t want = std::min(nodes, config_.max_nodes);
  // The trees that grow move into one slab of huge pages (tree.h, SlabBlocks: why), each to the
  // capacity grow would give it.
  std::vector<int64_t> growing;
  std::vector<int64_t> capacities;
  std::vector<size_t> bytes;
  for (int64_t b = 0; b < num_trees(); ++b) {
    const Tree& t = trees_[static_cast<size_t>(b)];
    if (want <= t.capacity) continue;
    growing.push_back(b);
    capacities.push_back(t.grown_capacity(want, config_.max_nodes));
    bytes.push_back(Tree::block_bytes(capacities.back()));
  }
  const SlabBlocks slab(bytes);
  pool_->parallel_for(
      static_cast<int64_t>(growing.size()),
      [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) {
          const size_t k = static_cast<size_t>(i);
          trees_[static_cast<size_t>(growing[k])].move_to(capacities[k], slab.block(k));
        }
      },
      kMinTreesPerThread);
}

void Forest::compact(int64_t tree) {
  std::lock_guard<std::mutex> lock(mutex_);
  Tree& t = tree_at(tree, "compact");
  check_idle(t, tree, "compact");
  compact_tree(t);
}

void Forest::reset(int64_t tree, int64_t payload) {
  std::lock_guard<std::mutex> lock(mutex_);
  Tree& t = tree_at(tree, "reset");
  check_idle(t, tree, "reset");
  reset_tree(t, payload);
}

// ------------------------------------------------------------------------------- benchmarks

void Forest::check_synthetic_args(int64_t num_simulations, int64_t num_actions,
                                  int64_t leaves_per_ask) {
  if (num_simulations < 0) throw ValueError("run_synthetic: num_simulations must be >= 0");
  if (num_actions < 1 || num_actions > kMaxChildren) {
    throw ValueError("run_synthetic: num_actions must lie in [1, " + str(kMaxChildren) + "]");
  }
  if (leaves_per_ask < 1 || leaves_per_ask > kMaxInFlight) {
    throw ValueError("run_synthetic: leaves_per_ask must lie in [1, " + str(kMaxInFlight) + "]");
  }
}

int64_t Forest::run_synthetic(int64_t num_simulations, int64_t num_actions, int64_t leaves_per_ask,
                              uint64_t seed) {
  std::lock_guard<std::mutex> lock(mutex_);
  check_synthetic_args(num_simulations, num_actions, leaves_per_ask);
  if (num_simulations == 0) return 0;
  // The worst-case growth (S + K - 1) * A, compared without overflow for any S: it fits a tree of
  // size n iff S + K - 1 <= (max_nodes - n) / A.
  const int64_t batches = std::min<int64_t>(num_simulations, int64_t{1} << 31);  // more never fits
  const int64_t growth_units = batches + leaves_per_ask - 1;                     // <= 2**31 + 16382
  for (int64_t b = 0; b < num_trees(); ++b) {
    const Tree& t = trees_[static_cast<size_t>(b)];
    check_idle(t, b, "run_synthetic");
    if (growth_units > (config_.max_nodes - t.size) / num_actions) {
      throw CapacityError("run_synthetic: tree " + str(b) + " (" + str(t.size) +
                          " nodes) may grow by up to (S + K - 1) * A = (" + str(num_simulations) +
                          " + " + str(leaves_per_ask) + " - 1) * " + str(num_actions) +
                          " nodes, past max_nodes = " + str(config_.max_nodes));
    }
  }
  const int64_t growth = growth_units * num_actions;  // fits: <= max_nodes - size
  const SyntheticTables tables(static_cast<int32_t>(num_actions));
  std::vector<int64_t> evaluated(trees_.size(), 0);
  pool_->parallel_for(
      num_trees(),
      [&](int64_t begin, int64_t end, int) {
        for (int64_t b = begin; b < end; ++b) {
          Tree& t = trees_[static_cast<size_t>(b)];
          t.ensure(t.size + growth, config_.max_nodes);
          evaluated[static_cast<size_t>(b)] =
              synthetic_search(t, config_, static_cast<uint64_t>(b), num_simulations,
                               static_cast<int32_t>(num_actions), leaves_per_ask,
                               static_cast<uint32_t>(seed), tables);
        }
      },
      1);
  int64_t total = 0;
  for (int64_t e : evaluated) total += e;
  return total;
}

// ------------------------------------------------------------------------------- serialisation

ArraysOut Forest::export_arrays() const {
  std::lock_guard<std::mutex> lock(mutex_);
  ArraysOut out;
  const size_t b = trees_.size();
  int64_t total = 0;
  for (const Tree& t : trees_) total += t.size;
  out.resize(static_cast<size_t>(total), b);
  out.tree_offsets[0] = 0;
  for (size_t i = 0; i < b; ++i) out.tree_offsets[i + 1] = out.tree_offsets[i] + trees_[i].size;
  pool_->parallel_for(
      static_cast<int64_t>(b),
      [&](int64_t begin, int64_t end, int) {
        for (int64_t i = begin; i < end; ++i) {
          const size_t k = static_cast<size_t>(i);
          qengine::export_tree(trees_[k], out.tree_offsets[k], k, &out);
        }
      },
      1);
  return out;
}

ArraysOut Forest::export_tree(int64_t tree) const {
  std::lock_guard<std::mutex> lock(mutex_);
  const Tree& t = tree_at(tree, "export_tree");
  ArraysOut out;
  out.resize(static_cast<size_t>(t.size), 1);
  out.tree_offsets[0] = 0;
  out.tree_offsets[1] = t.size;
  qengine::export_tree(t, 0, 0, &out);
  return out;
}

}  // namespace qengine
