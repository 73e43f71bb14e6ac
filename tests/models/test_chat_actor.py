"""The chat-mode LLM actor (HFPolicy on SmolLM2): priors over admissible commands, KV reuse
along a search path (same priors, fewer tokens), the bounded LRU, free-form replies."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from qengine.envs import TextState
from qengine.policies import HFPolicy
from qengine.policies.kv_cache import PrefixKVCache

ADMISSIBLE = ("go north", "go south", "take coin", "open door", "inventory", "look")


def _path(depth: int) -> list[TextState]:
    """A root and its descendants, one step each, as a search expands them."""
    steps = [("go north", "-= Hall =-\nYou see a door."), ("open door", "You open the door."),
             ("go south", "-= Office =-\nA coin lies here."), ("take coin", "Taken.")]  # fmt: skip
    return [
        TextState(
            "textworld",
            "train/00000",
            "Find the coin and take it.",
            "-= Office =-\nAn empty office. Exits: north.",
            history=tuple(steps[:d]),
            admissible=ADMISSIBLE,
        )
        for d in range(depth + 1)
    ]


def test_kv_reuse_gives_the_same_priors_for_fewer_tokens(smollm2) -> None:
    model, tok = smollm2
    reuse = HFPolicy(model, tok)
    fresh = HFPolicy(model, tok, kv_cache_bytes=0)
    assert reuse.chat and fresh.chat
    for state in _path(3):
        a, b = reuse.admissible_logprobs(state), fresh.admissible_logprobs(state)
        assert len(a) == len(ADMISSIBLE)
        assert math.isclose(sum(math.exp(x) for x in a), 1.0, rel_tol=1e-9)
        torch.testing.assert_close(torch.tensor(a), torch.tensor(b), rtol=0, atol=1e-4)
    r, f = reuse.kv_stats(), fresh.kv_stats()
    assert r["prompt_tokens"] == f["prompt_tokens"] == f["computed_tokens"]
    segs = [reuse.chat_segments(s) for s in _path(3)]
    assert len(segs[0]) == 2  # the system message, then the first user message
    # the root in full, then only each new step
    assert r["computed_tokens"] == len(segs[0][0]) + sum(len(s[-1]) for s in segs)
    assert r["hit_rate"] == 3 / 4 and r["misses"] == 1


def test_a_second_task_reuses_the_system_segment(smollm2) -> None:
    """Another task's root computes only its first user message: the system message's KV (the
    same for every state of the environment) stays pinned, with the same priors."""
    model, tok = smollm2
    reuse = HFPolicy(model, tok)
    fresh = HFPolicy(model, tok, kv_cache_bytes=0)
    first, other = _path(0)[0], replace(_path(0)[0], task_id="train/00001", instruction="Go.")
    reuse.admissible_logprobs(first)
    a, b = reuse.admissible_logprobs(other), fresh.admissible_logprobs(other)
    torch.testing.assert_close(torch.tensor(a), torch.tensor(b), rtol=0, atol=1e-4)
    (system, user), (_, user0) = reuse.chat_segments(other), reuse.chat_segments(first)
    stats = reuse.kv_stats()
    assert stats["pinned_hits"] == 1 and stats["pinned_tokens"] == len(system)
    assert stats["computed_tokens"] == len(system) + len(user0) + len(user)


def test_propose_samples_distinct_admissible_candidates(smollm2) -> None:
    model, tok = smollm2
    state = _path(1)[1]
    policy = HFPolicy(model, tok, temperature=1.0)
    prior = dict(zip(ADMISSIBLE, policy.admissible_logprobs(state), strict=True))
    torch.manual_seed(0)
    (cands,) = policy.propose([state], 4)
    assert len(cands) == 4 and len({c.text for c in cands}) == 4
    for c in cands:
        assert c.logprob == pytest.approx(prior[c.text])
    greedy = HFPolicy(model, tok, greedy=True)
    (top,) = greedy.propose([state], 3)
    assert [c.text for c in top] == sorted(prior, key=prior.get, reverse=True)[:3]
    assert greedy.act([state]) == [top[0].text]


def test_free_form_reply_on_the_shop_search_page(smollm2) -> None:
    """No admissible list: the reply is generated with the chat template and parsed."""
    from qengine.envs import make_env

    model, tok = smollm2
    env = make_env("shop")
    state = env.reset(env.task_ids("train")[0])
    assert state.admissible is None
    policy = HFPolicy(model, tok, greedy=True, max_new_tokens=24)
    (cands,) = policy.propose([state], 2)
    assert len(cands) == 1
    assert cands[0].text.startswith(("search[", "click[")) and cands[0].logprob <= 0


def test_the_lru_is_bounded_by_bytes(smollm2) -> None:
    model, _ = smollm2
    probe = PrefixKVCache(model).run([[10]]).entry
    per_token = sum(t.numel() * t.element_size() for pair in probe.kv for t in pair)
    assert per_token == 2 * 30 * 3 * 64 * 4  # k and v, 30 layers, 3 KV heads of 64, float32
    cache = PrefixKVCache(model, max_bytes=12 * per_token + 2 * probe.last_hidden.numel() * 4)
    first = cache.run([[10, 11, 12, 13, 14]])
    cache.run([[10, 11, 12, 13, 14], [20, 21]])  # 5 + 7 = 12 cached tokens
    assert len(cache) == 2
    cache.run([[30, 31, 32]])  # evicts the oldest
    assert len(cache) == 2
    again = cache.run([[10, 11, 12, 13, 14]])
    assert again.computed == 5  # evicted: run again
    torch.testing.assert_close(again.entry.last_hidden, first.entry.last_hidden)
    with pytest.raises(ValueError):
        cache.score(first, [[]])


def test_packed_scoring_matches_full_forwards(smollm2, monkeypatch) -> None:
    """Continuations scored in one tree-masked row over the prompt's KV give the log-probs of
    one full forward per continuation, as does the one-row-per-continuation path."""
    import qengine.policies.kv_cache as kv_cache

    model, tok = smollm2
    prompt = tok("You are in a kitchen. There is a fridge. Exits: north.")["input_ids"]
    actions = ["go north", "open fridge", "take yellow potato from fridge", "x"]
    conts = [tok(a)["input_ids"] + [tok.eos_token_id] for a in actions]
    cache = PrefixKVCache(model)
    run = cache.run([prompt])
    packed = cache.score(run, conts)
    monkeypatch.setattr(kv_cache, "packs_prefixes", lambda model: False)
    rows = cache.score(run, conts)
    want = []
    for c in conts:
        with torch.no_grad():
            logp = torch.log_softmax(model(torch.tensor([prompt + c])).logits[0].double(), -1)
        want.append(sum(float(logp[len(prompt) - 1 + j, t]) for j, t in enumerate(c)))
    torch.testing.assert_close(torch.tensor(packed), torch.tensor(want), rtol=0, atol=2e-4)
    torch.testing.assert_close(torch.tensor(rows), torch.tensor(want), rtol=0, atol=2e-4)


def test_seeded_chat_sampling_is_keyed_by_the_state(smollm2) -> None:
    """Chat mode with ``seed`` (no KV reuse: bit-identical priors): each state's candidates are
    the same alone or batched with others, in any order."""
    from qengine.envs import make_env

    model, tok = smollm2
    env = make_env("shop")
    free = env.reset(env.task_ids("train")[1])  # free-form: generated replies
    states = [_path(1)[1], free, _path(2)[2]]
    kw = {"temperature": 1.5, "seed": 3, "kv_cache_bytes": 0, "max_new_tokens": 16}
    together = HFPolicy(model, tok, **kw).propose(states, 3)
    alone = HFPolicy(model, tok, **kw)
    torch.manual_seed(5)
    one_by_one = [alone.propose([s], 3)[0] for s in reversed(states)][::-1]
    assert together == one_by_one and all(together)
