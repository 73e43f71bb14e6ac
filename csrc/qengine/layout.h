// The node layout, defined once (docs/search-semantics.md, section 1).
//
// Every list of node fields in the core, the bindings and Python is generated from the tables
// below: the Tree's columns (tree.h), the export / import structs (serialize.h), the binding's
// dicts and key checks, and the layout exported to Python (qengine._core.NODE_FIELDS, ...), which
// qengine/_layout.py turns into the numpy dtypes that forest.py, the reference engine and the
// tree stores read. Adding a field here adds it everywhere (the compiler points at the few places
// that handle each field by hand: HotNode, the node constructors and the import checks).
#pragma once

#include <cstdint>

// X(name, type, storage): every stored node field, in the order of export_arrays. `storage` is
// HOT (a member of the 28-byte HotNode record; views are strided) or COLD (a column of its own).
#define QENGINE_NODE_FIELDS(X)   \
  X(parent, int32_t, HOT)        \
  X(first_child, int32_t, HOT)   \
  X(num_children, uint16_t, HOT) \
  X(action, uint16_t, COLD)      \
  X(depth, uint16_t, COLD)       \
  X(status, uint16_t, HOT)       \
  X(prior, float, HOT)           \
  X(visits, int32_t, HOT)        \
  X(q, float, HOT)               \
  X(reward, float, HOT)          \
  X(payload, int64_t, COLD)

// X(name, type): the per-tree fields of an export (one entry per tree, after tree_offsets).
#define QENGINE_TREE_FIELDS(X) \
  X(minmax_lo, double)         \
  X(minmax_hi, double)         \
  X(root_epoch, uint64_t)

// X(name, type): the fields unpacked from `status` (Forest.view serves them as copies).
#define QENGINE_DERIVED_FIELDS(X) \
  X(in_flight, int32_t)           \
  X(terminal, bool)               \
  X(exhausted, bool)

namespace qengine {

constexpr int32_t kRoot = 0;                // id of the root of every tree
constexpr int32_t kNoNode = -1;             // parent of the root; first_child of an unexpanded node
constexpr int32_t kDeadSlot = -2;           // parent of a slot left behind by progressive widening
constexpr uint16_t kInFlightMask = 0x3FFF;  // status bits 0-13: in-flight count
constexpr uint16_t kTerminalBit = 0x4000;   // status bit 14
constexpr uint16_t kExhaustedBit = 0x8000;  // status bit 15
constexpr int32_t kMaxInFlight = kInFlightMask;  // largest in-flight count
constexpr int32_t kMaxChildren = 65535;          // largest child count (uint16)
constexpr int32_t kMaxDepth = 65535;             // largest depth (uint16)
constexpr int32_t kMaxVisits = 2147483647;       // visit counts saturate here (int32), never wrap

// The stored node fields, one enumerator per row of QENGINE_NODE_FIELDS (Field::parent, ...).
enum class Field : uint8_t {
#define QENGINE_FIELD_ENUMERATOR(name, type, storage) name,
  QENGINE_NODE_FIELDS(QENGINE_FIELD_ENUMERATOR)
#undef QENGINE_FIELD_ENUMERATOR
};

// Element type of a column, for the bindings.
enum class Dtype : uint8_t { kBool, kInt32, kUint16, kFloat32, kInt64, kFloat64, kUint64 };

template <class T>
constexpr Dtype dtype_of();
template <>
constexpr Dtype dtype_of<bool>() {
  return Dtype::kBool;
}
template <>
constexpr Dtype dtype_of<int32_t>() {
  return Dtype::kInt32;
}
template <>
constexpr Dtype dtype_of<uint16_t>() {
  return Dtype::kUint16;
}
template <>
constexpr Dtype dtype_of<float>() {
  return Dtype::kFloat32;
}
template <>
constexpr Dtype dtype_of<int64_t>() {
  return Dtype::kInt64;
}
template <>
constexpr Dtype dtype_of<double>() {
  return Dtype::kFloat64;
}
template <>
constexpr Dtype dtype_of<uint64_t>() {
  return Dtype::kUint64;
}

// The numpy name of a dtype ("int32", ...).
constexpr const char* dtype_name(Dtype d) {
  switch (d) {
    case Dtype::kBool:
      return "bool";
    case Dtype::kInt32:
      return "int32";
    case Dtype::kUint16:
      return "uint16";
    case Dtype::kFloat32:
      return "float32";
    case Dtype::kInt64:
      return "int64";
    case Dtype::kFloat64:
      return "float64";
    case Dtype::kUint64:
      return "uint64";
  }
  return "?";
}

// Bytes per node with and without the payload column (40 and 32: docs section 1).
#define QENGINE_FIELD_BYTES(name, type, storage) +static_cast<int>(sizeof(type))
constexpr int kBytesPerNode = 0 QENGINE_NODE_FIELDS(QENGINE_FIELD_BYTES);
#undef QENGINE_FIELD_BYTES
constexpr int kBytesPerNodeWithoutPayload = kBytesPerNode - static_cast<int>(sizeof(int64_t));

}  // namespace qengine
