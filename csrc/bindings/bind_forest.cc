// qengine._core.Forest: the engine interface of docs/search-semantics.md, section 9.
//
// Inputs are checked strictly here (exact dtype, 1-D, C-contiguous, matching lengths; scalars by
// the rules of args.h, never coerced) and the core re-validates values and states; the GIL is
// released around every batch operation. Each call checks its arguments in order, types and
// shapes first, then values and states (docs/search-semantics.md, section 9, "Arguments").
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>
#include <pybind11/stl.h>

#include <memory>
#include <string>
#include <vector>

#include "args.h"
#include "config_dict.h"
#include "numpy_util.h"
#include "qengine/errors.h"
#include "qengine/forest.h"

namespace qengine_py {

namespace py = pybind11;
using qengine::Forest;

namespace {

qengine::Field field_from_name(const std::string& name) {
  static const std::pair<const char*, qengine::Field> kFields[] = {
      {"parent", qengine::Field::kParent},
      {"first_child", qengine::Field::kFirstChild},
      {"num_children", qengine::Field::kNumChildren},
      {"action", qengine::Field::kAction},
      {"depth", qengine::Field::kDepth},
      {"prior", qengine::Field::kPrior},
      {"visits", qengine::Field::kVisits},
      {"q", qengine::Field::kQ},
      {"reward", qengine::Field::kReward},
      {"payload", qengine::Field::kPayload},
  };
  for (const auto& f : kFields) {
    if (name == f.first) return f.second;
  }
  throw qengine::ValueError("view: unknown field '" + name +
                            "'; choose parent, first_child, num_children, action, depth, prior, "
                            "visits, q, reward or payload");
}

py::dtype numpy_dtype(qengine::Dtype d) {
  switch (d) {
    case qengine::Dtype::kInt32:
      return py::dtype::of<int32_t>();
    case qengine::Dtype::kUint16:
      return py::dtype::of<uint16_t>();
    case qengine::Dtype::kFloat32:
      return py::dtype::of<float>();
    case qengine::Dtype::kInt64:
      return py::dtype::of<int64_t>();
  }
  return py::dtype::of<int32_t>();
}

// A tree id argument (an int; ids outside int64 are refused by the core's range check).
int64_t tree_arg(const py::handle& tree, const char* op) { return int_arg(tree, op, "tree").value; }

void same_length(const char* op, const char* a, int64_t na, const char* b, int64_t nb) {
  if (na != nb) {
    throw qengine::ValueError(std::string(op) + ": " + a + " has " + std::to_string(na) +
                              " entries but " + b + " has " + std::to_string(nb));
  }
}

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

py::dict pairs_to_dict(qengine::PairsResult&& r) {
  py::dict d;
  d["tree"] = to_numpy(std::move(r.tree));
  d["parent"] = to_numpy(std::move(r.parent));
  d["chosen"] = to_numpy(std::move(r.chosen));
  d["rejected"] = to_numpy(std::move(r.rejected));
  d["depth"] = to_numpy(std::move(r.depth));
  d["q_chosen"] = to_numpy(std::move(r.q_chosen));
  d["q_rejected"] = to_numpy(std::move(r.q_rejected));
  return d;
}

py::dict export_to_dict(qengine::ArraysOut&& a) {
  py::dict d;
  d["parent"] = to_numpy(std::move(a.parent));
  d["first_child"] = to_numpy(std::move(a.first_child));
  d["num_children"] = to_numpy(std::move(a.num_children));
  d["action"] = to_numpy(std::move(a.action));
  d["depth"] = to_numpy(std::move(a.depth));
  d["status"] = to_numpy(std::move(a.status));
  d["prior"] = to_numpy(std::move(a.prior));
  d["visits"] = to_numpy(std::move(a.visits));
  d["q"] = to_numpy(std::move(a.q));
  d["reward"] = to_numpy(std::move(a.reward));
  d["payload"] = to_numpy(std::move(a.payload));
  d["tree_offsets"] = to_numpy(std::move(a.tree_offsets));
  d["minmax_lo"] = to_numpy(std::move(a.minmax_lo));
  d["minmax_hi"] = to_numpy(std::move(a.minmax_hi));
  d["root_epoch"] = to_numpy(std::move(a.root_epoch));
  return d;
}

// One array of from_arrays: exact dtype (else TypeError) and 1-D (else ValueError, corrupt).
template <class T>
qengine::ArraysIn::Span<T> import_array(const py::dict& arrays, const char* key,
                                        std::vector<py::array>* keep) {
  if (!arrays.contains(key)) {
    throw qengine::ValueError(std::string("from_arrays: missing array '") + key + "'");
  }
  py::object obj = arrays[key];
  if (!py::isinstance<py::array>(obj)) {
    throw qengine::TypeError(std::string("from_arrays: '") + key + "' must be a numpy array");
  }
  py::array a = py::reinterpret_borrow<py::array>(obj);
  if (!a.dtype().equal(py::dtype::of<T>())) {
    throw qengine::TypeError(std::string("from_arrays: '") + key + "' must have dtype " +
                             dtype_name<T>() + ", got " + std::string(py::str(a.dtype())));
  }
  if (a.ndim() != 1) {
    throw qengine::ValueError(std::string("from_arrays: '") + key + "' must be 1-D");
  }
  py::array c = py::array_t<T, py::array::c_style>::ensure(a);
  if (!c) throw py::error_already_set();
  keep->push_back(c);
  qengine::ArraysIn::Span<T> span;
  span.data = static_cast<const T*>(c.data());
  span.size = static_cast<int64_t>(c.shape(0));
  return span;
}

const char* const kExportKeys[] = {"parent",    "first_child", "num_children", "action",
                                   "depth",     "status",      "prior",        "visits",
                                   "q",         "reward",      "payload",      "tree_offsets",
                                   "minmax_lo", "minmax_hi",   "root_epoch"};

}  // namespace

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
        auto r = input<float>(rewards, op, "rewards");
        auto term = input<uint8_t>(terminal, op, "terminal");
        auto pay = input<int64_t>(payloads, op, "payloads");
        same_length(op, "trees", t.size, "nodes", n.size);
        same_length(op, "trees", t.size, "counts", c.size);
        same_length(op, "priors", p.size, "rewards", r.size);
        same_length(op, "priors", p.size, "terminal", term.size);
        same_length(op, "priors", p.size, "payloads", pay.size);
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
      "size",
      [](const Forest& f, const py::handle& tree) { return f.size(tree_arg(tree, "size")); },
      py::arg("tree"));

  cls.def(
      "view",
      [](const Forest& f, const py::handle& tree_obj, const py::handle& field_obj) {
        const int64_t tree = tree_arg(tree_obj, "view");
        const std::string field = str_arg(field_obj, "view", "field");
        f.check_tree(tree, "view");
        qengine::ColumnView v = f.view(tree, field_from_name(field));
        auto* holder = new std::shared_ptr<const void>(std::move(v.owner));
        py::capsule owner(holder,
                          [](void* p) { delete static_cast<std::shared_ptr<const void>*>(p); });
        // Hot fields are strided views into the records (stride sizeof(HotNode)).
        py::array out(numpy_dtype(v.dtype), {static_cast<py::ssize_t>(v.size)},
                      {static_cast<py::ssize_t>(v.stride)}, v.data, owner);
        out.attr("setflags")(py::arg("write") = false);
        return out;
      },
      py::arg("tree"), py::arg("field"));

  cls.def(
      "derived",
      [](const Forest& f, const py::handle& tree_obj, const py::handle& field_obj) -> py::array {
        const int64_t tree = tree_arg(tree_obj, "derived");
        const std::string field = str_arg(field_obj, "derived", "field");
        f.check_tree(tree, "derived");
        if (field == "in_flight") return to_numpy(f.in_flight(tree));
        if (field == "terminal") return to_numpy_bool(f.flag(tree, qengine::kTerminalBit));
        if (field == "exhausted") return to_numpy_bool(f.flag(tree, qengine::kExhaustedBit));
        throw qengine::ValueError("derived: unknown field '" + field +
                                  "'; choose in_flight, terminal or exhausted");
      },
      py::arg("tree"), py::arg("field"));

  cls.def(
      "qvalues",
      [](const Forest& f, const py::handle& tree, const py::handle& node) {
        const int64_t t = tree_arg(tree, "qvalues");
        return to_numpy(f.qvalues(t, int_arg(node, "qvalues", "node").value));
      },
      py::arg("tree"), py::arg("node"));
  cls.def(
      "root_policy",
      [](const Forest& f, const py::handle& tree, const py::handle& temperature) {
        const int64_t t = tree_arg(tree, "root_policy");
        return to_numpy(f.root_policy(t, real_arg(temperature, "root_policy", "temperature")));
      },
      py::arg("tree"), py::arg("temperature"));
  cls.def(
      "best_action",
      [](const Forest& f, const py::handle& tree) {
        return f.best_action(tree_arg(tree, "best_action"));
      },
      py::arg("tree"));
  cls.def(
      "best_path",
      [](const Forest& f, const py::handle& tree) {
        return to_numpy(f.best_path(tree_arg(tree, "best_path")));
      },
      py::arg("tree"));
  cls.def(
      "minmax",
      [](const Forest& f, const py::handle& tree) {
        const auto mm = f.minmax(tree_arg(tree, "minmax"));
        return py::make_tuple(mm.first, mm.second);
      },
      py::arg("tree"));
  cls.def(
      "root_epoch",
      [](const Forest& f, const py::handle& tree) {
        return f.root_epoch(tree_arg(tree, "root_epoch"));
      },
      py::arg("tree"));

  cls.def(
      "pairs",
      [](const Forest& f, const py::handle& mode_obj, const py::handle& min_visits_obj,
         const py::handle& min_q_gap_obj, const py::handle& max_depth_obj) {
        const std::string mode = str_arg(mode_obj, "pairs", "mode");
        const Int min_visits = int_arg(min_visits_obj, "pairs", "min_visits");
        const double min_q_gap = real_arg(min_q_gap_obj, "pairs", "min_q_gap");
        const Int max_depth = int_arg(max_depth_obj, "pairs", "max_depth");
        qengine::PairMode pm;
        if (mode == "paper") {
          pm = qengine::PairMode::kPaper;
        } else if (mode == "max_min") {
          pm = qengine::PairMode::kMaxMin;
        } else if (mode == "max_all") {
          pm = qengine::PairMode::kMaxAll;
        } else {
          throw qengine::ValueError("pairs: mode '" + mode +
                                    "'; choose 'paper', 'max_min' or 'max_all'");
        }
        qengine::PairsResult r;
        {
          py::gil_scoped_release release;
          r = f.pairs(pm, min_visits.value, min_q_gap, max_depth.value);
        }
        return pairs_to_dict(std::move(r));
      },
      py::arg("mode"), py::arg("min_visits"), py::arg("min_q_gap"), py::arg("max_depth"));

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

  cls.def("export_arrays", [](const Forest& f) {
    qengine::ArraysOut a;
    {
      py::gil_scoped_release release;
      a = f.export_arrays();
    }
    return export_to_dict(std::move(a));
  });

  cls.def_static(
      "from_arrays",
      [](const py::handle& config, const py::handle& arrays, const py::handle& num_threads) {
        const qengine::SearchConfig cfg = config_from_dict(config);
        if (!py::isinstance<py::dict>(arrays)) {
          throw qengine::TypeError("from_arrays: arrays must be a dict of numpy arrays, got " +
                                   type_name(arrays));
        }
        const py::dict d = py::reinterpret_borrow<py::dict>(arrays);
        for (const char* k : kExportKeys) {
          if (!d.contains(k)) {
            throw qengine::ValueError(std::string("from_arrays: missing array '") + k + "'");
          }
        }
        for (auto item : d) {
          bool known = false;
          for (const char* k : kExportKeys) {
            known = known || (PyUnicode_Check(item.first.ptr()) &&
                              str_arg(item.first, "from_arrays", "key") == k);
          }
          if (!known) {
            throw qengine::ValueError("from_arrays: unknown array " +
                                      std::string(py::repr(item.first)));
          }
        }
        std::vector<py::array> keep;
        qengine::ArraysIn in;
        in.parent = import_array<int32_t>(d, "parent", &keep);
        in.first_child = import_array<int32_t>(d, "first_child", &keep);
        in.num_children = import_array<uint16_t>(d, "num_children", &keep);
        in.action = import_array<uint16_t>(d, "action", &keep);
        in.depth = import_array<uint16_t>(d, "depth", &keep);
        in.status = import_array<uint16_t>(d, "status", &keep);
        in.prior = import_array<float>(d, "prior", &keep);
        in.visits = import_array<int32_t>(d, "visits", &keep);
        in.q = import_array<float>(d, "q", &keep);
        in.reward = import_array<float>(d, "reward", &keep);
        in.payload = import_array<int64_t>(d, "payload", &keep);
        in.tree_offsets = import_array<int64_t>(d, "tree_offsets", &keep);
        in.minmax_lo = import_array<double>(d, "minmax_lo", &keep);
        in.minmax_hi = import_array<double>(d, "minmax_hi", &keep);
        in.root_epoch = import_array<uint64_t>(d, "root_epoch", &keep);
        const Int threads = int_arg(num_threads, "from_arrays", "num_threads");
        Forest::check_sizes(1, threads.value);
        py::gil_scoped_release release;
        return Forest::from_arrays(cfg, in, static_cast<int>(threads.value));
      },
      py::arg("config"), py::arg("arrays"), py::arg("num_threads"));

  cls.def("__repr__", [](const Forest& f) {
    return "<qengine._core.Forest num_trees=" + std::to_string(f.num_trees()) +
           " num_threads=" + std::to_string(f.num_threads()) + ">";
  });
}

}  // namespace qengine_py
