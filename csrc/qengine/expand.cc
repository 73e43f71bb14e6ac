#include "qengine/expand.h"

#include <algorithm>
#include <cmath>
#include <cstring>

#include "qengine/backup.h"
#include "qengine/errors.h"

namespace qengine {
namespace {

std::string str(int64_t v) { return std::to_string(v); }

// The error of the first failing child j in [begin, end) of entry i (prior finite and >= 0,
// reward finite), or "". The children are scanned once with branch-free tests; the message is
// built only for a failure (a string per entry was most of pass 1's cost on a 256-leaf batch).
std::string check_children(const ExpandArgs& a, int64_t i, int64_t begin, int64_t end) {
  bool ok = true;
  if (a.rewards != nullptr) {
    for (int64_t j = begin; j < end; ++j) {
      ok &= std::isfinite(a.priors[j]) & (a.priors[j] >= 0) & std::isfinite(a.rewards[j]);
    }
  } else {
    for (int64_t j = begin; j < end; ++j) ok &= std::isfinite(a.priors[j]) & (a.priors[j] >= 0);
  }
  if (ok) return "";
  for (int64_t j = begin; j < end; ++j) {
    if (!std::isfinite(a.priors[j]) || a.priors[j] < 0) {
      return entry_where("expand", i) + "priors[" + str(j) + "] = " + std::to_string(a.priors[j]) +
             " must be finite and >= 0";
    }
    if (a.rewards != nullptr && !std::isfinite(a.rewards[j])) {
      return entry_where("expand", i) + "rewards[" + str(j) +
             "] = " + std::to_string(a.rewards[j]) + " must be finite";
    }
  }
  return "";
}

}  // namespace

std::exception_ptr check_entry(const ExpandArgs& a, int64_t i, int64_t off,
                               const std::vector<Tree>& trees) {
  // Messages are built only on failure: this runs once per entry of every call.
  const int64_t count = a.counts[i];
  const int64_t nb = static_cast<int64_t>(trees.size());
  if (count < 0) {
    return std::make_exception_ptr(
        ValueError(entry_where("expand", i) + "counts must be >= 0, got " + str(count)));
  }
  if (a.trees[i] < 0 || a.trees[i] >= nb) {
    return std::make_exception_ptr(IndexError(entry_where("expand", i) + "tree " + str(a.trees[i]) +
                                              " is out of range [0, " + str(nb) + ")"));
  }
  const int32_t size = trees[static_cast<size_t>(a.trees[i])].size;
  if (a.nodes[i] < 0 || a.nodes[i] >= size) {
    return std::make_exception_ptr(IndexError(
        entry_where("expand", i) + "node " + str(a.nodes[i]) + " is out of range [0, " + str(size) +
        ") in tree " + str(a.trees[i]) + " (ids refer to the tree as it was before this call)"));
  }
  if (count > a.num_children - off) {
    return std::make_exception_ptr(ValueError(
        entry_where("expand", i) + "its " + str(count) + " children reach past the children " +
        "arrays (" + str(a.num_children) + " entries); counts must sum to their length"));
  }
  std::string error = check_children(a, i, off, off + count);
  if (!error.empty()) return std::make_exception_ptr(ValueError(error));
  return nullptr;
}

std::string check_entry_state(const Tree& t, int64_t tree, const ExpandArgs& a, int64_t i,
                              bool repeated, std::vector<MovedBlock>* moved, int64_t* size) {
  const int32_t x = a.nodes[i];
  const int64_t count = a.counts[i];
  // "expand: entry i: tree b node x", built only on failure (this runs once per entry).
  auto at = [&] { return entry_where("expand", i) + "tree " + str(tree) + " node " + str(x); };
  if (!t.alive(x)) return at() + " is a dead slot left by progressive widening";
  if (repeated) return at() + " appears twice in one call; give all its children in one entry";
  for (const MovedBlock& m : *moved) {
    if (x >= m.first && x < m.end) {
      return at() +
             " was moved by an earlier widening in this same call; expand it in a separate call "
             "(its new id is in view(tree, 'first_child'))";
    }
  }
  if (t.terminal(x)) return at() + " is terminal and cannot be expanded";
  if (count == 0) return "";
  const int32_t old = t.num_children[x];
  const int32_t first = t.first_child[x];
  if (old + count > kMaxChildren) {
    return at() + " would have " + str(old + count) + " children; the limit is " +
           str(kMaxChildren);
  }
  if (t.depth[x] + 1 > kMaxDepth) {
    return at() + " is at depth " + str(t.depth[x]) + "; children would exceed the depth limit " +
           str(kMaxDepth);
  }
  for (int32_t c = first, e = first + old; old > 0 && c < e; ++c) {
    if (t.in_flight(c) > 0) {
      return entry_where("expand", i) + "cannot widen tree " + str(tree) + " node " + str(x) +
             ": its child " + str(c) +
             " has leaves in flight (widening may move the children); tell or cancel them first";
    }
  }
  if (old > 0 && static_cast<int64_t>(first) + old != *size) {
    moved->push_back({first, first + old});
    *size += old;
  }
  *size += count;
  return "";
}

std::exception_ptr capacity_error(int64_t tree, int64_t size, int64_t max_nodes) {
  return std::make_exception_ptr(CapacityError(
      "expand: tree " + str(tree) + " would grow to " + str(size) + " nodes, past max_nodes = " +
      str(max_nodes) + " (raise SearchConfig.max_nodes, or reroot / prune / compact the tree)"));
}

int64_t size_after_expand(const Tree& t, int32_t node, int64_t count, int64_t size) {
  if (count == 0) return size;
  const int32_t old = t.num_children[node];
  if (old == 0 || static_cast<int64_t>(t.first_child[node]) + old == size) return size + count;
  return size + old + count;
}

void expand_node(Tree& t, int32_t node, const ChildBlock& ch, int64_t limit) {
  const int32_t count = ch.count;
  const int32_t old = t.num_children[node];
  if (count == 0) {
    if (old == 0) t.status[node] |= kTerminalBit;
    return;
  }
  const int64_t needed = size_after_expand(t, node, count, t.size);
  t.ensure(needed, limit);
  int32_t first = t.first_child[node];
  if (old > 0 && first + old != t.size) {
    // Widening with a move: copy the old block to the arena end, re-parent the grandchildren,
    // turn the old slots dead.
    const int32_t moved = t.size;
    for (int32_t j = 0; j < old; ++j) {
      const int32_t from = first + j;
      const int32_t to = moved + j;
      t.copy_node(t, from, to);
      const int32_t gc = t.first_child[to];
      for (int32_t g = gc, end = gc + t.num_children[to]; g < end; ++g) t.parent[g] = to;
      t.kill_node(from);
    }
    first = moved;
    t.size = moved + old;
  } else if (old == 0) {
    first = t.size;
  }
  // The new children (the same values as Tree::init_node): hot records in one pass, then the
  // cold columns in tight loops.
  const uint16_t depth = static_cast<uint16_t>(t.depth[node] + 1);
  const int32_t base = t.size;
  const size_t n = static_cast<size_t>(count);
  HotNode* hot = t.hot + base;
  for (int32_t j = 0; j < count; ++j) {
    const uint16_t status = ch.terminal != nullptr && ch.terminal[j] != 0 ? kTerminalBit : 0;
    const float reward = ch.rewards != nullptr ? ch.rewards[j] : 0.0f;
    hot[j] = HotNode{node, kNoNode, 0, 0.0f, reward, ch.priors[j], 0, status};
  }
  if (ch.payloads != nullptr) {
    std::memcpy(t.payload + base, ch.payloads, n * sizeof(int64_t));
  } else {
    std::fill_n(t.payload + base, n, int64_t{0});
  }
  std::fill_n(t.depth + base, n, depth);
  uint16_t* action = t.action + base;
  for (int32_t j = 0; j < count; ++j) action[j] = static_cast<uint16_t>(old + j);
  t.size = base + count;
  t.first_child[node] = first;
  t.num_children[node] = static_cast<uint16_t>(old + count);
  if (old > 0) clear_exhausted_upwards(t, node);
}

}  // namespace qengine
