"""Q-RM: loss and token rewards against float64 references, training, save / load, bad input."""

from __future__ import annotations

import random

import pytest
import torch
import torch.nn.functional as F

from qengine.models import build_word_tokenizer, tiny_causal_lm
from qengine.models.pretrained import NotAModelError
from qengine.qrm import (
    QRewardModel,
    QRMTrainConfig,
    as_records,
    check_token_masks,
    evaluate_qrm,
    normalize_token_rewards,
    train_qrm,
)
from qengine.train import encode_completions

COLOURS = ["red", "blue", "green", "black", "white", "pink", "gray", "gold"]


def colour_pairs(n: int, seed: int) -> list[dict]:
    """The preferred answer names the colour the prompt asks for; the other one does not."""
    rng = random.Random(seed)
    records = []
    for i in range(n):
        want, other = rng.sample(COLOURS, 2)
        records.append(
            {
                "prompt": f"buy a {want} shirt :",
                "chosen": f"click {want} shirt",
                "rejected": f"click {other} shirt",
                "task": f"t{i}",
            }
        )
    return records


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer([" ".join(COLOURS) + " buy a shirt click : yes no"], vocab_size=64)


def make_qrm(tokenizer, head: str, *, dtype=torch.float64, seed: int = 0) -> QRewardModel:
    model = tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1, num_heads=2, seed=seed)
    qrm = QRewardModel(model, head=head)
    if qrm.value_head is not None:  # a non-trivial head so the reference is not all zeros
        torch.nn.init.normal_(qrm.value_head.weight, std=0.5)
        torch.nn.init.constant_(qrm.value_head.bias, 0.3)
    return qrm.to(dtype)


def reference_scores(qrm: QRewardModel, ids, att, resp, score: str = "q") -> torch.Tensor:
    """β·Z per token from the full float64 forward pass (all logits / hidden states)."""
    out = qrm.model(input_ids=ids, attention_mask=att, output_hidden_states=True)
    b, t = ids.shape
    ref = torch.zeros(b, t, dtype=torch.float64)
    for i in range(b):
        for j in range(1, t):
            if not resp[i, j]:
                continue
            if qrm.head == "lm":
                z = out.logits[i, j - 1].double()
                tok = ids[i, j]
                val = z[tok] if score == "q" else z[tok] - torch.logsumexp(z, 0)
            else:
                h = out.hidden_states[-1][i, j].double()  # the state that has read token j
                w = qrm.value_head.weight.double().reshape(-1)
                val = h @ w + qrm.value_head.bias.double()[0]
            ref[i, j] = qrm.beta * val
    return ref


@pytest.mark.parametrize("head", ["lm", "value"])
def test_pairwise_loss_matches_float64_reference(tokenizer, head) -> None:
    qrm = make_qrm(tokenizer, head)
    records = colour_pairs(3, seed=1)
    prompts = [r["prompt"] for r in records] * 2
    completions = [r["chosen"] for r in records] + [r["rejected"] + " shirt" for r in records]
    batch = encode_completions(tokenizer, prompts, completions)
    out = qrm.pairwise_loss(batch)
    with torch.no_grad():
        z = reference_scores(qrm, batch.input_ids, batch.attention_mask, batch.completion_mask)
    z = z / qrm.beta
    means = z.sum(1) / batch.completion_mask.sum(1)
    margins = means[:3] - means[3:]
    expected = -F.logsigmoid(0.2 * margins - 2.0).mean()
    torch.testing.assert_close(out.loss.double(), expected, rtol=1e-9, atol=1e-10)
    torch.testing.assert_close(out.margins.double(), margins, rtol=1e-9, atol=1e-10)
    out.loss.backward()  # differentiable through the fused op
    grads = [p.grad for p in qrm.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)


def _reference_normalise(raw, mask, normalize, eos_mean, clip):
    r = raw.clone().double() * mask
    if eos_mean:
        for i in range(r.shape[0]):
            pos = [j for j in range(r.shape[1]) if mask[i, j]]
            if pos:
                r[i, pos[-1]] = sum(float(raw[i, j]) for j in pos) / len(pos)
    vals = torch.tensor([float(r[i, j]) for i in range(r.shape[0]) for j in range(r.shape[1])
                         if mask[i, j]], dtype=torch.float64)  # fmt: skip
    mean, std = vals.mean(), vals.std(unbiased=False)
    if normalize == "std":
        r = r / (std + 1e-8)
    elif normalize == "mean_std":
        r = (r - mean) / (std + 1e-8)
    if clip is not None:
        r = r.clamp(-clip, clip)
    return r * mask


@pytest.mark.parametrize(
    ("head", "score", "normalize", "eos_mean", "clip"),
    [
        ("lm", "q", "none", False, None),
        ("lm", "advantage", "none", False, None),
        ("lm", "q", "std", False, None),
        ("value", "q", "std", True, None),
        ("value", "q", "mean_std", False, 0.7),
        ("lm", "advantage", "mean_std", True, 1.0),
    ],
)
def test_token_rewards_match_float64_reference(
    tokenizer, head, score, normalize, eos_mean, clip
) -> None:
    qrm = make_qrm(tokenizer, head)
    prompts = ["buy a red shirt :", "buy a gold shirt : yes", "buy :"]
    completions = ["click red shirt", "click", "no no no click gold"]
    batch = encode_completions(tokenizer, prompts, completions)
    ids, att, resp = batch.input_ids, batch.attention_mask, batch.completion_mask
    got = qrm.token_rewards(
        ids, att, resp, normalize=normalize, eos_mean=eos_mean, clip=clip, score=score,
        batch_size=2,
    )  # fmt: skip
    with torch.no_grad():
        raw = reference_scores(qrm, ids, att, resp, score)
    expected = _reference_normalise(raw, resp, normalize, eos_mean, clip)
    assert got.shape == ids.shape and got.dtype == torch.float32
    torch.testing.assert_close(got.double(), expected, rtol=2e-6, atol=2e-6)
    assert (got[~resp] == 0).all()


def test_normalisation_edge_cases() -> None:
    mask = torch.tensor([[0, 1, 1, 0], [0, 0, 0, 0]], dtype=torch.bool)
    raw = torch.tensor([[9.0, 1.0, 3.0, 9.0], [5.0, 5.0, 5.0, 5.0]])
    out = normalize_token_rewards(raw, mask, normalize="none", eos_mean=True)
    torch.testing.assert_close(out, torch.tensor([[0.0, 1.0, 2.0, 0.0], [0.0, 0.0, 0.0, 0.0]]))
    out = normalize_token_rewards(raw, mask, normalize="mean_std")  # mean 2, std 1
    torch.testing.assert_close(out, torch.tensor([[0.0, -1.0, 1.0, 0.0], [0.0] * 4]), atol=1e-6,
                               rtol=0)  # fmt: skip
    empty = normalize_token_rewards(raw, torch.zeros_like(mask), normalize="std")
    assert (empty == 0).all()
    with pytest.raises(ValueError, match="normalize"):
        normalize_token_rewards(raw, mask, normalize="z")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="clip"):
        normalize_token_rewards(raw, mask, clip=0.0)


def test_bf16_autocast_scoring_stays_close(tokenizer) -> None:
    qrm = make_qrm(tokenizer, "value", dtype=torch.float32)
    batch = encode_completions(tokenizer, ["buy a red shirt :"] * 2, ["click red", "click blue"])
    args = (batch.input_ids, batch.attention_mask, batch.completion_mask)
    fp32 = qrm.token_rewards(*args, normalize="none", bf16=False)
    bf16 = qrm.token_rewards(*args, normalize="none", bf16=True)
    assert bf16.dtype == torch.float32
    torch.testing.assert_close(bf16, fp32, rtol=0.05, atol=0.05)


# Held-out accuracy floors well above chance (0.5) with margin below what the seeds reach
# (lm head ~0.88, value head ~0.75 after 4 epochs).
FLOOR = {"lm": 0.75, "value": 0.62}


@pytest.fixture(scope="module", params=["lm", "value"])
def trained(request, tokenizer, tmp_path_factory):
    records = colour_pairs(240, seed=0)
    qrm = make_qrm(tokenizer, request.param, dtype=torch.float32, seed=3)
    if qrm.value_head is not None:
        torch.nn.init.normal_(qrm.value_head.weight, std=0.02)
        torch.nn.init.zeros_(qrm.value_head.bias)
    out = tmp_path_factory.mktemp("qrm")
    config = QRMTrainConfig(
        learning_rate=3e-3,
        num_train_epochs=4,
        per_device_train_batch_size=16,
        gradient_accumulation_steps=2,
        eval_fraction=0.25,
    )
    history = train_qrm(qrm, tokenizer, records, config=config, output_dir=out, progress=False)
    return qrm, out, history


def test_trained_qrm_ranks_held_out_pairs_above_chance(trained) -> None:
    qrm, _, history = trained
    assert history["eval_pairs"] == 60 and history["train_pairs"] == 180
    assert history["epochs"][-1]["loss"] < history["epochs"][0]["loss"]
    assert history["eval_after"]["accuracy"] >= FLOOR[qrm.head], history["eval_after"]
    assert history["eval_after"]["margin"] > history["eval_before"]["margin"]


def test_token_rewards_credit_the_deciding_token(trained, tokenizer) -> None:
    """The colour token decides the preference: on average over all (asked, answered) colour
    combinations its Q is higher when it matches the prompt than when it does not."""
    qrm, _, _ = trained
    prompts, completions, match = [], [], []
    for want in COLOURS:
        for said in COLOURS:
            prompts.append(f"buy a {want} shirt :")
            completions.append(f"click {said} shirt")
            match.append(want == said)
    batch = encode_completions(tokenizer, prompts, completions)
    r = qrm.token_rewards(batch.input_ids, batch.attention_mask, batch.completion_mask,
                          normalize="none")  # fmt: skip
    colour_pos = batch.completion_mask.long().argmax(1) + 1
    q = r[torch.arange(len(prompts)), colour_pos]
    match_t = torch.tensor(match)
    assert q[match_t].mean() > q[~match_t].mean()


def test_save_and_load_round_trip(trained, tokenizer) -> None:
    qrm, out, _ = trained
    assert (out / "qengine_qrm.json").is_file()
    assert (out / "qrm_value_head.safetensors").is_file() == (qrm.head == "value")
    loaded = QRewardModel.from_pretrained(out)
    assert (loaded.head, loaded.beta, loaded.gamma) == (qrm.head, 0.2, 2.0)
    batch = encode_completions(tokenizer, ["buy a pink shirt :"] * 2, ["click pink shirt", "click"])
    args = (batch.input_ids, batch.attention_mask, batch.completion_mask)
    torch.testing.assert_close(loaded.token_rewards(*args), qrm.token_rewards(*args))


def test_lm_head_round_trip_and_hf_dataset(tokenizer, tmp_path) -> None:
    from datasets import Dataset

    qrm = make_qrm(tokenizer, "lm", dtype=torch.float32)
    dataset = Dataset.from_list(colour_pairs(12, seed=4))
    metrics = evaluate_qrm(qrm, tokenizer, dataset, batch_size=5)
    assert metrics["pairs"] == 12 and 0.0 <= metrics["accuracy"] <= 1.0
    qrm.save_pretrained(tmp_path)
    loaded = QRewardModel.from_pretrained(tmp_path)
    assert loaded.head == "lm" and loaded.value_head is None
    assert evaluate_qrm(loaded, tokenizer, dataset)["loss"] == pytest.approx(metrics["loss"])


def test_bad_input_raises_clear_errors(tokenizer, tmp_path) -> None:
    qrm = make_qrm(tokenizer, "value", dtype=torch.float32)
    batch = encode_completions(tokenizer, ["buy a red shirt :"] * 2, ["click red", "click"])
    ids, att, resp = batch.input_ids, batch.attention_mask, batch.completion_mask
    with pytest.raises(ValueError, match="shape of input_ids"):
        qrm.token_rewards(ids, att[:, :-1], resp)
    with pytest.raises(ValueError, match="shape of input_ids"):
        qrm.token_rewards(ids, att, resp[:1])
    with pytest.raises(TypeError, match="integer token ids"):
        qrm.token_rewards(ids.float(), att, resp)
    with pytest.raises(TypeError, match="bool or integer"):
        qrm.token_rewards(ids, att.float(), resp)
    with pytest.raises(ValueError, match="padding"):
        bad = resp.clone()
        bad[1, -1] = True  # row 1 is shorter: its last position is padding
        qrm.token_rewards(ids, att, bad)
    with pytest.raises(ValueError, match="position 0"):
        bad = resp.clone()
        bad[0, 0] = True
        qrm.token_rewards(ids, att, bad)
    with pytest.raises(ValueError, match="only 0 and 1"):
        check_token_masks(ids, att * 2, resp)
    with pytest.raises(ValueError, match=r"\[B, T\]"):
        qrm.token_rewards(ids[0], att[0], resp[0])
    with pytest.raises(ValueError, match="needs head='lm'"):
        qrm.token_rewards(ids, att, resp, score="advantage")
    odd = encode_completions(tokenizer, ["buy :"] * 3, ["click"] * 3)
    with pytest.raises(ValueError, match="2P rows"):
        qrm.pairwise_loss(odd)
    with pytest.raises(ValueError, match="lacks column"):
        as_records([{"prompt": "a", "chosen": "b"}])
    with pytest.raises(ValueError, match="strings"):
        as_records([{"prompt": "a", "chosen": [{"role": "user", "content": "b"}], "rejected": "c"}])
    with pytest.raises(ValueError, match="head must be"):
        QRewardModel(qrm.model, head="mlp")  # type: ignore[arg-type]
    with pytest.raises(NotAModelError, match=r"not a qengine Q-RM \(has no qengine_qrm\.json\)"):
        QRewardModel.from_pretrained(tmp_path)
    with pytest.raises(NotAModelError, match="does not exist"):
        QRewardModel.from_pretrained(tmp_path / "missing")
    with pytest.raises(FileNotFoundError, match="never downloads"):
        QRewardModel.from_causal_lm(tmp_path / "missing")
