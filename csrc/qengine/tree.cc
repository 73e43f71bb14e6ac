#include "qengine/tree.h"

#include <sys/mman.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <limits>
#include <new>

namespace qengine {
namespace {

// Byte offsets inside a block of `cap` slots (8-byte column first, then the 4-aligned records,
// then 4 and 2).
struct Layout {
  size_t payload, hot, action, depth, total;
  explicit Layout(int64_t cap) {
    const size_t n = static_cast<size_t>(cap);
    payload = 0;
    hot = payload + 8 * n;
    action = hot + sizeof(HotNode) * n;
    depth = action + 2 * n;
    total = depth + 2 * n;
  }
};

std::shared_ptr<uint8_t> allocate(size_t bytes) {
  auto* raw = static_cast<uint8_t*>(::operator new(std::max<size_t>(bytes, 1)));
  return std::shared_ptr<uint8_t>(raw, [](uint8_t* p) { ::operator delete(p); });
}

constexpr size_t kHugePage = size_t{2} << 20;  // x86-64 / aarch64 transparent huge page
constexpr size_t kBlockAlign = 64;             // each tree's block starts on a cache line

size_t round_up(size_t bytes, size_t to) { return (bytes + to - 1) / to * to; }

void bind_columns(Tree* t) {
  const Layout l(t->capacity);
  uint8_t* base = t->block.get();
  t->payload = reinterpret_cast<int64_t*>(base + l.payload);
  t->hot = reinterpret_cast<HotNode*>(base + l.hot);
  t->action = reinterpret_cast<uint16_t*>(base + l.action);
  t->depth = reinterpret_cast<uint16_t*>(base + l.depth);
#define QENGINE_BIND_HOT(name) t->name.records = t->hot;
#define QENGINE_BIND_COLD(name)
#define QENGINE_BIND(name, type, storage) QENGINE_BIND_##storage(name)
  QENGINE_NODE_FIELDS(QENGINE_BIND)
#undef QENGINE_BIND
#undef QENGINE_BIND_COLD
#undef QENGINE_BIND_HOT
}

template <class T>
void copy_column(T* dst, const T* src, int32_t n) {
  if (n > 0) std::memcpy(dst, src, sizeof(T) * static_cast<size_t>(n));
}

}  // namespace

size_t Tree::block_bytes(int64_t capacity) { return Layout(std::max<int64_t>(capacity, 1)).total; }

int64_t Tree::grown_capacity(int64_t needed, int64_t limit) const {
  const int64_t cap = std::max<int64_t>(needed, 2 * capacity);
  return std::max<int64_t>(std::min<int64_t>(cap, limit), needed);
}

Tree Tree::make_uninitialised(int32_t size, int64_t capacity, std::shared_ptr<uint8_t> block) {
  Tree t;
  t.capacity = std::max<int64_t>({capacity, size, 1});
  t.block = block ? std::move(block) : allocate(Layout(t.capacity).total);
  bind_columns(&t);
  t.size = size;
  t.minmax_lo = std::numeric_limits<double>::infinity();
  t.minmax_hi = -std::numeric_limits<double>::infinity();
  t.root_epoch = 0;
  return t;
}

Tree Tree::make(int64_t root_payload, int64_t capacity) {
  Tree t = make_uninitialised(1, capacity);
  t.init_node(kRoot, kNoNode, 0, 0, 1.0f, 0.0f, false, root_payload);
  return t;
}

void Tree::grow(int64_t needed, int64_t limit) { move_to(grown_capacity(needed, limit), nullptr); }

void Tree::move_to(int64_t cap, std::shared_ptr<uint8_t> block) {
  Tree bigger = make_uninitialised(size, cap, std::move(block));
  copy_column(bigger.payload, payload, size);
  copy_column(bigger.hot, hot, size);
  copy_column(bigger.action, action, size);
  copy_column(bigger.depth, depth, size);
  bigger.minmax_lo = minmax_lo;
  bigger.minmax_hi = minmax_hi;
  bigger.root_epoch = root_epoch;
  *this = std::move(bigger);
}

void Tree::init_node(int32_t id, int32_t parent_id, uint16_t action_index, uint16_t node_depth,
                     float node_prior, float node_reward, bool is_terminal, int64_t node_payload) {
  payload[id] = node_payload;
  hot[id] =
      HotNode{parent_id,   kNoNode,    0, 0.0f,
              node_reward, node_prior, 0, static_cast<uint16_t>(is_terminal ? kTerminalBit : 0)};
  action[id] = action_index;
  depth[id] = node_depth;
}

void Tree::kill_node(int32_t id) {
  payload[id] = 0;
  hot[id] = HotNode{kDeadSlot, kNoNode, 0, 0.0f, 0.0f, 0.0f, 0, 0};
  action[id] = 0;
  depth[id] = 0;
}

void Tree::copy_node(const Tree& s, int32_t from, int32_t to) {
  payload[to] = s.payload[from];
  hot[to] = s.hot[from];
  action[to] = s.action[from];
  depth[to] = s.depth[from];
}

SlabBlocks::SlabBlocks(const std::vector<size_t>& bytes) {
  std::vector<size_t> offsets(bytes.size());
  size_t total = 0;
  for (size_t i = 0; i < bytes.size(); ++i) {
    offsets[i] = total;
    total += round_up(std::max<size_t>(bytes[i], 1), kBlockAlign);
  }
  blocks_.reserve(bytes.size());
  if (total < kHugePage) {  // less than one huge page: ordinary blocks
    for (size_t b : bytes) blocks_.push_back(allocate(b));
    return;
  }
  // A fresh anonymous mapping of whole huge pages, aligned, advised MADV_HUGEPAGE: its pages are
  // not yet faulted in, so the kernel can back it with 2 MiB pages (heap memory reused from
  // earlier frees keeps its 4 KiB pages: measured 1.1x -> 2.2x loop / native after a large forest
  // was freed). Without transparent huge pages it is ordinary memory.
  const size_t size = round_up(total, kHugePage);
  const size_t mapped = size + kHugePage;  // room to align the start
  void* raw = mmap(nullptr, mapped, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) throw std::bad_alloc();
  uint8_t* base = static_cast<uint8_t*>(raw);
  uint8_t* start =
      reinterpret_cast<uint8_t*>(round_up(reinterpret_cast<uintptr_t>(base), kHugePage));
#ifdef MADV_HUGEPAGE
  madvise(start, size, MADV_HUGEPAGE);
#endif
  std::shared_ptr<uint8_t> slab(start, [raw, mapped](uint8_t*) { munmap(raw, mapped); });
  for (size_t off : offsets) blocks_.emplace_back(slab, slab.get() + off);  // aliasing: shares it
}

namespace {

// A view of a HOT field: strided over the records.
template <class T, T HotNode::* M>
void set_view(const HotColumn<T, M>& column, ColumnView* v) {
  v->data = column.at(0);
  v->stride = static_cast<int64_t>(sizeof(HotNode));
  v->dtype = dtype_of<T>();
}

// A view of a COLD field: its own contiguous column.
template <class T>
void set_view(T* column, ColumnView* v) {
  v->data = column;
  v->stride = static_cast<int64_t>(sizeof(T));
  v->dtype = dtype_of<T>();
}

}  // namespace

ColumnView Tree::view(Field field) const {
  ColumnView v;
  v.size = size;
  switch (field) {
#define QENGINE_VIEW_CASE(name, type, storage) \
  case Field::name:                            \
    set_view(name, &v);                        \
    break;
    QENGINE_NODE_FIELDS(QENGINE_VIEW_CASE)
#undef QENGINE_VIEW_CASE
  }
  v.owner = std::shared_ptr<const void>(block, v.data);
  return v;
}

}  // namespace qengine
