// SearchConfig: the search rules of a forest (docs/search-semantics.md, section 2).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace qengine {

// The enums, one table each: X(enumerator, "name"). The names are the strings of
// qengine.SearchConfig; to_string, parse and the schema's choices are generated from these.
#define QENGINE_RULES(X) \
  X(kUct, "uct")         \
  X(kPuct, "puct")       \
  X(kMuzero, "muzero")   \
  X(kLats, "lats")
#define QENGINE_FPUS(X)      \
  X(kInf, "inf")             \
  X(kParent, "parent")       \
  X(kReduction, "reduction") \
  X(kConstant, "constant")
#define QENGINE_QNORMS(X)       \
  X(kNone, "none")              \
  X(kBounds, "bounds")          \
  X(kTreeMinmax, "tree_minmax") \
  X(kParentMinmax, "parent_minmax")
#define QENGINE_BACKUPS(X) \
  X(kMean, "mean")         \
  X(kMax, "max")

#define QENGINE_ENUMERATOR(value, name) value,
// Selection rule (section 4.4):
//   uct:    Qhat + c * sqrt(log(max(Ns, 1)) / n)
//   puct:   Qhat + c * P * sqrt(Ns) / (1 + n)                       (AlphaZero)
//   muzero: Qhat + P * sqrt(Ns) / (1 + n) * (c1 + log((Ns + c2 + 1) / c2))
//   lats:   unvisited children first (highest prior), then UCT
enum class Rule : uint8_t { QENGINE_RULES(QENGINE_ENUMERATOR) };
// First-play urgency of a child with n == 0 (section 4.2): +inf (not normalised), Qpar,
// Qpar - fpu_reduction, fpu_value.
enum class Fpu : uint8_t { QENGINE_FPUS(QENGINE_ENUMERATOR) };
// Q normalisation (section 4.3): x; (x - value_min) / (value_max - value_min); tree-wide min-max
// of edge values seen in backups; min-max over Qpar and the visited children (ranges floored).
enum class QNorm : uint8_t { QENGINE_QNORMS(QENGINE_ENUMERATOR) };
// How a node's q aggregates the returns backed up through it (section 5.2): running float32
// mean, or maximum.
enum class BackupMode : uint8_t { QENGINE_BACKUPS(QENGINE_ENUMERATOR) };
#undef QENGINE_ENUMERATOR

// Every field of SearchConfig, in the order of qengine.SearchConfig (the order the checks run
// in): X(name, C++ type, kind, default, doc). kind is ENUM (a str naming an enumerator), REAL
// (a finite double), INT (int64), BOOL or SEED (uint64). The struct, its dict conversion, the
// finiteness checks and the schema exported to Python (qengine._core.CONFIG_FIELDS, which
// qengine.SearchConfig is checked against) are generated from this table.
#define QENGINE_CONFIG_FIELDS(X)                                                           \
  X(rule, Rule, ENUM, Rule::kPuct, "selection rule")                                       \
  X(c, double, REAL, 1.25, "exploration constant of uct, puct, lats")                      \
  X(c1, double, REAL, 1.25, "MuZero schedule, base")                                       \
  X(c2, double, REAL, 19652.0, "MuZero schedule, scale")                                   \
  X(fpu, Fpu, ENUM, Fpu::kInf, "first-play urgency")                                       \
  X(fpu_value, double, REAL, 0.0, "constant of fpu 'constant' (raw value units)")          \
  X(fpu_reduction, double, REAL, 0.25, "subtracted by fpu 'reduction' (raw value units)")  \
  X(qnorm, QNorm, ENUM, QNorm::kNone, "Q normalisation")                                   \
  X(value_min, double, REAL, 0.0, "lower bound of qnorm 'bounds'")                         \
  X(value_max, double, REAL, 1.0, "upper bound of qnorm 'bounds'")                         \
  X(minmax_floor, double, REAL, 1e-6, "smallest range of the two min-max normalisations")  \
  X(backup, BackupMode, ENUM, BackupMode::kMean, "mean or max backup")                     \
  X(discount, double, REAL, 1.0, "gamma in [0, 1]")                                        \
  X(two_player, bool, BOOL, false, "values alternate sign between plies")                  \
  X(virtual_loss_value, double, REAL, 0.0, "raw value assumed for an in-flight visit")     \
  X(mark_exhausted, bool, BOOL, true, "maintain the exhausted flag during backup (5.3)")   \
  X(gumbel, bool, BOOL, false, "Gumbel root selection with sequential halving (4.5)")      \
  X(gumbel_simulations, int64_t, INT, 64, "simulation budget n of the halving schedule")   \
  X(gumbel_max_considered, int64_t, INT, 16, "m, the most actions considered at the root") \
  X(gumbel_c_visit, double, REAL, 50.0, "sigma(q) = (c_visit + max n) * c_scale * q")      \
  X(gumbel_c_scale, double, REAL, 1.0, "see gumbel_c_visit")                               \
  X(max_nodes, int64_t, INT, int64_t{1} << 22, "node cap per tree, in [1, 2^31 - 1]")      \
  X(seed, uint64_t, SEED, 0, "seed of all randomness (Gumbel noise)")

// One configuration per forest; defaults as in qengine.SearchConfig.
struct SearchConfig {
#define QENGINE_CONFIG_MEMBER(name, type, kind, value, doc) type name = value;
  QENGINE_CONFIG_FIELDS(QENGINE_CONFIG_MEMBER)
#undef QENGINE_CONFIG_MEMBER

  // Throws ValueError naming the first field that is out of range (section 2).
  void validate() const;

  // -1 in two-player mode, +1 otherwise.
  double sign() const { return two_player ? -1.0 : 1.0; }
};

// Enum <-> string (the strings of qengine.SearchConfig). Parsers return false if unknown.
const char* to_string(Rule value);
const char* to_string(Fpu value);
const char* to_string(QNorm value);
const char* to_string(BackupMode value);
bool parse(const std::string& text, Rule* out);
bool parse(const std::string& text, Fpu* out);
bool parse(const std::string& text, QNorm* out);
bool parse(const std::string& text, BackupMode* out);
// Every name of an enum, in declaration order (the choices of the schema).
template <class E>
std::vector<std::string> enum_names();
template <>
std::vector<std::string> enum_names<Rule>();
template <>
std::vector<std::string> enum_names<Fpu>();
template <>
std::vector<std::string> enum_names<QNorm>();
template <>
std::vector<std::string> enum_names<BackupMode>();

}  // namespace qengine
