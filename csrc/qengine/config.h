// SearchConfig: the search rules of a forest (docs/search-semantics.md, section 2).
#pragma once

#include <cstdint>
#include <string>

namespace qengine {

// Selection rule (section 4.4).
enum class Rule : uint8_t {
  kUct,     // Qhat + c * sqrt(log(max(Ns, 1)) / n)
  kPuct,    // Qhat + c * P * sqrt(Ns) / (1 + n)                       (AlphaZero)
  kMuzero,  // Qhat + P * sqrt(Ns) / (1 + n) * (c1 + log((Ns + c2 + 1) / c2))
  kLats,    // unvisited children first (highest prior), then UCT
};

// First-play urgency of a child with n == 0 (section 4.2).
enum class Fpu : uint8_t {
  kInf,        // +inf (not normalised)
  kParent,     // Qpar
  kReduction,  // Qpar - fpu_reduction
  kConstant,   // fpu_value
};

// Q normalisation (section 4.3).
enum class QNorm : uint8_t {
  kNone,          // x
  kBounds,        // (x - value_min) / (value_max - value_min)
  kTreeMinmax,    // tree-wide min-max of edge values seen in backups, range floored
  kParentMinmax,  // min-max over Qpar and the visited children, range floored
};

// How a node's q aggregates the returns backed up through it (section 5.2).
enum class BackupMode : uint8_t {
  kMean,  // running float32 mean
  kMax,   // maximum
};

// One configuration per forest; defaults as in qengine.SearchConfig.
struct SearchConfig {
  Rule rule = Rule::kPuct;                // selection rule
  double c = 1.25;                        // exploration constant of uct, puct, lats
  double c1 = 1.25;                       // MuZero schedule, base
  double c2 = 19652.0;                    // MuZero schedule, scale
  Fpu fpu = Fpu::kInf;                    // first-play urgency
  double fpu_value = 0.0;                 // constant of Fpu::kConstant (raw value units)
  double fpu_reduction = 0.25;            // subtracted by Fpu::kReduction (raw value units)
  QNorm qnorm = QNorm::kNone;             // Q normalisation
  double value_min = 0.0;                 // lower bound of QNorm::kBounds
  double value_max = 1.0;                 // upper bound of QNorm::kBounds
  double minmax_floor = 1e-6;             // smallest range of the two min-max normalisations
  BackupMode backup = BackupMode::kMean;  // mean or max backup
  double discount = 1.0;                  // gamma in [0, 1]
  bool two_player = false;                // values alternate sign between plies
  double virtual_loss_value = 0.0;        // raw value assumed for an in-flight visit
  bool mark_exhausted = true;             // maintain the exhausted flag during backup (5.3)
  bool gumbel = false;                    // Gumbel root selection with sequential halving (4.5)
  int64_t gumbel_simulations = 64;        // simulation budget n of the halving schedule
  int64_t gumbel_max_considered = 16;     // m, the most actions considered at the root
  double gumbel_c_visit = 50.0;           // sigma(q) = (c_visit + max n) * c_scale * q
  double gumbel_c_scale = 1.0;            // see gumbel_c_visit
  int64_t max_nodes = int64_t{1} << 22;   // node cap per tree, in [1, 2^31 - 1]
  uint64_t seed = 0;                      // seed of all randomness (Gumbel noise)

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

}  // namespace qengine
