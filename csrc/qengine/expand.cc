#include "qengine/expand.h"

#include <algorithm>
#include <cstring>

#include "qengine/backup.h"

namespace qengine {

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
    hot[j] = HotNode{node, kNoNode, 0, 0.0f, ch.rewards[j], ch.priors[j], 0, status};
  }
  std::memcpy(t.payload + base, ch.payloads, n * sizeof(int64_t));
  std::fill_n(t.depth + base, n, depth);
  uint16_t* action = t.action + base;
  for (int32_t j = 0; j < count; ++j) action[j] = static_cast<uint16_t>(old + j);
  t.size = base + count;
  t.first_child[node] = first;
  t.num_children[node] = static_cast<uint16_t>(old + count);
  if (old > 0) clear_exhausted_upwards(t, node);
}

}  // namespace qengine
