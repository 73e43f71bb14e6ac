#include "qengine/pairs.h"

#include <algorithm>
#include <functional>
#include <utility>

#include "qengine/select.h"

namespace qengine {

void PairsResult::clear() {
  tree.clear();
  parent.clear();
  chosen.clear();
  rejected.clear();
  depth.clear();
  q_chosen.clear();
  q_rejected.clear();
}

void PairsResult::append(const PairsResult& o) {
  tree.insert(tree.end(), o.tree.begin(), o.tree.end());
  parent.insert(parent.end(), o.parent.begin(), o.parent.end());
  chosen.insert(chosen.end(), o.chosen.begin(), o.chosen.end());
  rejected.insert(rejected.end(), o.rejected.begin(), o.rejected.end());
  depth.insert(depth.end(), o.depth.begin(), o.depth.end());
  q_chosen.insert(q_chosen.end(), o.q_chosen.begin(), o.q_chosen.end());
  q_rejected.insert(q_rejected.end(), o.q_rejected.begin(), o.q_rejected.end());
}

int32_t best_child(const Tree& t, const SearchConfig& cfg, int32_t s) {
  const double ds = cfg.discount * cfg.sign();
  int32_t best = kNoNode;
  int32_t best_visits = 0;
  double best_q = 0.0;
  int32_t solved = kNoNode;  // visited terminal child with the highest Qraw (ties: lower id)
  double solved_q = 0.0;
  const int32_t first = t.first_child[s];
  for (int32_t c = first, end = first + t.num_children[s]; c < end; ++c) {
    const int32_t v = t.visits[c];
    if (v <= 0) continue;
    const double q = edge_value(t, ds, c);
    if (best == kNoNode || v > best_visits || (v == best_visits && q > best_q)) {
      best = c;
      best_visits = v;
      best_q = q;
    }
    if (t.terminal(c) && (solved == kNoNode || q > solved_q)) {
      solved = c;
      solved_q = q;
    }
  }
  // A visited terminal child's value is exact: it overrides the visit count when strictly better.
  if (solved != kNoNode && solved_q > best_q) return solved;
  return best;
}

std::vector<int32_t> best_path(const Tree& t, const SearchConfig& cfg) {
  std::vector<int32_t> path{kRoot};
  for (int32_t c = best_child(t, cfg, kRoot); c != kNoNode; c = best_child(t, cfg, c)) {
    path.push_back(c);
  }
  return path;
}

namespace {

void emit(const Tree& t, int32_t tree_id, int32_t s, int32_t chosen, double qc, int32_t rejected,
          double qr, double min_q_gap, PairsResult* out) {
  if (!(qc - qr >= min_q_gap) || !(qc > qr)) return;
  out->tree.push_back(tree_id);
  out->parent.push_back(s);
  out->chosen.push_back(chosen);
  out->rejected.push_back(rejected);
  out->depth.push_back(t.depth[s]);
  out->q_chosen.push_back(qc);
  out->q_rejected.push_back(qr);
}

}  // namespace

std::vector<double> edge_values(const Tree& t, const SearchConfig& cfg) {
  const double ds = cfg.discount * cfg.sign();
  std::vector<double> out(static_cast<size_t>(t.size));
  for (int32_t c = 0; c < t.size; ++c) out[static_cast<size_t>(c)] = edge_value(t, ds, c);
  return out;
}

namespace {

// Mode kAll: at every alive internal node (id order), the eligible children sorted by Qraw
// (highest first, ties: lower id); a pair for every two of them, the higher first.
void all_sibling_pairs(const Tree& t, double ds, int32_t tree_id, double min_q_gap,
                       const std::function<bool(int32_t)>& eligible,
                       const std::function<bool(int32_t)>& depth_ok, PairsResult* out) {
  std::vector<std::pair<double, int32_t>> kids;
  for (int32_t s = 0; s < t.size; ++s) {
    if (t.parent[s] == kDeadSlot || t.first_child[s] < 0 || !depth_ok(s)) continue;
    kids.clear();
    const int32_t first = t.first_child[s], end = first + t.num_children[s];
    for (int32_t c = first; c < end; ++c) {
      if (eligible(c)) kids.emplace_back(edge_value(t, ds, c), c);
    }
    std::sort(kids.begin(), kids.end(), [](const auto& a, const auto& b) {
      return a.first > b.first || (a.first == b.first && a.second < b.second);
    });
    for (size_t i = 0; i < kids.size(); ++i) {
      for (size_t j = i + 1; j < kids.size(); ++j) {
        emit(t, tree_id, s, kids[i].second, kids[i].first, kids[j].second, kids[j].first, min_q_gap,
             out);
      }
    }
  }
}

}  // namespace

void tree_pairs(const Tree& t, const SearchConfig& cfg, int32_t tree_id, PairMode mode,
                int64_t min_visits, double min_q_gap, int64_t max_depth, const uint8_t* mask,
                PairsResult* out) {
  const double ds = cfg.discount * cfg.sign();
  const int64_t threshold = std::max<int64_t>(min_visits, 1);
  auto depth_ok = [&](int32_t s) { return max_depth < 0 || t.depth[s] <= max_depth; };
  auto eligible = [&](int32_t c) { return mask ? mask[c] != 0 : t.visits[c] >= threshold; };
  if (mode == PairMode::kAll) {
    all_sibling_pairs(t, ds, tree_id, min_q_gap, eligible, depth_ok, out);
    return;
  }
  if (mode == PairMode::kMaxMin) {
    // Children blocks are the maximal runs of alive slots with one parent, and they cover every
    // alive non-root node; so one sequential pass over the records finds every block and its
    // parent without touching the parent (a scan over s reads the records, then jumps to each
    // block: 1.5x the time with hot records). The results are put in place by parent id and
    // emitted in increasing s, the order of the contract.
    struct Found {
      int32_t hi, lo;
      double qhi, qlo;
    };
    thread_local std::vector<Found> found;
    thread_local std::vector<uint64_t> marked;
    if (found.size() < static_cast<size_t>(t.size)) found.resize(static_cast<size_t>(t.size));
    marked.assign((static_cast<size_t>(t.size) + 63) / 64, 0);
    for (int32_t c = 1; c < t.size;) {
      const int32_t s = t.parent[c];
      if (s == kDeadSlot) {
        ++c;
        continue;
      }
      int32_t hi = kNoNode, lo = kNoNode, num_eligible = 0;
      double qhi = 0.0, qlo = 0.0;
      for (; c < t.size && t.parent[c] == s; ++c) {
        if (!eligible(c)) continue;
        ++num_eligible;
        const double q = edge_value(t, ds, c);
        if (hi == kNoNode || q > qhi) hi = c, qhi = q;
        if (lo == kNoNode || q <= qlo) lo = c, qlo = q;  // ties: higher id
      }
      if (num_eligible >= 2 && depth_ok(s)) {  // two eligible children: s has at least 2
        found[static_cast<size_t>(s)] = Found{hi, lo, qhi, qlo};
        marked[static_cast<size_t>(s) / 64] |= uint64_t{1} << (s % 64);
      }
    }
    for (size_t w = 0; w < marked.size(); ++w) {
      for (uint64_t bits = marked[w]; bits != 0; bits &= bits - 1) {
        const int32_t s = static_cast<int32_t>(w * 64 + static_cast<size_t>(__builtin_ctzll(bits)));
        const Found& f = found[static_cast<size_t>(s)];
        emit(t, tree_id, s, f.hi, f.qhi, f.lo, f.qlo, min_q_gap, out);
      }
    }
    return;
  }
  if (mode == PairMode::kMaxAll) {
    // Every internal node in id order; its eligible children are scanned twice (max, then emit).
    for (int32_t s = 0; s < t.size; ++s) {
      if (t.parent[s] == kDeadSlot || t.first_child[s] < 0 || !depth_ok(s)) continue;
      const int32_t first = t.first_child[s], end = first + t.num_children[s];
      int32_t hi = kNoNode, num_eligible = 0;
      double qhi = 0.0;
      for (int32_t c = first; c < end; ++c) {
        if (!eligible(c)) continue;
        ++num_eligible;
        const double q = edge_value(t, ds, c);
        if (hi == kNoNode || q > qhi) hi = c, qhi = q;  // ties: lower id
      }
      if (num_eligible < 2) continue;
      for (int32_t c = first; c < end; ++c) {
        if (c == hi || !eligible(c)) continue;
        emit(t, tree_id, s, hi, qhi, c, edge_value(t, ds, c), min_q_gap, out);
      }
    }
    return;
  }
  const std::vector<int32_t> path = best_path(t, cfg);
  const size_t start = out->tree.size();
  for (size_t i = 0; i + 1 < path.size(); ++i) {
    const int32_t s = path[i];
    const int32_t chosen = path[i + 1];
    if (!depth_ok(s) || !eligible(chosen)) continue;
    int32_t lo = kNoNode, num_eligible = 0;
    double qlo = 0.0;
    const int32_t first = t.first_child[s];
    for (int32_t c = first, end = first + t.num_children[s]; c < end; ++c) {
      if (!eligible(c)) continue;
      ++num_eligible;
      if (c == chosen) continue;
      const double q = edge_value(t, ds, c);
      if (lo == kNoNode || q <= qlo) lo = c, qlo = q;
    }
    if (num_eligible >= 2)
      emit(t, tree_id, s, chosen, edge_value(t, ds, chosen), lo, qlo, min_q_gap, out);
  }
  // Best-path ids grow with depth in every tree the core builds; sort anyway (imported trees).
  const size_t m = out->tree.size() - start;
  if (m > 1 && !std::is_sorted(out->parent.begin() + static_cast<std::ptrdiff_t>(start),
                               out->parent.end())) {
    std::vector<size_t> order(m);
    for (size_t i = 0; i < m; ++i) order[i] = start + i;
    std::sort(order.begin(), order.end(),
              [&](size_t a, size_t b) { return out->parent[a] < out->parent[b]; });
    PairsResult sorted;
    for (size_t i : order) {
      sorted.tree.push_back(out->tree[i]);
      sorted.parent.push_back(out->parent[i]);
      sorted.chosen.push_back(out->chosen[i]);
      sorted.rejected.push_back(out->rejected[i]);
      sorted.depth.push_back(out->depth[i]);
      sorted.q_chosen.push_back(out->q_chosen[i]);
      sorted.q_rejected.push_back(out->q_rejected[i]);
    }
    for (size_t i = 0; i < m; ++i) {
      out->tree[start + i] = sorted.tree[i];
      out->parent[start + i] = sorted.parent[i];
      out->chosen[start + i] = sorted.chosen[i];
      out->rejected[start + i] = sorted.rejected[i];
      out->depth[start + i] = sorted.depth[i];
      out->q_chosen[start + i] = sorted.q_chosen[i];
      out->q_rejected[start + i] = sorted.q_rejected[i];
    }
  }
}

}  // namespace qengine
