"""The Q-guided agent's choice: argmax Q over the sampled candidates, optionally skipping the
candidates the episode already took in the same observation."""

from __future__ import annotations

import numpy as np
import pytest

from qengine.agents import QGuidedAgent, repeated_actions
from qengine.envs import TextState, make_env
from qengine.policies import Candidate


class Fixed:
    """Proposes the same candidates, in order, for every state."""

    def __init__(self, texts: list[str]) -> None:
        self.texts = texts

    def propose(self, states, n):
        return [[Candidate(t, -1.0) for t in self.texts[:n]] for _ in states]


class TableQ:
    """A stand-in Q-model: a fixed Q per action text."""

    def __init__(self, q: dict[str, float]) -> None:
        self.q = q

    def score(self, prompt, candidates):
        return np.array([self.q[c] for c in candidates], dtype=np.float64)


def state(*steps: tuple[str, str]) -> TextState:
    return TextState("toy", "t0", "get the key", "hall", tuple(steps))


def test_repeated_actions_are_those_taken_before_in_the_same_observation() -> None:
    assert repeated_actions(state()) == frozenset()
    # hall -(north)-> room -(south)-> hall: "north" was taken in "hall" before.
    back_in_hall = state(("north", "room"), ("south", "hall"))
    assert repeated_actions(back_in_hall) == {"north"}
    # In "room" the episode took "south"; now it is in "room" again.
    again_in_room = state(("north", "room"), ("south", "hall"), ("north", "room"))
    assert repeated_actions(again_in_room) == {"south"}
    # An action taken in another observation does not count.
    assert repeated_actions(state(("north", "room"))) == frozenset()


def test_on_the_shop_going_back_makes_the_item_click_a_repeat() -> None:
    env = make_env("shop")
    env.reset(env.task_ids("test")[0])
    env.step(env.oracle_action())  # the search: a results page
    results_page = env.state().observation
    item = env.oracle_action()
    assert item.startswith("click[")
    env.step(item)
    env.step("click[< prev]")
    now = env.state()
    assert now.observation == results_page  # the environment is deterministic
    assert repeated_actions(now) == {item}


def test_avoid_repeats_passes_over_the_best_candidate_only_when_it_is_a_repeat() -> None:
    q = TableQ({"north": 3.0, "east": 2.0, "west": 1.0})
    back_in_hall = state(("north", "room"), ("south", "hall"))
    plain = QGuidedAgent(Fixed(["west", "north", "east"]), q, n=3)
    assert plain.name == "Q-guided"
    assert plain.act([back_in_hall]) == ["north"]

    agent = QGuidedAgent(Fixed(["west", "north", "east"]), q, n=3, avoid_repeats=True)
    assert agent.name == "Q-guided, no repeats"
    assert agent.act([back_in_hall, state()]) == ["east", "north"]
    assert agent.stats["repeats_avoided"] == 1
    assert agent.stats["decisions"] == 2 and agent.stats["q_calls"] == 2

    # When every candidate is a repeat, the highest Q wins as without the rule.
    only_repeats = QGuidedAgent(Fixed(["north"] * 2 + ["north"]), q, n=3, avoid_repeats=True)
    assert only_repeats.act([back_in_hall]) == ["north"]
    both_repeated = state(("north", "room"), ("south", "hall"), ("east", "yard"), ("w", "hall"))
    two = QGuidedAgent(Fixed(["north", "east"]), q, n=2, avoid_repeats=True)
    assert two.act([both_repeated]) == ["north"]
    assert two.stats["repeats_avoided"] == 0


def test_bad_input_is_explained() -> None:
    with pytest.raises(ValueError, match="n must be"):
        QGuidedAgent(Fixed(["a"]), TableQ({}), n=0)
