// Native randomized driver of the search core (no Python). For many seeds: a random SearchConfig,
// then thousands of random operations on a small forest — ask, expand (widening, terminal children,
// zero counts), backup, cancel, reroot, prune, compact, reset, run_synthetic, pairs, export /
// import round trips and invalid calls that must throw a given error type and leave every tree
// bit-for-bit unchanged. After every operation it checks the structural invariants. Each seed runs
// with 1 and with 3 threads and the final forests must be identical.
//
// Usage: qengine_random_driver [num_seeds=24] [ops_per_seed=2500] [first_seed=1]
// Exit status 0 when every check passed; 1 with a message naming seed, op and check otherwise.
#include <cfloat>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>
#include <limits>
#include <memory>
#include <random>
#include <string>
#include <utility>
#include <vector>

#include "qengine/backup.h"
#include "qengine/errors.h"
#include "qengine/forest.h"

namespace {

using qengine::ArraysOut;
using qengine::Forest;
using qengine::SearchConfig;

[[noreturn]] void fail(uint64_t seed, int64_t op, const std::string& what) {
  std::fprintf(stderr, "random_driver: FAILED seed %llu op %lld: %s\n",
               static_cast<unsigned long long>(seed), static_cast<long long>(op), what.c_str());
  std::exit(1);
}

template <class T, class A>
bool same_vec(const std::vector<T, A>& a, const std::vector<T, A>& b) {
  return a.size() == b.size() &&
         (a.empty() || std::memcmp(a.data(), b.data(), a.size() * sizeof(T)) == 0);
}

bool same_arrays(const ArraysOut& a, const ArraysOut& b) {
  bool same = true;
  qengine::for_each_array(
      a, b, [&](const char*, const auto& x, const auto& y) { same = same && same_vec(x, y); });
  return same;
}

qengine::ArraysIn borrow(const ArraysOut& a) {
  qengine::ArraysIn in;
  qengine::for_each_array(in, a, [](const char*, auto& span, const auto& v) {
    span.data = v.data();
    span.size = static_cast<int64_t>(v.size());
  });
  return in;
}

struct Leaf {
  int32_t tree;  // tree id
  int32_t node;  // node id (stable while in flight)
};

class Driver {
 public:
  Driver(uint64_t seed, int threads, int64_t num_ops)
      : seed_(seed), rng_(seed * 0x9E3779B97F4A7C15ULL + 7), threads_(threads), num_ops_(num_ops) {}

  ArraysOut run() {
    make_config();
    num_trees_ = 1 + static_cast<int>(pick(4));
    std::vector<int64_t> payloads(static_cast<size_t>(num_trees_));
    for (auto& p : payloads) p = static_cast<int64_t>(rng_());
    forest_ = std::make_unique<Forest>(num_trees_, cfg_, threads_, payloads.data());
    check_invariants();
    for (op_ = 0; op_ < num_ops_; ++op_) {
      step();
      check_invariants();
    }
    // Drain: tell or cancel everything, then in-flight counts must be zero everywhere.
    drain();
    check_invariants();
    const ArraysOut a = forest_->export_arrays();
    for (uint16_t st : a.status) {
      if (st & qengine::kInFlightMask) fail(seed_, op_, "in-flight count left after drain");
    }
    return a;
  }

 private:
  uint64_t pick(uint64_t n) { return n == 0 ? 0 : rng_() % n; }
  double unit() { return std::uniform_real_distribution<double>(0.0, 1.0)(rng_); }
  bool chance(double p) { return unit() < p; }

  void make_config() {
    const qengine::Rule rules[] = {qengine::Rule::kUct, qengine::Rule::kPuct,
                                   qengine::Rule::kMuzero, qengine::Rule::kLats};
    const qengine::Fpu fpus[] = {qengine::Fpu::kInf, qengine::Fpu::kParent,
                                 qengine::Fpu::kReduction, qengine::Fpu::kConstant};
    const qengine::QNorm norms[] = {qengine::QNorm::kNone, qengine::QNorm::kBounds,
                                    qengine::QNorm::kTreeMinmax, qengine::QNorm::kParentMinmax};
    cfg_.rule = rules[pick(4)];
    cfg_.fpu = fpus[pick(4)];
    cfg_.qnorm = norms[pick(4)];
    cfg_.backup = chance(0.5) ? qengine::BackupMode::kMean : qengine::BackupMode::kMax;
    cfg_.c = unit() * 3;
    cfg_.c1 = unit() * 2;
    cfg_.c2 = 1 + unit() * 20000;
    cfg_.fpu_value = unit() * 2 - 1;
    cfg_.fpu_reduction = unit();
    cfg_.value_min = -1.0;
    cfg_.value_max = 1.0;
    cfg_.two_player = chance(0.3);
    cfg_.virtual_loss_value = unit() * 2 - 1;
    cfg_.mark_exhausted = chance(0.8);
    cfg_.gumbel = chance(0.3);
    cfg_.gumbel_simulations = 1 + static_cast<int64_t>(pick(64));
    cfg_.gumbel_max_considered = 1 + static_cast<int64_t>(pick(8));
    cfg_.seed = rng_();
    // Bounded runs: values in [-1, 1], rewards 0, discount 1 -> every q stays in [-1, 1].
    bounded_ = chance(0.6);
    cfg_.discount = bounded_ ? 1.0 : unit();
    cfg_.max_nodes = chance(0.3) ? 40 + static_cast<int64_t>(pick(200)) : 5000;
    cfg_.validate();
  }

  // Unbounded runs sometimes back up values at the float32 edge (saturation, the double mean step).
  double random_value() {
    if (bounded_) return unit() * 2 - 1;
    if (chance(0.03)) {
      const double edge[] = {FLT_MAX, -FLT_MAX, 3.4028235e38,
                             std::nextafter(qengine::kFloat32Overflow, 0.0),
                             -std::nextafter(qengine::kFloat32Overflow, 0.0)};
      return edge[pick(5)];
    }
    return unit() * 6 - 3;
  }

  // ------------------------------------------------------------------ operations
  void step() {
    const uint64_t r = pick(100);
    if (r < 25) return do_ask();
    if (r < 45) return do_expand();
    if (r < 63) return do_backup();
    if (r < 68) return do_cancel();
    if (r < 80) return do_invalid();
    if (r < 83) return do_reroot();
    if (r < 86) return do_prune();
    if (r < 88) return do_compact();
    if (r < 89) return do_reset();
    if (r < 92) return do_round_trip();
    if (r < 95) return do_pairs_and_queries();
    if (r < 97) return do_synthetic();
    return do_widen();
  }

  void do_ask() {
    const int64_t k = 1 + static_cast<int64_t>(pick(4));
    const bool paths = chance(0.5);
    const ArraysOut before = forest_->export_arrays();
    qengine::AskResult r = forest_->ask(k, paths);
    const size_t l = r.node.size();
    if (r.path_offsets.size() != l + 1) fail(seed_, op_, "ask: path_offsets length");
    if (r.terminal_hits.size() != static_cast<size_t>(num_trees_)) fail(seed_, op_, "ask: hits");
    for (size_t i = 0; i < l; ++i) {
      pending_.push_back({r.tree[i], r.node[i]});
      const int64_t off = before.tree_offsets[static_cast<size_t>(r.tree[i])];
      if (i > 0 && r.tree[i] < r.tree[i - 1]) fail(seed_, op_, "ask: leaves not in tree order");
      if (paths) {
        const int64_t b = r.path_offsets[i], e = r.path_offsets[i + 1];
        if (e - b != r.depth[i] + 1) fail(seed_, op_, "ask: path length != depth + 1");
        if (r.path_nodes[static_cast<size_t>(b)] != 0)
          fail(seed_, op_, "ask: path starts off root");
        if (r.path_nodes[static_cast<size_t>(e - 1)] != r.node[i])
          fail(seed_, op_, "ask: path end");
        for (int64_t j = b + 1; j < e; ++j) {
          const int32_t x = r.path_nodes[static_cast<size_t>(j)];
          if (before.parent[static_cast<size_t>(off + x)] !=
              r.path_nodes[static_cast<size_t>(j - 1)]) {
            fail(seed_, op_, "ask: path is not a parent chain");
          }
          if (r.path_actions[static_cast<size_t>(j)] !=
              before.action[static_cast<size_t>(off + x)]) {
            fail(seed_, op_, "ask: path action");
          }
        }
      } else if (r.path_offsets[i + 1] != 0) {
        fail(seed_, op_, "ask: path_offsets must be zeros without paths");
      }
    }
    // No leaf twice.
    for (size_t i = 0; i < pending_.size(); ++i) {
      for (size_t j = i + 1; j < pending_.size(); ++j) {
        if (pending_[i].tree == pending_[j].tree && pending_[i].node == pending_[j].node) {
          fail(seed_, op_, "ask returned a leaf already in flight");
        }
      }
    }
  }

  struct ExpandCall {
    std::vector<int32_t> trees, nodes, counts;
    std::vector<float> priors, rewards;
    std::vector<uint8_t> terminal;
    std::vector<int64_t> payloads;
    void add(int32_t t, int32_t n, int32_t c, Driver& d) {
      trees.push_back(t);
      nodes.push_back(n);
      counts.push_back(c);
      for (int32_t j = 0; j < c; ++j) {
        priors.push_back(static_cast<float>(d.unit()));
        rewards.push_back(d.bounded_ ? 0.0f : static_cast<float>(d.unit() - 0.5));
        terminal.push_back(d.chance(0.2) ? 1 : 0);
        payloads.push_back(static_cast<int64_t>(d.rng_()));
      }
    }
    qengine::ExpandArgs args() const {
      qengine::ExpandArgs a;
      a.num_items = static_cast<int64_t>(trees.size());
      a.trees = trees.data();
      a.nodes = nodes.data();
      a.counts = counts.data();
      a.num_children = static_cast<int64_t>(priors.size());
      a.priors = priors.data();
      a.rewards = rewards.data();
      a.terminal = terminal.data();
      a.payloads = payloads.data();
      return a;
    }
  };

  // Runs `fn`; if it throws a qengine::Error the forest must be unchanged. Returns whether it
  // threw.
  bool guarded(const std::function<void()>& fn, bool must_succeed, const char* what) {
    const ArraysOut before = forest_->export_arrays();
    try {
      fn();
    } catch (const qengine::Error& e) {
      if (must_succeed) fail(seed_, op_, std::string(what) + " threw unexpectedly: " + e.what());
      if (!same_arrays(before, forest_->export_arrays())) {
        fail(seed_, op_, std::string(what) + " threw but changed the forest: " + e.what());
      }
      return true;
    }
    return false;
  }

  // Expand pending unexpanded leaves (count 0 .. 4).
  void do_expand() {
    const ArraysOut a = forest_->export_arrays();
    ExpandCall call;
    for (const Leaf& l : pending_) {
      const size_t i = static_cast<size_t>(a.tree_offsets[static_cast<size_t>(l.tree)] + l.node);
      if (a.num_children[i] != 0 || (a.status[i] & qengine::kTerminalBit)) continue;
      if (!chance(0.7)) continue;
      call.add(l.tree, l.node, static_cast<int32_t>(pick(5)), *this);
    }
    if (call.trees.empty()) return;
    const bool small = cfg_.max_nodes < 5000;
    guarded([&] { forest_->expand(call.args()); }, !small, "expand of pending leaves");
  }

  // Widen a random expanded node (may be refused: children in flight, capacity).
  void do_widen() {
    const ArraysOut a = forest_->export_arrays();
    const int32_t t = static_cast<int32_t>(pick(static_cast<uint64_t>(num_trees_)));
    const int64_t off = a.tree_offsets[static_cast<size_t>(t)];
    const int64_t n = a.tree_offsets[static_cast<size_t>(t) + 1] - off;
    const int32_t x = static_cast<int32_t>(pick(static_cast<uint64_t>(n)));
    const size_t i = static_cast<size_t>(off + x);
    if (a.parent[i] == qengine::kDeadSlot || (a.status[i] & qengine::kTerminalBit)) return;
    if (a.status[i] & qengine::kExhaustedBit) return;  // keeps the visit invariant exact
    bool busy = false;
    for (int32_t j = 0; j < a.num_children[i]; ++j) {
      busy = busy ||
             (a.status[static_cast<size_t>(off + a.first_child[i] + j)] & qengine::kInFlightMask);
    }
    ExpandCall call;
    call.add(t, x, 1 + static_cast<int32_t>(pick(3)), *this);
    const bool threw = guarded([&] { forest_->expand(call.args()); }, false, "widen");
    if (busy && a.num_children[i] > 0 && !threw)
      fail(seed_, op_, "widening with children in flight accepted");
  }

  // Backup some pending leaves; unexpanded ones are expanded first (count 0..3) so every expanded
  // node has visits == sum(children visits) + 0 or 1.
  void do_backup() {
    if (pending_.empty()) return;
    const ArraysOut a = forest_->export_arrays();
    std::vector<Leaf> chosen, kept;
    for (const Leaf& l : pending_) (chance(0.6) ? chosen : kept).push_back(l);
    if (chosen.empty()) return;
    ExpandCall call;
    for (const Leaf& l : chosen) {
      const size_t i = static_cast<size_t>(a.tree_offsets[static_cast<size_t>(l.tree)] + l.node);
      if (a.num_children[i] == 0 && !(a.status[i] & qengine::kTerminalBit)) {
        call.add(l.tree, l.node, static_cast<int32_t>(pick(4)), *this);
      }
    }
    if (!call.trees.empty()) {
      if (guarded([&] { forest_->expand(call.args()); }, cfg_.max_nodes >= 5000,
                  "pre-backup expand")) {
        // Capacity: make them terminal instead (count 0 never grows the tree).
        ExpandCall zero;
        for (size_t j = 0; j < call.trees.size(); ++j)
          zero.add(call.trees[j], call.nodes[j], 0, *this);
        guarded([&] { forest_->expand(zero.args()); }, true, "terminal expand");
      }
    }
    std::vector<int32_t> trees, nodes;
    std::vector<double> values;
    for (const Leaf& l : chosen) {
      trees.push_back(l.tree);
      nodes.push_back(l.node);
      values.push_back(random_value());
    }
    guarded(
        [&] {
          forest_->backup(static_cast<int64_t>(trees.size()), trees.data(), nodes.data(),
                          values.data());
        },
        true, "backup");
    pending_ = kept;
  }

  void do_cancel() {
    if (pending_.empty()) return;
    std::vector<Leaf> kept;
    std::vector<int32_t> trees, nodes;
    for (const Leaf& l : pending_) {
      if (chance(0.5)) {
        trees.push_back(l.tree);
        nodes.push_back(l.node);
      } else {
        kept.push_back(l);
      }
    }
    guarded(
        [&] { forest_->cancel(static_cast<int64_t>(trees.size()), trees.data(), nodes.data()); },
        true, "cancel");
    pending_ = kept;
  }

  template <class E>
  void expect(const char* what, const std::function<void()>& fn) {
    const ArraysOut before = forest_->export_arrays();
    try {
      fn();
    } catch (const E&) {
      if (!same_arrays(before, forest_->export_arrays())) {
        fail(seed_, op_, std::string("invalid call '") + what + "' changed the forest");
      }
      return;
    } catch (const std::exception& e) {
      fail(seed_, op_,
           std::string("invalid call '") + what + "' threw the wrong type: " + e.what());
    }
    fail(seed_, op_, std::string("invalid call '") + what + "' did not throw");
  }

  bool tree_busy(const ArraysOut& a, int32_t t) const {
    return (a.status[static_cast<size_t>(a.tree_offsets[static_cast<size_t>(t)])] &
            qengine::kInFlightMask) != 0;
  }

  void do_invalid() {
    const ArraysOut a = forest_->export_arrays();
    const int32_t t = static_cast<int32_t>(pick(static_cast<uint64_t>(num_trees_)));
    const int64_t off = a.tree_offsets[static_cast<size_t>(t)];
    const int32_t n = static_cast<int32_t>(a.tree_offsets[static_cast<size_t>(t) + 1] - off);
    const double nan = std::numeric_limits<double>::quiet_NaN();
    switch (pick(17)) {
      case 0: {  // backup of a node that is not a leaf in flight
        for (int32_t x = 0; x < n; ++x) {
          bool is_pending = false;
          for (const Leaf& l : pending_) is_pending = is_pending || (l.tree == t && l.node == x);
          if (is_pending) continue;
          const double v = 0.5;
          expect<qengine::ValueError>("backup not in flight",
                                      [&] { forest_->backup(1, &t, &x, &v); });
          return;
        }
        return;
      }
      case 1: {  // NaN / huge value
        if (pending_.empty()) return;
        const Leaf l = pending_[pick(pending_.size())];
        const double v = chance(0.5) ? nan : 1e300;
        expect<qengine::ValueError>("backup NaN",
                                    [&] { forest_->backup(1, &l.tree, &l.node, &v); });
        return;
      }
      case 2: {  // out-of-range ids
        const int32_t bad_tree = chance(0.5) ? num_trees_ : -1;
        const int32_t node = 0;
        const double v = 0;
        expect<qengine::IndexError>("backup bad tree",
                                    [&] { forest_->backup(1, &bad_tree, &node, &v); });
        const int32_t bad_node = chance(0.5) ? n : -3;
        expect<qengine::IndexError>("cancel bad node", [&] { forest_->cancel(1, &t, &bad_node); });
        return;
      }
      case 3: {  // duplicate leaf
        if (pending_.empty()) return;
        const Leaf l = pending_[pick(pending_.size())];
        const int32_t trees[2] = {l.tree, l.tree};
        const int32_t nodes[2] = {l.node, l.node};
        const double values[2] = {0.1, 0.2};
        expect<qengine::ValueError>("backup duplicate",
                                    [&] { forest_->backup(2, trees, nodes, values); });
        return;
      }
      case 4: {  // expand a terminal node
        for (int32_t x = 0; x < n; ++x) {
          if (a.status[static_cast<size_t>(off + x)] & qengine::kTerminalBit) {
            ExpandCall call;
            call.add(t, x, 1 + static_cast<int32_t>(pick(2)), *this);
            expect<qengine::ValueError>("expand terminal", [&] { forest_->expand(call.args()); });
            return;
          }
        }
        return;
      }
      case 5: {  // bad priors / rewards
        ExpandCall call;
        call.add(t, 0, 2, *this);
        if (chance(0.5)) {
          call.priors[1] = -0.5f;
        } else {
          call.rewards[0] = std::numeric_limits<float>::infinity();
        }
        expect<qengine::ValueError>("expand bad values", [&] { forest_->expand(call.args()); });
        return;
      }
      case 6: {  // expand out of range, counts mismatch
        ExpandCall call;
        call.add(t, n + static_cast<int32_t>(pick(3)), 1, *this);
        expect<qengine::IndexError>("expand bad node", [&] { forest_->expand(call.args()); });
        ExpandCall mismatch;
        mismatch.add(t, 0, 2, *this);
        mismatch.counts[0] = 3;
        expect<qengine::ValueError>("expand counts mismatch",
                                    [&] { forest_->expand(mismatch.args()); });
        return;
      }
      case 7: {  // tree operations while busy
        if (!tree_busy(a, t)) return;
        expect<qengine::ValueError>("reroot busy", [&] { forest_->reroot(t, 0); });
        expect<qengine::ValueError>("compact busy", [&] { forest_->compact(t); });
        expect<qengine::ValueError>("reset busy", [&] { forest_->reset(t, 1); });
        // run_synthetic checks tree by tree (idle, then capacity): either error may come first.
        if (!guarded([&] { forest_->run_synthetic(4, 2, 1, 0); }, false, "run_synthetic busy")) {
          fail(seed_, op_, "run_synthetic ran while leaves were in flight");
        }
        return;
      }
      case 8:
        expect<qengine::ValueError>("prune root", [&] { forest_->prune(t, 0); });
        expect<qengine::ValueError>("ask 0", [&] { forest_->ask(0, true); });
        expect<qengine::CapacityError>("ask too many",
                                       [&] { forest_->ask(qengine::kMaxInFlight + 1, false); });
        return;
      case 9:
        expect<qengine::ValueError>("pairs max_depth",
                                    [&] { forest_->pairs(qengine::PairMode::kPaper, 1, 0.0, -2); });
        expect<qengine::ValueError>("root_policy", [&] { forest_->root_policy(t, -1.0); });
        expect<qengine::IndexError>("best_path", [&] { forest_->best_path(num_trees_); });
        return;
      case 10: {  // a corrupt export is refused on import
        ArraysOut bad = a;
        const size_t total = bad.parent.size();
        switch (pick(5)) {
          case 0:
            bad.parent[0] = 3;
            break;
          case 1:
            bad.depth[pick(total)] += 1;
            break;
          case 2:
            bad.tree_offsets.back() += 1;
            break;
          case 3:
            bad.q[pick(total)] = std::numeric_limits<float>::quiet_NaN();
            break;
          default:
            bad.minmax_lo[0] = nan;
            break;
        }
        // Some corruptions (depth of a dead slot...) are still detected: every field is checked.
        try {
          Forest::from_arrays(cfg_, borrow(bad), threads_);
        } catch (const qengine::ValueError&) {
          return;
        }
        if (!same_arrays(a, bad)) fail(seed_, op_, "from_arrays accepted corrupt arrays");
        return;
      }
      case 11: {  // capacity: a widening far past max_nodes
        ExpandCall call;
        call.add(t, 0, static_cast<int32_t>(std::min<int64_t>(cfg_.max_nodes + 1, 60000)), *this);
        if (a.status[static_cast<size_t>(off)] & qengine::kTerminalBit) return;
        bool busy = false;
        for (int32_t j = 0; j < a.num_children[static_cast<size_t>(off)]; ++j) {
          busy = busy ||
                 (a.status[static_cast<size_t>(off + a.first_child[static_cast<size_t>(off)] + j)] &
                  qengine::kInFlightMask);
        }
        if (busy) {
          expect<qengine::ValueError>("widen busy root", [&] { forest_->expand(call.args()); });
        } else if (cfg_.max_nodes < 5000 || n + call.counts[0] > cfg_.max_nodes) {
          expect<qengine::CapacityError>("expand past max_nodes",
                                         [&] { forest_->expand(call.args()); });
        }
        return;
      }
      case 12: {  // a dead slot cannot be expanded or rerooted
        for (int32_t x = 0; x < n; ++x) {
          if (a.parent[static_cast<size_t>(off + x)] == qengine::kDeadSlot) {
            ExpandCall call;
            call.add(t, x, 1, *this);
            expect<qengine::ValueError>("expand dead slot", [&] { forest_->expand(call.args()); });
            if (!tree_busy(a, t))
              expect<qengine::ValueError>("reroot dead", [&] { forest_->reroot(t, x); });
            return;
          }
        }
        return;
      }
      case 14: {                 // call order: the first failing entry decides (docs 5.2, 5.5)
        int32_t idle_node = -1;  // a node of tree t that is not a leaf in flight
        for (int32_t x = 0; x < n && idle_node < 0; ++x) {
          bool is_pending = false;
          for (const Leaf& l : pending_) is_pending = is_pending || (l.tree == t && l.node == x);
          if (!is_pending) idle_node = x;
        }
        if (idle_node < 0) return;
        const double values[2] = {0.5, 0.5};
        const int32_t trees_a[2] = {t, num_trees_};
        const int32_t nodes_a[2] = {idle_node, 0};
        expect<qengine::ValueError>("backup: a state error before a bad tree id",
                                    [&] { forest_->backup(2, trees_a, nodes_a, values); });
        const int32_t trees_b[2] = {num_trees_, t};
        const int32_t nodes_b[2] = {0, idle_node};
        expect<qengine::IndexError>("cancel: a bad tree id before a state error",
                                    [&] { forest_->cancel(2, trees_b, nodes_b); });
        if (!pending_.empty()) {
          const Leaf l = pending_[pick(pending_.size())];
          const int32_t trees_c[2] = {l.tree, t};
          const int32_t nodes_c[2] = {l.node, n + 3};
          const double bad_values[2] = {chance(0.5) ? nan : qengine::kFloat32Overflow, 0.5};
          expect<qengine::ValueError>("backup: a bad value before a bad node id",
                                      [&] { forest_->backup(2, trees_c, nodes_c, bad_values); });
        }
        for (int32_t x = 0; x < n; ++x) {
          if (!(a.status[static_cast<size_t>(off + x)] & qengine::kTerminalBit)) continue;
          ExpandCall state_first;
          state_first.add(t, x, 1, *this);
          state_first.add(t, n + 1, 1, *this);
          expect<qengine::ValueError>("expand: terminal before a bad node id",
                                      [&] { forest_->expand(state_first.args()); });
          ExpandCall id_first;
          id_first.add(t, n + 1, 1, *this);
          id_first.add(t, x, 1, *this);
          expect<qengine::IndexError>("expand: a bad node id before terminal",
                                      [&] { forest_->expand(id_first.args()); });
          return;
        }
        return;
      }
      case 15: {  // sizes that once overflowed int64 arithmetic
        expect<qengine::CapacityError>(
            "ask INT64_MAX", [&] { forest_->ask(std::numeric_limits<int64_t>::max(), false); });
        expect<qengine::ValueError>(
            "ask INT64_MIN", [&] { forest_->ask(std::numeric_limits<int64_t>::min(), false); });
        // Tree by tree: tree 0 is either busy (ValueError) or too small (CapacityError).
        const bool busy = tree_busy(a, 0);
        auto huge = [&] {
          forest_->run_synthetic(std::numeric_limits<int64_t>::max(), qengine::kMaxChildren,
                                 qengine::kMaxInFlight, rng_());
        };
        if (busy) {
          expect<qengine::ValueError>("run_synthetic INT64_MAX on busy trees", huge);
        } else {
          expect<qengine::CapacityError>("run_synthetic INT64_MAX", huge);
        }
        return;
      }
      case 16: {  // counts reaching past the children arrays
        ExpandCall call;
        call.add(t, 0, 2, *this);
        call.counts[0] = 3 + static_cast<int32_t>(pick(1000));
        call.add(num_trees_, 0, 1, *this);  // a bad id after it: the count fails first
        expect<qengine::ValueError>("expand counts past the arrays",
                                    [&] { forest_->expand(call.args()); });
        return;
      }
      default: {  // a node twice in one expand
        ExpandCall call;
        call.add(t, 0, 1, *this);
        call.add(t, 0, 1, *this);
        expect<qengine::ValueError>("expand duplicate", [&] { forest_->expand(call.args()); });
        return;
      }
    }
  }

  // Random alive node of tree t (not the root if `non_root`), or -1.
  int32_t random_alive(const ArraysOut& a, int32_t t, bool non_root) {
    const int64_t off = a.tree_offsets[static_cast<size_t>(t)];
    const int32_t n = static_cast<int32_t>(a.tree_offsets[static_cast<size_t>(t) + 1] - off);
    if (non_root && n < 2) return -1;
    for (int tries = 0; tries < 8; ++tries) {
      const int32_t x = non_root ? 1 + static_cast<int32_t>(pick(static_cast<uint64_t>(n - 1)))
                                 : static_cast<int32_t>(pick(static_cast<uint64_t>(n)));
      if (a.parent[static_cast<size_t>(off + x)] != qengine::kDeadSlot) return x;
    }
    return -1;
  }

  // BFS order (old ids) of the subtree of `root` in tree t of `a`, children of `cut` dropped.
  static std::vector<int32_t> bfs(const ArraysOut& a, int32_t t, int32_t root, int32_t cut) {
    const int64_t off = a.tree_offsets[static_cast<size_t>(t)];
    std::vector<int32_t> order{root};
    for (size_t h = 0; h < order.size(); ++h) {
      const int32_t u = order[h];
      if (u == cut) continue;
      const size_t i = static_cast<size_t>(off + u);
      for (int32_t j = 0; j < a.num_children[i]; ++j) order.push_back(a.first_child[i] + j);
    }
    return order;
  }

  // The renumbered tree t of `after` must equal the BFS copy of `before` (stats, payloads).
  void check_renumbered(const ArraysOut& before, const ArraysOut& after, int32_t t, int32_t root,
                        int32_t cut, const char* what) {
    const std::vector<int32_t> order = bfs(before, t, root, cut);
    const int64_t ob = before.tree_offsets[static_cast<size_t>(t)];
    const int64_t oa = after.tree_offsets[static_cast<size_t>(t)];
    const int64_t n = after.tree_offsets[static_cast<size_t>(t) + 1] - oa;
    if (n != static_cast<int64_t>(order.size())) fail(seed_, op_, std::string(what) + ": size");
    for (size_t i = 0; i < order.size(); ++i) {
      const size_t o = static_cast<size_t>(ob + order[i]);
      const size_t w = static_cast<size_t>(oa + static_cast<int64_t>(i));
      const bool same =
          before.visits[o] == after.visits[w] && std::memcmp(&before.q[o], &after.q[w], 4) == 0 &&
          before.payload[o] == after.payload[w] &&
          (order[i] == cut || before.num_children[o] == after.num_children[w]) &&
          ((before.status[o] & qengine::kTerminalBit) == (after.status[w] & qengine::kTerminalBit));
      if (!same) fail(seed_, op_, std::string(what) + ": node " + std::to_string(i) + " differs");
      if (i > 0 && (std::memcmp(&before.prior[o], &after.prior[w], 4) != 0 ||
                    std::memcmp(&before.reward[o], &after.reward[w], 4) != 0)) {
        fail(seed_, op_, std::string(what) + ": prior/reward of node " + std::to_string(i));
      }
    }
  }

  void do_reroot() {
    const ArraysOut a = forest_->export_arrays();
    const int32_t t = static_cast<int32_t>(pick(static_cast<uint64_t>(num_trees_)));
    if (tree_busy(a, t)) return;
    const int32_t x = random_alive(a, t, false);
    if (x < 0) return;
    forest_->reroot(t, x);
    const ArraysOut b = forest_->export_arrays();
    check_renumbered(a, b, t, x, -1, "reroot");
    if (b.root_epoch[static_cast<size_t>(t)] != a.root_epoch[static_cast<size_t>(t)] + 1) {
      fail(seed_, op_, "reroot: root_epoch");
    }
  }

  void do_prune() {
    const ArraysOut a = forest_->export_arrays();
    const int32_t t = static_cast<int32_t>(pick(static_cast<uint64_t>(num_trees_)));
    if (tree_busy(a, t)) return;
    const int32_t x = random_alive(a, t, true);
    if (x < 0) return;
    forest_->prune(t, x);
    check_renumbered(a, forest_->export_arrays(), t, 0, x, "prune");
  }

  void do_compact() {
    const ArraysOut a = forest_->export_arrays();
    const int32_t t = static_cast<int32_t>(pick(static_cast<uint64_t>(num_trees_)));
    if (tree_busy(a, t)) return;
    forest_->compact(t);
    const ArraysOut b = forest_->export_arrays();
    check_renumbered(a, b, t, 0, -1, "compact");
    forest_->compact(t);
    if (!same_arrays(b, forest_->export_arrays())) fail(seed_, op_, "compact is not idempotent");
  }

  void do_reset() {
    const ArraysOut a = forest_->export_arrays();
    const int32_t t = static_cast<int32_t>(pick(static_cast<uint64_t>(num_trees_)));
    if (tree_busy(a, t)) return;
    forest_->reset(t, 42);
    if (forest_->size(t) != 1) fail(seed_, op_, "reset: size");
  }

  void do_round_trip() {
    const ArraysOut a = forest_->export_arrays();
    std::unique_ptr<Forest> copy = Forest::from_arrays(cfg_, borrow(a), threads_);
    if (!same_arrays(a, copy->export_arrays()))
      fail(seed_, op_, "export/import round trip differs");
    if (chance(0.5)) forest_ = std::move(copy);  // continue on the imported forest
  }

  void do_pairs_and_queries() {
    const ArraysOut a = forest_->export_arrays();
    const int which = static_cast<int>(pick(3));
    const qengine::PairMode mode = which == 0   ? qengine::PairMode::kPaper
                                   : which == 1 ? qengine::PairMode::kMaxMin
                                                : qengine::PairMode::kMaxAll;
    const qengine::PairsResult p = forest_->pairs(mode, static_cast<int64_t>(pick(3)), unit() * 0.2,
                                                  static_cast<int64_t>(pick(5)) - 1);
    for (size_t i = 0; i < p.tree.size(); ++i) {
      const int64_t off = a.tree_offsets[static_cast<size_t>(p.tree[i])];
      const int32_t s = p.parent[i];
      const size_t si = static_cast<size_t>(off + s);
      for (int32_t c : {p.chosen[i], p.rejected[i]}) {
        if (c < a.first_child[si] || c >= a.first_child[si] + a.num_children[si]) {
          fail(seed_, op_, "pairs: chosen/rejected not a child of parent");
        }
      }
      if (!(p.q_chosen[i] > p.q_rejected[i])) fail(seed_, op_, "pairs: q_chosen <= q_rejected");
      // max_all emits several pairs per parent (rejected ids increasing); the others one.
      const bool same_parent = i > 0 && p.tree[i] == p.tree[i - 1] && s == p.parent[i - 1];
      if (i > 0 &&
          (p.tree[i] < p.tree[i - 1] || (p.tree[i] == p.tree[i - 1] && s < p.parent[i - 1]) ||
           (same_parent && (mode != qengine::PairMode::kMaxAll || p.chosen[i] != p.chosen[i - 1] ||
                            p.rejected[i] <= p.rejected[i - 1])))) {
        fail(seed_, op_, "pairs: not ordered by tree, parent (, rejected)");
      }
    }
    for (int32_t t = 0; t < num_trees_; ++t) {
      const std::vector<double> pol =
          forest_->root_policy(t, chance(0.3) ? 0.0 : 0.05 + unit() * 2);
      double sum = 0;
      for (double x : pol) sum += x;
      if (!pol.empty() && sum != 0.0 && std::fabs(sum - 1.0) > 1e-9)
        fail(seed_, op_, "root_policy sum");
      const std::vector<int32_t> path = forest_->best_path(t);
      if (path.empty() || path[0] != 0) fail(seed_, op_, "best_path must start at the root");
      const int64_t best = forest_->best_action(t);
      if ((best < 0) != (path.size() == 1)) fail(seed_, op_, "best_action vs best_path");
    }
  }

  void do_synthetic() {
    if (!pending_.empty()) return;
    guarded(
        [&] {
          forest_->run_synthetic(1 + static_cast<int64_t>(pick(12)),
                                 1 + static_cast<int64_t>(pick(4)),
                                 1 + static_cast<int64_t>(pick(3)), rng_());
        },
        false, "run_synthetic");
  }

  void drain() {
    if (pending_.empty()) return;
    std::vector<int32_t> trees, nodes;
    for (const Leaf& l : pending_) {
      trees.push_back(l.tree);
      nodes.push_back(l.node);
    }
    forest_->cancel(static_cast<int64_t>(trees.size()), trees.data(), nodes.data());
    pending_.clear();
  }

  // ------------------------------------------------------------------ invariants
  void check_invariants() {
    const ArraysOut a = forest_->export_arrays();
    for (int32_t t = 0; t < num_trees_; ++t) {
      const int64_t off = a.tree_offsets[static_cast<size_t>(t)];
      const int32_t n = static_cast<int32_t>(a.tree_offsets[static_cast<size_t>(t) + 1] - off);
      auto at = [&](int32_t x) { return static_cast<size_t>(off + x); };
      const std::string tid = "tree " + std::to_string(t) + " ";
      if (a.parent[at(0)] != -1 || a.depth[at(0)] != 0) fail(seed_, op_, tid + "root fields");
      if (n > cfg_.max_nodes) fail(seed_, op_, tid + "size past max_nodes");
      const double lo = a.minmax_lo[static_cast<size_t>(t)],
                   hi = a.minmax_hi[static_cast<size_t>(t)];
      if (!(hi < lo) && !(lo <= hi)) fail(seed_, op_, tid + "minmax");
      for (int32_t x = 0; x < n; ++x) {
        const size_t i = at(x);
        const std::string id = tid + "node " + std::to_string(x) + ": ";
        if (a.parent[i] == qengine::kDeadSlot) {
          if (a.status[i] || a.visits[i] || a.num_children[i] || a.first_child[i] != -1) {
            fail(seed_, op_, id + "dead slot not cleared");
          }
          continue;
        }
        const int32_t nc = a.num_children[i];
        const int32_t flight = a.status[i] & qengine::kInFlightMask;
        int32_t child_flight = 0, own_pending = 0;
        int64_t child_visits = 0;
        bool all_exhausted = nc > 0;
        for (int32_t j = 0; j < nc; ++j) {
          const int32_t c = a.first_child[i] + j;
          if (c <= 0 || c >= n) fail(seed_, op_, id + "child out of range");
          const size_t ci = at(c);
          if (a.parent[ci] != x) fail(seed_, op_, id + "child's parent link");
          if (a.action[ci] != j) fail(seed_, op_, id + "child's action");
          if (a.depth[ci] != a.depth[i] + 1) fail(seed_, op_, id + "child's depth");
          child_flight += a.status[ci] & qengine::kInFlightMask;
          child_visits += a.visits[ci];
          all_exhausted = all_exhausted && (a.status[ci] & qengine::kExhaustedBit);
        }
        if (nc == 0 && a.first_child[i] != -1) fail(seed_, op_, id + "unexpanded with first_child");
        if (nc > 0 && (a.status[i] & qengine::kTerminalBit))
          fail(seed_, op_, id + "terminal with children");
        for (const Leaf& l : pending_) own_pending += (l.tree == t && l.node == x) ? 1 : 0;
        if (flight - child_flight != own_pending) {
          fail(seed_, op_,
               id + "in-flight " + std::to_string(flight) + " - children " +
                   std::to_string(child_flight) + " != pending " + std::to_string(own_pending));
        }
        if (nc > 0) {
          const int64_t own = a.visits[i] - child_visits;
          if (own != 0 && own != 1) {
            fail(seed_, op_,
                 id + "visits " + std::to_string(a.visits[i]) + " != children's " +
                     std::to_string(child_visits) + " + 0 or 1");
          }
          if (all_exhausted && !(a.status[i] & qengine::kExhaustedBit)) {
            fail(seed_, op_, id + "every child exhausted but the node is not");
          }
        }
        if (cfg_.mark_exhausted && (a.status[i] & qengine::kTerminalBit) && a.visits[i] > 0 &&
            !(a.status[i] & qengine::kExhaustedBit)) {
          fail(seed_, op_, id + "visited terminal node not exhausted");
        }
        if (a.visits[i] == 0 && a.q[i] != 0.0f) fail(seed_, op_, id + "unvisited node with q != 0");
        if (!std::isfinite(a.q[i])) fail(seed_, op_, id + "q not finite");
        if (bounded_ && (a.q[i] < cfg_.value_min || a.q[i] > cfg_.value_max)) {
          fail(seed_, op_, id + "q " + std::to_string(a.q[i]) + " outside [value_min, value_max]");
        }
        if (x > 0) {
          const int32_t p = a.parent[i];
          if (p < 0 || p >= n) fail(seed_, op_, id + "parent out of range");
          const size_t pi = at(p);
          if (x < a.first_child[pi] || x >= a.first_child[pi] + a.num_children[pi]) {
            fail(seed_, op_, id + "not inside its parent's children block");
          }
        }
      }
    }
  }

  uint64_t seed_;                   // seed of this run
  std::mt19937_64 rng_;             // drives every random choice
  int threads_;                     // forest threads
  int64_t num_ops_;                 // operations to run
  int64_t op_ = 0;                  // current operation index
  int32_t num_trees_ = 1;           // B
  bool bounded_ = false;            // values in [-1, 1], rewards 0, discount 1
  SearchConfig cfg_;                // random configuration
  std::unique_ptr<Forest> forest_;  // forest under test
  std::vector<Leaf> pending_;       // asked leaves not yet told or cancelled
};

}  // namespace

// Deterministic checks of the limits (docs sections 1, 5.2, 5.9, 9), under the sanitizers.
void check_limits() {
  auto expect_error = [](const char* what, const std::function<void()>& fn, bool value_error) {
    try {
      fn();
    } catch (const qengine::ValueError&) {
      if (value_error) return;
    } catch (const qengine::CapacityError&) {
      if (!value_error) return;
    }
    fail(0, 0, std::string("limits: ") + what + " did not throw the right error");
  };
  SearchConfig cfg;
  cfg.max_nodes = 100;
  expect_error("0 trees", [&] { Forest(0, cfg, 1, nullptr); }, true);
  expect_error("2**31 trees", [&] { Forest(qengine::kMaxTrees + 1, cfg, 1, nullptr); }, true);
  expect_error("-1 threads", [&] { Forest(1, cfg, -1, nullptr); }, true);
  expect_error(
      "too many threads", [&] { Forest(1, cfg, qengine::kMaxThreads + 1, nullptr); }, true);

  // Visit counts saturate; q stays finite at the float32 edge.
  Forest f(1, cfg, 1, nullptr);
  qengine::AskResult r = f.ask(1, false);
  const std::vector<float> priors = {0.5f, 0.5f}, rewards = {FLT_MAX, -FLT_MAX};
  const std::vector<uint8_t> terminal = {0, 0};
  const std::vector<int64_t> payloads = {1, 2};
  const int32_t count = 2;
  qengine::ExpandArgs e;
  e.num_items = 1;
  e.trees = r.tree.data();
  e.nodes = r.node.data();
  e.counts = &count;
  e.num_children = 2;
  e.priors = priors.data();
  e.rewards = rewards.data();
  e.terminal = terminal.data();
  e.payloads = payloads.data();
  f.expand(e);
  const double half = 0.5;
  f.backup(1, r.tree.data(), r.node.data(), &half);
  ArraysOut a = f.export_arrays();
  a.visits[0] = qengine::kMaxVisits - 1;
  a.visits[1] = qengine::kMaxVisits - 2;
  a.visits[2] = qengine::kMaxVisits - 2;
  std::unique_ptr<Forest> g = Forest::from_arrays(cfg, borrow(a), 2);
  const double values[] = {FLT_MAX, -FLT_MAX, 3.4028235e38, -3.4028235e38, 1.0, FLT_MAX};
  for (double v : values) {
    qengine::AskResult leaf = g->ask(1, false);
    g->backup(1, leaf.tree.data(), leaf.node.data(), &v);
  }
  a = g->export_arrays();
  if (a.visits[0] != qengine::kMaxVisits) fail(0, 0, "limits: the root's visits did not saturate");
  for (float q : a.q) {
    if (!std::isfinite(q)) fail(0, 0, "limits: q not finite after extreme values");
  }
  Forest::from_arrays(cfg, borrow(a), 1);  // still a valid forest

  // root_epoch wraps like uint64.
  a.root_epoch[0] = std::numeric_limits<uint64_t>::max();
  std::unique_ptr<Forest> h = Forest::from_arrays(cfg, borrow(a), 1);
  h->reset(0, 1);
  if (h->root_epoch(0) != 0) fail(0, 0, "limits: root_epoch did not wrap");

  // Offsets that overflowed the size arithmetic of the import.
  for (int64_t bad : {std::numeric_limits<int64_t>::max(), std::numeric_limits<int64_t>::min()}) {
    ArraysOut c = h->export_arrays();
    c.tree_offsets[1] = bad;
    expect_error("extreme tree_offsets", [&] { Forest::from_arrays(cfg, borrow(c), 1); }, true);
  }

  // Budgets that overflowed (S + K - 1) * A; a Gumbel schedule of 2**63 - 1 simulations.
  SearchConfig big;
  big.max_nodes = qengine::kMaxTrees;
  big.gumbel = true;
  big.gumbel_simulations = std::numeric_limits<int64_t>::max();
  Forest k(2, big, 2, nullptr);
  expect_error(
      "run_synthetic 2**63 - 1",
      [&] { k.run_synthetic(std::numeric_limits<int64_t>::max(), 65535, 16383, 0); }, false);
  expect_error("run_synthetic 2**40", [&] { k.run_synthetic(int64_t{1} << 40, 1, 1, 0); }, false);
  k.run_synthetic(40, 5, 2, 3);
}

int main(int argc, char** argv) {
  check_limits();
  const int64_t seeds = argc > 1 ? std::atoll(argv[1]) : 24;
  const int64_t ops = argc > 2 ? std::atoll(argv[2]) : 2500;
  const uint64_t first = argc > 3 ? std::strtoull(argv[3], nullptr, 10) : 1;
  for (uint64_t s = first; s < first + static_cast<uint64_t>(seeds); ++s) {
    const ArraysOut one = Driver(s, 1, ops).run();
    const ArraysOut three = Driver(s, 3, ops).run();
    if (!same_arrays(one, three)) fail(s, ops, "1 thread and 3 threads give different forests");
  }
  std::printf("random_driver: %lld seeds x %lld ops x 2 thread counts: all checks passed\n",
              static_cast<long long>(seeds), static_cast<long long>(ops));
  return 0;
}
