#include "config_dict.h"

#include <string>

#include "qengine/errors.h"

namespace qengine_py {

namespace py = pybind11;
using qengine::SearchConfig;

namespace {

std::string type_name(const py::handle& value) {
  return std::string(py::str(py::type::of(value).attr("__name__")));
}

double as_float(const py::handle& value, const std::string& key) {
  if (py::isinstance<py::bool_>(value) ||
      !(py::isinstance<py::float_>(value) || py::isinstance<py::int_>(value))) {
    throw qengine::TypeError("config['" + key + "'] must be a float, got " + type_name(value));
  }
  return value.cast<double>();
}

py::int_ as_int(const py::handle& value, const std::string& key) {
  if (py::isinstance<py::bool_>(value) || !py::isinstance<py::int_>(value)) {
    throw qengine::TypeError("config['" + key + "'] must be an int, got " + type_name(value));
  }
  return py::reinterpret_borrow<py::int_>(value);
}

int64_t as_int64(const py::handle& value, const std::string& key) {
  py::int_ v = as_int(value, key);
  const long long out = PyLong_AsLongLong(v.ptr());
  if (out == -1 && PyErr_Occurred()) {
    PyErr_Clear();
    throw qengine::ValueError("config['" + key + "'] is out of range");
  }
  return out;
}

bool as_bool(const py::handle& value, const std::string& key) {
  if (!py::isinstance<py::bool_>(value)) {
    throw qengine::TypeError("config['" + key + "'] must be a bool, got " + type_name(value));
  }
  return value.cast<bool>();
}

template <class E>
E as_enum(const py::handle& value, const std::string& key, const char* choices) {
  if (!py::isinstance<py::str>(value)) {
    throw qengine::TypeError("config['" + key + "'] must be a str, got " + type_name(value));
  }
  E out;
  const std::string text = value.cast<std::string>();
  if (!qengine::parse(text, &out)) {
    throw qengine::ValueError("config['" + key + "'] = '" + text + "'; choose one of " + choices);
  }
  return out;
}

}  // namespace

SearchConfig config_from_dict(const py::handle& config) {
  if (!py::isinstance<py::dict>(config)) {
    throw qengine::TypeError("config must be a dict (SearchConfig.to_dict()), got " +
                             type_name(config));
  }
  SearchConfig c;
  for (auto item : py::reinterpret_borrow<py::dict>(config)) {
    if (!py::isinstance<py::str>(item.first)) {
      throw qengine::TypeError("config keys must be str, got " + type_name(item.first));
    }
    const std::string key = item.first.cast<std::string>();
    const py::handle v = item.second;
    if (key == "rule") {
      c.rule = as_enum<qengine::Rule>(v, key, "'uct', 'puct', 'muzero', 'lats'");
    } else if (key == "c") {
      c.c = as_float(v, key);
    } else if (key == "c1") {
      c.c1 = as_float(v, key);
    } else if (key == "c2") {
      c.c2 = as_float(v, key);
    } else if (key == "fpu") {
      c.fpu = as_enum<qengine::Fpu>(v, key, "'inf', 'parent', 'reduction', 'constant'");
    } else if (key == "fpu_value") {
      c.fpu_value = as_float(v, key);
    } else if (key == "fpu_reduction") {
      c.fpu_reduction = as_float(v, key);
    } else if (key == "qnorm") {
      c.qnorm = as_enum<qengine::QNorm>(v, key, "'none', 'bounds', 'tree_minmax', 'parent_minmax'");
    } else if (key == "value_min") {
      c.value_min = as_float(v, key);
    } else if (key == "value_max") {
      c.value_max = as_float(v, key);
    } else if (key == "minmax_floor") {
      c.minmax_floor = as_float(v, key);
    } else if (key == "backup") {
      c.backup = as_enum<qengine::BackupMode>(v, key, "'mean', 'max'");
    } else if (key == "discount") {
      c.discount = as_float(v, key);
    } else if (key == "two_player") {
      c.two_player = as_bool(v, key);
    } else if (key == "virtual_loss_value") {
      c.virtual_loss_value = as_float(v, key);
    } else if (key == "mark_exhausted") {
      c.mark_exhausted = as_bool(v, key);
    } else if (key == "gumbel") {
      c.gumbel = as_bool(v, key);
    } else if (key == "gumbel_simulations") {
      c.gumbel_simulations = as_int64(v, key);
    } else if (key == "gumbel_max_considered") {
      c.gumbel_max_considered = as_int64(v, key);
    } else if (key == "gumbel_c_visit") {
      c.gumbel_c_visit = as_float(v, key);
    } else if (key == "gumbel_c_scale") {
      c.gumbel_c_scale = as_float(v, key);
    } else if (key == "max_nodes") {
      c.max_nodes = as_int64(v, key);
    } else if (key == "seed") {
      py::int_ s = as_int(v, key);
      const unsigned long long seed = PyLong_AsUnsignedLongLong(s.ptr());
      if (PyErr_Occurred()) {
        PyErr_Clear();
        throw qengine::ValueError("config['seed'] must lie in [0, 2**64)");
      }
      c.seed = seed;
    } else {
      throw qengine::ValueError("unknown config key '" + key +
                                "'; the keys are those of qengine.SearchConfig");
    }
  }
  c.validate();
  return c;
}

py::dict config_to_dict(const SearchConfig& c) {
  py::dict d;
  d["rule"] = qengine::to_string(c.rule);
  d["c"] = c.c;
  d["c1"] = c.c1;
  d["c2"] = c.c2;
  d["fpu"] = qengine::to_string(c.fpu);
  d["fpu_value"] = c.fpu_value;
  d["fpu_reduction"] = c.fpu_reduction;
  d["qnorm"] = qengine::to_string(c.qnorm);
  d["value_min"] = c.value_min;
  d["value_max"] = c.value_max;
  d["minmax_floor"] = c.minmax_floor;
  d["backup"] = qengine::to_string(c.backup);
  d["discount"] = c.discount;
  d["two_player"] = c.two_player;
  d["virtual_loss_value"] = c.virtual_loss_value;
  d["mark_exhausted"] = c.mark_exhausted;
  d["gumbel"] = c.gumbel;
  d["gumbel_simulations"] = c.gumbel_simulations;
  d["gumbel_max_considered"] = c.gumbel_max_considered;
  d["gumbel_c_visit"] = c.gumbel_c_visit;
  d["gumbel_c_scale"] = c.gumbel_c_scale;
  d["max_nodes"] = c.max_nodes;
  d["seed"] = c.seed;
  return d;
}

}  // namespace qengine_py
