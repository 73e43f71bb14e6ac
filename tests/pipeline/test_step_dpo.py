"""Step-level DPO on a tiny model built from a config, saved and loaded for real."""

from __future__ import annotations

import json
import random
from pathlib import Path

import numpy as np
import pytest
import torch

from qengine.agents import QValueModel, candidate_logprobs
from qengine.models import build_word_tokenizer, tiny_causal_lm
from qengine.models.pretrained import NotAModelError
from qengine.train import StepDPOConfig, encode_completions, train_step_dpo

COLOURS = ["red", "blue", "green", "black", "white", "pink", "gray", "gold"]


def colour_pairs(n: int, seed: int) -> list[dict]:
    """The winning action repeats the colour the instruction asks for."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        want, other = rng.sample(COLOURS, 2)
        records.append(
            {
                "prompt": f"Instruction: buy a {want} shirt\nAction: ",
                "chosen": f"click[{want} shirt]",
                "rejected": f"click[{other} shirt]",
                "task": f"t{i}",
            }
        )
    return records


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> tuple[Path, dict]:
    records = colour_pairs(400, seed=0)
    tokenizer = build_word_tokenizer(r["prompt"] + r["chosen"] + r["rejected"] for r in records)
    model = tiny_causal_lm(tokenizer, hidden_size=64, num_layers=2)
    out = tmp_path_factory.mktemp("qmodel")
    config = StepDPOConfig(
        num_train_epochs=3, learning_rate=3e-3, per_device_train_batch_size=16, eval_fraction=0.2
    )
    history = train_step_dpo(
        model, tokenizer, records, config=config, output_dir=out, progress=False
    )
    return out, history


def test_held_out_preference_accuracy_rises_above_chance(trained) -> None:
    _, history = trained
    assert history["eval_before"]["accuracy"] == pytest.approx(0.5)  # policy == reference
    assert history["eval_after"]["accuracy"] >= 0.8
    assert history["eval_after"]["margin"] > 0
    assert history["epochs"][-1]["loss"] < history["epochs"][0]["loss"]


def test_saved_with_save_pretrained_and_metadata(trained) -> None:
    out, _ = trained
    assert (out / "model.safetensors").is_file()
    assert (out / "reference" / "model.safetensors").is_file()
    meta = json.loads((out / "qengine_qmodel.json").read_text())
    assert meta["beta"] == pytest.approx(0.1)


def test_q_value_model_picks_the_highest_q_candidate(trained) -> None:
    out, _ = trained
    q_model = QValueModel.from_pretrained(out, device="cpu")
    prompt = "Instruction: buy a green shirt\nAction: "
    candidates = ["click[red shirt]", "click[green shirt]", "click[gold shirt]"]
    q = q_model.score(prompt, candidates)
    assert q.shape == (3,) and np.isfinite(q).all()
    assert int(np.argmax(q)) == 1


def test_shared_prefix_scoring_equals_full_forward(trained) -> None:
    out, _ = trained
    q_model = QValueModel.from_pretrained(out, device="cpu")
    prompt = "Instruction: buy a pink shirt\nAction: "
    texts = ["click[pink shirt]", "click[blue]"]
    prompt_ids, cands = q_model._ids(prompt, texts)
    cached = candidate_logprobs(q_model.model, prompt_ids, cands)
    batch = encode_completions(q_model.tokenizer, [prompt] * 2, texts)
    with torch.no_grad():
        logits = q_model.model(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).logits
    logp = torch.log_softmax(logits[:, :-1].float(), -1).gather(-1, batch.input_ids[:, 1:, None])
    full = (logp.squeeze(-1) * batch.completion_mask[:, 1:]).sum(1)
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=1e-4)


def test_bad_input_is_explained(tmp_path) -> None:
    with pytest.raises(NotAModelError, match="not a qengine Q-value model"):
        QValueModel.from_pretrained(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):  # also the built-in kind
        QValueModel.from_pretrained(tmp_path / "missing")
    with pytest.raises(ValueError, match="beta"):
        StepDPOConfig(beta=0.0)


def test_q_value_model_styles_and_truncates_like_training(trained) -> None:
    out, _ = trained
    meta_path = out / "qengine_qmodel.json"
    meta = json.loads(meta_path.read_text())
    assert meta["prompt_style"] == "full" and meta["max_length"] == 512 and meta["format"] == 1
    q_model = QValueModel.from_pretrained(out, device="cpu")
    q_model.max_length = 12  # force truncation: bos + the most recent prompt tokens
    long_prompt = "Instruction: buy a red shirt " * 5 + "\nAction: "
    prompt_ids, cands = q_model._ids(long_prompt, ["click[red shirt]"])
    assert len(prompt_ids) + len(cands[0]) == 12
    assert prompt_ids[0] == q_model.tokenizer.bos_token_id
    batch = encode_completions(
        q_model.tokenizer, [long_prompt], ["click[red shirt]"], max_length=12
    )
    assert batch.input_ids[0].tolist() == prompt_ids + cands[0]


@pytest.mark.parametrize("fraction", [0.0, 0.1])  # 0.1 of 3 tasks rounds to no held-out task
def test_trains_without_a_held_out_split(fraction: float) -> None:
    records = colour_pairs(3, seed=1)
    tokenizer = build_word_tokenizer(r["prompt"] + r["chosen"] + r["rejected"] for r in records)
    model = tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1)
    config = StepDPOConfig(
        num_train_epochs=2, per_device_train_batch_size=2, eval_fraction=fraction
    )
    history = train_step_dpo(model, tokenizer, records, config=config, progress=False)
    assert history["eval_before"] == {}
    assert [e["epoch"] for e in history["epochs"]] == [0, 1]
    assert all(np.isfinite(e["loss"]) for e in history["epochs"])


def test_marked_q_model_scores_candidates_as_it_was_trained(tmp_path) -> None:
    """Training and QValueModel.score style prompt AND candidates the same way: the saved
    model's score equals beta * (log pi - log ref) of the marked texts."""
    from qengine.data.prompts import style_action, style_prompt

    records = colour_pairs(48, seed=2)
    texts = [
        style_prompt(r["prompt"], "compact-marked")
        + " ".join(
            style_action(r["prompt"], r[k], "compact-marked") for k in ("chosen", "rejected")
        )
        for r in records
    ]
    assert all("^" in t for t in texts)
    tokenizer = build_word_tokenizer(texts)
    model = tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1)
    config = StepDPOConfig(
        num_train_epochs=1,
        per_device_train_batch_size=8,
        learning_rate=3e-3,
        prompt_style="compact-marked",
    )
    train_step_dpo(model, tokenizer, records, config=config, output_dir=tmp_path, progress=False)
    q_model = QValueModel.from_pretrained(tmp_path, device="cpu")
    prompt = records[0]["prompt"]
    cands = [records[0]["chosen"], records[0]["rejected"]]
    got = q_model.score(prompt, cands)
    styled = [style_action(prompt, c, "compact-marked") for c in cands]
    prompt_ids = q_model.tokenizer(style_prompt(prompt, "compact-marked"))["input_ids"]
    ids = [
        q_model.tokenizer(c, add_special_tokens=False)["input_ids"]
        + [q_model.tokenizer.eos_token_id]
        for c in styled
    ]
    want = q_model.beta * (
        candidate_logprobs(q_model.model, prompt_ids, ids)
        - candidate_logprobs(q_model.reference, prompt_ids, ids)
    )
    np.testing.assert_allclose(got, want.double().numpy(), rtol=1e-5, atol=1e-6)
    assert not np.allclose(got[0], got[1])
