"""Preference data from searched trees: records, prompts, plots."""

from .pairs import (
    RECORD_COLUMNS,
    build_pairs,
    load_records,
    pairs_from_trees,
    q_gap_summary,
    save_records,
)
from .plots import plot_q_distributions
from .prompts import render_prompt, render_state

__all__ = [
    "RECORD_COLUMNS",
    "build_pairs",
    "load_records",
    "pairs_from_trees",
    "plot_q_distributions",
    "q_gap_summary",
    "render_prompt",
    "render_state",
    "save_records",
]
