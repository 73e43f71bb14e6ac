"""PrefixKVCache on a tiny random Llama (built from a config, nothing downloaded): the pinned
first segment shared across prompts, the counters, and generation on top of a cached prompt."""

from __future__ import annotations

import pytest
import torch

from qengine.policies.kv_cache import PrefixKVCache

SYSTEM = [5, 6, 7, 8]  # the segment every prompt starts with (a chat's system message)


@pytest.fixture(scope="module")
def tiny() -> torch.nn.Module:
    from transformers import LlamaConfig, LlamaForCausalLM

    config = LlamaConfig(
        vocab_size=64, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=128,
        pad_token_id=0, eos_token_id=1, bos_token_id=2,
    )  # fmt: skip
    torch.manual_seed(0)
    return LlamaForCausalLM(config).eval()


def _full(model: torch.nn.Module, ids: list[int]) -> torch.Tensor:
    """Log-probs [V] of the token after ``ids``, one forward from the first token."""
    with torch.no_grad():
        return torch.log_softmax(model(torch.tensor([ids])).logits[0, -1].double(), -1)


def test_a_new_prompt_reuses_the_pinned_first_segment(tiny) -> None:
    cache = PrefixKVCache(tiny)
    a = cache.run([SYSTEM, [10, 11, 12]])
    assert a.computed == 7 and cache.stats()["misses"] == 1
    b = cache.run([SYSTEM, [20, 21]])  # another task's root: only its own message is run
    assert b.computed == 2
    stats = cache.stats()
    assert stats["hits"] == stats["pinned_hits"] == 1 and stats["full_hits"] == 0
    c = cache.run([SYSTEM, [20, 21], [30]])  # the child of b: one step
    assert c.computed == 1 and cache.stats()["pinned_hits"] == 1
    assert cache.run([SYSTEM, [20, 21], [30]]).computed == 0
    stats = cache.stats()
    assert stats["runs"] == 4 and stats["full_hits"] == 1 and stats["hit_rate"] == 0.75
    assert stats["prompt_tokens"] == 7 + 6 + 7 + 7 and stats["computed_tokens"] == 7 + 2 + 1
    # the next-token distribution of each cached prompt is that of a full forward
    from qengine.models.causal_lm import head_logprobs

    for run in (a, b, c):
        rows = run.entry.last_hidden[None].expand(64, -1)
        with torch.inference_mode():
            got = head_logprobs(tiny, rows, torch.arange(64)).double()
        torch.testing.assert_close(got, _full(tiny, list(run.ids)), rtol=0, atol=1e-5)


def test_pinned_segments_survive_lru_eviction_and_are_bounded(tiny) -> None:
    cache = PrefixKVCache(tiny, max_bytes=1, max_pinned=2)  # the LRU keeps nothing
    cache.run([SYSTEM, [10]])
    assert len(cache) == 0
    assert cache.run([SYSTEM, [11]]).computed == 1  # the system segment is still pinned
    cache.run([[40, 41], [10]])
    cache.run([[50, 51], [10]])  # a third first segment: the oldest pinned one goes
    assert cache.run([SYSTEM, [12]]).computed == 5
    stats = cache.stats()
    # nothing ever fitted the LRU (no eviction); the 4 prompts run from their first token
    # missed their parent (first) segment
    assert stats["evictions"] == 0 and stats["parent_misses"] == 4
    off = PrefixKVCache(tiny, max_bytes=0)  # no reuse at all, pinned included
    off.run([SYSTEM, [10]])
    assert off.run([SYSTEM, [11]]).computed == 5 and off.stats()["hits"] == 0


def test_an_evicted_parent_costs_its_own_segment_not_the_whole_prompt(tiny) -> None:
    one = PrefixKVCache(tiny).run([SYSTEM, [10, 11], [12]]).entry
    per_entry = one.nbytes
    cache = PrefixKVCache(tiny, max_bytes=per_entry + 1)  # room for one 7-token prompt
    cache.run([SYSTEM, [10, 11], [12]])
    cache.run([SYSTEM, [20, 21], [22]])  # evicts the first (its system segment stays pinned)
    stats = cache.stats()
    assert stats["evictions"] >= 1 and len(cache) == 1
    child = cache.run([SYSTEM, [10, 11], [12], [13]])  # its parent was evicted
    assert child.computed == 4  # back to the pinned system segment, not from the first token
    assert cache.stats()["parent_misses"] == 3


def test_scored_tokens_are_counted_apart_from_prompt_tokens(tiny) -> None:
    cache = PrefixKVCache(tiny)
    run = cache.run([SYSTEM, [10, 11]])
    cache.score(run, [[3, 4, 1], [5, 1]])
    stats = cache.stats()
    assert stats["scored_tokens"] == 5 and stats["computed_tokens"] == 6


def test_generation_on_the_cached_prompt_matches_a_full_generate(tiny) -> None:
    """``generation_cache`` hands the prompt's KV to ``generate``: the same greedy tokens as a
    generate that runs the prompt itself, for several rows, and the cached entry is unchanged."""
    cache = PrefixKVCache(tiny)
    run = cache.run([SYSTEM, [10, 11, 12]])
    before = [k.clone() for k, _ in run.entry.kv]
    ids = torch.tensor([[*run.ids, 13, 14]]).repeat(3, 1)
    kwargs = {"max_new_tokens": 6, "do_sample": False, "pad_token_id": 0,
              "attention_mask": torch.ones_like(ids)}  # fmt: skip
    with torch.no_grad():
        want = tiny.generate(input_ids=ids, **kwargs)
        got = tiny.generate(input_ids=ids, cache=cache.generation_cache(run, 3), **kwargs)
    assert torch.equal(got, want)
    for k, (after, _) in zip(before, run.entry.kv, strict=True):
        assert torch.equal(k, after)
