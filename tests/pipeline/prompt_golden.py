"""Digests of every prompt style over many environment states: the byte-identity safety net.

``prompt_golden.json`` holds, per (environment, style), the sha256 of every styled prompt and
styled candidate list over the states of seeded walks (expert steps mixed with plausible ones)
through the built-in environments. It was written by the rendering before environments owned
their hooks; any change of a rendered byte changes a digest, and with it the demo's numbers.

Rewrite it (only for a deliberate rendering change) with ``python tests/pipeline/prompt_golden.py``.
"""

from __future__ import annotations

import hashlib
import json
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

from qengine.envs import TextEnv, TextState, make_env

GOLDEN = Path(__file__).with_name("prompt_golden.json")
STYLES = (
    "full", "compact", "compact-marked", "compact-marked-visited", "compact-marked-visited-price"
)  # fmt: skip
# Enough tasks that every page kind (results, item, options, bought) and question kind occurs.
ENVS: dict[str, dict] = {
    "shop": dict(seed=3, num_train=60, num_test=40),
    "hotpot": dict(seed=3, num_train=120, num_test=60),
    "textworld": dict(
        challenge="tw-coin_collector", settings={"level": 3}, num_train=2, num_test=1, max_steps=12
    ),
}
TASKS = {"shop": 24, "hotpot": 24, "textworld": 3}


def walk(env: TextEnv, task_ids: list[str], seed: int) -> Iterator[tuple[TextState, list[str]]]:
    """(state, candidate actions) of one seeded walk per task, from reset to the episode's end."""
    rng = np.random.default_rng(seed)
    for tid in task_ids:
        state = env.reset(tid)
        while True:
            candidates = list(state.admissible or env.plausible_actions())
            yield state, candidates
            if state.done:
                break
            expert = rng.random() < 0.6
            env.step(env.oracle_action() if expert else candidates[rng.integers(len(candidates))])
            state = env.state()


def states(name: str, cache_dir: str) -> list[tuple[TextState, list[str]]]:
    """The walk states of environment ``name`` (train then test tasks)."""
    kw = dict(ENVS[name], cache_dir=cache_dir) if name == "textworld" else ENVS[name]
    env = make_env(name, **kw)
    try:
        n = TASKS[name]
        tasks = env.task_ids("train")[: n - n // 3] + env.task_ids("test")[: n // 3]
        return list(walk(env, tasks, seed=7))
    finally:
        env.close()


Styler = Callable[[TextState, list[str], str], tuple[str, list[str]]]


def digests(walked: list[tuple[TextState, list[str]]], styler: Styler) -> dict[str, str]:
    """sha256 per style of every (styled prompt, styled candidates) of the walk states (the
    "full" style: the rendered prompts themselves), and the number of states."""
    out = {"states": str(len(walked))}
    for style in STYLES:
        h = hashlib.sha256()
        for state, candidates in walked:
            prompt, actions = styler(state, candidates, style)
            h.update(json.dumps([prompt, actions]).encode())
        out[style] = h.hexdigest()
    return out


def legacy_styler(state: TextState, candidates: list[str], style: str) -> tuple[str, list[str]]:
    """As text saved without its environment is styled (and as every style was, before
    environments owned their hooks)."""
    from qengine.data.prompts import render_state, style_actions, style_prompt

    prompt = render_state(state)
    return style_prompt(prompt, style), style_actions(prompt, candidates, style)


def env_styler(state: TextState, candidates: list[str], style: str) -> tuple[str, list[str]]:
    """As the pipeline styles: with the hooks of the state's own environment."""
    from qengine.data.prompts import render_state, style_actions, style_prompt

    prompt = render_state(state)
    return (
        style_prompt(prompt, style, state.env_name),
        style_actions(prompt, candidates, style, state.env_name),
    )


if __name__ == "__main__":
    names = sys.argv[1:] or list(ENVS)
    with tempfile.TemporaryDirectory() as tmp:
        table = {name: digests(states(name, tmp), legacy_styler) for name in names}
    GOLDEN.write_text(json.dumps(table, indent=1, sort_keys=True) + "\n")
    print(json.dumps(table, indent=1))
