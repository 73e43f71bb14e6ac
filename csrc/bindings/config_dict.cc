#include "config_dict.h"

#include <pybind11/stl.h>

#include <string>
#include <vector>

#include "args.h"
#include "qengine/errors.h"

namespace qengine_py {

namespace py = pybind11;
using qengine::SearchConfig;

namespace {

// The kinds of QENGINE_CONFIG_FIELDS (qengine/config.h) and their names in the schema.
enum class Kind { ENUM, REAL, INT, BOOL, SEED };

const char* kind_name(Kind kind) {
  switch (kind) {
    case Kind::ENUM:
      return "str";
    case Kind::REAL:
      return "float";
    case Kind::INT:
    case Kind::SEED:
      return "int";
    case Kind::BOOL:
      return "bool";
  }
  return "?";
}

// Every field name, in table order.
constexpr const char* kNames[] = {
#define QENGINE_CONFIG_NAME(name, type, kind, value, doc) #name,
    QENGINE_CONFIG_FIELDS(QENGINE_CONFIG_NAME)
#undef QENGINE_CONFIG_NAME
};

// One field's value from the dict, type-checked (the rules of args.h) but not range-checked.
struct Value {
  bool present = false;  // the key is in the dict
  std::string text;      // ENUM
  double real = 0.0;     // REAL
  Int integer;           // INT
  Uint seed;             // SEED
  bool flag = false;     // BOOL
};

void read(const py::handle& v, Kind kind, const std::string& name, Value* out) {
  out->present = true;
  switch (kind) {
    case Kind::ENUM:
      out->text = str_arg(v, "SearchConfig", name.c_str());
      break;
    case Kind::REAL:
      out->real = real_arg(v, "SearchConfig", name.c_str());
      break;
    case Kind::INT:
      out->integer = int_arg(v, "SearchConfig", name.c_str());
      break;
    case Kind::SEED:
      out->seed = uint64_arg(v, "SearchConfig", name.c_str());
      break;
    case Kind::BOOL:
      out->flag = bool_arg(v, "SearchConfig", name.c_str());
      break;
  }
}

std::string choices(const std::vector<std::string>& names) {
  std::string out;
  for (const std::string& n : names) out += (out.empty() ? "'" : ", '") + n + "'";
  return out;
}

// The checked values of each kind, stored into a SearchConfig member of type T.
template <class E>
void store_enum(const Value& v, const char* key, E* out) {
  if (!qengine::parse(v.text, out)) {
    throw qengine::ValueError(std::string("config['") + key + "'] = '" + v.text +
                              "'; choose one of " + choices(qengine::enum_names<E>()));
  }
}
void store(const Value& v, const char*, Kind, double* out) { *out = v.real; }
void store(const Value& v, const char*, Kind, bool* out) { *out = v.flag; }
void store(const Value& v, const char* key, Kind, int64_t* out) {
  if (!v.integer.exact) {
    throw qengine::ValueError(std::string("config['") + key + "'] is outside the int64 range");
  }
  *out = v.integer.value;
}
void store(const Value& v, const char* key, Kind, uint64_t* out) {
  if (!v.seed.exact) {
    throw qengine::ValueError(std::string("config['") + key + "'] must lie in [0, 2**64)");
  }
  *out = v.seed.value;
}
template <class E>
void store(const Value& v, const char* key, Kind, E* out) {
  store_enum(v, key, out);
}

// The default of a field as a Python value.
template <class T>
py::object to_python(const T& value) {
  return py::cast(value);
}
py::object to_python(qengine::Rule v) { return py::str(qengine::to_string(v)); }
py::object to_python(qengine::Fpu v) { return py::str(qengine::to_string(v)); }
py::object to_python(qengine::QNorm v) { return py::str(qengine::to_string(v)); }
py::object to_python(qengine::BackupMode v) { return py::str(qengine::to_string(v)); }

template <class T>
py::tuple choices_of(const T&) {
  return py::tuple();
}
template <class E, class = std::enable_if_t<std::is_enum<E>::value>>
py::tuple choices_of(const E*) {
  return py::cast(qengine::enum_names<E>());
}

}  // namespace

SearchConfig config_from_dict(const py::handle& config) {
  if (!py::isinstance<py::dict>(config)) {
    throw qengine::TypeError("config must be a dict (SearchConfig.to_dict()), got " +
                             type_name(config));
  }
  const py::dict d = py::reinterpret_borrow<py::dict>(config);
  // 1. Every key names a field (a key that is not a str names none).
  for (auto item : d) {
    bool known = false;
    if (PyUnicode_Check(item.first.ptr())) {
      const std::string key = str_arg(item.first, "config", "key");
      for (const char* name : kNames) known = known || key == name;
    }
    if (!known) {
      throw qengine::ValueError("unknown config key " + std::string(py::repr(item.first)) +
                                "; the keys are those of qengine.SearchConfig");
    }
  }
  // 2. Types, field by field.
  Value values[sizeof(kNames) / sizeof(kNames[0])];
  {
    size_t i = 0;
#define QENGINE_READ(name, type, kind, value, doc)                                      \
  if (d.contains(#name)) read(d[#name], Kind::kind, "config['" #name "']", &values[i]); \
  ++i;
    QENGINE_CONFIG_FIELDS(QENGINE_READ)
#undef QENGINE_READ
  }
  // 3. Values: the enum names and the integer ranges, then SearchConfig::validate.
  SearchConfig c;
  {
    size_t i = 0;
#define QENGINE_STORE(name, type, kind, value, doc)                    \
  if (values[i].present) store(values[i], #name, Kind::kind, &c.name); \
  ++i;
    QENGINE_CONFIG_FIELDS(QENGINE_STORE)
#undef QENGINE_STORE
  }
  c.validate();
  return c;
}

py::dict config_to_dict(const SearchConfig& c) {
  py::dict d;
#define QENGINE_TO_DICT(name, type, kind, value, doc) d[#name] = to_python(c.name);
  QENGINE_CONFIG_FIELDS(QENGINE_TO_DICT)
#undef QENGINE_TO_DICT
  return d;
}

py::tuple config_schema() {
  const SearchConfig defaults;
  py::list fields;
#define QENGINE_SCHEMA(name, type, kind, value, doc)                                       \
  fields.append(py::dict(py::arg("name") = #name, py::arg("kind") = kind_name(Kind::kind), \
                         py::arg("default") = to_python(defaults.name),                    \
                         py::arg("choices") = choices_of(&defaults.name), py::arg("doc") = doc));
  QENGINE_CONFIG_FIELDS(QENGINE_SCHEMA)
#undef QENGINE_SCHEMA
  return py::tuple(fields);
}

}  // namespace qengine_py
