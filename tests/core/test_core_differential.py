"""Differential tests: random operation sequences on the native core and on the pure-Python
reference give identical ask outputs, node arrays (bit for bit), pairs, queries and minmax, and
identical errors; invariants hold after every operation (docs/search-semantics.md)."""

from __future__ import annotations

import numpy as np
from core_helpers import (
    assert_same_forest,
    assert_same_queries,
    check_invariants,
    core_settings,
    leaves_dict,
    make_pair,
    on_both,
)
from hypothesis import given
from hypothesis import strategies as st

from qengine import SearchConfig
from qengine.config import BACKUPS, FPUS, QNORMS, RULES

BOUNDS = [(0.0, 1.0), (-1.0, 1.0), (-2.0, 0.5)]  # all contain 0.0, the value of a terminal hit


@st.composite
def search_configs(draw) -> SearchConfig:
    value_min, value_max = draw(st.sampled_from(BOUNDS))
    return SearchConfig(
        rule=draw(st.sampled_from(RULES)),
        c=draw(st.sampled_from([0.0, 0.5, 1.25, 3.0])),
        c1=draw(st.sampled_from([0.0, 1.25])),
        c2=draw(st.sampled_from([1.0, 19652.0])),
        fpu=draw(st.sampled_from(FPUS)),
        fpu_value=draw(st.sampled_from([0.0, 0.3, -1.0])),
        fpu_reduction=draw(st.sampled_from([0.0, 0.25])),
        qnorm=draw(st.sampled_from(QNORMS)),
        value_min=value_min,
        value_max=value_max,
        minmax_floor=draw(st.sampled_from([1e-6, 0.1])),
        backup=draw(st.sampled_from(BACKUPS)),
        discount=draw(st.sampled_from([1.0, 0.9, 0.0])),
        two_player=draw(st.booleans()),
        virtual_loss_value=draw(st.sampled_from([0.0, -1.0, 0.5])),
        mark_exhausted=draw(st.booleans()),
        gumbel=draw(st.booleans()),
        gumbel_simulations=draw(st.sampled_from([1, 4, 16, 64])),
        gumbel_max_considered=draw(st.sampled_from([1, 2, 3, 16])),
        gumbel_c_visit=draw(st.sampled_from([50.0, 1.0])),
        gumbel_c_scale=draw(st.sampled_from([1.0, 0.1])),
        max_nodes=draw(st.sampled_from([1 << 22, 1 << 22, 40])),
        seed=draw(st.integers(0, 2**64 - 1)),
    )


class Driver:
    """Applies random operations to a native / reference forest pair and checks them.

    Hypothesis draws the configuration, the number of trees and steps and an RNG seed; the
    operations themselves come from that RNG with weights that grow real trees (hypothesis's own
    draws shrink towards count 0 / one leaf, which leaves the trees trivially small). Every
    operation is logged; a failure prints the log, i.e. a replayable op sequence.
    """

    def __init__(self, config: SearchConfig, num_trees: int, seed: int) -> None:
        self.rng = np.random.default_rng(seed)
        self.config = config
        self.num_trees = num_trees
        self.zero_rewards = bool(self.rng.random() < 0.5)
        payloads = self.rng.integers(-(2**63), 2**63 - 1, num_trees, endpoint=True)
        self.native, self.ref = make_pair(num_trees, config, root_payloads=payloads)
        self.in_flight: list[tuple[int, int]] = []  # asked, not yet told or cancelled
        self.expanded: set[tuple[int, int]] = set()  # in-flight leaves expanded since asked
        self.relocated: set[int] = set()
        self.bounded = self.zero_rewards and config.discount == 1.0 and not config.two_player
        self.log: list[str] = [f"Forest({num_trees}, {config}, root_payloads={payloads.tolist()})"]

    # ------------------------------------------------------------------ helpers
    def subset(self, items: list, p: float) -> list:
        return [x for x in items if self.rng.random() < p]

    def apply(self, what: str, call) -> type | None:
        self.log.append(what)
        result, error = on_both(self.native, self.ref, call, what)
        if error is not None:
            self.log[-1] += f"  -> {error.__name__} on both"
        return result, error

    def children_spec(self, count: int) -> tuple[list, list, list, list]:
        priors = self.rng.random(count).astype(np.float32)
        priors[self.rng.random(count) < 0.1] = 0.0
        if self.zero_rewards:
            rewards = np.zeros(count, dtype=np.float32)
        else:
            rewards = self.rng.uniform(-1.0, 1.0, count).astype(np.float32)
        terminal = self.rng.random(count) < 0.15
        payloads = self.rng.integers(-(2**63), 2**63 - 1, count, endpoint=True)
        return priors.tolist(), rewards.tolist(), terminal.tolist(), payloads.tolist()

    def values(self, n: int) -> list[float]:
        lo, hi = self.config.value_min, self.config.value_max
        out = self.rng.uniform(lo, hi, n)
        special = self.rng.random(n)
        out[special < 0.1] = lo
        out[(special >= 0.1) & (special < 0.2)] = hi
        return out.tolist()

    # ------------------------------------------------------------------ operations
    def ask(self) -> None:
        k = int(self.rng.integers(1, 5))
        paths = bool(self.rng.random() < 0.7)
        result, error = self.apply(
            f"ask({k}, paths={paths})", lambda f: leaves_dict(f.ask(k, paths=paths))
        )
        assert error is None
        leaves = list(zip(result["tree"].tolist(), result["node"].tolist(), strict=True))
        assert len(set(leaves)) == len(leaves), "ask returned the same leaf twice"
        self.in_flight.extend(leaves)

    def expand(self, widen: bool) -> None:
        if widen:
            items = []
            for t in range(self.num_trees):
                a = self.ref.nodes(t)
                expanded = np.flatnonzero((a["num_children"] > 0) & (a["parent"] != -2))
                items += [(t, int(s)) for s in expanded]
            chosen = [items[i] for i in self.rng.permutation(len(items))[:2]]
            counts = self.rng.integers(1, 3, len(chosen)).tolist()
        else:
            items = []
            for t, n in self.in_flight:
                a = self.ref.nodes(t)
                if a["num_children"][n] == 0 and not a["terminal"][n]:
                    items.append((t, n))
            chosen = self.subset(items, 0.8)
            counts = [
                0 if self.rng.random() < 0.1 else int(self.rng.integers(1, 5)) for _ in chosen
            ]
        if not chosen:
            return
        priors, rewards, terminal, payloads = self.children_spec(sum(counts))
        trees = [t for t, _ in chosen]
        nodes = [n for _, n in chosen]
        _, error = self.apply(
            f"expand({trees}, {nodes}, {counts}, {priors}, {rewards}, {terminal}, {payloads})",
            lambda f: f.expand(trees, nodes, counts, priors, rewards, terminal, payloads),
        )
        if error is None:
            if widen:
                self.relocated.update(trees)
            else:  # asked leaves that now have children (or are terminal): ready to be told
                self.expanded.update(chosen)

    def backup(self) -> None:
        chosen = self.subset([leaf for leaf in self.in_flight if leaf in self.expanded], 0.7)
        if not chosen:
            return
        values = self.values(len(chosen))
        trees = [t for t, _ in chosen]
        nodes = [n for _, n in chosen]
        _, error = self.apply(
            f"backup({trees}, {nodes}, {values})", lambda f: f.backup(trees, nodes, values)
        )
        assert error is None
        self.retire(chosen)

    def cancel(self) -> None:
        chosen = self.subset(self.in_flight, 0.3)
        if not chosen:
            return
        trees = [t for t, _ in chosen]
        nodes = [n for _, n in chosen]
        _, error = self.apply(f"cancel({trees}, {nodes})", lambda f: f.cancel(trees, nodes))
        assert error is None
        self.retire(chosen)

    def retire(self, leaves: list[tuple[int, int]]) -> None:
        for leaf in leaves:
            self.in_flight.remove(leaf)
            self.expanded.discard(leaf)

    def tree_op(self) -> None:
        t = int(self.rng.integers(0, self.num_trees))
        if self.rng.random() < 0.7:  # usually free the tree first, so the operation can run
            leaves = [leaf for leaf in self.in_flight if leaf[0] == t]
            if leaves:
                nodes = [n for _, n in leaves]
                trees = [t] * len(nodes)
                self.apply(f"cancel({trees}, {nodes})", lambda f: f.cancel(trees, nodes))
                self.retire(leaves)
        op = str(self.rng.choice(["reroot", "prune", "compact", "reset"]))
        alive = [int(i) for i in np.flatnonzero(self.ref.view(t, "parent") != -2)]
        busy = any(tree == t for tree, _ in self.in_flight)
        if op == "reroot":
            node = alive[int(self.rng.integers(0, min(len(alive), 6)))]  # near the root
            call = lambda f: f.reroot(t, node)  # noqa: E731
        elif op == "prune":
            if len(alive) < 2:
                return
            node = alive[int(self.rng.integers(1, len(alive)))]
            call = lambda f: f.prune(t, node)  # noqa: E731
        elif op == "compact":
            node = None
            call = lambda f: f.compact(t)  # noqa: E731
        else:
            node = int(self.rng.integers(-(2**63), 2**63 - 1, endpoint=True))
            call = lambda f: f.reset(t, node)  # noqa: E731
        _, error = self.apply(f"{op}({t}, {node})", call)
        assert (error is ValueError) if busy else (error is None), f"{op}: {error}"
        if error is None:
            self.relocated.discard(t)

    def synthetic(self) -> None:
        s, a, k = (int(x) for x in self.rng.integers(1, [12, 5, 4]))
        seed = int(self.rng.integers(0, 2**32))
        self.apply(
            f"run_synthetic({s}, {a}, leaves_per_ask={k}, seed={seed})",
            lambda f: f.run_synthetic(s, a, leaves_per_ask=k, seed=seed),
        )
        self.bounded = False  # synthetic values lie in [-1, 1), not in the config's bounds

    # ------------------------------------------------------------------ checking
    def check(self) -> None:
        assert_same_forest(self.native, self.ref, "after the last op")
        bounds = (self.config.value_min, self.config.value_max) if self.bounded else None
        check_invariants(
            self.native, set(self.in_flight), relocated=self.relocated, q_bounds=bounds
        )

    def run(self, steps: int) -> None:
        try:
            self._run(steps)
        except AssertionError as error:
            log = "\n  ".join(self.log)
            raise AssertionError(f"{error}\nop sequence:\n  {log}") from None

    def _run(self, steps: int) -> None:
        ops = ["ask", "expand", "backup", "cancel", "widen", "tree_op", "synthetic"]
        weights = np.array([4, 4, 3, 0.7, 1.2, 0.5, 0.3])
        for step in range(steps):
            op = str(self.rng.choice(ops, p=weights / weights.sum()))
            if op in ("expand", "widen"):
                self.expand(widen=op == "widen")
            else:
                getattr(self, op)()
            self.check()
            if step % 5 == 4:
                assert_same_queries(self.native, self.ref, "queries")
        assert_same_queries(self.native, self.ref, "final queries")
        if self.in_flight:  # every leaf withdrawn: in-flight counts return to zero
            leaves = list(self.in_flight)
            trees = [t for t, _ in leaves]
            nodes = [n for _, n in leaves]
            self.apply(f"cancel({trees}, {nodes})", lambda f: f.cancel(trees, nodes))
            self.retire(leaves)
        self.check()
        for t in range(self.num_trees):
            assert not self.native.view(t, "in_flight").any()


@core_settings(max_examples=300)
@given(
    config=search_configs(),
    num_trees=st.integers(1, 3),
    steps=st.integers(1, 60),
    seed=st.integers(0, 2**32 - 1),
)
def test_random_operation_sequences(config, num_trees, steps, seed):
    Driver(config, num_trees, seed).run(steps)


@core_settings(max_examples=60)
@given(
    config=search_configs(),
    num_trees=st.integers(1, 4),
    sims=st.integers(1, 40),
    actions=st.integers(1, 6),
    leaves=st.integers(1, 4),
    seed=st.integers(0, 2**32 - 1),
)
def test_run_synthetic_matches_reference(config, num_trees, sims, actions, leaves, seed):
    native, ref = make_pair(num_trees, config.replace(max_nodes=1 << 22))
    result, error = on_both(
        native, ref, lambda f: f.run_synthetic(sims, actions, leaves_per_ask=leaves, seed=seed)
    )
    assert error is None and result > 0
    assert_same_forest(native, ref, "run_synthetic")
    assert_same_queries(native, ref, "run_synthetic")
    check_invariants(native, set())


def test_long_search_every_rule_and_norm():
    """Deeper trees than the random sequences reach: a fixed 300-simulation loop per combination
    (every rule x every qnorm, gumbel on/off), compared bit for bit."""
    rng = np.random.default_rng(7)
    for rule in RULES:
        for qnorm in QNORMS:
            for gumbel in (False, True):
                config = SearchConfig(
                    rule=rule, qnorm=qnorm, gumbel=gumbel, fpu="reduction", gumbel_simulations=16
                )
                native, ref = make_pair(2, config)
                for _ in range(40):
                    leaves, _ = on_both(native, ref, lambda f: leaves_dict(f.ask(4)))
                    n = len(leaves["node"])
                    counts = rng.integers(0, 4, n)
                    priors = rng.random(counts.sum()).astype(np.float32)
                    terminal = rng.random(counts.sum()) < 0.1
                    values = rng.random(n)
                    for forest in (native, ref):
                        forest.expand(leaves["tree"], leaves["node"], counts, priors, 0.0, terminal)
                        forest.backup(leaves["tree"], leaves["node"], values)
                assert_same_forest(native, ref, f"{rule} {qnorm} gumbel={gumbel}")
                assert_same_queries(native, ref, f"{rule} {qnorm} gumbel={gumbel}")
