"""Prefix KV caching for a causal LM: run a prompt, reusing the keys and values of its longest
cached prefix, and score many continuations of it in one batched call.

``P`` prompt tokens, ``K`` continuations, ``L`` their (padded) length, ``D`` hidden size,
``H`` key/value heads, ``d`` head size, per layer keys and values ``[1, H, P, d]``.

In a tree search a child's prompt is its parent's plus one step (see
:mod:`qengine.policies.chat`); :class:`PrefixKVCache` keeps the KV of recently run prompts in an
LRU bounded by their total size in bytes, so expanding a child computes only the new step's tokens.
The first segment of a prompt (the chat's system message, the same for every state of every task)
is also kept on its own, pinned, so a new tree's root computes only its task's first message.
Each entry also keeps the final hidden state of the prompt's last token (it predicts the first
token of any continuation). Memory: ``2 · layers · H · d`` floats per cached token (46 KB for
SmolLM2-135M in float32).
"""

from __future__ import annotations

import inspect
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch

from ..models.causal_lm import decoder, head_logprobs
from ..train.packing import packs_prefixes

__all__ = ["PrefixKVCache", "PrefixRun"]


@dataclass
class _Entry:
    kv: list[tuple[torch.Tensor, torch.Tensor]]  # per layer, [1, H, P, d] each
    last_hidden: torch.Tensor  # [D], final hidden state of the prompt's last token

    @property
    def nbytes(self) -> int:
        tensors = [t for pair in self.kv for t in pair] + [self.last_hidden]
        return sum(t.numel() * t.element_size() for t in tensors)


@dataclass(frozen=True)
class PrefixRun:
    """A prompt that has been run: its ids, KV and last hidden state, and what it cost."""

    ids: tuple[int, ...]
    entry: _Entry
    computed: int  # tokens run through the model for it (0: fully cached)


def _dynamic_cache(kv: Sequence[tuple[torch.Tensor, torch.Tensor]], repeat: int = 1) -> Any:
    from transformers import DynamicCache

    if repeat == 1:
        return DynamicCache(ddp_cache_data=list(kv))
    return DynamicCache(
        ddp_cache_data=[(k.expand(repeat, -1, -1, -1), v.expand(repeat, -1, -1, -1)) for k, v in kv]
    )


def _kv_of(out: Any) -> list[tuple[torch.Tensor, torch.Tensor]]:
    cache = getattr(out, "cache", None) or out.past_key_values
    return [(layer.keys, layer.values) for layer in cache.layers]


def _with_cache(body: Any, cache: Any) -> dict[str, Any]:
    """The keyword passing a KV cache to ``body``'s forward: ``cache`` since transformers 5.x
    deprecated ``past_key_values``."""
    params = inspect.signature(body.forward).parameters
    return {"cache" if "cache" in params else "past_key_values": cache}


class PrefixKVCache:
    """An LRU of prompt KV caches, bounded by ``max_bytes`` of cached tensors in total (1 GiB:
    ~23,000 tokens of SmolLM2-135M in float32).

    ``max_bytes=0`` disables reuse (every prompt is run from its first token), which gives the
    same log-probs up to float rounding: the comparison the tests and ``bench/real_lm.py`` make.
    ``computed_tokens`` / ``prompt_tokens`` count the prompt tokens run through the model and the
    prompt tokens asked for, over the cache's life.
    """

    def __init__(self, model: Any, *, max_bytes: int = 1 << 30, max_pinned: int = 8) -> None:
        if max_bytes < 0:
            raise ValueError(f"max_bytes must be >= 0, got {max_bytes}")
        self.model = model
        self.max_bytes = int(max_bytes)
        self.max_pinned = int(max_pinned)
        self._lru: OrderedDict[tuple[int, ...], _Entry] = OrderedDict()
        # First segments (system prompts): few, small (~40 tokens, 2 MB), shared by every tree;
        # outside the LRU so that a long tree's states never evict them.
        self._pinned: OrderedDict[tuple[int, ...], _Entry] = OrderedDict()
        self._bytes = 0
        self.computed_tokens = 0
        self.prompt_tokens = 0
        self.runs = 0  # prompts run
        self.hits = 0  # prompts that found a cached prefix (or their whole self)
        self.full_hits = 0  # prompts cached whole: nothing computed
        self.pinned_hits = 0  # prompts whose longest cached prefix was a pinned first segment
        self.pinned_tokens = 0  # prompt tokens those pinned prefixes saved
        self.scored_tokens = 0  # continuation tokens scored on top of prompts (not prompt tokens)
        # prompts of 2+ segments whose all-but-last prefix (a search node's parent) was not
        # cached: they ran more than their own step (evicted, or never run)
        self.parent_misses = 0
        self.evictions = 0  # entries the byte bound pushed out of the LRU

    def __len__(self) -> int:
        return len(self._lru)

    def clear(self) -> None:
        self._lru.clear()
        self._pinned.clear()
        self._bytes = 0

    def stats(self) -> dict[str, float]:
        """Counters over the cache's life; ``hit_rate``: prompts that reused a cached prefix."""
        return {
            "runs": self.runs,
            "prompt_tokens": self.prompt_tokens,
            "computed_tokens": self.computed_tokens,
            "hits": self.hits,
            "full_hits": self.full_hits,
            "pinned_hits": self.pinned_hits,
            "pinned_tokens": self.pinned_tokens,
            "misses": self.runs - self.hits,
            "hit_rate": self.hits / max(self.runs, 1),
            "scored_tokens": self.scored_tokens,
            "parent_misses": self.parent_misses,
            "evictions": self.evictions,
            "cached_entries": len(self._lru),
            "cached_bytes": self._bytes,
        }

    def _lookup(self, key: tuple[int, ...]) -> tuple[_Entry | None, bool]:
        """The entry of prompt ``key`` (LRU first, then pinned) and whether it was pinned."""
        hit = self._lru.get(key)
        if hit is not None:
            self._lru.move_to_end(key)
            return hit, False
        return self._pinned.get(key), True

    def _pin(self, key: tuple[int, ...], entry: _Entry) -> None:
        if self.max_pinned < 1 or key in self._pinned:
            return
        self._pinned[key] = entry
        if len(self._pinned) > self.max_pinned:
            self._pinned.popitem(last=False)

    def _put(self, key: tuple[int, ...], entry: _Entry) -> None:
        if entry.nbytes > self.max_bytes:
            return
        if key in self._lru:
            self._lru.move_to_end(key)
            return
        self._lru[key] = entry
        self._bytes += entry.nbytes
        while self._bytes > self.max_bytes:
            _, old = self._lru.popitem(last=False)
            self.evictions += 1
            self._bytes -= old.nbytes

    @torch.inference_mode()
    def run(self, segments: Sequence[Sequence[int]]) -> PrefixRun:
        """Run the prompt ``concat(segments)``, reusing the longest cached prefix that ends at a
        segment boundary, and cache the result. ``segments`` must be non-empty. When the prompt
        is run from its first token and has more than one segment, its first segment's KV is
        pinned too (a slice of the same forward: no extra compute)."""
        ids: list[int] = [i for seg in segments for i in seg]
        if not ids:
            raise ValueError("an empty prompt has no next-token distribution")
        bounds = [0]
        for seg in segments:
            bounds.append(bounds[-1] + len(seg))
        self.prompt_tokens += len(ids)
        self.runs += 1
        start, past = 0, None
        if self.max_bytes:
            for b in reversed(bounds[1:]):
                hit, pinned = self._lookup(tuple(ids[:b]))
                if hit is not None:
                    self.hits += 1
                    self.pinned_hits += int(pinned)
                    self.pinned_tokens += b if pinned else 0
                    start, past = b, hit
                    break
        key = tuple(ids)
        self.parent_misses += int(len(segments) > 1 and start < bounds[-2])
        if past is not None and start == len(ids):
            self.full_hits += 1
            return PrefixRun(key, past, 0)
        new = torch.tensor([ids[start:]], dtype=torch.long, device=self._device())
        positions = torch.arange(start, len(ids), device=new.device)[None, :]
        cache = _dynamic_cache(past.kv) if past is not None else None
        body = decoder(self.model)
        out = body(
            input_ids=new, position_ids=positions, use_cache=True, **_with_cache(body, cache)
        )
        kv = _kv_of(out)
        entry = _Entry(kv, out.last_hidden_state[0, -1])
        self.computed_tokens += len(ids) - start
        first = next(b for b in bounds[1:] if b > 0)
        if self.max_bytes and start == 0 and first < len(ids):
            head = [(k[:, :, :first].clone(), v[:, :, :first].clone()) for k, v in kv]
            self._pin(tuple(ids[:first]), _Entry(head, out.last_hidden_state[0, first - 1].clone()))
        self._put(key, entry)
        return PrefixRun(key, entry, len(ids) - start)

    def generation_cache(self, prefix: PrefixRun, rows: int = 1) -> Any:
        """A ``DynamicCache`` holding ``prefix``'s KV for ``rows`` sequences, to hand to
        ``generate`` with input ids that start with ``prefix.ids`` (only the rest is run). The
        cached tensors are not modified: the cache grows by concatenation into new ones."""
        return _dynamic_cache(prefix.entry.kv, rows)

    def _device(self) -> torch.device:
        return next(self.model.parameters()).device

    def _score_packed(
        self, prefix: PrefixRun, continuations: Sequence[Sequence[int]]
    ) -> torch.Tensor:
        """Σ log π of every continuation's tokens after its first, float32 [K]: all of them in
        ONE row on top of the prompt's KV (no copy per continuation), under a tree mask where
        each token sees the prompt and its own continuation's earlier tokens."""
        device = self._device()
        p = len(prefix.ids)
        inputs = [list(c[:-1]) for c in continuations]  # token j predicts token j + 1
        total = sum(len(x) for x in inputs)
        owner = torch.tensor([i for i, x in enumerate(inputs) for _ in x], device=device)
        offset = torch.tensor([j for x in inputs for j in range(len(x))], device=device)
        visible = torch.ones((total, p + total), dtype=torch.bool, device=device)
        visible[:, p:] = (owner[:, None] == owner[None, :]) & (offset[None, :] <= offset[:, None])
        mask: torch.Tensor = visible[None, None]  # [1, 1, T, P + T]
        if getattr(self.model.config, "_attn_implementation", "sdpa") == "eager":
            dtype = next(self.model.parameters()).dtype
            mask = torch.zeros(mask.shape, dtype=dtype, device=device).masked_fill(
                ~mask, torch.finfo(dtype).min
            )
        ids = torch.tensor([[t for x in inputs for t in x]], device=device)
        body = decoder(self.model)
        hidden = body(
            input_ids=ids,
            attention_mask=mask,
            position_ids=(p + offset)[None, :],
            use_cache=True,
            **_with_cache(body, _dynamic_cache(prefix.entry.kv)),
        ).last_hidden_state[0]  # [T, D]
        targets = torch.tensor([t for c in continuations for t in c[1:]], device=device)
        logp = head_logprobs(self.model, hidden, targets).float()
        return torch.zeros(len(inputs), device=device).index_add_(0, owner, logp).cpu()

    @torch.inference_mode()
    def score(self, prefix: PrefixRun, continuations: Sequence[Sequence[int]]) -> list[float]:
        """Σ log π(continuation tokens | prompt) for each continuation, in one batched call over
        the prompt's cached KV (float, <= 0)."""
        if not continuations or any(len(c) == 0 for c in continuations):
            raise ValueError("score needs non-empty continuations")
        device = self._device()
        k = len(continuations)
        p = len(prefix.ids)
        width = max(len(c) for c in continuations)
        lengths = torch.tensor([len(c) for c in continuations], device=device)
        out = torch.zeros(k, dtype=torch.float32)
        self.scored_tokens += sum(len(c) for c in continuations)
        first = torch.tensor([c[0] for c in continuations], device=device)
        rows = prefix.entry.last_hidden[None, :].expand(k, -1)  # [K, D] predict token 0
        logp0 = head_logprobs(self.model, rows, first).float().cpu()
        out += logp0
        if width > 1 and packs_prefixes(self.model):
            return [min(0.0, float(v)) for v in out + self._score_packed(prefix, continuations)]
        if width > 1:
            ids = torch.zeros((k, width - 1), dtype=torch.long)
            mask = torch.zeros((k, p + width - 1), dtype=torch.long)
            mask[:, :p] = 1
            for i, c in enumerate(continuations):
                ids[i, : len(c) - 1] = torch.tensor(list(c[:-1]))
                mask[i, p : p + len(c) - 1] = 1
            ids, mask = ids.to(device), mask.to(device)
            positions = torch.arange(p, p + width - 1, device=device)[None, :].expand(k, -1)
            body = decoder(self.model)
            hidden = body(
                input_ids=ids,
                attention_mask=mask,
                position_ids=positions,
                use_cache=True,
                **_with_cache(body, _dynamic_cache(prefix.entry.kv, k)),
            ).last_hidden_state  # [K, L-1, D]: position j predicts token j + 1
            targets = torch.zeros((k, width - 1), dtype=torch.long, device=device)
            for i, c in enumerate(continuations):
                targets[i, : len(c) - 1] = torch.tensor(list(c[1:]))
            cols = torch.arange(width - 1, device=device)
            keep = cols[None, :] < (lengths - 1)[:, None]
            logp = head_logprobs(self.model, hidden[keep], targets[keep]).float()
            row_of = torch.arange(k, device=device)[:, None].expand(k, width - 1)[keep]
            out += torch.zeros(k, device=device).index_add_(0, row_of, logp).cpu()
        return [min(0.0, float(v)) for v in out]
