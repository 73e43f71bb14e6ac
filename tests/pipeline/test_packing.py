"""Prefix-shared packing: a state's prompt once, its actions on top; same numbers as unpacked."""

from __future__ import annotations

import random

import pytest
import torch

from qengine.models import build_word_tokenizer, tiny_causal_lm
from qengine.train import StepDPOConfig, completion_logprobs, encode_completions, step_dpo
from qengine.train.packing import (
    encode_packed,
    gather_actions,
    group_by_state,
    packed_action_logprobs,
    packs_prefixes,
    pair_action_index,
    state_batches,
)

_fused_dpo_loss = step_dpo._fused_dpo_loss
_packed_dpo_loss = step_dpo._packed_dpo_loss
_record_logprobs = step_dpo._record_logprobs

WORDS = "buy a red blue green shirt mug lamp under dollars cheap large small soft".split()


def state_records(seed: int, states: int = 7) -> list[dict]:
    """Pairs of several states: 1-4 pairs per state (max_all-like: one best, several worse),
    prompts and actions of odd, different lengths."""
    rng = random.Random(seed)
    records = []
    for s in range(states):
        prompt = "Instruction: " + " ".join(rng.choices(WORDS, k=rng.randint(3, 19)))
        best = f"click[{' '.join(rng.choices(WORDS, k=rng.randint(1, 4)))}]"
        for _ in range(rng.randint(1, 4)):
            worse = f"search[{' '.join(rng.choices(WORDS, k=rng.randint(1, 6)))}]"
            records.append({"prompt": prompt, "chosen": best, "rejected": worse, "task": s})
    return records


@pytest.fixture(scope="module")
def tokenizer():
    return build_word_tokenizer([" ".join(WORDS) + " Instruction: click[ search[ ]"])


def model_for(tokenizer, attention: str) -> torch.nn.Module:
    model = tiny_causal_lm(tokenizer, hidden_size=32, num_layers=2, seed=3).double()
    model.config._attn_implementation = attention
    return model


def test_groups_share_the_prompt_and_keep_each_action_once() -> None:
    records = [
        {"prompt": "p1", "chosen": "a", "rejected": "b"},
        {"prompt": "p2", "chosen": "c", "rejected": "a"},
        {"prompt": "p1", "chosen": "a", "rejected": "d"},
        {"prompt": "p1", "chosen": "d", "rejected": "b"},
    ]
    groups = group_by_state(records, "full")
    assert [g.actions for g in groups] == [["a", "b", "d"], ["c", "a"]]
    assert groups[0].pairs == [(0, 0, 1), (2, 0, 2), (3, 2, 1)]
    assert groups[1].pairs == [(1, 0, 1)]


@pytest.mark.parametrize("attention", ["sdpa", "eager"])
def test_packed_logprobs_equal_one_sequence_per_action(tokenizer, attention: str) -> None:
    model = model_for(tokenizer, attention).eval()
    groups = group_by_state(state_records(seed=1), "full")
    batch = encode_packed(tokenizer, groups, max_length=512)
    with torch.no_grad():
        packed = packed_action_logprobs(model, batch)
        prompts = [g.prompt for g in groups for _ in g.actions]
        actions = [a for g in groups for a in g.actions]
        single = completion_logprobs(model, encode_completions(tokenizer, prompts, actions))
    assert packed.shape == (len(actions),)
    torch.testing.assert_close(packed.double(), single.double(), rtol=0, atol=1e-5)


def test_truncation_keeps_the_recent_prompt_for_the_longest_action(tokenizer) -> None:
    """A prompt longer than max_length loses its oldest tokens (bos kept) until the longest
    action fits: positions stay < max_length and the log-probs equal that truncated prompt's."""
    model = model_for(tokenizer, "sdpa").eval()
    records = [
        {"prompt": "Instruction: " + "red " * 40, "chosen": "click[mug]", "rejected": "search[a b]"}
    ]
    groups = group_by_state(records, "full")
    batch = encode_packed(tokenizer, groups, max_length=24)
    assert int(batch.position_ids.max()) < 24
    prompt_ids = tokenizer(groups[0].prompt)["input_ids"]
    action_ids = [tokenizer(a, add_special_tokens=False)["input_ids"] for a in groups[0].actions]
    keep = 24 - max(len(a) + 1 for a in action_ids)  # + eos
    kept = prompt_ids[:1] + prompt_ids[len(prompt_ids) - keep + 1 :]
    with torch.no_grad():
        packed = packed_action_logprobs(model, batch)
        for k, ids in enumerate(action_ids):
            full = torch.tensor([kept + ids + [tokenizer.eos_token_id]])
            logp = torch.log_softmax(model(input_ids=full).logits[0, :-1], -1)
            expected = logp[len(kept) - 1 :].gather(-1, full[0, len(kept) :, None]).sum()
            torch.testing.assert_close(packed[k].double(), expected, rtol=0, atol=1e-5)


def test_pairs_index_their_own_actions(tokenizer) -> None:
    records = state_records(seed=2)
    groups = group_by_state(records, "full")
    batch = encode_packed(tokenizer, groups)
    chosen, rejected, rows = pair_action_index(groups, batch)
    assert sorted(rows) == list(range(len(records)))
    flat = [a for g in groups for a in g.actions]
    for c, r, i in zip(chosen.tolist(), rejected.tolist(), rows, strict=True):
        assert (flat[c], flat[r]) == (records[i]["chosen"], records[i]["rejected"])
    index, cu = gather_actions(batch, torch.cat([chosen, rejected]))
    assert len(cu) == 2 * len(records) + 1 and int(cu[-1]) == len(index)
    lengths = batch.cu_seqlens.diff()
    assert cu.diff().tolist() == lengths[torch.cat([chosen, rejected])].tolist()


def test_packed_dpo_loss_and_gradients_equal_the_per_pair_path(tokenizer) -> None:
    """The same pairs, the same loss and gradients, whether states are packed or not."""
    records = state_records(seed=3)
    cfg = StepDPOConfig(
        per_device_train_batch_size=len(records), max_length=512, prompt_style="full"
    )
    reference = (torch.randn(len(records)).double(), torch.randn(len(records)).double())
    device = torch.device("cpu")
    losses, grads = [], []
    for packed in (True, False):
        model = model_for(tokenizer, "sdpa")
        if packed:
            groups = group_by_state(records, "full")
            loss = _packed_dpo_loss(model, tokenizer, groups, reference, cfg, device)
        else:
            ref = torch.cat(reference)
            loss = _fused_dpo_loss(model, tokenizer, records, ref, cfg, device)
        loss.backward()
        losses.append(loss.detach())
        grads.append(torch.cat([p.grad.flatten() for p in model.parameters()]))
    torch.testing.assert_close(losses[0], losses[1], rtol=0, atol=1e-10)
    # The DPO op accumulates in float32 internally: float64 inputs agree to ~1e-9 absolute.
    torch.testing.assert_close(grads[0], grads[1], rtol=1e-5, atol=1e-7)


def test_record_logprobs_fall_back_without_a_tree_mask(tokenizer) -> None:
    """Attention that takes no custom mask (flash-attn) is scored pair by pair, same numbers."""
    records = state_records(seed=4)
    cfg = StepDPOConfig(per_device_train_batch_size=5, max_length=512, prompt_style="full")
    model = model_for(tokenizer, "sdpa")
    assert packs_prefixes(model)
    packed = _record_logprobs(model, tokenizer, records, cfg, torch.device("cpu"))
    model.config._attn_implementation = "flash_attention_2"
    assert not packs_prefixes(model)
    model.config._attn_implementation = "sdpa"  # the fallback's code path, on CPU
    cfg = StepDPOConfig(
        per_device_train_batch_size=5, max_length=512, prompt_style="full", pack_prefixes=False
    )
    unpacked = _record_logprobs(model, tokenizer, records, cfg, torch.device("cpu"))
    for a, b in zip(packed, unpacked, strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-4)


def test_state_batches_cover_every_pair_once_in_runs_of_one_state() -> None:
    records = state_records(seed=5, states=23) + [
        {"prompt": "one busy state", "chosen": "a", "rejected": f"b{k}"} for k in range(9)
    ]
    sampler = state_batches(records, batch_size=8)  # runs of at most 2 pairs of a state
    rng = random.Random(0)
    epochs = [sampler(rng) for _ in range(3)]
    busy_segments = []
    for batches in epochs:
        flat = [i for batch in batches for i in batch]
        assert sorted(flat) == list(range(len(records)))
        assert all(0 < len(b) <= 8 for b in batches)
        assert len(batches) == -(-len(records) // 8)  # as many steps as unpacked batching
        prompts = [records[i]["prompt"] for i in flat]
        segments = [p for k, p in enumerate(prompts) if k == 0 or p != prompts[k - 1]]
        for prompt in set(prompts):  # a state comes in runs of at most 2 pairs, kept together
            assert segments.count(prompt) <= -(-prompts.count(prompt) // 2)
        busy_segments.append(segments.count("one busy state"))
    assert max(busy_segments) > 1  # the busy state does not fill a batch alone
    assert epochs[0] != epochs[1]  # reshuffled every epoch
