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

void ArraysOut::resize(size_t n, size_t b) {
#define QENGINE_RESIZE_NODE(name, type, storage) name.resize(n);
#define QENGINE_RESIZE_TREE(name, type) name.resize(b);
  QENGINE_NODE_FIELDS(QENGINE_RESIZE_NODE)
  tree_offsets.resize(b + 1);
  QENGINE_TREE_FIELDS(QENGINE_RESIZE_TREE)
#undef QENGINE_RESIZE_TREE
#undef QENGINE_RESIZE_NODE
}

// Dispatch helpers of the field tables: a HOT or a COLD field runs the matching macro.
#define QENGINE_IF_HOT_HOT(...) __VA_ARGS__
#define QENGINE_IF_HOT_COLD(...)
#define QENGINE_IF_COLD_HOT(...)
#define QENGINE_IF_COLD_COLD(...) __VA_ARGS__

void export_tree(const Tree& t, int64_t offset, size_t index, ArraysOut* out) {
  const int32_t n = t.size;
  // The COLD columns, copied whole.
#define QENGINE_PUT_COLD(name, type, storage) \
  QENGINE_IF_COLD_##storage(put(out->name, offset, t.name, n);)
  QENGINE_NODE_FIELDS(QENGINE_PUT_COLD)
#undef QENGINE_PUT_COLD
  // The HOT records, split into their columns in one pass.
#define QENGINE_HOT_DST(name, type, storage) \
  QENGINE_IF_HOT_##storage(type* name = out->name.data() + offset;)
  QENGINE_NODE_FIELDS(QENGINE_HOT_DST)
#undef QENGINE_HOT_DST
  const HotNode* hot = t.hot;
  for (int32_t i = 0; i < n; ++i) {
    const HotNode r = hot[i];  // a copy: the stores below cannot alias it
#define QENGINE_HOT_STORE(name, type, storage) QENGINE_IF_HOT_##storage(name[i] = r.name;)
    QENGINE_NODE_FIELDS(QENGINE_HOT_STORE)
#undef QENGINE_HOT_STORE
  }
#define QENGINE_PUT_TREE(name, type) out->name[index] = t.name;
  QENGINE_TREE_FIELDS(QENGINE_PUT_TREE)
#undef QENGINE_PUT_TREE
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
#define QENGINE_SAME_NODE(name, type, storage) same(in.name.size, #name, n);
#define QENGINE_SAME_TREE(name, type) same(in.name.size, #name, b);
  QENGINE_NODE_FIELDS(QENGINE_SAME_NODE)
  QENGINE_TREE_FIELDS(QENGINE_SAME_TREE)
#undef QENGINE_SAME_TREE
#undef QENGINE_SAME_NODE
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
#define QENGINE_GET_COLD(name, type, storage) \
  QENGINE_IF_COLD_##storage(get(t.name, in.name, offset, n);)
  QENGINE_NODE_FIELDS(QENGINE_GET_COLD)
#undef QENGINE_GET_COLD
  for (int64_t i = 0; i < n; ++i) {
    const int64_t j = offset + i;
    HotNode& r = t.hot[i];
#define QENGINE_GET_HOT(name, type, storage) QENGINE_IF_HOT_##storage(r.name = in.name.data[j];)
    QENGINE_NODE_FIELDS(QENGINE_GET_HOT)
#undef QENGINE_GET_HOT
  }
#define QENGINE_GET_TREE(name, type) t.name = in.name.data[b];
  QENGINE_TREE_FIELDS(QENGINE_GET_TREE)
#undef QENGINE_GET_TREE
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
