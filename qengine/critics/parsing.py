"""Reading the value a generative critic wrote: ``Value: 0.73`` and its many near-misses.

Accepted (case-insensitive), the **last** well-formed occurrence in the text wins (a critic may
mention values in its reasoning before its final answer):

    value: 0.73      Value = .7      VALUE: 7e-1      **Value:** 0.7      value: 73%

i.e. the word ``value`` (not part of a longer word), optional markdown marks (``* _ `` ` ``), ``:``
or ``=``, then a decimal number (sign, leading/trailing dot, exponent) optionally followed by
``%`` (divided by 100). The number must be the whole word after the key, a sentence mark aside
(``0.7.`` and ``0.7,`` are fine; ``0,7``, ``3rd`` and ``0.7x`` are not).

Outcomes (:class:`ParsedValue.status`):

* ``"ok"`` — a finite number in [low, high];
* ``"clipped"`` — a finite number outside [low, high], clipped into it (counted, still used);
* ``"missing"`` — no ``value:`` / ``value =`` anywhere (empty or garbage text);
* ``"malformed"`` — a ``value:`` key but no number after it (``Value: high``, ``Value: 0,7``);
* ``"nonfinite"`` — ``nan`` / ``inf`` / an overflowing number: not an estimate, a failure.

The last three are *failures* (``value is None``); the critic replaces them by a fallback.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Literal

__all__ = ["FAILURES", "ParsedValue", "format_value", "parse_value", "value_line_complete"]

Status = Literal["ok", "clipped", "missing", "malformed", "nonfinite"]
FAILURES: frozenset[str] = frozenset({"missing", "malformed", "nonfinite"})

_KEY = re.compile(r"\bvalue[*_`\s]*[:=][*_`\s]*", re.IGNORECASE)
_TOKEN = re.compile(r"[-+\w.,%]+")  # the word after the key, up to a space or bracket
_NUMBER = re.compile(
    r"(?P<num>[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:e[-+]?\d+)?|nan|inf(?:inity)?))(?P<pct>%?)",
    re.IGNORECASE,
)
_SENTENCE_END = ".,;:!?"


def _number_after(text: str, pos: int) -> re.Match[str] | None:
    """The number that makes up the whole word at ``pos`` (a sentence mark may follow it)."""
    token = _TOKEN.match(text, pos)
    if token is None:
        return None
    return _NUMBER.fullmatch(token.group().rstrip(_SENTENCE_END))


@dataclass(frozen=True)
class ParsedValue:
    """A parsed value (``None`` on failure) and how it was obtained."""

    value: float | None
    status: Status

    @property
    def failed(self) -> bool:
        return self.status in FAILURES


def parse_value(text: str, *, low: float = 0.0, high: float = 1.0) -> ParsedValue:
    """The critic's value in ``text`` (see the module docstring); never raises on bad text."""
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"need finite low < high, got [{low}, {high}]")
    if not isinstance(text, str):
        return ParsedValue(None, "missing")
    keys = list(_KEY.finditer(text))
    if not keys:
        return ParsedValue(None, "missing")
    nonfinite = False
    for key in reversed(keys):
        m = _number_after(text, key.end())
        if m is None:
            continue
        x = float(m.group("num"))
        if m.group("pct"):
            x /= 100.0
        if not math.isfinite(x):
            nonfinite = True
            continue
        if x < low or x > high:
            return ParsedValue(min(max(x, low), high), "clipped")
        return ParsedValue(x, "ok")
    return ParsedValue(None, "nonfinite" if nonfinite else "malformed")


def format_value(x: float) -> str:
    """The exact line a critic is asked to end with (used in prompts and tests)."""
    return f"Value: {x:.2f}"


def value_line_complete(text: str) -> bool:
    """Whether ``text`` holds a ``value: <number>`` followed by the end of its line (generation
    can stop there)."""
    for key in _KEY.finditer(text):
        token = _TOKEN.match(text, key.end())
        if _number_after(text, key.end()) is not None and "\n" in text[token.end() :]:
            return True
    return False
