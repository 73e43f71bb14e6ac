// qengine._core.Forest: the search loop (ask, expand, backup, cancel) and the synthetic benchmark
// search. Arrays are checked strictly (numpy_util.h); the GIL is released around the work.
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

namespace {

py::dict ask_to_dict(qengine::AskResult&& r) {
  py::dict d;
  d["tree"] = to_numpy(std::move(r.tree));
  d["node"] = to_numpy(std::move(r.node));
  d["depth"] = to_numpy(std::move(r.depth));
  d["payload"] = to_numpy(std::move(r.payload));
  d["path_offsets"] = to_numpy(std::move(r.path_offsets));
  d["path_nodes"] = to_numpy(std::move(r.path_nodes));
  d["path_actions"] = to_numpy(std::move(r.path_actions));
  d["path_payloads"] = to_numpy(std::move(r.path_payloads));
  d["terminal_hits"] = to_numpy(std::move(r.terminal_hits));
  d["collisions"] = to_numpy(std::move(r.collisions));
  return d;
}

}  // namespace

void register_loop(ForestClass& cls) {
  cls.def(
      "ask",
      [](Forest& f, const py::handle& max_leaves, const py::handle& with_paths) {
        const Int k = int_arg(max_leaves, "ask", "max_leaves");
        const bool paths = bool_arg(with_paths, "ask", "with_paths");
        qengine::AskResult r;
        {
          py::gil_scoped_release release;
          r = f.ask(k.value, paths);
        }
        return ask_to_dict(std::move(r));
      },
      py::arg("max_leaves"), py::arg("with_paths"));

  cls.def(
      "expand",
      [](Forest& f, const py::handle& trees, const py::handle& nodes, const py::handle& counts,
         const py::handle& priors, const py::handle& rewards, const py::handle& terminal,
         const py::handle& payloads) {
        const char* op = "expand";
        auto t = input<int32_t>(trees, op, "trees");
        auto n = input<int32_t>(nodes, op, "nodes");
        auto c = input<int32_t>(counts, op, "counts");
        auto p = input<float>(priors, op, "priors");
        // None: no rewards, none terminal, payload 0 (the core reads no array for them)
        auto r = optional_input<float>(rewards, op, "rewards");
        auto term = optional_input<uint8_t>(terminal, op, "terminal");
        auto pay = optional_input<int64_t>(payloads, op, "payloads");
        same_length(op, "trees", t.size, "nodes", n.size);
        same_length(op, "trees", t.size, "counts", c.size);
        if (r.size >= 0) same_length(op, "priors", p.size, "rewards", r.size);
        if (term.size >= 0) same_length(op, "priors", p.size, "terminal", term.size);
        if (pay.size >= 0) same_length(op, "priors", p.size, "payloads", pay.size);
        qengine::ExpandArgs a;
        a.num_items = t.size;
        a.trees = t.data;
        a.nodes = n.data;
        a.counts = c.data;
        a.num_children = p.size;
        a.priors = p.data;
        a.rewards = r.data;
        a.terminal = term.data;
        a.payloads = pay.data;
        py::gil_scoped_release release;
        f.expand(a);
      },
      py::arg("trees"), py::arg("nodes"), py::arg("counts"), py::arg("priors"), py::arg("rewards"),
      py::arg("terminal"), py::arg("payloads"));

  cls.def(
      "backup",
      [](Forest& f, const py::handle& trees, const py::handle& nodes, const py::handle& values) {
        auto t = input<int32_t>(trees, "backup", "trees");
        auto n = input<int32_t>(nodes, "backup", "nodes");
        auto v = input<double>(values, "backup", "values");
        same_length("backup", "trees", t.size, "nodes", n.size);
        same_length("backup", "trees", t.size, "values", v.size);
        py::gil_scoped_release release;
        f.backup(t.size, t.data, n.data, v.data);
      },
      py::arg("trees"), py::arg("nodes"), py::arg("values"));

  cls.def(
      "cancel",
      [](Forest& f, const py::handle& trees, const py::handle& nodes) {
        auto t = input<int32_t>(trees, "cancel", "trees");
        auto n = input<int32_t>(nodes, "cancel", "nodes");
        same_length("cancel", "trees", t.size, "nodes", n.size);
        py::gil_scoped_release release;
        f.cancel(t.size, t.data, n.data);
      },
      py::arg("trees"), py::arg("nodes"));

  cls.def(
      "run_synthetic",
      [](Forest& f, const py::handle& num_simulations, const py::handle& num_actions,
         const py::handle& leaves_per_ask, const py::handle& seed) {
        const char* op = "run_synthetic";
        const Int s = int_arg(num_simulations, op, "num_simulations");
        const Int a = int_arg(num_actions, op, "num_actions");
        const Int k = int_arg(leaves_per_ask, op, "leaves_per_ask");
        const Uint sd = uint64_arg(seed, op, "seed");
        // The seed's range is checked after S, A and K (in the core) and before the trees: only
        // its own ValueError can come first here, and every check before it is a ValueError too.
        if (!sd.exact) {
          f.check_synthetic_args(s.value, a.value, k.value);
          throw qengine::ValueError("run_synthetic: seed must lie in [0, 2**64)");
        }
        py::gil_scoped_release release;
        return f.run_synthetic(s.value, a.value, k.value, sd.value);
      },
      py::arg("num_simulations"), py::arg("num_actions"), py::arg("leaves_per_ask"),
      py::arg("seed"));
}

}  // namespace qengine_py
