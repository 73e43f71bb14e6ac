"""Selection at an expanded node (docs sections 3 and 4). All arithmetic is double.

Legend: ``s`` the node selecting, ``c`` a child of it, ``A`` its number of children.
"""

from __future__ import annotations

import math
from collections.abc import Callable

from qengine.config import SearchConfig

from .rng import gumbel
from .tree import ROOT, Tree


def sign(config: SearchConfig) -> float:
    return -1.0 if config.two_player else 1.0


def q_raw(tree: Tree, config: SearchConfig, c: int) -> float:
    """Edge value of child c seen from its parent: reward + discount * sign * q (3)."""
    return tree.reward[c] + config.discount * sign(config) * tree.q[c]


def visit_count(tree: Tree, c: int) -> int:
    """n(c) = visits + in-flight (4.1)."""
    return tree.visits[c] + tree.in_flight[c]


def q_eff(tree: Tree, config: SearchConfig, c: int) -> float:
    """Qeff(c) with virtual loss (4.1); only for n(c) > 0."""
    f = tree.in_flight[c]
    v = tree.visits[c]
    if f == 0:
        return q_raw(tree, config, c)
    total = v * q_raw(tree, config, c) if v > 0 else 0.0
    return (total + f * config.virtual_loss_value) / (v + f)


def q_parent(tree: Tree, s: int) -> float:
    """Qpar = q[s] if visits[s] > 0 else 0.0 (4.2)."""
    return tree.q[s] if tree.visits[s] > 0 else 0.0


def parent_minmax_bounds(tree: Tree, config: SearchConfig, s: int) -> tuple[float, float]:
    """(lo, hi) over Qpar and Qraw of the visited children of s (4.3 "parent_minmax")."""
    lo = hi = q_parent(tree, s)
    for c in tree.children(s):
        if tree.visits[c] > 0:
            x = q_raw(tree, config, c)
            lo = min(lo, x)
            hi = max(hi, x)
    return lo, hi


def normaliser(tree: Tree, config: SearchConfig, s: int, mode: str) -> Callable[[float], float]:
    """norm(x) of 4.3 for selection at node s."""
    if mode == "none":
        return lambda x: x
    if mode == "bounds":
        lo, width = config.value_min, config.value_max - config.value_min
        return lambda x: (x - lo) / width
    if mode == "tree_minmax":
        lo, hi = tree.minmax_lo, tree.minmax_hi
        if hi < lo:
            return lambda x: x
        width = max(hi - lo, config.minmax_floor)
        return lambda x: (x - lo) / width
    if mode == "parent_minmax":
        lo, hi = parent_minmax_bounds(tree, config, s)
        width = max(hi - lo, config.minmax_floor)
        return lambda x: (x - lo) / width
    raise ValueError(f"unknown qnorm {mode!r}")


def fpu_raw(tree: Tree, config: SearchConfig, s: int) -> float:
    """Raw first-play value of "parent", "reduction", "constant" (4.2)."""
    if config.fpu == "parent":
        return q_parent(tree, s)
    if config.fpu == "reduction":
        return q_parent(tree, s) - config.fpu_reduction
    return config.fpu_value


def score(tree: Tree, config: SearchConfig, s: int, c: int, norm, fpu_hat: float) -> float:
    """Score of child c of s for uct / puct / muzero (4.4).

    The caller handles exhausted children and the unvisited-first step of lats."""
    n = visit_count(tree, c)
    n_s = tree.visits[s] + tree.in_flight[s]
    q_hat = norm(q_eff(tree, config, c)) if n > 0 else fpu_hat
    if config.rule in ("uct", "lats"):
        if n == 0:
            return q_hat
        return q_hat + config.c * math.sqrt(math.log(max(n_s, 1)) / n)
    if config.rule == "puct":
        return q_hat + config.c * tree.prior[c] * math.sqrt(n_s) / (1 + n)
    # muzero
    return q_hat + tree.prior[c] * math.sqrt(n_s) / (1 + n) * (
        config.c1 + math.log((n_s + config.c2 + 1) / config.c2)
    )


def select_child(tree: Tree, config: SearchConfig, tree_id: int, s: int) -> int:
    """The child of expanded node s to descend into, or -1 if every child is exhausted."""
    if config.gumbel and s == ROOT:
        return gumbel_select(tree, config, tree_id)
    candidates = [c for c in tree.children(s) if not tree.exhausted[c]]
    if not candidates:
        return -1
    if config.rule == "lats":
        unvisited = [c for c in candidates if visit_count(tree, c) == 0]
        if unvisited:
            # highest prior, ties: lowest id (max keeps the first maximum)
            return max(unvisited, key=lambda c: tree.prior[c])
    norm = normaliser(tree, config, s, config.qnorm)
    fpu_hat = math.inf if config.fpu == "inf" else norm(fpu_raw(tree, config, s))
    best, best_score = -1, -math.inf
    for c in candidates:
        x = score(tree, config, s, c, norm, fpu_hat)
        if best < 0 or x > best_score:
            best, best_score = c, x
    return best


# ---------------------------------------------------------------------- Gumbel (4.5)
def considered_visits(max_num_considered: int, num_simulations: int) -> tuple[int, ...]:
    """mctx's get_sequence_of_considered_visits(m, n), verbatim (the whole table: small n only;
    selection uses :func:`considered_visit`)."""
    if max_num_considered <= 1:
        return tuple(range(num_simulations))
    log2max = math.ceil(math.log2(max_num_considered))
    sequence: list[int] = []
    visits = [0] * max_num_considered
    num_considered = max_num_considered
    while len(sequence) < num_simulations:
        num_extra_visits = max(1, int(num_simulations / (log2max * num_considered)))
        for _ in range(num_extra_visits):
            sequence.extend(visits[:num_considered])
            for i in range(num_considered):
                visits[i] += 1
        num_considered = max(2, num_considered // 2)
    return tuple(sequence[:num_simulations])


def considered_visit(max_num_considered: int, num_simulations: int, k: int) -> int:
    """Element k (< num_simulations) of :func:`considered_visits`, without building the table
    (num_simulations may be 2**63 - 1). Each step of the table appends ``num_considered`` equal
    counts, so element k is found by walking the steps."""
    if max_num_considered <= 1:
        return k
    log2max = math.ceil(math.log2(max_num_considered))
    position = visits = 0
    num_considered = max_num_considered
    while True:
        num_extra_visits = max(1, int(num_simulations / (log2max * num_considered)))
        block = num_extra_visits * num_considered
        if k < position + block:
            return visits + (k - position) // num_considered
        position += block
        visits += num_extra_visits
        num_considered = max(2, num_considered // 2)


def gumbel_scores(tree: Tree, config: SearchConfig, tree_id: int) -> list[float]:
    """max(-1e9, g(a) + logits(a) + sigma(a)) for every root child a (in action order)."""
    children = tree.children(ROOT)
    counts = [visit_count(tree, c) for c in children]
    logits = [math.log(tree.prior[c]) if tree.prior[c] > 0 else -1e9 for c in children]
    top = max(logits)
    logits = [x - top for x in logits]
    norm = normaliser(tree, config, ROOT, "parent_minmax")
    q_par_hat = norm(q_parent(tree, ROOT))
    scale = (config.gumbel_c_visit + max(counts)) * config.gumbel_c_scale
    out = []
    for a, c in enumerate(children):
        q_hat = norm(q_eff(tree, config, c)) if counts[a] > 0 else q_par_hat
        g = gumbel(config.seed, tree_id, tree.root_epoch, a)
        out.append(max(-1e9, g + logits[a] + scale * q_hat))
    return out


def gumbel_select(tree: Tree, config: SearchConfig, tree_id: int) -> int:
    """Sequential-halving root selection (4.5); -1 if every root child is exhausted."""
    children = tree.children(ROOT)
    alive = [a for a, c in enumerate(children) if not tree.exhausted[c]]
    if not alive:
        return -1
    counts = [visit_count(tree, c) for c in children]
    k = min(sum(counts), config.gumbel_simulations - 1)
    m = min(config.gumbel_max_considered, len(alive))
    target = considered_visit(m, config.gumbel_simulations, k)
    scores = gumbel_scores(tree, config, tree_id)
    pool = [a for a in alive if counts[a] == target] or alive
    best = pool[0]
    for a in pool[1:]:
        if scores[a] > scores[best]:
            best = a
    return children[best]
