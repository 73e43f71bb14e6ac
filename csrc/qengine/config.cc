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
  require_finite(c, "c");
  require_finite(c1, "c1");
  require_finite(c2, "c2");
  require_finite(fpu_value, "fpu_value");
  require_finite(fpu_reduction, "fpu_reduction");
  require_finite(value_min, "value_min");
  require_finite(value_max, "value_max");
  require_finite(minmax_floor, "minmax_floor");
  require_finite(discount, "discount");
  require_finite(virtual_loss_value, "virtual_loss_value");
  require_finite(gumbel_c_visit, "gumbel_c_visit");
  require_finite(gumbel_c_scale, "gumbel_c_scale");
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

const char* to_string(Rule value) {
  switch (value) {
    case Rule::kUct:
      return "uct";
    case Rule::kPuct:
      return "puct";
    case Rule::kMuzero:
      return "muzero";
    case Rule::kLats:
      return "lats";
  }
  return "?";
}

const char* to_string(Fpu value) {
  switch (value) {
    case Fpu::kInf:
      return "inf";
    case Fpu::kParent:
      return "parent";
    case Fpu::kReduction:
      return "reduction";
    case Fpu::kConstant:
      return "constant";
  }
  return "?";
}

const char* to_string(QNorm value) {
  switch (value) {
    case QNorm::kNone:
      return "none";
    case QNorm::kBounds:
      return "bounds";
    case QNorm::kTreeMinmax:
      return "tree_minmax";
    case QNorm::kParentMinmax:
      return "parent_minmax";
  }
  return "?";
}

const char* to_string(BackupMode value) {
  switch (value) {
    case BackupMode::kMean:
      return "mean";
    case BackupMode::kMax:
      return "max";
  }
  return "?";
}

namespace {
template <class E, int N>
bool parse_enum(const std::string& text, const E (&values)[N], E* out) {
  for (E value : values) {
    if (text == to_string(value)) {
      *out = value;
      return true;
    }
  }
  return false;
}
}  // namespace

bool parse(const std::string& text, Rule* out) {
  static constexpr Rule kAll[] = {Rule::kUct, Rule::kPuct, Rule::kMuzero, Rule::kLats};
  return parse_enum(text, kAll, out);
}

bool parse(const std::string& text, Fpu* out) {
  static constexpr Fpu kAll[] = {Fpu::kInf, Fpu::kParent, Fpu::kReduction, Fpu::kConstant};
  return parse_enum(text, kAll, out);
}

bool parse(const std::string& text, QNorm* out) {
  static constexpr QNorm kAll[] = {QNorm::kNone, QNorm::kBounds, QNorm::kTreeMinmax,
                                   QNorm::kParentMinmax};
  return parse_enum(text, kAll, out);
}

bool parse(const std::string& text, BackupMode* out) {
  static constexpr BackupMode kAll[] = {BackupMode::kMean, BackupMode::kMax};
  return parse_enum(text, kAll, out);
}

}  // namespace qengine
