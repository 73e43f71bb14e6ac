"""The state-value model: regression and Bradley-Terry training, scoring, save / load."""

from __future__ import annotations

import math
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from critics_helpers import COLOURS, colour_pairs, colour_records, colour_state

from qengine.agents import run_episodes
from qengine.critics import (
    ValueModel,
    ValueTrainConfig,
    VGuidedAgent,
    bt_loss,
    regression_loss,
    train_value_bt,
    train_value_regression,
    value_records,
)
from qengine.data.prompts import compact_prompt
from qengine.models import build_word_tokenizer, tiny_causal_lm
from qengine.policies import ScriptedPolicy

CONFIG = ValueTrainConfig(
    num_train_epochs=3, learning_rate=3e-3, per_device_train_batch_size=16, eval_fraction=0.2
)


@pytest.fixture(scope="module")
def tokenizer():
    rng = random.Random(0)
    return build_word_tokenizer(colour_state(c, rng) for c in COLOURS * 20)


def fresh(tokenizer, **kwargs) -> ValueModel:
    model = tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1, num_heads=2, seed=0)
    return ValueModel(model, tokenizer, **kwargs)


@pytest.fixture(scope="module")
def regression(tokenizer, tmp_path_factory) -> tuple[ValueModel, dict, Path]:
    vm = fresh(tokenizer)
    out = tmp_path_factory.mktemp("vmodel")
    history = train_value_regression(
        vm, colour_records(300, seed=0), config=CONFIG, output_dir=out, progress=False
    )
    return vm, history, out


def test_regression_lowers_held_out_mse(regression) -> None:
    _, history, _ = regression
    before, after = history["eval_before"], history["eval_after"]
    assert history["eval_states"] > 0 and history["train_states"] > 0
    # The head starts at the training mean, so "before" is already the best constant.
    assert before["mse"] == pytest.approx(before["baseline_mse"], rel=0.2)
    assert after["mse"] < 0.25 * before["mse"]
    assert history["epochs"][-1]["loss"] < history["epochs"][0]["loss"]


def test_bradley_terry_ranks_held_out_siblings_above_chance(tokenizer) -> None:
    vm = fresh(tokenizer)
    history = train_value_bt(vm, colour_pairs(300, seed=1), config=CONFIG, progress=False)
    assert history["eval_pairs"] > 0
    assert abs(history["eval_before"]["accuracy"] - 0.5) < 0.25
    assert history["eval_after"]["accuracy"] >= 0.8
    assert history["eval_after"]["margin"] > 0


def test_save_load_round_trip_gives_identical_scores(regression) -> None:
    vm, history, out = regression
    names = {p.name for p in out.iterdir()}
    assert {"model.safetensors", "value_head.safetensors", "qengine_value.json"} <= names
    assert not [n for n in names if n.endswith((".bin", ".pt", ".pkl", ".pickle"))]
    loaded = ValueModel.from_pretrained(out, device="cpu")
    texts = [r["state"] for r in colour_records(20, seed=5)]
    np.testing.assert_array_equal(loaded.score(texts), vm.score(texts))
    assert loaded.history["eval_after"] == pytest.approx(history["eval_after"])
    assert loaded.prompt_style == "full" and loaded.max_length == 512


def test_scores_do_not_depend_on_batching_or_padding(regression) -> None:
    vm, _, _ = regression
    rng = random.Random(3)
    texts = [colour_state(c, rng) * (1 + i % 3) for i, c in enumerate(COLOURS)]  # odd lengths
    one = np.concatenate([vm.score([t]) for t in texts])
    np.testing.assert_allclose(vm.score(texts, batch_size=3), one, atol=1e-5)
    assert one.dtype == np.float64 and one.shape == (len(COLOURS),)


def test_long_states_keep_bos_and_the_most_recent_tokens(tokenizer) -> None:
    vm = fresh(tokenizer, max_length=8)
    text = "Instruction: buy a red shirt " * 6 + "\nObservation: a gold mug\nAction: "
    ids, mask = vm.encode([text, "Action: "])
    assert ids.shape[1] == 8 and mask[0].sum() == 8
    full = tokenizer(text)["input_ids"]
    assert ids[0].tolist() == full[:1] + full[-7:]
    assert np.isfinite(vm.score([text])).all()


def test_prompt_style_is_applied_and_saved(tokenizer, tmp_path) -> None:
    vm = fresh(tokenizer, prompt_style="compact")
    full = (
        "Instruction: buy a mug\nObservation: home\nAction: search[mug]\n"
        "Observation: a red mug\nAction: "
    )
    np.testing.assert_array_equal(vm.score([full]), vm.score([compact_prompt(full)]))
    vm.save_pretrained(tmp_path)
    assert ValueModel.from_pretrained(tmp_path).prompt_style == "compact"


def test_visit_weights_and_losses_match_the_formulas(tokenizer) -> None:
    v = torch.tensor([0.2, 0.9, 0.4], dtype=torch.float64)
    y = torch.tensor([0.0, 1.0, 1.0], dtype=torch.float64)
    w = torch.tensor([1.0, 3.0, 6.0], dtype=torch.float64)
    expected = float(((v - y) ** 2 * w).sum() / w.sum())
    assert float(regression_loss(v, y, w)) == pytest.approx(expected)
    assert float(regression_loss(v, y)) == pytest.approx(float(((v - y) ** 2).mean()))
    assert float(bt_loss(v, y)) == pytest.approx(
        float(-torch.nn.functional.logsigmoid(v - y).mean())
    )
    records = [dict(r, visits=1 + i % 4) for i, r in enumerate(colour_records(40, seed=2))]
    cfg = ValueTrainConfig(
        num_train_epochs=1, per_device_train_batch_size=8, eval_fraction=0.0, weight_by_visits=True
    )
    history = train_value_regression(fresh(tokenizer), records, config=cfg, progress=False)
    assert history["eval_before"] == {} and math.isfinite(history["epochs"][0]["loss"])


def test_trains_on_searched_trees_and_guides_an_agent(tree_dir, shop) -> None:
    records = value_records(tree_dir)
    tok = build_word_tokenizer(r["state"] for r in records)
    vm = ValueModel(
        tiny_causal_lm(tok, hidden_size=32, num_layers=1, num_heads=2),
        tok,
        prompt_style="compact",
        max_length=128,
    )
    cfg = ValueTrainConfig(
        num_train_epochs=1, learning_rate=1e-3, per_device_train_batch_size=16, eval_fraction=0.34
    )
    history = train_value_regression(vm, records, config=cfg, progress=False)
    assert history["eval_states"] > 0 and math.isfinite(history["eval_after"]["mse"])
    scores = vm.score([r["state"] for r in records[:5]])
    assert scores.shape == (5,) and np.isfinite(scores).all()
    agent = VGuidedAgent(ScriptedPolicy(shop, p=0.5, seed=0), vm, shop, n=3)
    result = run_episodes(shop, agent, shop.task_ids("test")[:2], progress=False)
    assert result.tasks == 2 and agent.stats["critic_calls"] > 0
    assert agent.model_calls_per_decision <= 3


def test_bad_input_is_explained(tokenizer, tmp_path) -> None:
    vm = fresh(tokenizer)
    with pytest.raises(ValueError, match="at least one"):
        vm.score([])
    with pytest.raises(TypeError, match="not one string"):
        vm.score("Instruction: buy")
    with pytest.raises(TypeError, match="strings"):
        vm.score([1, 2])
    with pytest.raises(FileNotFoundError, match="not a qengine value model"):
        ValueModel.from_pretrained(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="local model checkpoint"):
        ValueModel.from_causal_lm(tmp_path / "missing")
    with pytest.raises(ValueError, match="prompt style"):
        fresh(tokenizer, prompt_style="tiny")
    with pytest.raises(ValueError, match="missing"):
        train_value_regression(vm, [{"state": "x"}], progress=False)
    with pytest.raises(ValueError, match="missing"):
        train_value_bt(vm, [{"chosen": "x"}], progress=False)
    with pytest.raises(ValueError, match="no regression records"):
        train_value_regression(vm, [], progress=False)
    with pytest.raises(ValueError, match="finite"):
        train_value_regression(vm, [{"state": "x", "value": float("nan")}], progress=False)
    with pytest.raises(ValueError, match="eval_fraction"):
        ValueTrainConfig(eval_fraction=1.0)
    with pytest.raises(ValueError, match="learning_rate"):
        ValueTrainConfig(learning_rate=0.0)
    ids, mask = vm.encode(["a b"])
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        vm(ids, mask[:, :1])
    with pytest.raises(ValueError, match="all zeros"):
        vm(ids, torch.zeros_like(mask))
