// qengine._core.Forest: export_arrays / export_tree / from_arrays (docs 5.9).
#include <pybind11/numpy.h>
#include <pybind11/pybind11.h>

#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "args.h"
#include "config_dict.h"
#include "forest_binding.h"
#include "numpy_util.h"
#include "qengine/errors.h"
#include "qengine/forest.h"

namespace qengine_py {

using qengine::Forest;

namespace {

py::dict export_to_dict(qengine::ArraysOut&& a) {
  py::dict d;
  qengine::for_each_array(
      a, a, [&](const char* name, auto& column, auto&) { d[name] = to_numpy(std::move(column)); });
  return d;
}

// One array of from_arrays: exact dtype (else TypeError) and 1-D (else ValueError, corrupt).
template <class T>
qengine::ArraysIn::Span<T> import_array(const py::dict& arrays, const char* key,
                                        std::vector<py::array>* keep) {
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

// The keys of export_arrays, in order: every key present (else ValueError), no other key.
void check_keys(const py::dict& d) {
  std::vector<const char*> keys;
  qengine::ArraysIn names;
  qengine::for_each_array(names, names, [&](const char* k, auto&, auto&) { keys.push_back(k); });
  for (const char* k : keys) {
    if (!d.contains(k)) {
      throw qengine::ValueError(std::string("from_arrays: missing array '") + k + "'");
    }
  }
  for (auto item : d) {
    bool known = false;
    for (const char* k : keys) {
      known = known ||
              (PyUnicode_Check(item.first.ptr()) && str_arg(item.first, "from_arrays", "key") == k);
    }
    if (!known) {
      throw qengine::ValueError("from_arrays: unknown array " + std::string(py::repr(item.first)));
    }
  }
}

}  // namespace

void register_io(ForestClass& cls) {
  cls.def("export_arrays", [](const Forest& f) {
    qengine::ArraysOut a;
    {
      py::gil_scoped_release release;
      a = f.export_arrays();
    }
    return export_to_dict(std::move(a));
  });

  cls.def(
      "export_tree",
      [](const Forest& f, const py::handle& tree) {
        const int64_t t = tree_arg(tree, "export_tree");
        qengine::ArraysOut a;
        {
          py::gil_scoped_release release;
          a = f.export_tree(t);
        }
        return export_to_dict(std::move(a));
      },
      py::arg("tree"));

  cls.def_static(
      "from_arrays",
      [](const py::handle& config, const py::handle& arrays, const py::handle& num_threads) {
        const qengine::SearchConfig cfg = config_from_dict(config);
        if (!py::isinstance<py::dict>(arrays)) {
          throw qengine::TypeError("from_arrays: arrays must be a dict of numpy arrays, got " +
                                   type_name(arrays));
        }
        const py::dict d = py::reinterpret_borrow<py::dict>(arrays);
        check_keys(d);
        std::vector<py::array> keep;
        qengine::ArraysIn in;
        qengine::for_each_array(in, in, [&](const char* key, auto& span, auto&) {
          using T = std::remove_const_t<std::remove_pointer_t<decltype(span.data)>>;
          span = import_array<T>(d, key, &keep);
        });
        const Int threads = int_arg(num_threads, "from_arrays", "num_threads");
        Forest::check_sizes(1, threads.value);
        py::gil_scoped_release release;
        return Forest::from_arrays(cfg, in, static_cast<int>(threads.value));
      },
      py::arg("config"), py::arg("arrays"), py::arg("num_threads"));
}

}  // namespace qengine_py
