// Selection: which child a descent takes at an expanded node (docs/search-semantics.md, sec. 4).
//
// A descent walks from the root to a leaf; at every expanded node s it scores each child c and
// takes the first (lowest id) child with the highest score. All arithmetic here is double and every
// expression is evaluated left to right exactly as written below, because the pure-Python
// reference must round the same way (the differential tests compare trees bit for bit).
//
// Edge value of child c seen from its parent (sign = -1 in two-player mode, else +1):
//     Qraw(c) = reward[c] + discount * sign * q[c]
// Virtual loss: f(c) in-flight descents count as visits of value virtual_loss_value:
//     n(c)    = visits[c] + f(c),   Ns = visits[s] + f(s)
//     Qeff(c) = Qraw(c)                                                  if f(c) == 0, visits > 0
//             = (visits[c] * Qraw(c) + f(c) * virtual_loss_value) / n(c) if f(c) > 0
// First-play urgency (n(c) == 0): +inf, Qpar, Qpar - fpu_reduction or fpu_value, where
//     Qpar = q[s] if visits[s] > 0 else 0.
// Normalisation norm(x) (not applied to the +inf FPU):
//     none x; bounds (x - value_min) / (value_max - value_min);
//     tree_minmax (x - lo) / max(hi - lo, floor) with the tree's MinMaxStats (identity while
//     empty); parent_minmax the same with lo/hi over Qpar and the visited children's Qraw.
// Scores, Qhat = norm(Qeff) (or the normalised FPU), exhausted children never selected:
//     uct     Qhat + c * sqrt(log(max(Ns, 1)) / n)                  (n == 0: Qhat alone)
//     lats    an unvisited child with the highest prior first; else uct      (arXiv 2409.09345)
//     puct    Qhat + c * P * sqrt(Ns) / (1 + n)                                (AlphaZero)
//     muzero  Qhat + P * sqrt(Ns) / (1 + n) * (c1 + log((Ns + c2 + 1) / c2))  (MuZero)
// Per node, sqrt(Ns), log(max(Ns, 1)) and the MuZero factor are computed once, not per child.
//
// Gumbel root selection (Danihelka et al. 2022, mctx gumbel_muzero_root_action_selection), used
// at the root when SearchConfig::gumbel is set:
//     g(a) = -log(-log(uniform(seed, tree, root_epoch, a)))
//     logit(a) = log P(a) (or -1e9 when P(a) == 0) minus the max over all children
//     sigma(a) = (c_visit + max_b n(b)) * c_scale * parent_minmax(Qeff(a) or Qpar if n(a) == 0)
//     k = min(sum_b n(b), n_sims - 1), m = min(max_considered, #non-exhausted children)
//     target = considered_visits(m, n_sims)[k]            (sequential halving schedule)
//     argmax over non-exhausted a with n(a) == target of max(-1e9, g + logit + sigma);
//     if none has n(a) == target, argmax over every non-exhausted child.
#pragma once

#include <cstdint>

#include "qengine/config.h"
#include "qengine/tree.h"

namespace qengine {

// Child of expanded node `s` chosen by the configured rule (Gumbel at the root when enabled).
// Returns kNoNode only if every child is exhausted (impossible while the flags are consistent).
int32_t select_child(const Tree& tree, const SearchConfig& config, uint64_t tree_id, int32_t s);

// Element k of mctx's get_sequence_of_considered_visits(m, n), computed without the table.
int64_t considered_visit(int64_t m, int64_t n, int64_t k);

// Qraw of node c (section 3).
inline double edge_value(const Tree& t, double discount_sign, int32_t c) {
  return static_cast<double>(t.reward[c]) + discount_sign * static_cast<double>(t.q[c]);
}

}  // namespace qengine
