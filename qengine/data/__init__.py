"""Preference data from searched trees: records, prompts, plots."""

from .pairs import (
    RECORD_COLUMNS,
    build_pairs,
    load_records,
    pairs_from_trees,
    q_gap_summary,
    save_records,
    state_prompt,
)
from .plots import plot_q_distributions
from .prompts import PROMPT_STYLES, PromptStyle, render_prompt, render_state

__all__ = [
    "PROMPT_STYLES",
    "RECORD_COLUMNS",
    "PromptStyle",
    "build_pairs",
    "load_records",
    "pairs_from_trees",
    "plot_q_distributions",
    "q_gap_summary",
    "render_prompt",
    "render_state",
    "save_records",
    "state_prompt",
]
