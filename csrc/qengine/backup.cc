#include "qengine/backup.h"

#include <algorithm>
#include <cmath>

#include "qengine/select.h"

namespace qengine {

bool all_children_exhausted(const Tree& t, int32_t s) {
  const int32_t first = t.first_child[s];
  const int32_t end = first + t.num_children[s];
  if (first == end) return false;
  for (int32_t c = first; c < end; ++c) {
    if (!(t.status[c] & kExhaustedBit)) return false;
  }
  return true;
}

BackupWalk::BackupWalk(const SearchConfig& cfg, int32_t x, double value, bool tell)
    : ds(cfg.discount * cfg.sign()),
      g(value),
      node(x),
      in_flight_step(tell ? 1 : 0),
      mean(cfg.backup == BackupMode::kMean),
      mark(cfg.mark_exhausted) {}

bool BackupWalk::step(Tree& t) {
  t.status[node] = static_cast<uint16_t>(t.status[node] - in_flight_step);
  // Saturates at 2**31 - 1 instead of wrapping: later backups keep averaging with that weight.
  const int32_t visits = t.visits[node] < kMaxVisits ? ++t.visits[node] : kMaxVisits;
  const float g32 = saturate_float32(g);
  if (visits == 1) {
    t.q[node] = g32;
  } else if (mean) {
    const float q = t.q[node];
    const float diff = g32 - q;
    const float step = diff / static_cast<float>(visits);
    float next = q + step;
    if (!std::isfinite(next)) {
      // g32 - q overflowed float32 (returns near +-FLT_MAX of opposite signs): the same step in
      // double, which cannot overflow, rounded once; the mean lies between q and g32.
      next = static_cast<float>(static_cast<double>(q) +
                                (static_cast<double>(g32) - static_cast<double>(q)) /
                                    static_cast<double>(visits));
    }
    t.q[node] = next;
  } else {
    t.q[node] = std::max(t.q[node], g32);
  }
  if (node != kRoot) {
    const double qraw = edge_value(t, ds, node);
    t.minmax_lo = std::min(t.minmax_lo, qraw);
    t.minmax_hi = std::max(t.minmax_hi, qraw);
  }
  if (mark) {
    uint16_t& status = t.status[node];
    if (status & kExhaustedBit) {
      came_from_exhausted = true;
    } else if (status & kTerminalBit) {
      status |= kExhaustedBit;  // visits > 0 now
      came_from_exhausted = true;
    } else if (came_from_exhausted && all_children_exhausted(t, node)) {
      status |= kExhaustedBit;
      came_from_exhausted = true;
    } else {
      came_from_exhausted = false;
    }
  }
  if (node == kRoot) return false;
  g = static_cast<double>(t.reward[node]) + ds * g;
  node = t.parent[node];
  return true;
}

void backup_leaf(Tree& t, const SearchConfig& cfg, int32_t x, double value, bool tell) {
  BackupWalk walk(cfg, x, value, tell);
  while (walk.step(t)) {
  }
}

void cancel_leaf(Tree& t, int32_t x) {
  for (int32_t node = x; node != kNoNode; node = t.parent[node]) {
    t.status[node] = static_cast<uint16_t>(t.status[node] - 1);
  }
}

void add_in_flight(Tree& t, int32_t x) {
  for (int32_t node = x; node != kNoNode; node = t.parent[node]) {
    t.status[node] = static_cast<uint16_t>(t.status[node] + 1);
  }
}

bool qualifies_exhausted(const Tree& t, int32_t s) {
  if (t.terminal(s) && t.visits[s] > 0) return true;
  return all_children_exhausted(t, s);
}

void recheck_ancestors_exhausted(Tree& t, int32_t node) {
  for (int32_t a = t.parent[node]; a != kNoNode; a = t.parent[a]) {
    if (!t.exhausted(a) && qualifies_exhausted(t, a)) t.status[a] |= kExhaustedBit;
  }
}

void clear_exhausted_upwards(Tree& t, int32_t node) {
  for (int32_t a = node; a != kNoNode; a = t.parent[a]) {
    if (t.exhausted(a) && !qualifies_exhausted(t, a)) {
      t.status[a] = static_cast<uint16_t>(t.status[a] & ~kExhaustedBit);
    }
  }
}

}  // namespace qengine
