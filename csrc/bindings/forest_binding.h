// Helpers shared by the files that bind qengine._core.Forest (one file per group of methods:
// bind_forest.cc the class and its construction, bind_loop.cc the search loop, bind_queries.cc
// the read-only queries, bind_tree_ops.cc reroot / prune / compact / reset, bind_io.cc export
// and import).
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "args.h"
#include "qengine/errors.h"
#include "qengine/forest.h"

namespace qengine_py {

namespace py = pybind11;

using ForestClass = py::class_<qengine::Forest>;

// A tree id argument (an int; ids outside int64 are refused by the core's range check).
inline int64_t tree_arg(const py::handle& tree, const char* op) {
  return int_arg(tree, op, "tree").value;
}

// ValueError unless two arrays of one call have the same length.
inline void same_length(const char* op, const char* a, int64_t na, const char* b, int64_t nb) {
  if (na != nb) {
    throw qengine::ValueError(std::string(op) + ": " + a + " has " + std::to_string(na) +
                              " entries but " + b + " has " + std::to_string(nb));
  }
}

void register_loop(ForestClass& cls);
void register_queries(ForestClass& cls);
void register_tree_ops(ForestClass& cls);
void register_io(ForestClass& cls);

}  // namespace qengine_py
