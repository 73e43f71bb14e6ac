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

}  // namespace qengine
