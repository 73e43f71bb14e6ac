#include "qengine/serialize.h"

#include <cmath>
#include <cstring>
#include <string>

#include "qengine/errors.h"

namespace qengine {
namespace {

template <class T>
void put(NodeColumn<T>& dst, int64_t offset, const T* src, int32_t n) {
  std::memcpy(dst.data() + offset, src, sizeof(T) * static_cast<size_t>(n));
}

template <class T>
void get(T* dst, const ArraysIn::Span<T>& src, int64_t offset, int32_t n) {
  std::memcpy(dst, src.data + offset, sizeof(T) * static_cast<size_t>(n));
}

[[noreturn]] void corrupt(int64_t b, int64_t node, const std::string& what) {
  throw ValueError("from_arrays: tree " + std::to_string(b) + " node " + std::to_string(node) +
                   ": " + what + " (the arrays are corrupt; were they written by export_arrays?)");
}

}  // namespace

void export_tree(const Tree& t, int64_t offset, ArraysOut* out) {
  const int32_t n = t.size;
  put(out->action, offset, t.action, n);
  put(out->depth, offset, t.depth, n);
  put(out->payload, offset, t.payload, n);
  // The hot records, split into their columns in one pass.
  const HotNode* hot = t.hot;
  int32_t* parent = out->parent.data() + offset;
  int32_t* first_child = out->first_child.data() + offset;
  uint16_t* num_children = out->num_children.data() + offset;
  uint16_t* status = out->status.data() + offset;
  float* prior = out->prior.data() + offset;
  int32_t* visits = out->visits.data() + offset;
  float* q = out->q.data() + offset;
  float* reward = out->reward.data() + offset;
  for (int32_t i = 0; i < n; ++i) {
    const HotNode r = hot[i];  // a copy: the stores below cannot alias it
    parent[i] = r.parent;
    first_child[i] = r.first_child;
    num_children[i] = r.num_children;
    status[i] = r.status;
    prior[i] = r.prior;
    visits[i] = r.visits;
    q[i] = r.q;
    reward[i] = r.reward;
  }
}

int64_t check_array_shapes(const ArraysIn& in, const SearchConfig& config) {
  const int64_t bplus = in.tree_offsets.size;
  if (bplus < 2) {
    throw ValueError("from_arrays: tree_offsets must have B+1 >= 2 entries, got " +
                     std::to_string(bplus));
  }
  const int64_t b = bplus - 1;
  const int64_t n = in.parent.size;
  auto same = [&](int64_t size, const char* name, int64_t expected) {
    if (size != expected) {
      throw ValueError(std::string("from_arrays: ") + name + " has " + std::to_string(size) +
                       " entries, expected " + std::to_string(expected));
    }
  };
  same(in.first_child.size, "first_child", n);
  same(in.num_children.size, "num_children", n);
  same(in.action.size, "action", n);
  same(in.depth.size, "depth", n);
  same(in.status.size, "status", n);
  same(in.prior.size, "prior", n);
  same(in.visits.size, "visits", n);
  same(in.q.size, "q", n);
  same(in.reward.size, "reward", n);
  same(in.payload.size, "payload", n);
  same(in.minmax_lo.size, "minmax_lo", b);
  same(in.minmax_hi.size, "minmax_hi", b);
  same(in.root_epoch.size, "root_epoch", b);
  if (in.tree_offsets.data[0] != 0) throw ValueError("from_arrays: tree_offsets[0] must be 0");
  for (int64_t i = 0; i < b; ++i) {
    // offsets[i] >= 0 by induction, so the difference cannot overflow once offsets[i+1] > it.
    const int64_t lo = in.tree_offsets.data[i];
    const int64_t hi = in.tree_offsets.data[i + 1];
    if (hi <= lo) {
      throw ValueError("from_arrays: tree_offsets must increase strictly, got tree_offsets[" +
                       std::to_string(i) + "] = " + std::to_string(lo) + " and tree_offsets[" +
                       std::to_string(i + 1) + "] = " + std::to_string(hi));
    }
    const int64_t size = hi - lo;
    if (size > config.max_nodes) {
      throw ValueError("from_arrays: tree " + std::to_string(i) + " has " + std::to_string(size) +
                       " nodes; every tree needs 1 .. max_nodes (" +
                       std::to_string(config.max_nodes) + ") nodes");
    }
  }
  if (in.tree_offsets.data[b] != n) {
    throw ValueError("from_arrays: tree_offsets[B] = " + std::to_string(in.tree_offsets.data[b]) +
                     " but the node arrays have " + std::to_string(n) + " entries");
  }
  return b;
}

Tree import_tree(const ArraysIn& in, int64_t b) {
  const int64_t offset = in.tree_offsets.data[b];
  const int32_t n = static_cast<int32_t>(in.tree_offsets.data[b + 1] - offset);
  Tree t = Tree::make_uninitialised(n, n);
  get(t.action, in.action, offset, n);
  get(t.depth, in.depth, offset, n);
  get(t.payload, in.payload, offset, n);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = offset + i;
    t.hot[i] = HotNode{
        in.parent.data[j], in.first_child.data[j], in.visits.data[j],       in.q.data[j],
        in.reward.data[j], in.prior.data[j],       in.num_children.data[j], in.status.data[j]};
  }
  t.minmax_lo = in.minmax_lo.data[b];
  t.minmax_hi = in.minmax_hi.data[b];
  t.root_epoch = in.root_epoch.data[b];
  const bool empty_stats =
      std::isinf(t.minmax_lo) && t.minmax_lo > 0 && std::isinf(t.minmax_hi) && t.minmax_hi < 0;
  const bool stats_ok =
      std::isfinite(t.minmax_lo) && std::isfinite(t.minmax_hi) && t.minmax_lo <= t.minmax_hi;
  if (!empty_stats && !stats_ok) {
    corrupt(b, 0, "minmax_lo/minmax_hi must be (+inf, -inf) or finite with lo <= hi");
  }
  // Root.
  if (t.parent[kRoot] != kNoNode) corrupt(b, 0, "the root's parent must be -1");
  if (t.depth[kRoot] != 0 || t.action[kRoot] != 0)
    corrupt(b, 0, "the root needs depth 0, action 0");
  for (int32_t i = 0; i < n; ++i) {
    const int32_t p = t.parent[i];
    const uint16_t st = t.status[i];
    if (p == kDeadSlot) {
      if (i == kRoot) corrupt(b, i, "the root cannot be a dead slot");
      if (t.first_child[i] != kNoNode || t.num_children[i] != 0 || t.action[i] != 0 ||
          t.depth[i] != 0 || st != 0 || t.visits[i] != 0 || t.payload[i] != 0 ||
          t.prior[i] != 0.0f || t.q[i] != 0.0f || t.reward[i] != 0.0f) {
        corrupt(b, i, "a dead slot (parent -2) must have every other field zero, first_child -1");
      }
      continue;
    }
    if (i != kRoot) {
      if (p < 0 || p >= n || p == i) corrupt(b, i, "parent id out of range");
      if (t.parent[p] == kDeadSlot) corrupt(b, i, "the parent is a dead slot");
      const int32_t pf = t.first_child[p];
      if (t.num_children[p] == 0 || i < pf || i >= pf + t.num_children[p]) {
        corrupt(b, i, "the node is not inside its parent's children block");
      }
    }
    if (!std::isfinite(t.prior[i]) || t.prior[i] < 0) corrupt(b, i, "prior must be finite, >= 0");
    if (!std::isfinite(t.q[i])) corrupt(b, i, "q must be finite");
    if (!std::isfinite(t.reward[i])) corrupt(b, i, "reward must be finite");
    if (t.visits[i] < 0) corrupt(b, i, "visits must be >= 0");
    const int32_t nc = t.num_children[i];
    const int32_t fc = t.first_child[i];
    if (nc == 0) {
      if (fc != kNoNode) corrupt(b, i, "an unexpanded node needs first_child -1");
    } else {
      if (st & kTerminalBit) corrupt(b, i, "a terminal node cannot have children");
      if (fc < 1 || static_cast<int64_t>(fc) + nc > n) corrupt(b, i, "children block out of range");
      int32_t child_flight = 0;
      bool all_exhausted = true;
      for (int32_t j = 0; j < nc; ++j) {
        const int32_t c = fc + j;
        if (t.parent[c] != i) corrupt(b, i, "child " + std::to_string(c) + " names another parent");
        if (t.action[c] != j) corrupt(b, c, "action must equal the index among its siblings");
        if (t.depth[c] != t.depth[i] + 1) corrupt(b, c, "depth must be the parent's depth + 1");
        child_flight += t.status[c] & kInFlightMask;
        all_exhausted = all_exhausted && (t.status[c] & kExhaustedBit);
      }
      const int32_t own = (st & kInFlightMask) - child_flight;
      if (own < 0 || own > 1) corrupt(b, i, "in-flight count inconsistent with the children's");
      if (all_exhausted && !(st & kExhaustedBit)) {
        corrupt(b, i, "every child is exhausted but the node is not marked exhausted");
      }
    }
    if (nc == 0 && (st & kInFlightMask) > 1) corrupt(b, i, "a leaf can be in flight at most once");
  }
  // Every alive node must be reachable: alive non-root nodes sit in their parent's block (checked
  // above) and depths increase along parent links, so parent chains end at the root.
  return t;
}

}  // namespace qengine
