#include "qengine/ask.h"

#include "qengine/backup.h"
#include "qengine/select.h"

namespace qengine {

Descent descend(Tree& t, const SearchConfig& cfg, uint64_t tree_id, int32_t* leaf) {
  if (t.exhausted(kRoot)) return Descent::kExhausted;
  int32_t node = kRoot;
  while (t.num_children[node] != 0 && !t.terminal(node)) {
    const int32_t next = select_child(t, cfg, tree_id, node);
    if (next == kNoNode) {  // every child exhausted: unreachable while the flags are consistent
      *leaf = node;
      return Descent::kCollision;
    }
    node = next;
  }
  *leaf = node;
  if (t.terminal(node)) {
    backup_leaf(t, cfg, node, 0.0, /*tell=*/false);
    return Descent::kTerminalHit;
  }
  if (t.in_flight(node) >= 1) return Descent::kCollision;
  add_in_flight(t, node);
  return Descent::kLeaf;
}

namespace {

constexpr int kSlots = 8;       // trees descended together
constexpr int kPathSlots = 62;  // path nodes a slot remembers (deeper paths walk the parents)

}  // namespace

void ask_trees(Tree* trees, const SearchConfig& cfg, int64_t begin, int64_t end, int64_t k,
               std::vector<AskedLeaf>* leaves, int64_t* hits, int64_t* collisions) {
  struct Slot {
    int64_t tree;              // tree id, -1 when idle
    int64_t done;              // descents finished in this tree
    int32_t node;              // current node of the descent
    int32_t length;            // nodes on the path root..node
    int32_t path[kPathSlots];  // the path root..node (its first kPathSlots nodes)
  };
  // Leaves are appended in completion order; trees start in increasing order and at most kSlots
  // run at once, so the list is nearly sorted by tree and an insertion sort (stable: descent
  // order within a tree is kept) restores tree order cheaply at the end.
  const size_t first_leaf = leaves->size();
  int64_t next_tree = begin;
  Slot slots[kSlots];
  int active = 0;
  auto start_tree = [&](Slot& s) {
    while (next_tree < end) {
      const int64_t b = next_tree++;
      Tree& t = trees[b];
      if (t.exhausted(kRoot)) continue;
      s.tree = b;
      s.done = 0;
      s.node = kRoot;
      s.length = 1;
      s.path[0] = kRoot;
      prefetch_children(t, kRoot);
      return true;
    }
    s.tree = -1;
    return false;
  };
  for (Slot& s : slots) active += start_tree(s) ? 1 : 0;
  while (active > 0) {
    for (Slot& s : slots) {
      if (s.tree < 0) continue;
      Tree& t = trees[s.tree];
      const int32_t x = s.node;
      if (t.num_children[x] != 0 && !t.terminal(x)) {
        const int32_t c = select_child(t, cfg, static_cast<uint64_t>(s.tree), x);
        if (c != kNoNode) {
          s.node = c;
          if (s.length < kPathSlots) s.path[s.length] = c;
          ++s.length;
          prefetch_children(t, c);
          continue;
        }
        ++collisions[s.tree - begin];  // every child exhausted: unreachable with consistent flags
      } else if (t.terminal(x)) {      // 5.1: a terminal hit
        backup_leaf(t, cfg, x, 0.0, /*tell=*/false);
        ++hits[s.tree - begin];
      } else if (t.in_flight(x) >= 1) {  // 5.1: a collision
        ++collisions[s.tree - begin];
      } else {  // 5.1: a leaf; in-flight + 1 along the remembered path (its lines are cached)
        if (s.length <= kPathSlots) {
          for (int32_t j = 0; j < s.length; ++j) {
            uint16_t& status = t.status[s.path[j]];
            status = static_cast<uint16_t>(status + 1);
          }
        } else {
          add_in_flight(t, x);
        }
        leaves->push_back({static_cast<int32_t>(s.tree), x, t.depth[x], t.payload[x]});
      }
      // The descent is over: next descent of this tree, or the next tree.
      if (++s.done < k && !t.exhausted(kRoot)) {
        s.node = kRoot;
        s.length = 1;
        continue;
      }
      if (!start_tree(s)) --active;
    }
  }
  AskedLeaf* out = leaves->data();
  for (size_t i = first_leaf + 1; i < leaves->size(); ++i) {
    const AskedLeaf v = out[i];
    size_t j = i;
    while (j > first_leaf && out[j - 1].tree > v.tree) {
      out[j] = out[j - 1];
      --j;
    }
    out[j] = v;
  }
}

}  // namespace qengine
