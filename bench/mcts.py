"""Benchmark of the search core against the pure-Python reference and mctx, in one run.

Every workload uses the same synthetic evaluator (docs/search-semantics.md section 8: priors are a
softmax of a hash-derived vector, the value a hash-derived number), so the tree is what is measured.
Rule: MuZero PUCT with c1 = 1.25, c2 = 19652; one leaf evaluated (expanded) per simulation.

  T1  B=1024 trees, A=8, S=256 sims/tree, evaluator in C++ (run_synthetic), 1 and 2 threads
  T2  the same through the Python ask / expand / backup loop with a numpy evaluator, 2 threads;
      also an idiomatic pure-Python MCTS written from scratch (a node class with __slots__, the
      same rule and evaluator in plain Python) as a second baseline
  T3  one tree, A=8, S=65,536, K=64 leaves per ask: sims/s and the fraction of distinct leaves
  T4  as T1 with A=32
  plus bytes per node, export of ~1M nodes to numpy, pair extraction over ~1M nodes, and the
  cost of the Python loop itself: ask + expand + backup from Python per simulation (the evaluator
  excluded) over the native loop (run_synthetic) per simulation, on B=256, S=256, A=8, one
  thread, in thread CPU time (python_loop_cost_ratio; the target is <= 2).

Install the peers of every column with ``pip install ".[bench]"`` (mctx and jax on CPU).

Usage: python bench/mcts.py [--quick] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import math
import os
import statistics
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from machine_info import machine

from qengine import Forest, SearchConfig

# Values lie in [-1, 1]: a pending leaf counts as a loss (-1), which keeps the K leaves of
# one ask apart (76% distinct at K=64 with the default virtual loss value 0, 99.8% with -1).
CONFIG = SearchConfig(rule="muzero", c1=1.25, c2=19652.0, virtual_loss_value=-1.0)
U32 = np.uint32


# ---------------------------------------------------------------------------- evaluator (numpy)
def mix32(x: np.ndarray) -> np.ndarray:
    """Wellons' lowbias32 on uint32 arrays (wrapping arithmetic)."""
    x = x.astype(U32, copy=True)
    x ^= x >> U32(16)
    x *= U32(0x7FEB352D)
    x ^= x >> U32(15)
    x *= U32(0x846CA68B)
    x ^= x >> U32(16)
    return x


def unit(key: np.ndarray, j: np.ndarray) -> np.ndarray:
    """Hash-derived numbers in [0, 1): key [L, 1] or [L], j broadcastable."""
    return (mix32(key ^ mix32(j.astype(U32) + U32(1))) >> U32(8)).astype(np.float64) * 2.0**-24


def root_keys(num_trees: int, seed: int) -> np.ndarray:
    return mix32(U32(seed & 0xFFFFFFFF) ^ mix32(np.arange(num_trees, dtype=U32)))


def evaluate(keys: np.ndarray, num_actions: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Leaf keys uint32 [L] → (priors float32 [L*A], child keys int64 [L*A], values float64 [L])."""
    actions = np.arange(num_actions, dtype=U32)[None, :]
    logits = 2.0 * unit(keys[:, None], actions) - 1.0
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    child = mix32(keys[:, None] * U32(31) + actions + U32(1))
    values = 2.0 * unit(keys, np.full(keys.shape, num_actions, dtype=U32)) - 1.0
    return probs.astype(np.float32).ravel(), child.astype(np.int64).ravel(), values


def python_loop(
    forest: Forest, num_simulations: int, num_actions: int, leaves_per_ask: int
) -> dict:
    """The T2 loop: ask → numpy evaluator → expand → backup, until every tree has S leaves."""
    evaluated, asked, asks = 0, 0, 0
    target = num_simulations * forest.num_trees
    # The budget is known: allocate each tree once (as run_synthetic does) instead of regrowing.
    forest.reserve(num_simulations * leaves_per_ask * num_actions + 1)
    while evaluated < target:
        leaves = forest.ask(leaves_per_ask, paths=False)
        if len(leaves) == 0:
            break
        priors, child_keys, values = evaluate(leaves.payload.astype(U32), num_actions)
        counts = np.full(len(leaves), num_actions, dtype=np.int32)
        forest.expand(leaves.tree, leaves.node, counts, priors, payloads=child_keys)
        forest.backup(leaves.tree, leaves.node, values)
        evaluated += len(leaves)
        asked += leaves_per_ask * forest.num_trees
        asks += 1
    return {"leaves": evaluated, "distinct_fraction": evaluated / max(asked, 1), "asks": asks}


# ---------------------------------------------------------------------------- idiomatic MCTS
# What a user writes from scratch in Python: node objects, the same MuZero PUCT rule (unvisited
# children first, in action order, as fpu "inf"), mean backup, the same hash evaluator computed
# with Python ints. It is the baseline the Python loop over the core is compared with.
M32 = 0xFFFFFFFF


def py_mix32(x: int) -> int:
    x &= M32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & M32
    x ^= x >> 15
    x = (x * 0x846CA68B) & M32
    return x ^ (x >> 16)


def py_unit(key: int, j: int) -> float:
    return (py_mix32(key ^ py_mix32(j + 1)) >> 8) * 2.0**-24


class Node:
    """One node of the idiomatic search."""

    __slots__ = ("children", "key", "prior", "value_sum", "visits")

    def __init__(self, key: int, prior: float) -> None:
        self.key, self.prior = key, prior
        self.visits, self.value_sum = 0, 0.0
        self.children: list[Node] = []


def py_expand(node: Node, num_actions: int) -> float:
    """Give ``node`` its children (softmax priors of the hash logits); its value."""
    logits = [2.0 * py_unit(node.key, a) - 1.0 for a in range(num_actions)]
    top = max(logits)
    weights = [math.exp(x - top) for x in logits]
    total = sum(weights)
    node.children = [
        Node(py_mix32(node.key * 31 + a + 1), w / total) for a, w in enumerate(weights)
    ]
    return 2.0 * py_unit(node.key, num_actions) - 1.0


def py_select(node: Node, c1: float, c2: float) -> Node:
    scale = math.sqrt(node.visits) * (c1 + math.log((node.visits + c2 + 1.0) / c2))
    best, best_score = node.children[0], -math.inf
    for child in node.children:
        if child.visits == 0:
            return child  # unvisited first (fpu "inf"), in action order
        score = child.value_sum / child.visits + child.prior * scale / (1 + child.visits)
        if score > best_score:
            best, best_score = child, score
    return best


def idiomatic_search(root_key: int, num_simulations: int, num_actions: int) -> Node:
    root = Node(root_key, 1.0)
    for _ in range(num_simulations):
        node, path = root, [root]
        while node.children:
            node = py_select(node, CONFIG.c1, CONFIG.c2)
            path.append(node)
        value = py_expand(node, num_actions)
        for n in path:
            n.visits += 1
            n.value_sum += value
    return root


def idiomatic_rate(trees: int, sims: int, actions: int) -> float:
    keys = root_keys(trees, 0).tolist()
    start = time.perf_counter()
    for key in keys:
        idiomatic_search(key, sims, actions)
    return trees * sims / (time.perf_counter() - start)


# ---------------------------------------------------------------------------- loop cost
def loop_cost(trees: int, sims: int, actions: int, repeats: int) -> dict[str, float]:
    """Thread CPU time per simulation of ask + expand + backup called from Python (one thread,
    the numpy evaluator excluded) and of the same search in the core (run_synthetic).

    The two runs alternate, pair by pair, and the ratio is the median of the pairs' ratios: on a
    shared machine another process's load (its cache and memory traffic slow a thread even in
    thread CPU time) then hits both sides of a pair alike instead of one side's whole series."""

    def native() -> float:
        forest = Forest(trees, CONFIG, num_threads=1)
        start = time.thread_time()
        leaves = forest.run_synthetic(sims, actions)
        return (time.thread_time() - start) / leaves

    def python() -> float:
        forest = Forest(
            trees, CONFIG, num_threads=1, root_payloads=root_keys(trees, 0).astype(np.int64)
        )
        counts = np.full(trees, actions, dtype=np.int32)
        spent, evaluated = 0.0, 0
        forest.reserve(sims * actions + 1)  # the budget is known, as in run_synthetic
        while evaluated < sims * trees:
            start = time.thread_time()
            leaves = forest.ask(1, paths=False)
            spent += time.thread_time() - start
            priors, child_keys, values = evaluate(leaves.payload.astype(U32), actions)
            start = time.thread_time()
            forest.expand(
                leaves.tree, leaves.node, counts[: len(leaves)], priors, payloads=child_keys
            )
            forest.backup(leaves.tree, leaves.node, values)
            spent += time.thread_time() - start
            evaluated += len(leaves)
        return spent / evaluated

    pairs = [(native(), python()) for _ in range(repeats)]
    return {
        "trees": trees,
        "simulations": sims,
        "actions": actions,
        "repeats": repeats,
        "native_us_per_sim": statistics.median(n for n, _ in pairs) * 1e6,
        "python_loop_us_per_sim": statistics.median(p for _, p in pairs) * 1e6,
        "python_loop_cost_ratio": statistics.median(p / n for n, p in pairs),
        "pair_ratios": [p / n for n, p in pairs],
    }


# ---------------------------------------------------------------------------- timing helpers
def best_of(repeats: int, run: Callable[[], float]) -> float:
    """Median of ``repeats`` measured durations (seconds); ``run`` returns its own duration."""
    return statistics.median(run() for _ in range(repeats))


def synthetic_rate(
    engine: str, trees: int, sims: int, actions: int, threads: int, k: int, repeats: int
) -> float:
    def run() -> float:
        forest = Forest(trees, CONFIG, num_threads=threads, engine=engine)  # type: ignore[arg-type]
        start = time.perf_counter()
        leaves = forest.run_synthetic(sims, actions, leaves_per_ask=k)
        elapsed = time.perf_counter() - start
        run.leaves = leaves  # type: ignore[attr-defined]
        return elapsed

    seconds = best_of(repeats, run)
    return run.leaves / seconds  # type: ignore[attr-defined]


def loop_rate(
    engine: str, trees: int, sims: int, actions: int, threads: int, k: int, repeats: int
) -> tuple[float, float]:
    def run() -> float:
        forest = Forest(
            trees,
            CONFIG,
            num_threads=threads,
            root_payloads=root_keys(trees, 0).astype(np.int64),
            engine=engine,  # type: ignore[arg-type]
        )
        start = time.perf_counter()
        result = python_loop(forest, sims, actions, k)
        elapsed = time.perf_counter() - start
        run.result = result  # type: ignore[attr-defined]
        return elapsed

    seconds = best_of(repeats, run)
    result = run.result  # type: ignore[attr-defined]
    return result["leaves"] / seconds, result["distinct_fraction"]


# ---------------------------------------------------------------------------- mctx baseline
def mctx_rate(trees: int, sims: int, actions: int) -> dict[str, float] | None:
    """mctx.muzero_policy on CPU with the same evaluator; None when mctx is not installed."""
    try:
        import jax
        import jax.numpy as jnp
        import mctx
    except ImportError:
        return None

    def jmix32(x: Any) -> Any:
        x = x ^ (x >> 16)
        x = x * jnp.uint32(0x7FEB352D)
        x = x ^ (x >> 15)
        x = x * jnp.uint32(0x846CA68B)
        return x ^ (x >> 16)

    def junit(key: Any, j: Any) -> Any:
        return (jmix32(key ^ jmix32(j + jnp.uint32(1))) >> 8).astype(jnp.float32) * 2.0**-24

    a_ids = jnp.arange(actions, dtype=jnp.uint32)

    def logits_value(keys: Any) -> tuple[Any, Any]:
        logits = 2.0 * junit(keys[:, None], a_ids[None, :]) - 1.0
        value = 2.0 * junit(keys, jnp.full(keys.shape, actions, dtype=jnp.uint32)) - 1.0
        return logits, value

    def recurrent_fn(params: Any, rng: Any, action: Any, embedding: Any) -> Any:
        del params, rng
        child = jmix32(embedding * jnp.uint32(31) + action.astype(jnp.uint32) + jnp.uint32(1))
        logits, value = logits_value(child)
        out = mctx.RecurrentFnOutput(
            reward=jnp.zeros_like(value),
            discount=jnp.ones_like(value),
            prior_logits=logits,
            value=value,
        )
        return out, child

    keys = jnp.asarray(root_keys(trees, 0))
    logits, value = logits_value(keys)
    root = mctx.RootFnOutput(prior_logits=logits, value=value, embedding=keys)

    @jax.jit
    def search(rng: Any) -> Any:
        return mctx.muzero_policy(
            params=(),
            rng_key=rng,
            root=root,
            recurrent_fn=recurrent_fn,
            num_simulations=sims,
            pb_c_init=1.25,
            pb_c_base=19652.0,
        )

    rng = jax.random.PRNGKey(0)
    start = time.perf_counter()
    jax.block_until_ready(search(rng))
    compile_s = time.perf_counter() - start

    def run() -> float:
        begin = time.perf_counter()
        jax.block_until_ready(search(rng))
        return time.perf_counter() - begin

    seconds = best_of(3, run)
    return {"sims_per_s": trees * sims / seconds, "compile_s": compile_s}


# ---------------------------------------------------------------------------- export and pairs
def big_forest(target_nodes: int, actions: int = 8) -> Forest:
    sims = 256
    trees = max(1, target_nodes // (sims * actions + 1))
    forest = Forest(trees, CONFIG)
    forest.run_synthetic(sims, actions)
    return forest


def timed_ms(run: Callable[[], Any], repeats: int = 5) -> float:
    def once() -> float:
        start = time.perf_counter()
        run()
        return time.perf_counter() - start

    once()  # warm the caches and the allocator
    return 1e3 * best_of(repeats, once)


# ---------------------------------------------------------------------------- driver
def ratio(a: float | None, b: float | None) -> float | None:
    return None if not a or not b else a / b


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--quick", action="store_true", help="small sizes (CI smoke run)")
    parser.add_argument("--json", type=Path, default=None, help="where to write the results")
    parser.add_argument("--no-mctx", action="store_true", help="skip the mctx baseline")
    args = parser.parse_args()

    q = args.quick
    trees, sims, deep_sims = (64, 32, 2048) if q else (1024, 256, 65536)
    # The reference runs the same per-tree workload (same S, so the same tree sizes and depths)
    # on fewer trees: its per-simulation cost depends on the tree, not on how many there are.
    ref_trees, ref_sims = (2, 16) if q else (64, sims)
    repeats = 1 if q else 3
    nodes_target = 50_000 if q else 1_000_000

    # First, in a process that has not yet run jax or grown large heaps; the issue's workload
    # even in --quick (a pair of runs takes well under a second).
    cost = loop_cost(256, 256, 8, repeats=5 if q else 9)
    w: dict[str, dict[str, Any]] = {}
    t1_1 = synthetic_rate("native", trees, sims, 8, 1, 1, repeats)
    t1_2 = synthetic_rate("native", trees, sims, 8, 2, 1, repeats)
    ref_syn = synthetic_rate("reference", ref_trees, ref_sims, 8, 1, 1, 1)
    mctx_t1 = None if args.no_mctx else mctx_rate(trees, sims, 8)
    w["T1"] = {
        "qengine_1thread_sims_per_s": t1_1,
        "qengine_2threads_sims_per_s": t1_2,
        "python_reference_sims_per_s": ref_syn,
        "mctx_sims_per_s": mctx_t1["sims_per_s"] if mctx_t1 else None,
        "mctx_compile_s": mctx_t1["compile_s"] if mctx_t1 else None,
    }
    t2, _ = loop_rate("native", trees, sims, 8, 2, 1, repeats)
    ref_loop, _ = loop_rate("reference", ref_trees, ref_sims, 8, 1, 1, 1)
    w["T2"] = {
        "qengine_2threads_sims_per_s": t2,
        "python_reference_sims_per_s": ref_loop,
        "idiomatic_python_sims_per_s": idiomatic_rate(ref_trees, ref_sims, 8),
        "mctx_sims_per_s": w["T1"]["mctx_sims_per_s"],
    }
    w["T2"]["speedup_vs_idiomatic_python"] = ratio(t2, w["T2"]["idiomatic_python_sims_per_s"])
    t3 = synthetic_rate("native", 1, deep_sims, 8, 1, 64, repeats)
    _, distinct = loop_rate("native", 1, deep_sims, 8, 1, 64, 1)
    ref_t3 = synthetic_rate("reference", 1, 8192 if not q else 256, 8, 1, 64, 1)
    w["T3"] = {
        "qengine_1thread_sims_per_s": t3,
        "distinct_leaf_fraction": distinct,
        "python_reference_sims_per_s": ref_t3,
        "mctx_sims_per_s": None,
    }
    t4_1 = synthetic_rate("native", trees, sims, 32, 1, 1, repeats)
    t4_2 = synthetic_rate("native", trees, sims, 32, 2, 1, repeats)
    ref_t4 = synthetic_rate("reference", ref_trees, ref_sims, 32, 1, 1, 1)
    mctx_t4 = None if args.no_mctx or q else mctx_rate(trees, sims, 32)
    w["T4"] = {
        "qengine_1thread_sims_per_s": t4_1,
        "qengine_2threads_sims_per_s": t4_2,
        "python_reference_sims_per_s": ref_t4,
        "mctx_sims_per_s": mctx_t4["sims_per_s"] if mctx_t4 else None,
    }
    for name, row in w.items():
        best = max(v for k, v in row.items() if k.startswith("qengine") and v)
        row["speedup_vs_python_reference"] = ratio(best, row["python_reference_sims_per_s"])
        row["speedup_vs_mctx"] = ratio(best, row.get("mctx_sims_per_s"))
        del name

    forest = big_forest(nodes_target)
    total_nodes = sum(forest.size(t) for t in range(forest.num_trees))
    export_ms = timed_ms(forest.export_arrays)
    pairs_ms = timed_ms(lambda: forest.pairs(mode="max_min"))
    with_payload, without_payload = forest._engine.bytes_per_node
    result = {
        "machine": machine(),
        "quick": q,
        "workloads": w,
        "bytes_per_node": with_payload,
        "bytes_per_node_without_payload": without_payload,
        "load_average_after": os.getloadavg()[0],
        "export_nodes": total_nodes,
        "export_1m_nodes_ms": export_ms * 1e6 / total_nodes,
        "pairs_1m_nodes_ms": pairs_ms * 1e6 / total_nodes,
        "python_loop": cost,
        "python_loop_cost_ratio": cost["python_loop_cost_ratio"],
    }

    print(f"machine: {result['machine']['cpu']} ({result['machine']['cores']} cores)")
    header = f"{'workload':<6} {'qengine 1T':>12} {'qengine 2T':>12} {'py reference':>13} "
    header += f"{'mctx':>12} {'x ref':>8} {'x mctx':>8}"
    print(header)
    for name, row in w.items():

        def fmt(v: float | None) -> str:
            return "-" if v is None else f"{v / 1e6:.3f}M"

        one = row.get("qengine_1thread_sims_per_s")
        two = row.get("qengine_2threads_sims_per_s")
        x_ref = row["speedup_vs_python_reference"]
        x_mctx = row["speedup_vs_mctx"]
        print(
            f"{name:<6} {fmt(one):>12} {fmt(two):>12} "
            f"{fmt(row['python_reference_sims_per_s']):>13} "
            f"{fmt(row.get('mctx_sims_per_s')):>12} "
            f"{'-' if x_ref is None else f'{x_ref:.0f}x':>8} "
            f"{'-' if x_mctx is None else f'{x_mctx:.1f}x':>8}"
        )
    print(
        f"T2 idiomatic pure-Python MCTS: {w['T2']['idiomatic_python_sims_per_s'] / 1e3:.1f}k "
        f"sims/s; the Python loop over the core is "
        f"{w['T2']['speedup_vs_idiomatic_python']:.0f}x faster"
    )
    print(
        f"Python loop cost (B={cost['trees']}, S={cost['simulations']}, A={cost['actions']}, "
        f"1 thread, thread CPU time): ask + expand + backup {cost['python_loop_us_per_sim']:.3f} "
        f"us/sim vs run_synthetic {cost['native_us_per_sim']:.3f} us/sim = "
        f"{cost['python_loop_cost_ratio']:.2f}x (target <= 2)"
    )
    print(f"T3 distinct leaves per ask: {distinct:.1%}")
    print(f"bytes per node: {with_payload} ({without_payload} without the payload)")
    print(
        f"export (per 1M nodes): {result['export_1m_nodes_ms']:.2f} ms over {total_nodes:,} nodes"
    )
    print(f"pairs  (per 1M nodes): {result['pairs_1m_nodes_ms']:.2f} ms")
    if mctx_t1:
        print(f"mctx compile time (T1): {mctx_t1['compile_s']:.1f} s (not in the rates)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(result, indent=2))
        print(f"wrote {args.json}")


if __name__ == "__main__":
    main()
