"""The scripted noisy expert: candidates, priors, determinism, errors."""

from __future__ import annotations

import math

import pytest
from envs_helpers import HOTPOT_KW, SHOP_KW

from qengine.envs import make_env
from qengine.policies import Candidate, Policy, ScriptedPolicy, dedupe


def _states(env, k=6, steps=2):
    """A few states of ``env``: initial ones and some after expert steps."""
    out = []
    for tid in env.task_ids("test")[:k]:
        s = env.reset(tid)
        out.append(s)
        for _ in range(steps):
            env.step(env.oracle_action())
            out.append(env.state())
    return out


@pytest.mark.parametrize(("name", "kw"), [("shop", SHOP_KW), ("hotpot", HOTPOT_KW)])
def test_candidates_are_distinct_with_exact_priors(name, kw):
    env = make_env(name, **kw)
    pol = ScriptedPolicy(name, p=0.5, seed=0, env_kwargs=kw)
    assert isinstance(pol, Policy)
    states = _states(env)
    batches = pol.propose(states, 5)
    assert len(batches) == len(states)
    for state, cands in zip(states, batches, strict=True):
        assert 1 <= len(cands) <= 5
        assert len({c.text for c in cands}) == len(cands)
        probs = pol.distribution(state)
        assert math.fsum(probs.values()) == pytest.approx(1.0)
        for c in cands:
            assert c.logprob <= 0.0 and c.logprob == pytest.approx(math.log(probs[c.text]))


def test_expert_proposes_only_the_oracle_action(shop):
    pol = ScriptedPolicy(shop, p=1.0)
    for state, cands in zip(_states(shop), pol.propose(_states(shop), 8), strict=True):
        shop.replay(state.task_id, state.actions)
        assert cands == [Candidate(shop.oracle_action(), 0.0)]


def test_deterministic_given_seed_and_independent_of_batch(hotpot):
    states = _states(hotpot)
    a = ScriptedPolicy(hotpot, p=0.3, seed=7).propose(states, 4)
    b = ScriptedPolicy(hotpot, p=0.3, seed=7).propose(states, 4)
    assert a == b
    alone = ScriptedPolicy(hotpot, p=0.3, seed=7).propose(states[3:4], 4)
    assert alone[0] == a[3]
    c = ScriptedPolicy(hotpot, p=0.3, seed=8).propose(states, 4)
    assert a != c
    # proposing again for the same state draws new samples (deterministically)
    pol = ScriptedPolicy(hotpot, p=0.3, seed=7)
    first, second = pol.propose(states, 4), pol.propose(states, 4)
    assert first == a and second != first


def test_unique_sampling_fills_n_when_possible(shop):
    pol = ScriptedPolicy(shop, p=0.5, unique=True, seed=1)
    for state, cands in zip(_states(shop), pol.propose(_states(shop), 4), strict=True):
        support = len(pol.distribution(state))
        assert len(cands) == min(4, support)


def test_finished_episode_gets_no_candidates(hotpot):
    tid = hotpot.task_ids("test")[0]
    hotpot.reset(tid)
    hotpot.step("finish[nobody]")
    pol = ScriptedPolicy(hotpot, p=0.5)
    assert pol.propose([hotpot.state()], 3) == [[]]
    assert pol.act([hotpot.state()]) == [None]


def test_bad_input_is_refused_clearly(shop, hotpot):
    with pytest.raises(ValueError, match=r"p must be in \[0, 1\]"):
        ScriptedPolicy(shop, p=1.5)
    with pytest.raises(ValueError, match="n must be >= 1"):
        ScriptedPolicy(shop).propose([shop.reset(shop.task_ids("test")[0])], 0)
    with pytest.raises(ValueError, match="plays 'shop'"):
        ScriptedPolicy(shop).propose([hotpot.reset(hotpot.task_ids("test")[0])], 2)
    other_seed = make_env("shop", **{**SHOP_KW, "seed": 11})
    state = other_seed.reset(other_seed.task_ids("test")[0])
    with pytest.raises(ValueError, match="another configuration"):
        ScriptedPolicy(shop).propose([state], 2)


def test_dedupe_keeps_first():
    cands = [Candidate("a", -1.0), Candidate(" a ", -2.0), Candidate("b", -0.5)]
    assert dedupe(cands) == [Candidate("a", -1.0), Candidate("b", -0.5)]
