#include "qengine/select.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include "qengine/rng.h"

namespace qengine {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

// norm(x) = identity ? x : (x - lo) / den  (den already floored where the rule says so).
struct Norm {
  bool identity = true;  // QNorm::kNone, or tree_minmax while the stats are empty
  double lo = 0.0;       // subtracted
  double den = 1.0;      // divided by
  double operator()(double x) const { return identity ? x : (x - lo) / den; }
};

// Everything a selection at node s needs about s and its children block.
struct NodeStats {
  int32_t first;  // first child id
  int32_t count;  // number of children
  double ns;      // Ns = visits[s] + f(s)
  double qpar;    // q[s] if visited else 0
};

NodeStats node_stats(const Tree& t, int32_t s) {
  NodeStats st;
  st.first = t.first_child[s];
  st.count = t.num_children[s];
  st.ns = static_cast<double>(static_cast<int64_t>(t.visits[s]) + t.in_flight(s));
  st.qpar = t.visits[s] > 0 ? static_cast<double>(t.q[s]) : 0.0;
  return st;
}

// Parent-and-siblings min-max (4.3 "parent_minmax").
Norm parent_minmax(const Tree& t, const SearchConfig& cfg, const NodeStats& st, double ds) {
  double lo = st.qpar;
  double hi = st.qpar;
  for (int32_t c = st.first, end = st.first + st.count; c < end; ++c) {
    if (t.visits[c] > 0) {
      const double v = edge_value(t, ds, c);
      lo = std::min(lo, v);
      hi = std::max(hi, v);
    }
  }
  Norm n;
  n.identity = false;
  n.lo = lo;
  n.den = std::max(hi - lo, cfg.minmax_floor);
  return n;
}

Norm make_norm(const Tree& t, const SearchConfig& cfg, const NodeStats& st, double ds) {
  Norm n;
  switch (cfg.qnorm) {
    case QNorm::kNone:
      break;
    case QNorm::kBounds:
      n.identity = false;
      n.lo = cfg.value_min;
      n.den = cfg.value_max - cfg.value_min;
      break;
    case QNorm::kTreeMinmax:
      if (!(t.minmax_hi < t.minmax_lo)) {
        n.identity = false;
        n.lo = t.minmax_lo;
        n.den = std::max(t.minmax_hi - t.minmax_lo, cfg.minmax_floor);
      }
      break;
    case QNorm::kParentMinmax:
      n = parent_minmax(t, cfg, st, ds);
      break;
  }
  return n;
}

// Qeff(c) for n(c) = v + f > 0 (4.1).
inline double effective_q(double qraw, int64_t v, int32_t f, double vl) {
  if (f == 0) return qraw;
  const double visited = v > 0 ? static_cast<double>(v) * qraw : 0.0;
  return (visited + static_cast<double>(f) * vl) / static_cast<double>(v + f);
}

// Raw FPU value (4.2); only used when cfg.fpu != kInf.
double fpu_raw(const SearchConfig& cfg, double qpar) {
  switch (cfg.fpu) {
    case Fpu::kParent:
      return qpar;
    case Fpu::kReduction:
      return qpar - cfg.fpu_reduction;
    case Fpu::kConstant:
      return cfg.fpu_value;
    case Fpu::kInf:
      break;
  }
  return kInf;
}

// The three score rules share one loop, specialised at compile time.
template <Rule R>
int32_t select_scored(const Tree& t, const SearchConfig& cfg, int32_t s) {
  const double ds = cfg.discount * cfg.sign();
  const NodeStats st = node_stats(t, s);
  const Norm norm = make_norm(t, cfg, st, ds);
  const bool fpu_inf = cfg.fpu == Fpu::kInf;
  const double fpu_hat = fpu_inf ? kInf : norm(fpu_raw(cfg, st.qpar));
  const double vl = cfg.virtual_loss_value;
  // Per-node constants of the exploration terms.
  const double sqrt_ns = std::sqrt(st.ns);
  const double log_ns = std::log(std::max(st.ns, 1.0));
  const double muzero_factor = cfg.c1 + std::log((st.ns + cfg.c2 + 1.0) / cfg.c2);
  const double c = cfg.c;

  int32_t best = kNoNode;
  double best_score = -kInf;
  const int32_t end = st.first + st.count;
  for (int32_t ch = st.first; ch < end; ++ch) {
    const uint16_t status = t.status[ch];
    if (status & kExhaustedBit) continue;
    const int32_t f = status & kInFlightMask;
    const int64_t v = t.visits[ch];
    const int64_t n = v + f;
    double score;
    if (n == 0) {
      if (fpu_inf) {
        score = kInf;
      } else if (R == Rule::kUct || R == Rule::kLats) {
        score = fpu_hat;
      } else if (R == Rule::kPuct) {
        score = fpu_hat + c * static_cast<double>(t.prior[ch]) * sqrt_ns / 1.0;
      } else {
        score = fpu_hat + static_cast<double>(t.prior[ch]) * sqrt_ns / 1.0 * muzero_factor;
      }
    } else {
      const double qhat = norm(effective_q(edge_value(t, ds, ch), v, f, vl));
      const double dn = static_cast<double>(n);
      if (R == Rule::kUct || R == Rule::kLats) {
        score = qhat + c * std::sqrt(log_ns / dn);
      } else if (R == Rule::kPuct) {
        score = qhat + c * static_cast<double>(t.prior[ch]) * sqrt_ns / (1.0 + dn);
      } else {
        score = qhat + static_cast<double>(t.prior[ch]) * sqrt_ns / (1.0 + dn) * muzero_factor;
      }
    }
    if (best == kNoNode || score > best_score) {
      best = ch;
      best_score = score;
    }
  }
  return best;
}

int32_t select_lats(const Tree& t, const SearchConfig& cfg, int32_t s) {
  const int32_t first = t.first_child[s];
  const int32_t end = first + t.num_children[s];
  int32_t best = kNoNode;
  float best_prior = 0.0f;
  for (int32_t ch = first; ch < end; ++ch) {
    const uint16_t status = t.status[ch];
    if (status & kExhaustedBit) continue;
    if (t.visits[ch] == 0 && (status & kInFlightMask) == 0) {
      if (best == kNoNode || t.prior[ch] > best_prior) {
        best = ch;
        best_prior = t.prior[ch];
      }
    }
  }
  if (best != kNoNode) return best;
  return select_scored<Rule::kUct>(t, cfg, s);
}

int32_t select_gumbel(const Tree& t, const SearchConfig& cfg, uint64_t tree_id, int32_t s) {
  const double ds = cfg.discount * cfg.sign();
  const NodeStats st = node_stats(t, s);
  const Norm norm = parent_minmax(t, cfg, st, ds);
  const int32_t end = st.first + st.count;
  int64_t sum_n = 0;
  int64_t max_n = 0;
  int64_t live = 0;
  double max_logit = -kInf;
  for (int32_t ch = st.first; ch < end; ++ch) {
    const int64_t n = static_cast<int64_t>(t.visits[ch]) + t.in_flight(ch);
    sum_n += n;
    max_n = std::max(max_n, n);
    if (!t.exhausted(ch)) ++live;
    const double p = static_cast<double>(t.prior[ch]);
    max_logit = std::max(max_logit, p > 0 ? std::log(p) : -1e9);
  }
  const int64_t k = std::min<int64_t>(sum_n, cfg.gumbel_simulations - 1);
  const int64_t m = std::min<int64_t>(cfg.gumbel_max_considered, live);
  const int64_t target = considered_visit(m, cfg.gumbel_simulations, k);
  const double sigma_scale = (cfg.gumbel_c_visit + static_cast<double>(max_n)) * cfg.gumbel_c_scale;
  const double qpar_hat = norm(st.qpar);
  const double vl = cfg.virtual_loss_value;

  int32_t best_target = kNoNode;
  double best_target_score = -kInf;
  int32_t best_any = kNoNode;
  double best_any_score = -kInf;
  for (int32_t ch = st.first; ch < end; ++ch) {
    const uint16_t status = t.status[ch];
    if (status & kExhaustedBit) continue;
    const int32_t f = status & kInFlightMask;
    const int64_t v = t.visits[ch];
    const int64_t n = v + f;
    const double qhat = n > 0 ? norm(effective_q(edge_value(t, ds, ch), v, f, vl)) : qpar_hat;
    const double sigma = sigma_scale * qhat;
    const double p = static_cast<double>(t.prior[ch]);
    const double logit = (p > 0 ? std::log(p) : -1e9) - max_logit;
    const uint64_t a = static_cast<uint64_t>(ch - st.first);
    const double u = uniform(cfg.seed, tree_id, t.root_epoch, a);
    const double g = -std::log(-std::log(u));
    const double score = std::max(-1e9, g + logit + sigma);
    if (best_any == kNoNode || score > best_any_score) {
      best_any = ch;
      best_any_score = score;
    }
    if (n == target && (best_target == kNoNode || score > best_target_score)) {
      best_target = ch;
      best_target_score = score;
    }
  }
  return best_target != kNoNode ? best_target : best_any;
}

}  // namespace

int64_t considered_visit(int64_t m, int64_t n, int64_t k) {
  if (m <= 1) return k;
  int64_t log2max = 0;  // ceil(log2(m))
  while ((int64_t{1} << log2max) < m) ++log2max;
  int64_t position = 0;
  int64_t visits = 0;
  int64_t considered = m;
  for (;;) {
    const int64_t extra = std::max<int64_t>(1, n / (log2max * considered));
    const int64_t block = extra * considered;
    if (k < position + block) return visits + (k - position) / considered;
    position += block;
    visits += extra;
    considered = std::max<int64_t>(2, considered / 2);
  }
}

int32_t select_child(const Tree& t, const SearchConfig& cfg, uint64_t tree_id, int32_t s) {
  if (cfg.gumbel && s == kRoot) return select_gumbel(t, cfg, tree_id, s);
  switch (cfg.rule) {
    case Rule::kUct:
      return select_scored<Rule::kUct>(t, cfg, s);
    case Rule::kPuct:
      return select_scored<Rule::kPuct>(t, cfg, s);
    case Rule::kMuzero:
      return select_scored<Rule::kMuzero>(t, cfg, s);
    case Rule::kLats:
      return select_lats(t, cfg, s);
  }
  return kNoNode;
}

}  // namespace qengine
