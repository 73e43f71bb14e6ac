// qengine._core.Forest: the engine interface of docs/search-semantics.md, section 9.
//
// Inputs are checked strictly (exact dtype, 1-D, C-contiguous, matching lengths; scalars by the
// rules of args.h, never coerced) and the core re-validates values and states; the GIL is
// released around every batch operation. Each call checks its arguments in order, types and
// shapes first, then values and states (docs/search-semantics.md, section 9, "Arguments").
// This file binds the class and its construction; the methods live in one file per group (see
// forest_binding.h).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <memory>
#include <string>

#include "args.h"
#include "config_dict.h"
#include "forest_binding.h"
#include "numpy_util.h"
#include "qengine/errors.h"
#include "qengine/forest.h"

namespace qengine_py {

using qengine::Forest;

void register_forest(py::module_& m) {
  py::class_<Forest> cls(m, "Forest", R"doc(
B MCTS trees searched together (the native engine; see docs/search-semantics.md section 9).

Use qengine.Forest, which converts friendly input to the exact dtypes this class takes.
)doc");

  cls.def(py::init([](const py::handle& num_trees, const py::handle& config,
                      const py::handle& num_threads, const py::handle& root_payloads) {
            const Int trees = int_arg(num_trees, "Forest", "num_trees");
            const qengine::SearchConfig cfg = config_from_dict(config);
            const Int threads = int_arg(num_threads, "Forest", "num_threads");
            auto payloads = input<int64_t>(root_payloads, "Forest", "root_payloads");
            Forest::check_sizes(trees.value, threads.value);  // before any allocation
            same_length("Forest", "root_payloads", payloads.size, "num_trees", trees.value);
            return std::make_unique<Forest>(trees.value, cfg, static_cast<int>(threads.value),
                                            payloads.data);
          }),
          py::arg("num_trees"), py::arg("config"), py::arg("num_threads"),
          py::arg("root_payloads"));

  cls.def_property_readonly("num_trees", &Forest::num_trees);
  cls.def_property_readonly("num_threads", &Forest::num_threads);
  cls.def_property_readonly("config", [](const Forest& f) { return config_to_dict(f.config()); });
  cls.def_property_readonly_static("bytes_per_node", [](const py::object&) {
    return py::make_tuple(qengine::kBytesPerNode, qengine::kBytesPerNodeWithoutPayload);
  });

  register_loop(cls);
  register_queries(cls);
  register_tree_ops(cls);
  register_io(cls);

  cls.def("__repr__", [](const Forest& f) {
    return "<qengine._core.Forest num_trees=" + std::to_string(f.num_trees()) +
           " num_threads=" + std::to_string(f.num_threads()) + ">";
  });
}

}  // namespace qengine_py
