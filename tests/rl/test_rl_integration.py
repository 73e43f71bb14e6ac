"""Rollouts, policy log-probs, the TRL reward function and real GRPOTrainer steps on CPU."""

from __future__ import annotations

import importlib.util

import pytest
import torch

from qengine.models import build_word_tokenizer, tiny_causal_lm
from qengine.qrm import QRewardModel
from qengine.rl import QRMRewardFunction, policy_token_logprobs, sample_completions
from qengine.rl.example_loop import reinforce_with_qrm
from qengine.train import encode_completions

WORDS = "what is two plus three one four five yes no maybe answer ?"
PROMPTS = ["what is two plus three ?", "what is one plus four ?", "answer yes or no ?"]


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer([WORDS + " or"], vocab_size=64)


@pytest.fixture(scope="module")
def qrm(tokenizer) -> QRewardModel:
    model = QRewardModel(tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1, seed=5))
    torch.nn.init.normal_(model.value_head.weight, std=0.5)
    return model


def test_policy_logprobs_match_a_float64_reference(tokenizer) -> None:
    model = tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1, seed=1).double()
    batch = encode_completions(tokenizer, PROMPTS, ["five", "five yes no", "maybe"])
    ids, att, resp = batch.input_ids, batch.attention_mask, batch.completion_mask
    got = policy_token_logprobs(model, ids, att, resp)
    logits = model(input_ids=ids, attention_mask=att).logits.double()
    ref = torch.zeros_like(got, dtype=torch.float64)
    for i in range(ids.shape[0]):
        for j in range(1, ids.shape[1]):
            if resp[i, j]:
                ref[i, j] = torch.log_softmax(logits[i, j - 1], -1)[ids[i, j]]
    torch.testing.assert_close(got.double(), ref, rtol=1e-6, atol=1e-6)
    got.sum().backward()  # differentiable
    assert model.model.embed_tokens.weight.grad is not None


def test_sample_completions_layout(tokenizer) -> None:
    model = tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1, seed=2)
    roll = sample_completions(model, tokenizer, PROMPTS, max_new_tokens=5)
    prompt_lens = [len(tokenizer(p)["input_ids"]) for p in PROMPTS]
    for i, n in enumerate(prompt_lens):
        resp = roll.response_mask[i].nonzero().squeeze(1)
        assert resp.numel() >= 1 and int(resp[0]) == n
        assert roll.attention_mask[i, : int(resp[-1]) + 1].all()
        assert roll.attention_mask[i, int(resp[-1]) + 1 :].sum() == 0
        assert bool(roll.finished[i]) == (
            int(roll.input_ids[i, resp[-1]]) == tokenizer.eos_token_id
        )
        assert resp.numel() <= 5
    lp = policy_token_logprobs(model, roll.input_ids, roll.attention_mask, roll.response_mask)
    assert (lp[roll.response_mask] < 0).all() and (lp[~roll.response_mask] == 0).all()


def test_reward_function_reduces_token_rewards(qrm, tokenizer) -> None:
    completions = ["five", "five yes no", "maybe"]
    mean_fn = QRMRewardFunction(qrm, tokenizer)
    sum_fn = QRMRewardFunction(qrm, tokenizer, reduction="sum", batch_size=2)
    means, sums = (
        mean_fn(PROMPTS, completions, extra_column=[1, 2, 3]),
        sum_fn(PROMPTS, completions),
    )
    assert isinstance(means, list) and all(isinstance(x, float) for x in means)
    batch = encode_completions(tokenizer, PROMPTS, completions)
    r = qrm.token_rewards(
        batch.input_ids, batch.attention_mask, batch.completion_mask, normalize="none"
    )
    torch.testing.assert_close(torch.tensor(sums), r.sum(1))
    torch.testing.assert_close(torch.tensor(means), r.sum(1) / batch.completion_mask.sum(1))
    assert mean_fn(PROMPTS[:0], []) == []
    with pytest.raises(ValueError, match="2 prompts but 1"):
        mean_fn(PROMPTS[:2], completions[:1])
    with pytest.raises(ValueError, match="chat template"):
        mean_fn([[{"role": "user", "content": "what is two ?"}]], [[{"content": "five"}]])
    with pytest.raises(ValueError, match="reduction"):
        QRMRewardFunction(qrm, tokenizer, reduction="max")  # type: ignore[arg-type]


def test_plain_reinforce_loop_updates_the_policy(qrm, tokenizer) -> None:
    policy = tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1, seed=3)
    before = [p.detach().clone() for p in policy.parameters()]
    log = reinforce_with_qrm(
        policy, tokenizer, qrm, PROMPTS, steps=3, batch_size=4, learning_rate=1e-2,
        max_new_tokens=4,
    )  # fmt: skip
    assert len(log) == 3
    assert all(torch.isfinite(torch.tensor(list(row.values()))).all() for row in log)
    assert any((a - b).abs().max() > 0 for a, b in zip(policy.parameters(), before, strict=True))


HAS_TRL = importlib.util.find_spec("trl") is not None


@pytest.mark.skipif(not HAS_TRL, reason="trl is not installed (pip install 'trl>=1.16')")
def test_trl_grpo_trainer_runs_real_steps_with_the_qrm_reward(qrm, tokenizer, tmp_path) -> None:
    from datasets import Dataset
    from transformers import AutoModelForCausalLM, AutoTokenizer
    from trl import GRPOConfig, GRPOTrainer

    policy_dir = tmp_path / "policy"
    tiny_causal_lm(tokenizer, hidden_size=32, num_layers=1, seed=4).save_pretrained(policy_dir)
    tokenizer.save_pretrained(policy_dir)
    policy = AutoModelForCausalLM.from_pretrained(policy_dir)
    policy_tok = AutoTokenizer.from_pretrained(policy_dir)
    before = [p.detach().clone() for p in policy.parameters()]
    reward = QRMRewardFunction(qrm, tokenizer)
    args = GRPOConfig(
        output_dir=str(tmp_path / "grpo"), per_device_train_batch_size=4, num_generations=4,
        max_completion_length=5, max_steps=2, learning_rate=1e-2, logging_steps=1,
        report_to="none", use_cpu=True, bf16=False, save_strategy="no", seed=0,
    )  # fmt: skip
    trainer = GRPOTrainer(
        model=policy, reward_funcs=reward, args=args, processing_class=policy_tok,
        train_dataset=Dataset.from_dict({"prompt": PROMPTS * 4}),
    )  # fmt: skip
    trainer.train()
    assert trainer.state.global_step == 2
    logged = [row for row in trainer.state.log_history if "rewards/qrm/mean" in row]
    assert len(logged) == 2
    assert all(torch.isfinite(torch.tensor(row["rewards/qrm/mean"])) for row in logged)
    moved = any(
        (a.detach() - b).abs().max() > 0
        for a, b in zip(trainer.model.parameters(), before, strict=True)
    )
    assert moved, "GRPOTrainer did not update the policy"
