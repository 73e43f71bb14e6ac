#include "qengine/config.h"

#include <cmath>
#include <string>

#include "qengine/errors.h"

namespace qengine {
namespace {

void require(bool ok, const std::string& message) {
  if (!ok) throw ValueError("SearchConfig: " + message);
}

void require_finite(double value, const char* name) {
  require(std::isfinite(value),
          std::string(name) + " must be finite, got " + std::to_string(value));
}

}  // namespace

void SearchConfig::validate() const {
#define QENGINE_IF_REAL_REAL(...) __VA_ARGS__
#define QENGINE_IF_REAL_ENUM(...)
#define QENGINE_IF_REAL_INT(...)
#define QENGINE_IF_REAL_BOOL(...)
#define QENGINE_IF_REAL_SEED(...)
#define QENGINE_CHECK_FINITE(name, type, kind, value, doc) \
  QENGINE_IF_REAL_##kind(require_finite(static_cast<double>(name), #name);)
  QENGINE_CONFIG_FIELDS(QENGINE_CHECK_FINITE)
#undef QENGINE_CHECK_FINITE
  require(c >= 0, "c must be >= 0");
  require(c1 >= 0, "c1 must be >= 0");
  require(c2 > 0, "c2 must be > 0");
  require(discount >= 0 && discount <= 1, "discount must lie in [0, 1]");
  require(value_max > value_min, "value_max must be greater than value_min");
  require(minmax_floor > 0, "minmax_floor must be > 0");
  require(gumbel_simulations >= 1, "gumbel_simulations must be >= 1");
  require(gumbel_max_considered >= 1, "gumbel_max_considered must be >= 1");
  require(max_nodes >= 1 && max_nodes <= 2147483647, "max_nodes must lie in [1, 2**31 - 1]");
}

// to_string, parse and enum_names of one enum, from its table (E names the enum inside).
#define QENGINE_TO_STRING_CASE(value, name) \
  case E::value:                            \
    return name;
#define QENGINE_ENUM_VALUE(value, name) E::value,
#define QENGINE_ENUM_NAME(value, name) name,
#define QENGINE_ENUM_FUNCTIONS(Enum, TABLE)                  \
  const char* to_string(Enum value) {                        \
    using E = Enum;                                          \
    switch (value) { TABLE(QENGINE_TO_STRING_CASE) }         \
    return "?";                                              \
  }                                                          \
  bool parse(const std::string& text, Enum* out) {           \
    using E = Enum;                                          \
    static constexpr E kAll[] = {TABLE(QENGINE_ENUM_VALUE)}; \
    for (E value : kAll) {                                   \
      if (text == to_string(value)) {                        \
        *out = value;                                        \
        return true;                                         \
      }                                                      \
    }                                                        \
    return false;                                            \
  }                                                          \
  template <>                                                \
  std::vector<std::string> enum_names<Enum>() {              \
    return {TABLE(QENGINE_ENUM_NAME)};                       \
  }

QENGINE_ENUM_FUNCTIONS(Rule, QENGINE_RULES)
QENGINE_ENUM_FUNCTIONS(Fpu, QENGINE_FPUS)
QENGINE_ENUM_FUNCTIONS(QNorm, QENGINE_QNORMS)
QENGINE_ENUM_FUNCTIONS(BackupMode, QENGINE_BACKUPS)

#undef QENGINE_ENUM_FUNCTIONS
#undef QENGINE_ENUM_NAME
#undef QENGINE_ENUM_VALUE
#undef QENGINE_TO_STRING_CASE

}  // namespace qengine
