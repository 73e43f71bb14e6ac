"""The one text rendering of an agent state, shared by data, Q-model training and selection.

A Q-value model scores ``prompt + action``; the prompt it is trained on must be byte-identical to
the one it sees when selecting actions, so every part of qengine renders states through here.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

ACTION_PREFIX = "Action: "
PromptStyle = Literal["full", "compact"]
_BLOCK = re.compile(r"^(Instruction|Observation|Action): ?", re.MULTILINE)


def render_prompt(
    instruction: str, first_observation: str, history: Sequence[tuple[str, str]]
) -> str:
    """Instruction, first observation, each (action, observation) so far, then "Action: ".

    The completion (the candidate action) follows the returned text directly.
    """
    parts = [f"Instruction: {instruction.strip()}", f"Observation: {first_observation.strip()}"]
    for action, observation in history:
        parts.append(f"{ACTION_PREFIX}{action.strip()}")
        parts.append(f"Observation: {observation.strip()}")
    parts.append(ACTION_PREFIX.rstrip())
    return "\n".join(parts) + " "


def render_state(state: object) -> str:
    """``render_prompt`` of a ``qengine.envs.TextState``."""
    return render_prompt(
        state.instruction,  # type: ignore[attr-defined]
        state.first_observation,  # type: ignore[attr-defined]
        state.history,  # type: ignore[attr-defined]
    )


def compact_prompt(prompt: str) -> str:
    """Shorten a ``render_prompt`` text: instruction, the actions so far, the LAST observation.

    Earlier observations are dropped; small models trained from scratch learn faster on the short
    form and score long episodes in bounded time.
    """
    marks = list(_BLOCK.finditer(prompt))
    blocks = [
        (m.group(1), prompt[m.end() : marks[i + 1].start() if i + 1 < len(marks) else None])
        for i, m in enumerate(marks)
    ]
    instruction = next((text.strip() for kind, text in blocks if kind == "Instruction"), "")
    actions = [text.strip() for kind, text in blocks if kind == "Action" and text.strip()]
    observation = next(
        (text.strip() for kind, text in reversed(blocks) if kind == "Observation"), ""
    )
    parts = [f"Instruction: {instruction}"]
    if actions:
        parts.append("Previous actions: " + " | ".join(actions))
    parts.append(f"Observation: {observation}")
    parts.append(ACTION_PREFIX.rstrip())
    return "\n".join(parts) + " "


def style_prompt(prompt: str, style: PromptStyle) -> str:
    """Apply a prompt style (``"full"``: unchanged, ``"compact"``: :func:`compact_prompt`)."""
    if style == "full":
        return prompt
    if style == "compact":
        return compact_prompt(prompt)
    raise ValueError(f"unknown prompt style {style!r}; choose 'full' or 'compact'")
