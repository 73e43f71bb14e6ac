"""Random numbers (docs section 7): splitmix64 with 64-bit wrap-around, and the Gumbel noise."""

from __future__ import annotations

import math

MASK64 = (1 << 64) - 1


def splitmix64(x: int) -> int:
    x = (x + 0x9E3779B97F4A7C15) & MASK64
    z = x
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & MASK64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & MASK64
    return z ^ (z >> 31)


def uniform(seed: int, tree: int, epoch: int, action: int) -> float:
    """A double in (0, 1] (1.0 only by rounding): ((h >> 11) + 0.5) * 2^-53."""
    h = splitmix64(
        (seed & MASK64)
        ^ splitmix64((tree & MASK64) ^ splitmix64((epoch & MASK64) ^ splitmix64(action & MASK64)))
    )
    return ((h >> 11) + 0.5) * 2.0**-53


def gumbel(seed: int, tree: int, epoch: int, action: int) -> float:
    """g = -log(-log(u)); u == 1.0 gives +inf (as IEEE arithmetic does in C++)."""
    inner = -math.log(uniform(seed, tree, epoch, action))
    if inner == 0.0:
        return math.inf
    return -math.log(inner)
