"""The one text rendering of an agent state, shared by data, Q-model training and selection.

A Q-value model scores ``prompt + action``; the prompt it is trained on must be byte-identical to
the one it sees when selecting actions, so every part of qengine renders states through here.
"""

from __future__ import annotations

from collections.abc import Sequence

ACTION_PREFIX = "Action: "


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
