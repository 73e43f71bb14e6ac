// Backup (tell), cancel and the exhausted flag (docs/search-semantics.md, 5.2-5.4).
#pragma once

#include <cfloat>
#include <cmath>
#include <cstdint>

#include "qengine/config.h"
#include "qengine/tree.h"

namespace qengine {

// The smallest double that rounds to float32 infinity: FLT_MAX plus half an ulp (2**128 - 2**103).
// 3.4028235e38, FLT_MAX as printed, lies below it and rounds to FLT_MAX.
constexpr double kFloat32Overflow = 0x1.ffffffp+127;

// True when v is finite and stays finite once rounded to float32 (the values backup accepts).
inline bool finite_as_float32(double v) { return std::fabs(v) < kFloat32Overflow; }

// v rounded to float32, saturating at +-FLT_MAX instead of overflowing to infinity (the return of
// an ancestor can leave the float32 range through the rewards on the path; docs 5.2).
inline float saturate_float32(double v) {
  if (v >= static_cast<double>(FLT_MAX)) return FLT_MAX;
  if (v <= -static_cast<double>(FLT_MAX)) return -FLT_MAX;
  return static_cast<float>(v);
}

// Backs value `value` up from node x to the root (5.2). `tell`: remove one in-flight count per
// node on the path (an asked leaf); false for the terminal hits of ask. No validation beyond the
// caller's (value finite as float32). Visit counts saturate at kMaxVisits; every float32 result
// stays finite (saturated returns, a double mean step where the float32 one would overflow).
void backup_leaf(Tree& tree, const SearchConfig& config, int32_t x, double value, bool tell);

// backup_leaf one node at a time: step() updates `node` and moves to its parent (false once the
// root is done). Lets a batch interleave the walks of different trees (Forest::backup), so
// their parent-chasing cache misses overlap; each walk does exactly what backup_leaf does.
struct BackupWalk {
  BackupWalk() = default;
  BackupWalk(const SearchConfig& config, int32_t x, double value, bool tell);
  bool step(Tree& tree);

  double ds = 0.0;                  // discount * sign
  double g = 0.0;                   // the return at `node`
  int32_t node = kNoNode;           // the next node to update
  uint16_t in_flight_step = 0;      // 1 for a tell, 0 for a terminal hit
  bool mean = true;                 // BackupMode::kMean (else max)
  bool mark = true;                 // SearchConfig::mark_exhausted
  bool came_from_exhausted = true;  // the leaf itself is always checked
};

// Removes one in-flight count on every node of the path root..x (5.4). No validation.
void cancel_leaf(Tree& tree, int32_t x);

// Adds one in-flight count on every node of the path root..x (a leaf returned by ask).
void add_in_flight(Tree& tree, int32_t x);

// True when expanded node s has every child exhausted.
bool all_children_exhausted(const Tree& tree, int32_t s);

// Terminal and visited, or expanded with every child exhausted (5.3).
bool qualifies_exhausted(const Tree& tree, int32_t s);

// Every ancestor of `node` (exclusive), bottom-up to the root, that qualifies gets the flag
// (prune, 5.8).
void recheck_ancestors_exhausted(Tree& tree, int32_t node);

// `node` and every ancestor up to the root: the flag is cleared where it no longer qualifies
// (after widening, 5.3).
void clear_exhausted_upwards(Tree& tree, int32_t node);

}  // namespace qengine
