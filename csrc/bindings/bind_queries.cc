// qengine._core.Forest: read-only queries (views, Q-values, policies, best path, pairs).
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

qengine::Field field_from_name(const std::string& name) {
  // Every stored field but status, which is served unpacked (derived).
#define QENGINE_VIEW_FIELD(field, type, storage) \
  if (name != "status" && name == #field) return qengine::Field::field;
  QENGINE_NODE_FIELDS(QENGINE_VIEW_FIELD)
#undef QENGINE_VIEW_FIELD
  std::string names;
#define QENGINE_VIEW_NAME(field, type, storage) \
  if (std::string(#field) != "status") names += std::string(names.empty() ? "" : ", ") + #field;
  QENGINE_NODE_FIELDS(QENGINE_VIEW_NAME)
#undef QENGINE_VIEW_NAME
  throw qengine::ValueError("view: unknown field '" + name + "'; choose one of " + names);
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

}  // namespace

void register_queries(ForestClass& cls) {
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
        py::array out(py::dtype(qengine::dtype_name(v.dtype)), {static_cast<py::ssize_t>(v.size)},
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
         const py::handle& min_q_gap_obj, const py::handle& max_depth_obj,
         const py::handle& eligible_obj) {
        const std::string mode = str_arg(mode_obj, "pairs", "mode");
        const Int min_visits = int_arg(min_visits_obj, "pairs", "min_visits");
        const double min_q_gap = real_arg(min_q_gap_obj, "pairs", "min_q_gap");
        const Int max_depth = int_arg(max_depth_obj, "pairs", "max_depth");
        Input<uint8_t> eligible;  // empty: the visits rule
        if (!eligible_obj.is_none()) eligible = input<uint8_t>(eligible_obj, "pairs", "eligible");
        qengine::PairMode pm;
        if (mode == "paper") {
          pm = qengine::PairMode::kPaper;
        } else if (mode == "max_min") {
          pm = qengine::PairMode::kMaxMin;
        } else if (mode == "max_all") {
          pm = qengine::PairMode::kMaxAll;
        } else if (mode == "all") {
          pm = qengine::PairMode::kAll;
        } else {
          throw qengine::ValueError("pairs: mode '" + mode +
                                    "'; choose 'paper', 'max_min', 'max_all' or 'all'");
        }
        qengine::PairsResult r;
        {
          py::gil_scoped_release release;
          r = f.pairs(pm, min_visits.value, min_q_gap, max_depth.value, eligible.data,
                      eligible.size);
        }
        return pairs_to_dict(std::move(r));
      },
      py::arg("mode"), py::arg("min_visits"), py::arg("min_q_gap"), py::arg("max_depth"),
      py::arg("eligible") = py::none());

  cls.def(
      "edge_values",
      [](const Forest& f, const py::handle& tree) {
        return to_numpy(f.edge_values(tree_arg(tree, "edge_values")));
      },
      py::arg("tree"));
}

}  // namespace qengine_py
