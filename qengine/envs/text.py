"""Small text utilities shared by the built-in environments (tokenising, seeding)."""

from __future__ import annotations

import hashlib
import re

import numpy as np

__all__ = ["contains_phrase", "rng_for", "stable_hash", "tokens"]

_TOKEN_RE = re.compile(r"[a-z0-9]+(?:[-'][a-z0-9]+)*")


def tokens(text: str) -> list[str]:
    """Lower-cased word tokens; hyphenated words stay whole (``"non-slip"``)."""
    return _TOKEN_RE.findall(text.lower())


def contains_phrase(text: str, phrase: str) -> bool:
    """Whether the tokens of ``phrase`` occur contiguously in ``text`` (whole words only)."""
    p = tokens(phrase)
    if not p:
        return False
    t = tokens(text)
    n = len(p)
    return any(t[i : i + n] == p for i in range(len(t) - n + 1))


def stable_hash(*parts: object) -> int:
    """A 64-bit hash of ``parts`` that is stable across processes (unlike ``hash``)."""
    h = hashlib.blake2b(repr(parts).encode(), digest_size=8)
    return int.from_bytes(h.digest(), "little")


def rng_for(*parts: object) -> np.random.Generator:
    """A numpy generator seeded from ``parts`` (stable across processes and platforms)."""
    return np.random.default_rng(stable_hash(*parts))
