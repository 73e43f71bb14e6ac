"""Helpers shared by the environment tests (a uniquely named module: tests have no packages)."""

from __future__ import annotations

from qengine.envs import TextEnv
from qengine.policies import ScriptedPolicy

SHOP_KW = dict(seed=3, num_train=60, num_test=40)
HOTPOT_KW = dict(seed=3, num_train=120, num_test=60)


def run_episode(env: TextEnv, policy: ScriptedPolicy, task_id: str) -> float:
    """Play ``task_id`` with ``policy`` to the end; return the episode's total reward."""
    state = env.reset(task_id)
    while not state.done:
        env.step(policy.act([state])[0])
        state = env.state()
    return state.total_reward
