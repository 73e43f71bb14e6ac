// Export / import of whole forests as flat arrays (docs/search-semantics.md, 5.9).
//
// Every node field is one array with all trees concatenated; tree b owns the rows
// tree_offsets[b] .. tree_offsets[b+1]. Import validates the structure fully (sizes, offsets,
// parent / child links, actions, depths, flags, in-flight counts, finiteness) and throws
// ValueError naming the tree, the node and the broken rule.
#pragma once

#include <cstdint>
#include <memory>
#include <utility>
#include <vector>

#include "qengine/config.h"
#include "qengine/layout.h"
#include "qengine/tree.h"

namespace qengine {

// Allocator whose resize leaves new elements uninitialised: export writes every node row, and
// skipping the zero fill saves a serial pass over the output (about 40 bytes per node).
template <class T>
struct UninitAllocator : std::allocator<T> {
  template <class U>
  struct rebind {
    using other = UninitAllocator<U>;
  };
  UninitAllocator() = default;
  template <class U>
  UninitAllocator(const UninitAllocator<U>&) noexcept {}
  template <class U>
  void construct(U* p) noexcept {
    ::new (static_cast<void*>(p)) U;
  }
  template <class U, class... Args>
  void construct(U* p, Args&&... args) {
    ::new (static_cast<void*>(p)) U(std::forward<Args>(args)...);
  }
};

// A node column of the export.
template <class T>
using NodeColumn = std::vector<T, UninitAllocator<T>>;

// Output of export: N = total nodes of all trees, B trees; one member per field of layout.h.
struct ArraysOut {
#define QENGINE_OUT_NODE(name, type, storage) NodeColumn<type> name;  // [N]
#define QENGINE_OUT_TREE(name, type) std::vector<type> name;          // [B]
  QENGINE_NODE_FIELDS(QENGINE_OUT_NODE)
  std::vector<int64_t> tree_offsets;  // [B+1]
  QENGINE_TREE_FIELDS(QENGINE_OUT_TREE)
#undef QENGINE_OUT_TREE
#undef QENGINE_OUT_NODE

  // Sizes every array for `n` nodes and `b` trees (rows left uninitialised).
  void resize(size_t n, size_t b);
};

// Input of import: borrowed pointers with their lengths (checked by import), as ArraysOut.
struct ArraysIn {
  template <class T>
  struct Span {
    const T* data = nullptr;  // first element
    int64_t size = 0;         // number of elements
  };
#define QENGINE_IN_NODE(name, type, storage) Span<type> name;  // [N]
#define QENGINE_IN_TREE(name, type) Span<type> name;           // [B]
  QENGINE_NODE_FIELDS(QENGINE_IN_NODE)
  Span<int64_t> tree_offsets;  // [B+1]
  QENGINE_TREE_FIELDS(QENGINE_IN_TREE)
#undef QENGINE_IN_TREE
#undef QENGINE_IN_NODE
};

// Calls f(name, a_array, b_array) for every array of an export, in the order of export_arrays
// (node fields, tree_offsets, per-tree fields); `a` and `b` are ArraysOut or ArraysIn (const or
// not), so one loop converts, compares or checks every array.
template <class A, class B, class F>
void for_each_array(A& a, B& b, F&& f) {
#define QENGINE_VISIT_NODE(name, type, storage) f(#name, a.name, b.name);
#define QENGINE_VISIT_TREE(name, type) f(#name, a.name, b.name);
  QENGINE_NODE_FIELDS(QENGINE_VISIT_NODE)
  f("tree_offsets", a.tree_offsets, b.tree_offsets);
  QENGINE_TREE_FIELDS(QENGINE_VISIT_TREE)
#undef QENGINE_VISIT_TREE
#undef QENGINE_VISIT_NODE
}

// Copies tree `t` into node rows [offset, offset + t.size) and tree row `index` of `out` (arrays
// already sized).
void export_tree(const Tree& tree, int64_t offset, size_t index, ArraysOut* out);

// Checks the array lengths and tree_offsets; returns B. Throws ValueError.
int64_t check_array_shapes(const ArraysIn& in, const SearchConfig& config);

// Builds and validates tree b (rows tree_offsets[b] .. tree_offsets[b+1]). Throws ValueError.
Tree import_tree(const ArraysIn& in, int64_t b);

}  // namespace qengine
