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

// Output of export: N = total nodes of all trees, B trees.
struct ArraysOut {
  NodeColumn<int32_t> parent;         // [N]
  NodeColumn<int32_t> first_child;    // [N]
  NodeColumn<uint16_t> num_children;  // [N]
  NodeColumn<uint16_t> action;        // [N]
  NodeColumn<uint16_t> depth;         // [N]
  NodeColumn<uint16_t> status;        // [N]
  NodeColumn<float> prior;            // [N]
  NodeColumn<int32_t> visits;         // [N]
  NodeColumn<float> q;                // [N]
  NodeColumn<float> reward;           // [N]
  NodeColumn<int64_t> payload;        // [N]
  std::vector<int64_t> tree_offsets;  // [B+1]
  std::vector<double> minmax_lo;      // [B]
  std::vector<double> minmax_hi;      // [B]
  std::vector<uint64_t> root_epoch;   // [B]
};

// Input of import: borrowed pointers with their lengths (checked by import).
struct ArraysIn {
  template <class T>
  struct Span {
    const T* data = nullptr;  // first element
    int64_t size = 0;         // number of elements
  };
  Span<int32_t> parent;         // [N]
  Span<int32_t> first_child;    // [N]
  Span<uint16_t> num_children;  // [N]
  Span<uint16_t> action;        // [N]
  Span<uint16_t> depth;         // [N]
  Span<uint16_t> status;        // [N]
  Span<float> prior;            // [N]
  Span<int32_t> visits;         // [N]
  Span<float> q;                // [N]
  Span<float> reward;           // [N]
  Span<int64_t> payload;        // [N]
  Span<int64_t> tree_offsets;   // [B+1]
  Span<double> minmax_lo;       // [B]
  Span<double> minmax_hi;       // [B]
  Span<uint64_t> root_epoch;    // [B]
};

// Copies tree `t` into rows [offset, offset + t.size) of `out` (vectors already sized).
void export_tree(const Tree& tree, int64_t offset, ArraysOut* out);

// Checks the array lengths and tree_offsets; returns B. Throws ValueError.
int64_t check_array_shapes(const ArraysIn& in, const SearchConfig& config);

// Builds and validates tree b (rows tree_offsets[b] .. tree_offsets[b+1]). Throws ValueError.
Tree import_tree(const ArraysIn& in, int64_t b);

}  // namespace qengine
