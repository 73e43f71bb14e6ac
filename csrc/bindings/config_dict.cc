#include "config_dict.h"

#include <string>

#include "args.h"
#include "qengine/errors.h"

namespace qengine_py {

namespace py = pybind11;
using qengine::SearchConfig;

namespace {

// How a field's value is checked (the rules of args.h; SearchConfig applies the same).
enum class Kind { kEnum, kReal, kInt, kBool, kSeed };

struct FieldSpec {
  const char* name;  // the key, a field of qengine.SearchConfig
  Kind kind;         // its type
};

// Every field, in the order of qengine.SearchConfig (the order the checks run in).
constexpr FieldSpec kFields[] = {
    {"rule", Kind::kEnum},
    {"c", Kind::kReal},
    {"c1", Kind::kReal},
    {"c2", Kind::kReal},
    {"fpu", Kind::kEnum},
    {"fpu_value", Kind::kReal},
    {"fpu_reduction", Kind::kReal},
    {"qnorm", Kind::kEnum},
    {"value_min", Kind::kReal},
    {"value_max", Kind::kReal},
    {"minmax_floor", Kind::kReal},
    {"backup", Kind::kEnum},
    {"discount", Kind::kReal},
    {"two_player", Kind::kBool},
    {"virtual_loss_value", Kind::kReal},
    {"mark_exhausted", Kind::kBool},
    {"gumbel", Kind::kBool},
    {"gumbel_simulations", Kind::kInt},
    {"gumbel_max_considered", Kind::kInt},
    {"gumbel_c_visit", Kind::kReal},
    {"gumbel_c_scale", Kind::kReal},
    {"max_nodes", Kind::kInt},
    {"seed", Kind::kSeed},
};
constexpr size_t kNumFields = sizeof(kFields) / sizeof(kFields[0]);

// A checked value of one field.
struct Value {
  bool present = false;  // the key is in the dict
  std::string text;      // kEnum
  double real = 0.0;     // kReal
  Int integer;           // kInt
  Uint seed;             // kSeed
  bool flag = false;     // kBool
};

template <class E>
E parse_enum(const Value& v, const char* key, const char* choices) {
  E out;
  if (!qengine::parse(v.text, &out)) {
    throw qengine::ValueError(std::string("config['") + key + "'] = '" + v.text +
                              "'; choose one of " + choices);
  }
  return out;
}

int64_t int64_value(const Value& v, const char* key) {
  if (!v.integer.exact) {
    throw qengine::ValueError(std::string("config['") + key + "'] is outside the int64 range");
  }
  return v.integer.value;
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
      for (const FieldSpec& f : kFields) known = known || key == f.name;
    }
    if (!known) {
      throw qengine::ValueError("unknown config key " + std::string(py::repr(item.first)) +
                                "; the keys are those of qengine.SearchConfig");
    }
  }
  // 2. Types, field by field.
  Value values[kNumFields];
  for (size_t i = 0; i < kNumFields; ++i) {
    const FieldSpec& f = kFields[i];
    if (!d.contains(f.name)) continue;
    const py::handle v = d[f.name];
    const std::string name = std::string("config['") + f.name + "']";
    Value& out = values[i];
    out.present = true;
    switch (f.kind) {
      case Kind::kEnum:
        out.text = str_arg(v, "SearchConfig", name.c_str());
        break;
      case Kind::kReal:
        out.real = real_arg(v, "SearchConfig", name.c_str());
        break;
      case Kind::kInt:
        out.integer = int_arg(v, "SearchConfig", name.c_str());
        break;
      case Kind::kSeed:
        out.seed = uint64_arg(v, "SearchConfig", name.c_str());
        break;
      case Kind::kBool:
        out.flag = bool_arg(v, "SearchConfig", name.c_str());
        break;
    }
  }
  // 3. Values: the enum names and the integer ranges, then SearchConfig::validate.
  SearchConfig c;
  auto at = [&](const char* key) -> const Value* {
    for (size_t i = 0; i < kNumFields; ++i) {
      if (std::string(kFields[i].name) == key) return values[i].present ? &values[i] : nullptr;
    }
    return nullptr;
  };
  if (const Value* v = at("rule"))
    c.rule = parse_enum<qengine::Rule>(*v, "rule", "'uct', 'puct', 'muzero', 'lats'");
  if (const Value* v = at("c")) c.c = v->real;
  if (const Value* v = at("c1")) c.c1 = v->real;
  if (const Value* v = at("c2")) c.c2 = v->real;
  if (const Value* v = at("fpu"))
    c.fpu = parse_enum<qengine::Fpu>(*v, "fpu", "'inf', 'parent', 'reduction', 'constant'");
  if (const Value* v = at("fpu_value")) c.fpu_value = v->real;
  if (const Value* v = at("fpu_reduction")) c.fpu_reduction = v->real;
  if (const Value* v = at("qnorm")) {
    c.qnorm =
        parse_enum<qengine::QNorm>(*v, "qnorm", "'none', 'bounds', 'tree_minmax', 'parent_minmax'");
  }
  if (const Value* v = at("value_min")) c.value_min = v->real;
  if (const Value* v = at("value_max")) c.value_max = v->real;
  if (const Value* v = at("minmax_floor")) c.minmax_floor = v->real;
  if (const Value* v = at("backup"))
    c.backup = parse_enum<qengine::BackupMode>(*v, "backup", "'mean', 'max'");
  if (const Value* v = at("discount")) c.discount = v->real;
  if (const Value* v = at("two_player")) c.two_player = v->flag;
  if (const Value* v = at("virtual_loss_value")) c.virtual_loss_value = v->real;
  if (const Value* v = at("mark_exhausted")) c.mark_exhausted = v->flag;
  if (const Value* v = at("gumbel")) c.gumbel = v->flag;
  if (const Value* v = at("gumbel_simulations"))
    c.gumbel_simulations = int64_value(*v, "gumbel_simulations");
  if (const Value* v = at("gumbel_max_considered"))
    c.gumbel_max_considered = int64_value(*v, "gumbel_max_considered");
  if (const Value* v = at("gumbel_c_visit")) c.gumbel_c_visit = v->real;
  if (const Value* v = at("gumbel_c_scale")) c.gumbel_c_scale = v->real;
  if (const Value* v = at("max_nodes")) {
    if (!v->integer.exact) {
      throw qengine::ValueError("SearchConfig: max_nodes must lie in [1, 2**31 - 1]");
    }
    c.max_nodes = v->integer.value;
  }
  if (const Value* v = at("seed")) {
    if (!v->seed.exact) throw qengine::ValueError("config['seed'] must lie in [0, 2**64)");
    c.seed = v->seed.value;
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
