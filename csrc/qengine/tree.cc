#include "qengine/tree.h"

#include <algorithm>
#include <cstring>
#include <limits>
#include <new>

namespace qengine {
namespace {

// Byte offsets of the columns inside a block of `cap` slots (8-byte column first, then 4, then 2).
struct Layout {
  size_t payload, parent, first_child, visits, prior, q, reward, num_children, action, depth,
      status, total;
  explicit Layout(int64_t cap) {
    const size_t n = static_cast<size_t>(cap);
    payload = 0;
    parent = payload + 8 * n;
    first_child = parent + 4 * n;
    visits = first_child + 4 * n;
    prior = visits + 4 * n;
    q = prior + 4 * n;
    reward = q + 4 * n;
    num_children = reward + 4 * n;
    action = num_children + 2 * n;
    depth = action + 2 * n;
    status = depth + 2 * n;
    total = status + 2 * n;
  }
};

std::shared_ptr<uint8_t> allocate(size_t bytes) {
  auto* raw = static_cast<uint8_t*>(::operator new(std::max<size_t>(bytes, 1)));
  return std::shared_ptr<uint8_t>(raw, [](uint8_t* p) { ::operator delete(p); });
}

void bind_columns(Tree* t) {
  const Layout l(t->capacity);
  uint8_t* base = t->block.get();
  t->payload = reinterpret_cast<int64_t*>(base + l.payload);
  t->parent = reinterpret_cast<int32_t*>(base + l.parent);
  t->first_child = reinterpret_cast<int32_t*>(base + l.first_child);
  t->visits = reinterpret_cast<int32_t*>(base + l.visits);
  t->prior = reinterpret_cast<float*>(base + l.prior);
  t->q = reinterpret_cast<float*>(base + l.q);
  t->reward = reinterpret_cast<float*>(base + l.reward);
  t->num_children = reinterpret_cast<uint16_t*>(base + l.num_children);
  t->action = reinterpret_cast<uint16_t*>(base + l.action);
  t->depth = reinterpret_cast<uint16_t*>(base + l.depth);
  t->status = reinterpret_cast<uint16_t*>(base + l.status);
}

template <class T>
void copy_column(T* dst, const T* src, int32_t n) {
  if (n > 0) std::memcpy(dst, src, sizeof(T) * static_cast<size_t>(n));
}

}  // namespace

Tree Tree::make_uninitialised(int32_t size, int64_t capacity) {
  Tree t;
  t.capacity = std::max<int64_t>({capacity, size, 1});
  t.block = allocate(Layout(t.capacity).total);
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

void Tree::grow(int64_t needed, int64_t limit) {
  int64_t cap = std::max<int64_t>(needed, 2 * capacity);
  cap = std::max<int64_t>(std::min<int64_t>(cap, limit), needed);
  Tree bigger = make_uninitialised(size, cap);
  copy_column(bigger.payload, payload, size);
  copy_column(bigger.parent, parent, size);
  copy_column(bigger.first_child, first_child, size);
  copy_column(bigger.visits, visits, size);
  copy_column(bigger.prior, prior, size);
  copy_column(bigger.q, q, size);
  copy_column(bigger.reward, reward, size);
  copy_column(bigger.num_children, num_children, size);
  copy_column(bigger.action, action, size);
  copy_column(bigger.depth, depth, size);
  copy_column(bigger.status, status, size);
  bigger.minmax_lo = minmax_lo;
  bigger.minmax_hi = minmax_hi;
  bigger.root_epoch = root_epoch;
  *this = std::move(bigger);
}

void Tree::init_node(int32_t id, int32_t parent_id, uint16_t action_index, uint16_t node_depth,
                     float node_prior, float node_reward, bool is_terminal, int64_t node_payload) {
  payload[id] = node_payload;
  parent[id] = parent_id;
  first_child[id] = kNoNode;
  visits[id] = 0;
  prior[id] = node_prior;
  q[id] = 0.0f;
  reward[id] = node_reward;
  num_children[id] = 0;
  action[id] = action_index;
  depth[id] = node_depth;
  status[id] = is_terminal ? kTerminalBit : 0;
}

void Tree::kill_node(int32_t id) {
  payload[id] = 0;
  parent[id] = kDeadSlot;
  first_child[id] = kNoNode;
  visits[id] = 0;
  prior[id] = 0.0f;
  q[id] = 0.0f;
  reward[id] = 0.0f;
  num_children[id] = 0;
  action[id] = 0;
  depth[id] = 0;
  status[id] = 0;
}

void Tree::copy_node(const Tree& s, int32_t from, int32_t to) {
  payload[to] = s.payload[from];
  parent[to] = s.parent[from];
  first_child[to] = s.first_child[from];
  visits[to] = s.visits[from];
  prior[to] = s.prior[from];
  q[to] = s.q[from];
  reward[to] = s.reward[from];
  num_children[to] = s.num_children[from];
  action[to] = s.action[from];
  depth[to] = s.depth[from];
  status[to] = s.status[from];
}

ColumnView Tree::view(Field field) const {
  ColumnView v;
  v.size = size;
  switch (field) {
    case Field::kParent:
      v.data = parent;
      v.dtype = Dtype::kInt32;
      break;
    case Field::kFirstChild:
      v.data = first_child;
      v.dtype = Dtype::kInt32;
      break;
    case Field::kNumChildren:
      v.data = num_children;
      v.dtype = Dtype::kUint16;
      break;
    case Field::kAction:
      v.data = action;
      v.dtype = Dtype::kUint16;
      break;
    case Field::kDepth:
      v.data = depth;
      v.dtype = Dtype::kUint16;
      break;
    case Field::kStatus:
      v.data = status;
      v.dtype = Dtype::kUint16;
      break;
    case Field::kPrior:
      v.data = prior;
      v.dtype = Dtype::kFloat32;
      break;
    case Field::kVisits:
      v.data = visits;
      v.dtype = Dtype::kInt32;
      break;
    case Field::kQ:
      v.data = q;
      v.dtype = Dtype::kFloat32;
      break;
    case Field::kReward:
      v.data = reward;
      v.dtype = Dtype::kFloat32;
      break;
    case Field::kPayload:
      v.data = payload;
      v.dtype = Dtype::kInt64;
      break;
  }
  v.owner = std::shared_ptr<const void>(block, v.data);
  return v;
}

}  // namespace qengine
