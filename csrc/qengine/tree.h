// One search tree (docs/search-semantics.md, section 1): a hot record per node plus cold columns.
//
// Node ids are int32, the root is 0, children of a node are the contiguous ids
// first_child .. first_child + num_children - 1. The fields selection and backup read sit together
// in one 28-byte HotNode per node, so a children block of 8 is 4 or 5 cache lines instead of one
// line per column (7), and backup's parent walk touches no other line; action, depth and payload
// are separate columns. Every field is still indexed as t.field[id]. Measured (bench/mcts.py T2:
// 1024 trees, A=8, 1 thread, CPU time): 0.57M sims/s with one column per field, 0.78M with a
// 24-byte record (parent cold), 0.81M with this 28-byte one; a 32-byte record (action and depth
// hot too) lost 25% on A=32.
//
// All records and columns of a tree live in one arena block owned by a std::shared_ptr: numpy
// views hand out aliasing shared_ptrs to the block, so a view taken before the arena grows (or
// before a reroot rebuilds it) keeps the old block alive and never dangles; it simply stops
// following later updates.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <type_traits>
#include <vector>

#include "qengine/layout.h"

namespace qengine {

// A column of one tree: pointer into the arena plus an owner that keeps the arena alive.
struct ColumnView {
  std::shared_ptr<const void> owner;  // keeps the arena block alive (aliasing the block)
  const void* data = nullptr;         // first element
  int64_t size = 0;                   // number of nodes (slots) in the tree
  int64_t stride = 0;                 // bytes between elements (sizeof(HotNode) for hot fields)
  Dtype dtype = Dtype::kInt32;        // element type
};

// The fields selection, expansion checks and backup read, one record per node (28 bytes).
struct HotNode {
  int32_t parent;         // parent id; kNoNode for the root, kDeadSlot for dead slots
  int32_t first_child;    // first child id, kNoNode while unexpanded
  int32_t visits;         // completed visits
  float q;                // mean (or max) of backed-up returns, 0 when unvisited
  float reward;           // reward on the edge parent -> node
  float prior;            // prior given at expansion
  uint16_t num_children;  // number of children
  uint16_t status;        // in-flight count | terminal bit | exhausted bit
};
static_assert(sizeof(HotNode) == 28, "HotNode must stay 28 bytes");

// One field of the hot records, indexed like a column: t.visits[id].
template <class T, T HotNode::* M>
struct HotColumn {
  HotNode* records = nullptr;  // the tree's record array
  T& operator[](int64_t i) const { return records[i].*M; }
  T* at(int64_t i) const { return &(records[i].*M); }
};

// Hot records plus cold columns. Plain data: the operations live in select/backup/expand/tree_ops.
struct Tree {
  std::shared_ptr<uint8_t> block;  // owns the records and columns below (one allocation)
  int64_t capacity = 0;            // slots allocated in `block`
  int32_t size = 0;                // slots in use (dead slots included)
  HotNode* hot = nullptr;          // [capacity] hot records
  // One member per node field of QENGINE_NODE_FIELDS (layout.h): HOT fields index the records
  // (HotColumn), COLD fields are columns in the arena (payload: the user handle per node;
  // action: index among the parent's children, 0 for the root; depth: root 0, child + 1).
#define QENGINE_TREE_MEMBER_HOT(name, type) HotColumn<type, &HotNode::name> name;
#define QENGINE_TREE_MEMBER_COLD(name, type) type* name = nullptr;
#define QENGINE_TREE_MEMBER(name, type, storage) QENGINE_TREE_MEMBER_##storage(name, type)
  QENGINE_NODE_FIELDS(QENGINE_TREE_MEMBER)
#undef QENGINE_TREE_MEMBER
#undef QENGINE_TREE_MEMBER_COLD
#undef QENGINE_TREE_MEMBER_HOT
  double minmax_lo = 0.0;   // lowest edge value seen in backups (+inf when none)
  double minmax_hi = 0.0;   // highest edge value seen in backups (-inf when none)
  uint64_t root_epoch = 0;  // +1 on every reroot and reset (Gumbel noise)

  // A tree with one fresh root (section 1), capacity `capacity` (>= 1).
  static Tree make(int64_t root_payload, int64_t capacity);
  // A tree with `size` uninitialised slots (for rebuilds and imports); minmax cleared, epoch 0.
  // `block`: memory of at least block_bytes(capacity) to use (default: a fresh allocation).
  static Tree make_uninitialised(int32_t size, int64_t capacity,
                                 std::shared_ptr<uint8_t> block = nullptr);
  // Bytes of the arena block of a tree of `capacity` slots.
  static size_t block_bytes(int64_t capacity);

  // Makes room for `needed` slots, growing geometrically but never past `limit` (>= needed).
  void ensure(int64_t needed, int64_t limit) {
    if (needed > capacity) grow(needed, limit);
  }
  // Reallocates to grown_capacity(needed, limit), copying every record and column.
  void grow(int64_t needed, int64_t limit);
  // The capacity grow picks: max(needed, 2 * capacity) capped at `limit` (>= needed).
  int64_t grown_capacity(int64_t needed, int64_t limit) const;
  // Moves to `capacity` (>= size) slots in `block` (block_bytes(capacity) bytes; null: a fresh
  // allocation), copying every record and column.
  void move_to(int64_t capacity, std::shared_ptr<uint8_t> block);
  // Writes a fresh unexpanded node into slot `id`.
  void init_node(int32_t id, int32_t parent_id, uint16_t action_index, uint16_t node_depth,
                 float node_prior, float node_reward, bool terminal, int64_t node_payload);
  // Turns slot `id` into a dead slot (parent kDeadSlot, first_child kNoNode, all else zero).
  void kill_node(int32_t id);
  // Copies every field of slot `from` of `source` into slot `to` of this tree.
  void copy_node(const Tree& source, int32_t from, int32_t to);
  // Zero-copy view of one field (strided for the hot fields).
  ColumnView view(Field field) const;

  int32_t in_flight(int32_t id) const { return status[id] & kInFlightMask; }
  bool terminal(int32_t id) const { return (status[id] & kTerminalBit) != 0; }
  bool exhausted(int32_t id) const { return (status[id] & kExhaustedBit) != 0; }
  bool alive(int32_t id) const { return parent[id] != kDeadSlot; }
  bool expanded(int32_t id) const { return num_children[id] != 0; }
  // In-flight count of the node itself: f(x) - sum of f(children) (section 5.1).
  int32_t own_in_flight(int32_t id) const {
    int32_t own = in_flight(id);
    const int32_t first = first_child[id];
    for (int32_t c = first, end = first + num_children[id]; c < end; ++c) own -= in_flight(c);
    return own;
  }
};

// One allocation carved into the arena blocks of many trees (Forest::reserve). Why: a batch call
// touches every tree, and with one block of ~80 KB per tree in 4 KiB pages a 256-tree loop walks
// more pages than the TLB holds (measured: ask + expand + backup from Python 1.76 -> 1.19 us per
// simulation with the trees in 2 MiB pages, B=256 S=256 A=8). The slab is aligned to and sized in
// huge pages and advised MADV_HUGEPAGE; each block shares ownership of it (aliasing shared_ptr),
// so the slab lives while any tree or view uses a block of it.
class SlabBlocks {
 public:
  // Blocks of bytes[i] bytes each (64-byte aligned), in one slab.
  explicit SlabBlocks(const std::vector<size_t>& bytes);
  // The block of entry i.
  std::shared_ptr<uint8_t> block(size_t i) const { return blocks_[i]; }

 private:
  std::vector<std::shared_ptr<uint8_t>> blocks_;
};

// The arena holds every field of the layout and nothing else (28 hot + action 2 + depth 2 +
// payload 8 bytes per node: kBytesPerNode of layout.h).
#define QENGINE_HOT_BYTES_HOT(type) +static_cast<int>(sizeof(type))
#define QENGINE_HOT_BYTES_COLD(type)
#define QENGINE_HOT_BYTES(name, type, storage) QENGINE_HOT_BYTES_##storage(type)
static_assert(sizeof(HotNode) == 0 QENGINE_NODE_FIELDS(QENGINE_HOT_BYTES),
              "HotNode holds exactly the HOT fields of QENGINE_NODE_FIELDS");
#undef QENGINE_HOT_BYTES
#undef QENGINE_HOT_BYTES_COLD
#undef QENGINE_HOT_BYTES_HOT

}  // namespace qengine
