// qengine._core.Forest: reroot, prune, compact, reset (docs 5.8).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <utility>
#include <vector>

#include "args.h"
#include "forest_binding.h"
#include "numpy_util.h"
#include "qengine/errors.h"
#include "qengine/forest.h"

namespace qengine_py {

using qengine::Forest;

void register_tree_ops(ForestClass& cls) {
  cls.def(
      "reroot",
      [](Forest& f, const py::handle& tree, const py::handle& node) {
        const int64_t t = tree_arg(tree, "reroot");
        const int64_t n = int_arg(node, "reroot", "node").value;
        py::gil_scoped_release release;
        f.reroot(t, n);
      },
      py::arg("tree"), py::arg("node"));

  cls.def(
      "prune",
      [](Forest& f, const py::handle& tree, const py::handle& node) {
        const int64_t t = tree_arg(tree, "prune");
        const int64_t n = int_arg(node, "prune", "node").value;
        py::gil_scoped_release release;
        f.prune(t, n);
      },
      py::arg("tree"), py::arg("node"));

  cls.def(
      "reserve",
      [](Forest& f, const py::handle& nodes) {
        const int64_t n = int_arg(nodes, "reserve", "nodes").value;
        py::gil_scoped_release release;
        f.reserve(n);
      },
      py::arg("nodes"));
  cls.def(
      "compact",
      [](Forest& f, const py::handle& tree) {
        const int64_t t = tree_arg(tree, "compact");
        py::gil_scoped_release release;
        f.compact(t);
      },
      py::arg("tree"));

  cls.def(
      "reset",
      [](Forest& f, const py::handle& tree, const py::handle& payload) {
        const int64_t t = tree_arg(tree, "reset");
        const Int p = int_arg(payload, "reset", "payload");
        if (!p.exact) {  // the tree id is checked first, as everywhere
          f.check_tree(t, "reset");
          throw qengine::ValueError("reset: payload is outside the int64 range");
        }
        py::gil_scoped_release release;
        f.reset(t, p.value);
      },
      py::arg("tree"), py::arg("payload"));
}

}  // namespace qengine_py
