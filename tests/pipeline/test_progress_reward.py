"""The pipeline's search reward: success on an environment whose reward is a final grade (shop),
the raw rewards on one that scores progress (TextWorld's game score)."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qengine.envs import make_env
from qengine.pipeline import PipelineSettings, collect_settings, search_success_reward


def test_auto_searches_success_on_shop_and_progress_where_the_env_scores_it() -> None:
    s = PipelineSettings()
    assert s.success_reward == "auto"
    shop = make_env("shop", num_train=2, num_test=1)
    assert not shop.scores_progress
    assert collect_settings(s, shop).success_reward == 1.0
    assert search_success_reward(s) == 1.0  # no environment given: the demo's setting

    class Scored:
        scores_progress = True

    assert collect_settings(s, Scored()).success_reward is None
    assert search_success_reward(replace(s, success_reward=0.5), Scored()) == 0.5
    assert search_success_reward(replace(s, success_reward=None), shop) is None


def test_textworld_declares_that_it_scores_progress() -> None:
    pytest.importorskip("textworld")
    from qengine.envs.textworld import TextWorldEnv

    assert TextWorldEnv.scores_progress
