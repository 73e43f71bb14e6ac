"""The synthetic hash evaluator of the benchmarks (docs section 8), uint32 arithmetic."""

from __future__ import annotations

import math

import numpy as np

MASK32 = 0xFFFFFFFF


def mix32(x: int) -> int:
    x &= MASK32
    x ^= x >> 16
    x = (x * 0x7FEB352D) & MASK32
    x ^= x >> 15
    x = (x * 0x846CA68B) & MASK32
    x ^= x >> 16
    return x


def root_key(seed: int, tree: int) -> int:
    return mix32((seed & MASK32) ^ mix32(tree))


def child_key(key: int, action: int) -> int:
    return mix32((key * 31 + action + 1) & MASK32)


def unit(key: int, j: int) -> float:
    """A double in [0, 1) with 24 random bits."""
    return (mix32(key ^ mix32(j + 1)) >> 8) * 2.0**-24


def priors(key: int, num_actions: int) -> list[float]:
    """softmax(2 * unit(key, a) - 1) computed in double (max subtracted, sequential sum), stored
    as float32."""
    logits = [2.0 * unit(key, a) - 1.0 for a in range(num_actions)]
    top = max(logits)
    exps = [math.exp(x - top) for x in logits]
    total = 0.0
    for e in exps:
        total += e
    return [float(np.float32(e / total)) for e in exps]


def value(key: int, num_actions: int) -> float:
    return 2.0 * unit(key, num_actions) - 1.0
