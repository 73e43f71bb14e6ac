"""Helpers shared by the critic tests (a uniquely named module: tests have no packages)."""

from __future__ import annotations

import random
import re
from collections.abc import Sequence

import numpy as np

from qengine.policies import Candidate

SHOP_KW = dict(seed=3, num_train=20, num_test=10, products_per_category=10, page_size=2)

COLOURS = ["red", "blue", "green", "black", "white", "pink", "gray", "gold"]
COLOUR_VALUE = {c: i / (len(COLOURS) - 1) for i, c in enumerate(COLOURS)}  # red 0 ... gold 1
THINGS = ["shirt", "mug", "lamp", "sock", "hat", "desk"]


def colour_state(colour: str, rng: random.Random) -> str:
    """A rendered state whose value is set by the colour it shows (filler words vary)."""
    return (
        f"Instruction: buy a {rng.choice(THINGS)}\n"
        f"Observation: a {colour} {rng.choice(THINGS)} is shown\nAction: "
    )


def colour_records(n: int, seed: int, tasks: int = 50) -> list[dict]:
    """Regression records: value = the colour's value."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        c = rng.choice(COLOURS)
        out.append(
            {"state": colour_state(c, rng), "value": COLOUR_VALUE[c], "task": f"t{i % tasks}"}
        )
    return out


def colour_pairs(n: int, seed: int, tasks: int = 50) -> list[dict]:
    """Bradley-Terry records: the state showing the more valuable colour is chosen."""
    rng = random.Random(seed)
    out = []
    for i in range(n):
        a, b = rng.sample(COLOURS, 2)
        if COLOUR_VALUE[a] < COLOUR_VALUE[b]:
            a, b = b, a
        out.append(
            {
                "chosen": colour_state(a, rng),
                "rejected": colour_state(b, rng),
                "task": f"t{i % tasks}",
            }
        )
    return out


_ACTION_LINE = re.compile(r"^Action: (.+)$", re.MULTILINE)


def last_action(text: str) -> str:
    """The last action taken in a rendered state ("" at the start)."""
    found = _ACTION_LINE.findall(text)
    return found[-1].strip() if found else ""


class StubCritic:
    """V(s) = values[last action of s] (default 0); remembers every text it scored."""

    def __init__(self, values: dict[str, float], default: float = 0.0) -> None:
        self.values, self.default = values, default
        self.seen: list[str] = []
        self.calls = 0

    def score(self, texts: Sequence[str]) -> np.ndarray:
        self.calls += 1
        self.seen.extend(texts)
        return np.array([self.values.get(last_action(t), self.default) for t in texts])


class FixedPolicy:
    """Proposes the same candidate texts for every live state."""

    def __init__(self, texts: Sequence[str]) -> None:
        self.texts = list(texts)
        self.calls = 0

    def propose(self, states, n):
        self.calls += 1
        return [[] if s.done else [Candidate(t, -1.0) for t in self.texts[:n]] for s in states]


class CannedGenerator:
    """A ``generate_fn`` that answers each prompt with canned texts and records the prompts."""

    def __init__(self, answers: Sequence[str] | None = None, default: str = "Value: 0.5") -> None:
        self.answers = list(answers or [])
        self.default = default
        self.prompts: list[str] = []

    def __call__(self, prompts: list[str], num_samples: int) -> list[list[str]]:
        self.prompts.extend(prompts)
        out = []
        for _ in prompts:
            row = [
                self.answers.pop(0) if self.answers else self.default for _ in range(num_samples)
            ]
            out.append(row)
        return out
