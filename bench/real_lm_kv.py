"""KV reuse of the SmolLM2 chat actor, measured on the TextWorld search ``bench/real_lm.py`` runs.

The search itself runs with the actor's prefix-KV LRU (``HFPolicy(kv_cache_bytes=1 GiB)``): its
counters give the prompt tokens asked for and computed per expansion (every state the actor
proposes for: expanded leaves and LLM-rollout steps), the hit rate, and how many tokens the pinned
system segment saved. Without reuse every prompt token is computed (``kv_cache_bytes=0``), so
the same states' prompts are then replayed through a policy without the cache: that gives the
priors to compare (they must agree to float rounding, with the same most likely action) and checks
that it computes every prompt token. The replay is capped (``limit`` distinct states, evenly
spread over the search's order) to keep the bench on a 2-core budget.
"""

from __future__ import annotations

import time
from typing import Any

__all__ = ["kv_report", "kv_reuse", "record_priors"]


def record_priors(policy: Any) -> list[tuple[Any, list[float]]]:
    """Wrap ``policy.admissible_logprobs`` so that every ``(state, prior)`` it computes is
    appended, in call order, to the returned list."""
    calls: list[tuple[Any, list[float]]] = []
    inner = policy.admissible_logprobs

    def record(state: Any) -> list[float]:
        prior = inner(state)
        calls.append((state, prior))
        return prior

    policy.admissible_logprobs = record
    return calls


def kv_reuse(
    model: Any,
    tok: Any,
    env_name: str,
    search_kv: dict[str, Any],
    calls: list[tuple[Any, list[float]]],
    limit: int,
) -> dict[str, Any]:
    """The KV-reuse record: ``search_kv`` (the search's ``HFPolicy.kv_stats()``) as ``reuse``,
    the no-reuse replay of up to ``limit`` distinct states of ``calls`` as ``no_reuse``, and the
    largest |prior difference| between the two."""
    from qengine.policies import HFPolicy

    distinct: dict[tuple[Any, ...], tuple[Any, list[float]]] = {}
    for state, prior in calls:
        distinct.setdefault((state.task_id, state.history), (state, prior))
    items = list(distinct.values())
    if len(items) > limit:
        items = [items[round(i * (len(items) - 1) / max(limit - 1, 1))] for i in range(limit)]
    fresh = HFPolicy(model, tok, kv_cache_bytes=0)
    diff, same_top = 0.0, True
    t0 = time.perf_counter()
    for state, prior in items:
        again = fresh.admissible_logprobs(state)
        diff = max(diff, max(abs(a - b) for a, b in zip(prior, again, strict=True)))
        same_top &= max(range(len(prior)), key=prior.__getitem__) == max(
            range(len(again)), key=again.__getitem__
        )
    replay = {**fresh.kv_stats(), "seconds": time.perf_counter() - t0}
    per_state = search_kv["prompt_tokens_per_state"]  # without reuse: all of them computed
    return {
        "env": env_name,
        "measured_on": "the environment's search in this run (same settings, LLM rollouts)",
        "reuse": search_kv,
        "no_reuse": {"computed_tokens_per_state": per_state, "replay": replay},
        "states_compared": len(items),
        "distinct_states": len(distinct),
        "max_abs_prior_difference": diff if items else float("nan"),
        "same_top_action": same_top,
        "tokens_saved_ratio": per_state / max(search_kv["computed_tokens_per_state"], 1e-9),
    }


def kv_report(kv: dict[str, Any]) -> str:
    """One Markdown paragraph of the KV-reuse record."""
    r = kv["reuse"]
    return (
        f"KV reuse on the {kv['env']} search of this run ({r['states']} prompts the actor ran: "
        f"expanded leaves and rollout steps): prompt tokens computed per expansion "
        f"{r['computed_tokens_per_state']:.1f} with the prefix-KV LRU vs "
        f"{kv['no_reuse']['computed_tokens_per_state']:.1f} without "
        f"(**{kv['tokens_saved_ratio']:.1f}x fewer**); hit rate {r['hit_rate']:.1%} "
        f"({r['full_hits']} prompts cached whole, {r['misses']} run from the first token, "
        f"{r['pinned_hits']} new roots that reused only the pinned system segment, saving "
        f"{r['pinned_tokens']} tokens; {r.get('parent_misses', 'n/a')} prompts whose parent's KV "
        f"was not cached, {r.get('evictions', 'n/a')} LRU evictions, "
        f"{r.get('cached_bytes', 0) / 2**20:.0f} MiB cached at the end); candidate actions "
        f"scored on top of the prompts "
        f"{r['scored_tokens_per_state']:.1f} tokens per expansion (the same with or without "
        f"reuse, not prompt tokens). Replayed without the cache, {kv['states_compared']} of the "
        f"{kv['distinct_states']} distinct states computed "
        f"{kv['no_reuse']['replay']['computed_tokens_per_state']:.1f} tokens each (all of "
        f"their prompt); their priors differ from the search's by at most "
        f"{kv['max_abs_prior_difference']:.2g} (float rounding), same most likely action: "
        f"{kv['same_top_action']}."
    )
