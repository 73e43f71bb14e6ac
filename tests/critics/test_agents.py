"""VGuidedAgent: lookahead in a private environment, argmax of V, cost counters."""

from __future__ import annotations

import numpy as np
import pytest
from critics_helpers import CannedGenerator, FixedPolicy, StubCritic, last_action

from qengine.agents import run_episodes
from qengine.critics import GenerativeCritic, VGuidedAgent
from qengine.data.prompts import render_state
from qengine.policies import ScriptedPolicy

QUERIES = ["search[red]", "search[blue mug]", "search[gold lamp]"]


def test_executes_the_candidate_whose_next_state_has_the_highest_value(shop) -> None:
    task = shop.task_ids("train")[0]
    state = shop.reset(task)
    critic = StubCritic({"search[red]": 0.2, "search[blue mug]": 0.9, "search[gold lamp]": 0.5})
    agent = VGuidedAgent(FixedPolicy(QUERIES), critic, shop, n=3)
    assert agent.act([state]) == ["search[blue mug]"]
    # The critic saw exactly the rendered next states, in candidate order.
    twin = shop.fresh()
    expected = [render_state(twin.replay(task, [q])) for q in QUERIES]
    assert critic.seen == expected
    assert agent.stats["lookahead_steps"] == 3 and agent.stats["critic_calls"] == 1
    assert agent.env_steps_per_decision == 3 and agent.model_calls_per_decision == 3
    # Another ranking, another choice; ties go to the earlier candidate.
    critic.values = {"search[gold lamp]": 1.0}
    assert agent.act([state]) == ["search[gold lamp]"]
    critic.values = {}
    assert agent.act([state]) == ["search[red]"]


def test_leaves_the_callers_environment_untouched(shop) -> None:
    task = shop.task_ids("train")[1]
    shop.reset(task)
    shop.step(shop.oracle_action())
    before, snap = shop.state(), shop.snapshot()

    class Spy:
        """Forwards to the env, recording every attribute the agent asks for."""

        def __init__(self, env) -> None:
            self.env, self.used = env, []

        def __getattr__(self, name):
            self.used.append(name)
            return getattr(self.env, name)

    spy = Spy(shop)
    agent = VGuidedAgent(ScriptedPolicy(shop, p=0.3, seed=0), StubCritic({}), spy, n=4)
    agent.act([before])
    assert set(spy.used) == {"fresh"}
    assert shop.state() == before and shop.snapshot() == snap


def test_terminal_next_states_are_worth_their_reward(shop) -> None:
    task = shop.task_ids("train")[0]
    state = shop.reset(task)
    while shop.oracle_action() != "click[buy now]":  # the expert's path to the item page
        shop.step(shop.oracle_action())
        state = shop.state()
    buy = shop.fresh()
    buy.restore(shop.snapshot())
    reward = buy.step("click[buy now]").reward
    assert reward > 0.5
    cands = ["click[< prev]", "click[buy now]"]
    critic = StubCritic({}, default=0.5)
    agent = VGuidedAgent(FixedPolicy(cands), critic, shop, n=2)
    assert agent.act([state]) == ["click[buy now]"]
    assert len(critic.seen) == 1 and last_action(critic.seen[0]) == "click[< prev]"
    # terminal_value="model": the critic values the terminal state too (and here prefers "prev").
    critic = StubCritic({"click[< prev]": 0.9, "click[buy now]": 0.1})
    agent = VGuidedAgent(FixedPolicy(cands), critic, shop, n=2, terminal_value="model")
    assert agent.act([state]) == ["click[< prev]"] and len(critic.seen) == 2


def test_the_next_decision_starts_from_a_looked_ahead_state(shop) -> None:
    state = shop.reset(shop.task_ids("train")[0])
    agent = VGuidedAgent(FixedPolicy(QUERIES), StubCritic({"search[gold lamp]": 1.0}), shop, n=3)
    for _ in range(3):
        (action,) = agent.act([state])
        shop.step(action)
        state = shop.state()
    assert agent.stats["replay_steps"] == 0 and agent.stats["lookahead_steps"] == 9


def test_single_and_missing_candidates_need_no_lookahead(shop) -> None:
    state = shop.reset(shop.task_ids("train")[0])
    critic = StubCritic({})
    agent = VGuidedAgent(FixedPolicy(QUERIES[:1]), critic, shop, n=3)
    assert agent.act([state, state]) == [QUERIES[0]] * 2
    assert critic.calls == 0 and agent.env_steps_per_decision == 0
    agent = VGuidedAgent(FixedPolicy([]), critic, shop, n=3)
    assert agent.act([state]) == [""] and agent.act([]) == []


def test_runs_episodes_and_counts_costs(shop) -> None:
    tasks = shop.task_ids("test")[:3]
    policy = ScriptedPolicy(shop, p=0.5, seed=2)
    rng = np.random.default_rng(0)

    class RandomCritic:
        def score(self, texts):
            return rng.random(len(texts))

    agent = VGuidedAgent(policy, RandomCritic(), shop, n=3)
    result = run_episodes(shop, agent, tasks, progress=False)
    assert result.tasks == 3 and len(result.rewards) == 3
    s = agent.stats
    assert s["decisions"] == round(result.mean_steps * 3)
    assert s["critic_calls"] <= s["policy_calls"]  # one batched critic call per act at most
    assert s["replay_steps"] <= s["decisions"]  # at most one step from a cached parent
    assert 0 < agent.env_steps_per_decision <= 3


def test_takes_a_generative_critic(shop) -> None:
    state = shop.reset(shop.task_ids("train")[0])
    gen = CannedGenerator(["Value: 0.1", "Value: 0.8", "Value: 0.3"])
    critic = GenerativeCritic(generate_fn=gen, k=2)
    agent = VGuidedAgent(FixedPolicy(QUERIES), critic, shop, n=3)
    assert agent.act([state]) == ["search[blue mug]"]
    assert len(gen.prompts) == 3 and "search[blue mug]" in gen.prompts[1]


def test_bad_input_is_explained(shop) -> None:
    with pytest.raises(ValueError, match="n must be"):
        VGuidedAgent(FixedPolicy(QUERIES), StubCritic({}), shop, n=0)
    with pytest.raises(ValueError, match="terminal_value"):
        VGuidedAgent(FixedPolicy(QUERIES), StubCritic({}), shop, terminal_value="zero")
    with pytest.raises(TypeError, match="score"):
        VGuidedAgent(FixedPolicy(QUERIES), object(), shop)
    with pytest.raises(TypeError, match="fresh"):
        VGuidedAgent(FixedPolicy(QUERIES), StubCritic({}), object())

    class Short:
        def score(self, texts):
            return np.zeros(len(texts) - 1)

    state = shop.reset(shop.task_ids("train")[0])
    with pytest.raises(ValueError, match="shape"):
        VGuidedAgent(FixedPolicy(QUERIES), Short(), shop).act([state])
    other = type(shop)(seed=9, num_train=20, num_test=10, products_per_category=10, page_size=2)
    stranger = other.reset(other.task_ids("train")[0])
    with pytest.raises(ValueError, match="same observation"):
        VGuidedAgent(FixedPolicy(QUERIES), StubCritic({}), shop).act([stranger])
