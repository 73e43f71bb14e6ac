"""parse_value: the accepted forms of a critic's value line, and every failure mode."""

from __future__ import annotations

import pytest

from qengine.critics import parse_value
from qengine.critics.parsing import format_value, value_line_complete

OK = [
    ("Value: 0.7", 0.7),
    ("value = .7", 0.7),
    ("VALUE: 7e-1", 0.7),
    ("value:0.25", 0.25),
    ("Reasoning: close to the goal.\nValue: 0.73", 0.73),
    ("Value: 0.73.", 0.73),
    ("**Value:** 0.6", 0.6),
    ("`value` = 1", 1.0),
    ("Value: 73%", 0.73),
    ("Value: +0.5\nThat is all.", 0.5),
    ("value: 0.2 ... on reflection\nValue: 0.4", 0.4),  # the last one wins
    ("Value: 0.3\nValue: unsure", 0.3),  # ... the last well-formed one
    ("Value: 1.", 1.0),
    ("Value: 0", 0.0),
    ("Value: 0.7, which is decent", 0.7),
    ("(Value: 0.4)", 0.4),
    ("Value: 73%.", 0.73),
]


@pytest.mark.parametrize(("text", "value"), OK)
def test_accepted_forms(text: str, value: float) -> None:
    parsed = parse_value(text)
    assert parsed.status == "ok" and not parsed.failed
    assert parsed.value == pytest.approx(value)


@pytest.mark.parametrize(
    ("text", "value"),
    [("Value: 1.7", 1.0), ("Value: -0.2", 0.0), ("value = 7", 1.0), ("Value: 1e3", 1.0)],
)
def test_out_of_range_is_clipped_and_flagged(text: str, value: float) -> None:
    parsed = parse_value(text)
    assert parsed.status == "clipped" and parsed.value == value and not parsed.failed


@pytest.mark.parametrize(
    ("text", "status"),
    [
        ("", "missing"),
        ("the shirt is red and the answer is 0.7", "missing"),
        ("zq xv <unk> </s> ] [ ::", "missing"),
        ("expected_value: 0.5", "missing"),
        ("Value:", "malformed"),
        ("Value: high", "malformed"),
        ("Value: 0,7", "malformed"),
        ("Value: 3rd", "malformed"),
        ("Value: 0.7x", "malformed"),
        ("Value: .", "malformed"),
        ("Value: nan", "nonfinite"),
        ("Value: inf", "nonfinite"),
        ("value = -Infinity", "nonfinite"),
        ("Value: 1e999", "nonfinite"),
    ],
)
def test_failures_are_reported_never_raised(text: str, status: str) -> None:
    parsed = parse_value(text)
    assert parsed.status == status and parsed.failed and parsed.value is None


def test_other_ranges_and_non_text() -> None:
    assert parse_value("Value: 7", low=0, high=10).value == 7
    assert parse_value("Value: -3", low=-1, high=1).status == "clipped"
    assert parse_value(None).status == "missing"  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="low < high"):
        parse_value("Value: 1", low=1, high=1)
    assert parse_value(format_value(0.123)).value == pytest.approx(0.12)


def test_value_line_complete() -> None:
    assert not value_line_complete("I think. Value: 0.7")  # the number may go on
    assert value_line_complete("I think. Value: 0.7\n")
    assert not value_line_complete("Value: soon\n")
