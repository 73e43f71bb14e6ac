"""``HFPolicy``: a Hugging Face causal LM as a batched ReAct policy.

``B`` denotes the number of states of a micro-batch, ``n`` the samples per state, ``T`` prompt
tokens (left-padded), ``L`` new tokens, ``A`` action tokens, ``V`` the vocabulary.

One ``propose`` call:

1. renders each live state as a ReAct prompt (:mod:`qengine.policies.react`: the environment's
   action grammar, the state as :func:`qengine.data.prompts.render_prompt` renders it, the
   admissible actions when known, then ``"Thought:"`` or ``"Action: "``); when a prompt is longer
   than ``max_prompt_tokens`` its oldest steps are dropped;
2. samples ``n`` continuations per state with one ``generate`` call per micro-batch of
   ``batch_size`` states (left padding, ``[B·n, T + L]``), stopping each row as soon as its text
   holds a finished action;
3. parses the action of each sample (unparseable samples are dropped) and removes duplicates,
   keeping the first sample of each action (sampling order);
4. scores each kept action with one forward pass per micro-batch of ``score_batch_size`` rows:

       logprob = Σ_{t ∈ action} log π(t | prompt + thought + "Action: ", earlier action tokens)

   (``think=False``: given the prompt alone, i.e. ``log π(action | state)``, what the Q-value
   model's reference scores), under the model's own distribution (temperature 1, no top-p).
   ``context + action`` is tokenised as one string, so the tokens are the ones the model would
   produce; a token that straddles the boundary (``" click"``) counts as an action token. The
   action is the canonical text of the candidate (``verb[arg]``), which is what the environment
   receives. Only the decoder body runs; the final hidden states of the action tokens alone meet
   the LM head, in ``qengine.kernels.fused_linear_logprobs``
   (:func:`qengine.models.causal_lm.head_logprobs`), so no ``[B, T, V]`` or ``[B, A, V]`` logits
   are made (on CUDA not even for the ``N`` action tokens).

Sampling uses torch's global generator unless ``seed`` is given: then each state is sampled
under its own seed, derived from ``(seed, task, actions so far, how many times this state was
proposed for before)`` as :class:`~qengine.policies.ScriptedPolicy` does, with one ``generate``
call per state, so a state's candidates do not depend on which states share its call: the same
trees from one process, a resumed run or tasks sharded over Ray actors (same machine, threads
and torch build; GPU kernels may not be bit-reproducible; in chat mode, a prior computed on a
cached prefix's KV differs from a full pass by rounding, ~1e-5, so use ``kv_cache_bytes=0``
for bit-identical trees). ``greedy=True`` decodes one sequence per state (``n`` is then an
upper bound that is never reached: at most one candidate per state), for evaluation.

Nothing here downloads: ``model`` is a local checkpoint directory or a loaded model.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from qengine.envs.base import TextState
from qengine.models.causal_lm import load_causal_lm

from .base import Candidate, StateSeeds, dedupe
from .react import (
    ActionGrammar,
    ReactPrompt,
    action_complete,
    build_prompt,
    grammar_for,
    match_admissible,
    parse_action_text,
)

__all__ = ["HFPolicy", "load_causal_lm"]


class HFPolicy:
    """A Hugging Face causal LM proposing ReAct actions for batches of states.

    Args:
        model: a local checkpoint directory, or a loaded ``*ForCausalLM`` (then pass ``tokenizer``).
        tokenizer: the tokenizer of a loaded model (loaded from the directory otherwise).
        temperature: sampling temperature (> 0); 0 means greedy.
        top_p: nucleus sampling mass in (0, 1].
        max_new_tokens: cap on generated tokens per sample (thought + action).
        batch_size: states per ``generate`` call (rows = ``batch_size · n``).
        score_batch_size: rows per scoring forward pass (default ``batch_size · n``).
        greedy: decode greedily, one sequence (at most one candidate) per state.
        think: ReAct prompting ("Thought: ... Action: ..."); False asks for the action directly,
            with the prompt the Q-value model is trained on.
        device, dtype, attn_implementation: where and how to load a checkpoint directory (see
            :func:`load_causal_lm`); ``device`` also moves a given model.
        max_prompt_tokens: longest prompt; older steps are dropped beyond it (default: the
            model's ``max_position_embeddings - max_new_tokens``).
        restrict_to_admissible: when a state lists its admissible actions, keep only samples
            that are one of them (matched ignoring case and spaces; the admissible spelling is
            used).
        grammars: per-environment :class:`~qengine.policies.react.ActionGrammar` overrides.
        chat: prompt with the chat template (:mod:`qengine.policies.chat`, see "Chat mode"
            below); ``None``: when the tokenizer has a chat template (SmolLM2 does).
        kv_cache_bytes: chat mode: memory of the prompts' KV the LRU keeps
            (:class:`~qengine.policies.kv_cache.PrefixKVCache`; 0 disables reuse).
        seed: sample each state under a seed of its own (see the module docstring; costs the
            batching of ``generate`` across states); None: torch's global generator.

    Chat mode: a state with admissible actions (TextWorld, shop's result and item pages) gets
    as prior the model's log-prob of each admissible action as the assistant's whole reply
    (its text and the end-of-message token), normalised over the admissible set, from one
    batched call over the prompt's KV; ``n`` distinct candidates are sampled from it at
    ``temperature`` (``greedy``: the ``n`` most likely). A free-form state (shop's search page,
    hotpot) samples ``n`` replies with ``generate`` and scores each the same way (not
    normalised). The prompt of a child is its parent's plus one step, so only the step's tokens
    are run when the parent's KV is still cached: ``kv_stats`` counts them.
    """

    def __init__(
        self,
        model: str | Path | Any,
        tokenizer: Any = None,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 64,
        batch_size: int = 16,
        score_batch_size: int | None = None,
        greedy: bool = False,
        think: bool = True,
        device: Any = None,
        dtype: Any = None,
        attn_implementation: str | None = "sdpa",
        max_prompt_tokens: int | None = None,
        restrict_to_admissible: bool = False,
        grammars: Mapping[str, ActionGrammar] | None = None,
        chat: bool | None = None,
        kv_cache_bytes: int = 1 << 30,
        seed: int | None = None,
    ) -> None:
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        for name, value in (("max_new_tokens", max_new_tokens), ("batch_size", batch_size)):
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if score_batch_size is not None and score_batch_size < 1:
            raise ValueError(f"score_batch_size must be >= 1, got {score_batch_size}")
        if isinstance(model, (str, Path)):
            loaded, loaded_tok = load_causal_lm(
                model, device=device, dtype=dtype, attn_implementation=attn_implementation
            )
            self.model, self.tokenizer = loaded, tokenizer if tokenizer is not None else loaded_tok
        else:
            if tokenizer is None:
                raise TypeError("pass the tokenizer together with a loaded model")
            self.model, self.tokenizer = model, tokenizer
            if device is not None:
                self.model = self.model.to(device)
            self.model.eval()
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_new_tokens = int(max_new_tokens)
        self.batch_size = int(batch_size)
        self.score_batch_size = score_batch_size
        self.greedy = bool(greedy) or self.temperature == 0.0
        self.think = bool(think)
        self.restrict_to_admissible = bool(restrict_to_admissible)
        self.grammars = dict(grammars or {})
        if max_prompt_tokens is None:
            limit = getattr(self.model.config, "max_position_embeddings", None)
            max_prompt_tokens = None if limit is None else max(1, limit - self.max_new_tokens)
        self.max_prompt_tokens = max_prompt_tokens
        pad = self.tokenizer.pad_token_id
        if pad is None:
            pad = self.tokenizer.eos_token_id if self.tokenizer.eos_token_id is not None else 0
        self._pad_id = int(pad)
        if chat is None:
            chat = bool(getattr(self.tokenizer, "chat_template", None))
        self.chat = bool(chat)
        if self.chat:
            from .chat import ChatPrompter
            from .kv_cache import PrefixKVCache

            self.prompter = ChatPrompter(self.tokenizer)
            self.kv = PrefixKVCache(self.model, max_bytes=kv_cache_bytes)
        self.states_run = 0  # chat mode: prompts run (one per proposed state)
        self.seed = None if seed is None else int(seed)
        self._seeds = StateSeeds("hf-policy", self.seed or 0)

    @property
    def device(self) -> Any:
        return next(self.model.parameters()).device

    # ------------------------------------------------------------------ prompts
    def _ids(self, text: str) -> list[int]:
        return list(self.tokenizer(text, add_special_tokens=True)["input_ids"])

    def prompt(self, state: TextState) -> tuple[ReactPrompt, list[int]]:
        """The ReAct prompt of ``state`` and its token ids, shortened to ``max_prompt_tokens``."""
        grammar = grammar_for(state.env_name, self.grammars)
        for skip in range(len(state.history) + 1):
            prompt = build_prompt(state, grammar, think=self.think, skip_steps=skip)
            ids = self._ids(prompt.text)
            if self.max_prompt_tokens is None or len(ids) <= self.max_prompt_tokens:
                return prompt, ids
        raise ValueError(
            f"state of task {state.task_id!r}: the prompt without any history is {len(ids)} "
            f"tokens, more than max_prompt_tokens={self.max_prompt_tokens}; use a model with a "
            "longer context or a smaller max_new_tokens"
        )

    # ------------------------------------------------------------------ propose
    def propose(self, states: Sequence[TextState], n: int) -> list[list[Candidate]]:
        """``B`` lists of at most ``n`` distinct parsed actions with their log-probs (<= 0)."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        out: list[list[Candidate]] = [[] for _ in states]
        live = [i for i, s in enumerate(states) if not s.done]
        if self.chat:
            for i in live:
                with self._sampling_seed(states[i]):
                    out[i] = self._propose_chat(states[i], n)
            return out
        size = 1 if self.seed is not None else self.batch_size
        for lo in range(0, len(live), size):
            chunk = live[lo : lo + size]
            with self._sampling_seed(states[chunk[0]] if self.seed is not None else None):
                cands = self._propose_chunk([states[i] for i in chunk], n)
            for i, c in zip(chunk, cands, strict=True):
                out[i] = c
        return out

    @contextmanager
    def _sampling_seed(self, state: TextState | None) -> Iterator[None]:
        """Sample under ``state``'s own seed (``seed`` given), restoring torch's generators."""
        if self.seed is None or state is None:
            yield
            return
        import torch

        devices = [self.device] if self.device.type == "cuda" else []  # (CPU: always forked)
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(self._seeds.next(state) % 2**63)
            yield

    def act(self, states: Sequence[TextState]) -> list[str | None]:
        """One action per state (``None`` for a finished episode or no parseable sample)."""
        return [c[0].text if c else None for c in self.propose(states, 1)]

    def _propose_chunk(self, states: Sequence[TextState], n: int) -> list[list[Candidate]]:
        import torch

        k = 1 if self.greedy else n
        prompts = [self.prompt(s) for s in states]
        grammars = [grammar_for(s.env_name, self.grammars) for s in states]
        input_ids, attention = self._left_pad([ids for _, ids in prompts])
        width = input_ids.shape[1]
        tails = [p.tail for p, _ in prompts for _ in range(k)]
        row_grammars = [g for g in grammars for _ in range(k)]
        stop = _make_stop(self.tokenizer, width, tails, row_grammars)
        gen_kwargs: dict[str, Any] = {
            "max_new_tokens": self.max_new_tokens,
            "num_return_sequences": k,
            "pad_token_id": self._pad_id,
            "stopping_criteria": [stop],
        }
        if self.greedy:
            gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        else:
            gen_kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
            gen_kwargs["top_k"] = 0  # no top-k: plain sampling at temperature, top_p
        with torch.inference_mode():
            seqs = self.model.generate(input_ids=input_ids, attention_mask=attention, **gen_kwargs)
        texts = self.tokenizer.batch_decode(seqs[:, width:], skip_special_tokens=True)

        # Parse, restrict, dedupe: (state, action, scoring context) in sampling order.
        picks: list[list[tuple[str, str]]] = []
        for b, state in enumerate(states):
            prompt, _ = prompts[b]
            seen: dict[str, str] = {}
            for j in range(k):
                text = prompt.tail + texts[b * k + j]
                parsed = parse_action_text(text, grammars[b])
                if parsed is None:
                    continue
                action = parsed.action
                if self.restrict_to_admissible and state.admissible:
                    action = match_admissible(action, state.admissible)
                    if action is None:
                        continue
                # think: the action given the prompt and this sample's thought; no-think: given
                # the prompt alone (stray text before the action is not conditioned on).
                context = prompt.head + text[: parsed.start] if self.think else prompt.text
                seen.setdefault(action, context)
            picks.append(list(seen.items()))

        flat = [(ctx, act) for row in picks for act, ctx in row]
        scores = self.score(flat) if flat else []
        out, pos = [], 0
        for row in picks:
            cands = [Candidate(act, scores[pos + i]) for i, (act, _) in enumerate(row)]
            pos += len(row)
            out.append(dedupe(cands)[:n])
        return out

    # ------------------------------------------------------------------ chat mode
    def kv_stats(self) -> dict[str, float]:
        """Chat mode: prompt tokens asked for and computed (after KV reuse), per proposed state,
        with the cache's counters (:meth:`PrefixKVCache.stats`: hit rate, misses, scored
        continuation tokens)."""
        states = max(self.states_run, 1)
        return {
            **self.kv.stats(),
            "states": self.states_run,
            "prompt_tokens_per_state": self.kv.prompt_tokens / states,
            "computed_tokens_per_state": self.kv.computed_tokens / states,
            "scored_tokens_per_state": self.kv.scored_tokens / states,
        }

    def chat_segments(self, state: TextState) -> list[list[int]]:
        """The chat prompt of ``state`` as token segments, its oldest steps dropped (one by one,
        the head segments (system, first message) kept) while it is longer than
        ``max_prompt_tokens``."""
        segs = self.prompter.segments(state, grammar_for(state.env_name, self.grammars))
        keep = len(segs) - len(state.history)
        limit = self.max_prompt_tokens
        while limit is not None and len(segs) > keep and sum(map(len, segs)) > limit:
            del segs[keep]
        if limit is not None and sum(map(len, segs)) > limit:
            raise ValueError(
                f"state of task {state.task_id!r}: its chat prompt without history is "
                f"{sum(map(len, segs))} tokens, more than max_prompt_tokens={limit}"
            )
        return segs

    def admissible_logprobs(self, state: TextState) -> list[float]:
        """log π(a | chat prompt) for each of ``state.admissible``, normalised over them
        (float64 list aligned with ``state.admissible``)."""
        import torch

        if not state.admissible:
            raise ValueError("admissible_logprobs needs a state with admissible actions")
        run = self.kv.run(self.chat_segments(state))
        self.states_run += 1
        raw = self.kv.score(run, [self.prompter.action_ids(a) for a in state.admissible])
        return torch.log_softmax(torch.tensor(raw, dtype=torch.float64), 0).tolist()

    def _propose_chat(self, state: TextState, n: int) -> list[Candidate]:
        import torch

        if state.admissible:
            actions = list(state.admissible)
            logp = self.admissible_logprobs(state)
            k = min(n, len(actions))
            if self.greedy:
                order = sorted(range(len(actions)), key=lambda i: -logp[i])[:k]
            else:  # n distinct draws from the prior at the sampling temperature
                weights = torch.softmax(torch.tensor(logp) / self.temperature, 0)
                order = torch.multinomial(weights, k, replacement=False).tolist()
            return [Candidate(actions[i], float(logp[i])) for i in order]
        return self._generate_chat(state, n)

    def _generate_chat(self, state: TextState, n: int) -> list[Candidate]:
        """Free-form: ``n`` sampled replies (one when greedy), parsed, deduplicated, scored.

        With a bracket grammar that names its verbs (shop, hotpot) each reply starts with a verb
        drawn from the model's prior over ``"verb["`` and the model writes the argument up to
        ``"]"``: SmolLM2-135M, asked for a free reply, mostly writes prose instead of an action.
        """
        from collections import Counter

        import torch

        from ..models.causal_lm import stop_rows_when

        grammar = grammar_for(state.env_name, self.grammars)
        run = self.kv.run(self.chat_segments(state))
        self.states_run += 1
        k = 1 if self.greedy else n
        heads = [f"{v}[" for v in grammar.verbs] if grammar.bracketed and grammar.verbs else [""]
        if len(heads) > 1:
            head_ids = [self.prompter.encode(h) for h in heads]
            logp = torch.log_softmax(torch.tensor(self.kv.score(run, head_ids)), 0)
            if self.greedy:
                picks = [int(logp.argmax())]
            else:
                weights = torch.softmax(logp / self.temperature, 0)
                picks = torch.multinomial(weights, k, replacement=True).tolist()
        else:
            picks = [0] * k
        actions: list[str] = []
        for h, count in sorted(Counter(picks).items()):
            ids = torch.tensor([list(run.ids) + self.prompter.encode(heads[h])], device=self.device)
            ids = ids.repeat(count, 1)  # [count, P + head]
            width = ids.shape[1]
            done = (lambda r, t: "]" in t) if heads[h] else (lambda r, t: "\n" in t.strip())
            gen_kwargs: dict[str, Any] = {
                "max_new_tokens": self.max_new_tokens,
                "pad_token_id": self._pad_id,
                "attention_mask": torch.ones_like(ids),
                "stopping_criteria": [stop_rows_when(self.tokenizer, width, done)],
            }
            if self.kv.max_bytes:  # the prompt's cached KV: generate runs only the head + reply
                gen_kwargs["cache"] = self.kv.generation_cache(run, count)
            end = self.prompter.end_id()
            if end is not None:
                gen_kwargs["eos_token_id"] = end
            if self.greedy:
                gen_kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                gen_kwargs.update(
                    do_sample=True, temperature=self.temperature, top_p=self.top_p, top_k=0
                )
            with torch.inference_mode():
                seqs = self.model.generate(input_ids=ids, **gen_kwargs)
            for text in self.tokenizer.batch_decode(seqs[:, width:], skip_special_tokens=True):
                text = heads[h] + text
                line = text.strip().splitlines()[0] if text.strip() else ""
                parsed = parse_action_text(
                    line if grammar.bracketed else "Action: " + line, grammar
                )
                if parsed is not None and parsed.action not in actions:
                    actions.append(parsed.action)
        if not actions:
            return []
        scores = self.kv.score(run, [self.prompter.action_ids(a) for a in actions])
        return [Candidate(a, s) for a, s in zip(actions, scores, strict=True)][:n]

    def _left_pad(self, rows: Sequence[Sequence[int]]) -> tuple[Any, Any]:
        import torch

        width = max(len(r) for r in rows)
        ids = torch.full((len(rows), width), self._pad_id, dtype=torch.long)
        mask = torch.zeros((len(rows), width), dtype=torch.long)
        for i, r in enumerate(rows):
            if r:
                ids[i, width - len(r) :] = torch.tensor(list(r), dtype=torch.long)
                mask[i, width - len(r) :] = 1
        return ids.to(self.device), mask.to(self.device)

    # ------------------------------------------------------------------ scoring
    def _split(self, context: str, action: str) -> tuple[list[int], int]:
        """Token ids of ``context + action`` and how many trailing ones are action tokens."""
        tok = self.tokenizer
        full = context + action
        if getattr(tok, "is_fast", False):
            enc = tok(full, add_special_tokens=True, return_offsets_mapping=True)
            ids, offsets = list(enc["input_ids"]), list(enc["offset_mapping"])
            while ids and len(ids) > 1 and tuple(offsets[-1]) == (0, 0):  # trailing specials
                ids.pop()
                offsets.pop()
            boundary = len(context)
            n_act = sum(1 for lo, hi in offsets if hi > boundary and hi > lo)
        else:  # slow tokenizer: tokenise the two parts separately
            ids = self._ids(context)
            act = list(tok(action, add_special_tokens=False)["input_ids"])
            ids, n_act = ids + act, len(act)
        if n_act == 0 or n_act >= len(ids):
            raise ValueError(f"action {action!r} has no tokens of its own after {context[-30:]!r}")
        return ids, n_act

    def score(self, pairs: Sequence[tuple[str, str]]) -> list[float]:
        """Σ log π(action tokens | context) for each ``(context, action)`` pair (float, <= 0)."""
        import torch

        from qengine.kernels import segment_reduce

        from ..models.causal_lm import decoder, head_logprobs

        rows = [self._split(ctx, act) for ctx, act in pairs]
        step = self.score_batch_size or self.batch_size * 8
        body = decoder(self.model)
        out: list[float] = []
        for lo in range(0, len(rows), step):
            part = rows[lo : lo + step]
            ids, mask = self._left_pad([r for r, _ in part])
            n_act = torch.tensor([a for _, a in part], device=ids.device)
            a_max = int(n_act.max())
            positions = (mask.cumsum(-1) - 1).clamp(min=0)
            with torch.inference_mode():
                hidden = body(
                    input_ids=ids, attention_mask=mask, position_ids=positions
                ).last_hidden_state[:, -(a_max + 1) : -1]  # [B, A, D] predicting the last A
                targets = ids[:, -a_max:]  # [B, A]
                cols = torch.arange(a_max, device=ids.device)
                keep = cols[None, :] >= (a_max - n_act)[:, None]  # the row's own action tokens
                logp = head_logprobs(self.model, hidden[keep], targets[keep])  # [N]
                cu_seqlens = torch.zeros(len(part) + 1, dtype=torch.int32, device=ids.device)
                cu_seqlens[1:] = torch.cumsum(n_act, 0)
                out.extend(segment_reduce(logp, cu_seqlens).sum.tolist())
        return [min(0.0, v) for v in out]


def _make_stop(tokenizer: Any, width: int, tails: Sequence[str], grammars: Sequence[Any]) -> Any:
    """A stopping criterion ending each row once ``tail + generated`` holds a finished action."""
    from ..models.causal_lm import stop_rows_when

    return stop_rows_when(
        tokenizer, width, lambda r, text: action_complete(tails[r] + text, grammars[r])
    )
