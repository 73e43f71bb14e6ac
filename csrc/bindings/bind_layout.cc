// The node layout, the limits and the SearchConfig schema exported to Python (qengine/_layout.py
// and qengine/config.py read them; nothing in Python restates a field list, a dtype, a status
// bit, a sentinel id, a config field or its checks).
#include <pybind11/pybind11.h>

#include "config_dict.h"
#include "qengine/forest.h"
#include "qengine/layout.h"

namespace qengine_py {

namespace py = pybind11;

void register_layout(py::module_& m) {
  py::dict node, tree, derived;
#define QENGINE_EXPORT_NODE(name, type, storage) \
  node[#name] = qengine::dtype_name(qengine::dtype_of<type>());
#define QENGINE_EXPORT_FIELD(dict, name, type) \
  dict[#name] = qengine::dtype_name(qengine::dtype_of<type>());
#define QENGINE_EXPORT_TREE(name, type) QENGINE_EXPORT_FIELD(tree, name, type)
#define QENGINE_EXPORT_DERIVED(name, type) QENGINE_EXPORT_FIELD(derived, name, type)
  QENGINE_NODE_FIELDS(QENGINE_EXPORT_NODE)
  QENGINE_TREE_FIELDS(QENGINE_EXPORT_TREE)
  QENGINE_DERIVED_FIELDS(QENGINE_EXPORT_DERIVED)
#undef QENGINE_EXPORT_DERIVED
#undef QENGINE_EXPORT_TREE
#undef QENGINE_EXPORT_FIELD
#undef QENGINE_EXPORT_NODE
  // {name: numpy dtype name}, in the order of export_arrays (tree_offsets, int64 [B+1], sits
  // between the node and the per-tree fields).
  m.attr("NODE_FIELDS") = node;
  m.attr("TREE_FIELDS") = tree;
  m.attr("DERIVED_FIELDS") = derived;
  m.attr("ROOT") = qengine::kRoot;
  m.attr("NO_NODE") = qengine::kNoNode;
  m.attr("DEAD_SLOT") = qengine::kDeadSlot;
  m.attr("STATUS_IN_FLIGHT_MASK") = qengine::kInFlightMask;
  m.attr("STATUS_TERMINAL") = qengine::kTerminalBit;
  m.attr("STATUS_EXHAUSTED") = qengine::kExhaustedBit;
  m.attr("BYTES_PER_NODE") =
      py::make_tuple(qengine::kBytesPerNode, qengine::kBytesPerNodeWithoutPayload);
  // The limits of docs/search-semantics.md.
  m.attr("MAX_IN_FLIGHT") = qengine::kMaxInFlight;
  m.attr("MAX_CHILDREN") = qengine::kMaxChildren;
  m.attr("MAX_DEPTH") = qengine::kMaxDepth;
  m.attr("MAX_VISITS") = qengine::kMaxVisits;
  m.attr("MAX_TREES") = qengine::kMaxTrees;
  m.attr("MAX_THREADS") = qengine::kMaxThreads;

  m.attr("CONFIG_FIELDS") = config_schema();
  m.def(
      "check_config",
      [](const py::handle& config) { return config_to_dict(config_from_dict(config)); },
      py::arg("config"),
      "The config dict with every field, checked and normalised as the core reads it (the "
      "order of docs section 2: unknown keys, types, values); raises what Forest(config) would.");
}

}  // namespace qengine_py
