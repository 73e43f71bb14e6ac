#include "qengine/tree_ops.h"

#include <vector>

#include "qengine/backup.h"

namespace qengine {

Tree renumber(const Tree& t, int32_t new_root, int32_t cut, int32_t* cut_new_id) {
  // BFS order: order[new id] = old id. Children of a node are enqueued together, so each block
  // stays contiguous and in action order.
  std::vector<int32_t> order;
  order.reserve(static_cast<size_t>(t.size));
  order.push_back(new_root);
  for (size_t head = 0; head < order.size(); ++head) {
    const int32_t u = order[head];
    if (u == cut) continue;
    const int32_t first = t.first_child[u];
    for (int32_t c = first, end = first + t.num_children[u]; c < end; ++c) order.push_back(c);
  }
  const int32_t n = static_cast<int32_t>(order.size());
  Tree out = Tree::make_uninitialised(n, n);
  out.minmax_lo = t.minmax_lo;
  out.minmax_hi = t.minmax_hi;
  out.root_epoch = t.root_epoch;
  const uint16_t depth_shift = t.depth[new_root];
  // Next free new id for the children of the node being copied, in the same BFS sweep.
  int32_t next_child = 1;
  std::vector<int32_t> new_parent(static_cast<size_t>(n), kNoNode);
  for (int32_t i = 0; i < n; ++i) {
    const int32_t old = order[static_cast<size_t>(i)];
    out.copy_node(t, old, i);
    out.parent[i] = new_parent[static_cast<size_t>(i)];
    out.depth[i] = static_cast<uint16_t>(t.depth[old] - depth_shift);
    if (old == cut) {
      if (cut_new_id != nullptr) *cut_new_id = i;
      out.first_child[i] = kNoNode;
      out.num_children[i] = 0;
    } else if (t.num_children[old] > 0) {
      out.first_child[i] = next_child;
      for (int32_t j = 0; j < t.num_children[old]; ++j) {
        new_parent[static_cast<size_t>(next_child + j)] = i;
      }
      next_child += t.num_children[old];
    }
  }
  out.parent[kRoot] = kNoNode;
  out.action[kRoot] = 0;
  out.reward[kRoot] = 0.0f;
  out.prior[kRoot] = 1.0f;
  return out;
}

void reroot_tree(Tree& t, int32_t node) {
  Tree out = renumber(t, node, kNoNode, nullptr);
  out.root_epoch = t.root_epoch + 1;
  t = std::move(out);
}

void prune_tree(Tree& t, int32_t node) {
  int32_t cut = kNoNode;
  Tree out = renumber(t, kRoot, node, &cut);
  out.status[cut] |= kExhaustedBit;
  recheck_ancestors_exhausted(out, cut);
  t = std::move(out);
}

void compact_tree(Tree& t) { t = renumber(t, kRoot, kNoNode, nullptr); }

void reset_tree(Tree& t, int64_t payload) {
  Tree out = Tree::make(payload, 1);
  out.root_epoch = t.root_epoch + 1;
  t = std::move(out);
}

}  // namespace qengine
