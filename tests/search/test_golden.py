"""The collector grows the same trees, bit for bit, as the driver before the refactor did."""

from __future__ import annotations

import pytest
from search_helpers import CASES, GOLDEN, assert_same_trees, run_case


@pytest.mark.parametrize("case", sorted(CASES))
def test_collect_matches_the_golden_trees(case: str, tmp_path) -> None:
    run_case(case, tmp_path)
    assert_same_trees(GOLDEN / case, tmp_path)
