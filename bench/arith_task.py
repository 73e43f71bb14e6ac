"""The arithmetic task of ``bench/qrm_vs_orm.py``: two-step word problems generated from a seed.

"tom has 3 apples . he buys 4 more . he gives 2 away . how many apples now ?" is solved as
"3 + 4 = 7 . 7 - 2 = 5 . answer 5". The gold solution is unique (the operator follows the text,
the operands are copied), which makes an exact oracle token reward possible. :func:`corrupt`
makes a plausible wrong solution that shares the gold one's prefix up to one wrong token and then
continues consistently from the error, the "correct vs corrupted" preference pairs of the Q-RM
recipe.
"""

from __future__ import annotations

import random
from dataclasses import dataclass

NAMES = ("tom", "ann", "bob", "sue", "max", "eva")
ITEMS = ("apples", "pens", "cards", "coins", "books", "shells")
MAX_NUMBER = 9  # operands 0..9, intermediate results 0..18
LARGEST = 3 * MAX_NUMBER  # the largest number a corrupted solution may write (vocabulary bound)
STEPS = 2


@dataclass(frozen=True)
class ArithProblem:
    prompt: str
    solution: str
    answer: int
    steps: tuple[tuple[int, str, int], ...]  # (x, op, y) per step; x of step k+1 = result of k


def _apply(x: int, op: str, y: int) -> int:
    return x + y if op == "+" else x - y


def render_solution(start: int, ops: list[tuple[str, int]]) -> str:
    """The worked solution of ``start`` followed by ``ops`` (each step's x is the last result)."""
    parts, value = [], start
    for op, y in ops:
        result = _apply(value, op, y)
        parts.append(f"{value} {op} {y} = {result}")
        value = result
    return " . ".join(parts) + f" . answer {value}"


def _make_problem(rng: random.Random) -> ArithProblem:
    name, item = rng.choice(NAMES), rng.choice(ITEMS)
    a = rng.randint(0, MAX_NUMBER)
    text = [f"{name} has {a} {item} ."]
    ops: list[tuple[str, int]] = []
    value = a
    for _ in range(STEPS):
        b = rng.randint(0, MAX_NUMBER)
        if rng.random() < 0.5 or b > value:
            text.append(f"{name} buys {b} more .")
            ops.append(("+", b))
        else:
            text.append(f"{name} gives {b} away .")
            ops.append(("-", b))
        value = _apply(value, *ops[-1])
    text.append(f"how many {item} now ?")
    steps, x = [], a
    for op, y in ops:
        steps.append((x, op, y))
        x = _apply(x, op, y)
    return ArithProblem(" ".join(text), render_solution(a, ops), value, tuple(steps))


def generate_problems(n: int, seed: int) -> list[ArithProblem]:
    """``n`` problems drawn from ``seed`` (deterministic)."""
    rng = random.Random(seed)
    return [_make_problem(rng) for _ in range(n)]


def answer_of(completion: str) -> int | None:
    """The integer after the last ``answer`` word, or None (malformed output never raises)."""
    words = completion.split()
    for i in range(len(words) - 2, -1, -1):
        if words[i] == "answer":
            try:
                return int(words[i + 1])
            except ValueError:
                return None
    return None


def _other(rng: random.Random, value: int, low: int, high: int) -> int:
    return rng.choice([v for v in range(low, high + 1) if v != value])


def corrupt(problem: ArithProblem, rng: random.Random) -> str:
    """A wrong solution: one mistake (a miscopied operand, the wrong operator, a wrong result),
    then every later step computed correctly from the mistaken value; its final answer differs
    from the gold one."""
    while True:
        k = rng.randrange(len(problem.steps))
        kind = rng.choice(("x", "op", "y", "result"))
        _, op, y = problem.steps[k]
        ops = [(o, b) for _, o, b in problem.steps]
        if kind == "op":
            ops[k] = ("-" if op == "+" else "+", y)
        elif kind == "y":
            ops[k] = (op, _other(rng, y, 0, MAX_NUMBER))
        parts, value = [], problem.steps[0][0]
        for i, (o, b) in enumerate(ops):
            xi = value
            if i == k and kind == "x":
                xi = _other(rng, value, 0, 2 * MAX_NUMBER)
            result = _apply(xi, o, b)
            if i == k and kind == "result":
                result = _other(rng, result, 0, 2 * MAX_NUMBER)
            parts.append(f"{xi} {o} {b} = {result}")
            value = result
        text = " . ".join(parts) + f" . answer {value}"
        numbers = [int(w) for w in text.split() if w.lstrip("-").isdigit()]
        if answer_of(text) != problem.answer and max(numbers) <= LARGEST:
            return text  # (a redraw keeps every number in the tokenizer's vocabulary)


FORMAT_ERRORS = ("drop", "repeat", "swap", "junk", "stop", "ramble")


def corrupt_format(problem: ArithProblem, rng: random.Random) -> str:
    """A malformed solution: the gold one up to a token k, then one format error there - a token
    dropped, repeated, swapped with the next, replaced by another word of the task, an early stop,
    or words rambling on after the answer. Unlike :func:`corrupt` (a wrong number or operator in a
    well-formed solution) these teach a reward model about the tokens a policy may emit that no
    well-formed solution has at that place."""
    gold = problem.solution.split()
    words = vocabulary()[0].split()
    while True:
        kind = rng.choice(FORMAT_ERRORS)
        k = rng.randrange(len(gold))
        if kind == "drop":
            out = gold[:k] + gold[k + 1 :]
        elif kind == "repeat":
            out = gold[: k + 1] + gold[k:]
        elif kind == "swap":
            k = min(k, len(gold) - 2)
            out = [*gold[:k], gold[k + 1], gold[k], *gold[k + 2 :]]
        elif kind == "junk":
            out = [*gold[:k], rng.choice([w for w in words if w != gold[k]]), *gold[k + 1 :]]
        elif kind == "stop":
            out = gold[: max(1, k)]
        else:
            out = gold + [rng.choice(words) for _ in range(rng.randint(1, 4))]
        if out != gold:
            return " ".join(out)


def vocabulary() -> list[str]:
    """One text holding every word of the task (to train the word tokenizer on)."""
    words = [*NAMES, *ITEMS, "has", "buys", "more", "gives", "away", "how", "many", "now"]
    words += [".", "?", "+", "-", "=", "answer"] + [str(i) for i in range(LARGEST + 1)]
    return [" ".join(words)]
