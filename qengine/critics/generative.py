"""``GenerativeCritic``: a value critic that reasons in text, then writes ``Value: <number>``.

In the spirit of GenAC (*Bringing Value Models Back: Generative Critics for Value Modeling in LLM
RL*): instead of a one-shot scalar head, a causal LM writes its reasoning about a state (and,
optionally, a proposed action) and ends with a value line, parsed by
:func:`qengine.critics.parse_value`. **In-context conditioning** keeps it calibrated to the
current actor: the prompt carries the K most recent samples of that actor (state summary,
action, observed outcome) from a ring buffer the caller feeds with :meth:`observe`.

Legend: ``B`` states per ``score`` call, ``S`` samples per state (``num_samples``).

Prompt (left-truncated when too long, so the oldest in-context samples go first and the
question at the end always stays)::

    You are the critic of an agent acting in a text environment.
    Recent attempts of this agent (state, action, observed outcome):
    Example 1:
    State: <summary>
    Action: <action>
    Outcome: 0.80
    ...
    Current state:
    <state, styled "compact" by default>
    Proposed action: <action>                       (only when an action is given)
    Estimate the expected final reward of the agent from this state (after this action), a number
    from 0 to 1. Think step by step, then end with one line "Value: <number>".
    Reasoning:

Values: each state's S samples are parsed; the mean of the parsed ones is its value. A sample
that fails to parse (missing, malformed, NaN/inf) is counted in :attr:`parse_failures`; an
out-of-range one is clipped into ``value_range`` and counted in :attr:`clipped`. When **no**
sample of a state parses, the state gets the **fallback**: ``fallback`` when given, else the
mean outcome of the in-context buffer (the actor's recent average: the best guess without
information), else the middle of ``value_range``; counted in :attr:`fallbacks`. Scoring never
raises because of what the model wrote.

Generation is pluggable: ``generate_fn(prompts, S) -> B lists of S texts``. Without one, a
Hugging Face causal LM generates (:class:`HFGenerator`: batched ``generate``, left padding,
greedy or sampling, stopping each row once its value line is complete).
"""

from __future__ import annotations

import math
from collections import Counter, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..data.prompts import PromptStyle, render_state, style_prompt
from ..models.causal_lm import (
    check_texts,
    keep_recent,
    load_causal_lm,
    pad_id,
    pad_rows,
    special_prefix,
    stop_rows_when,
)
from .parsing import ParsedValue, parse_value, value_line_complete

__all__ = ["GenerateFn", "GenerativeCritic", "HFGenerator", "InContextSample"]

GenerateFn = Callable[[list[str], int], Sequence[Sequence[str]]]


@dataclass(frozen=True)
class InContextSample:
    """One recent sample of the actor: where it was, what it did, what came of it."""

    state: str  # a short summary of the state (see GenerativeCritic.summarize)
    action: str
    outcome: float  # observed return / reward after the action


class HFGenerator:
    """Batched text generation with a Hugging Face causal LM (a ``generate_fn``).

    Args:
      model, tokenizer: a loaded ``*ForCausalLM`` and its tokenizer.
      max_new_tokens: cap on generated tokens per sample.
      greedy: greedy decoding (then exactly one sample per prompt); else sampling at
        ``temperature`` with nucleus ``top_p`` (no top-k). Seed ``torch.manual_seed`` to repeat.
      batch_size: prompts per ``generate`` call (rows = ``batch_size · S``).
      max_prompt_tokens: longest prompt; longer ones keep bos and their most recent tokens
        (default: the model's ``max_position_embeddings − max_new_tokens``).
    """

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        max_new_tokens: int = 128,
        greedy: bool = True,
        temperature: float = 1.0,
        top_p: float = 1.0,
        batch_size: int = 8,
        max_prompt_tokens: int | None = None,
    ) -> None:
        if max_new_tokens < 1 or batch_size < 1:
            raise ValueError("max_new_tokens and batch_size must be >= 1")
        if not (temperature > 0 and math.isfinite(temperature)):
            raise ValueError(f"temperature must be > 0 (use greedy=True for 0), got {temperature}")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        self.model, self.tokenizer = model.eval(), tokenizer
        self.max_new_tokens, self.batch_size = int(max_new_tokens), int(batch_size)
        self.greedy, self.temperature, self.top_p = bool(greedy), float(temperature), float(top_p)
        if max_prompt_tokens is None:
            limit = getattr(model.config, "max_position_embeddings", None) or 2048
            max_prompt_tokens = max(2, int(limit) - self.max_new_tokens)
        self.max_prompt_tokens = int(max_prompt_tokens)
        self._pad = pad_id(tokenizer)

    def __call__(self, prompts: list[str], num_samples: int) -> list[list[str]]:
        """``B`` lists of ``num_samples`` generated continuations (prompt not included)."""
        import torch

        if self.greedy and num_samples != 1:
            raise ValueError(
                "greedy decoding gives identical samples: use num_samples=1, or greedy=False to "
                "average several sampled values"
            )
        device = next(self.model.parameters()).device
        head = special_prefix(self.tokenizer)  # a BOS survives truncation; SmolLM2 has none
        out: list[list[str]] = []
        for lo in range(0, len(prompts), self.batch_size):
            chunk = prompts[lo : lo + self.batch_size]
            rows = [
                keep_recent(list(self.tokenizer(p)["input_ids"]), self.max_prompt_tokens, head=head)
                for p in chunk
            ]
            ids, mask = pad_rows(rows, self._pad, left=True, device=device)
            width = ids.shape[1]
            kwargs: dict[str, Any] = {
                "max_new_tokens": self.max_new_tokens,
                "num_return_sequences": num_samples,
                "pad_token_id": self._pad,
                "stopping_criteria": [_stop_after_value(self.tokenizer, width)],
            }
            if self.greedy:
                kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
            else:
                kwargs.update(do_sample=True, temperature=self.temperature, top_p=self.top_p)
                kwargs["top_k"] = 0  # plain sampling at temperature / top_p
            with torch.inference_mode():
                seqs = self.model.generate(input_ids=ids, attention_mask=mask, **kwargs)
            texts = self.tokenizer.batch_decode(seqs[:, width:], skip_special_tokens=True)
            out.extend(texts[i * num_samples : (i + 1) * num_samples] for i in range(len(chunk)))
        return out


def _stop_after_value(tokenizer: Any, width: int) -> Any:
    """A stopping criterion ending each row once its value line is complete."""
    return stop_rows_when(tokenizer, width, lambda _row, text: value_line_complete(text))


class GenerativeCritic:
    """A generative value critic with in-context conditioning; ``score(texts)`` like V.

    Args:
      model: a local checkpoint directory or a loaded ``*ForCausalLM`` (with ``tokenizer``).
      tokenizer: the tokenizer of a loaded model.
      generate_fn: instead of a model: ``fn(prompts, S) -> B lists of S texts`` (tests, servers).
      k: in-context samples kept (ring buffer; 0 disables the conditioning).
      num_samples: generations per state whose parsed values are averaged (``S``).
      value_range: ``(low, high)`` the value lies in; parsed values are clipped into it.
      fallback: value of a state none of whose samples parses (None: the buffer's mean outcome,
        or the middle of ``value_range`` when the buffer is empty).
      prompt_style: how the state is shown (``"compact"``: instruction, past actions, last
        observation; ``"full"``: everything).
      summary_chars: longest in-context state summary (the middle of longer ones is cut).
      max_new_tokens, greedy, temperature, top_p, batch_size, max_prompt_tokens, device: passed
        to :class:`HFGenerator` when a model is given.
    """

    def __init__(
        self,
        model: str | Path | Any = None,
        tokenizer: Any = None,
        *,
        generate_fn: GenerateFn | None = None,
        k: int = 4,
        num_samples: int = 1,
        value_range: tuple[float, float] = (0.0, 1.0),
        fallback: float | None = None,
        prompt_style: PromptStyle = "compact",
        summary_chars: int = 300,
        max_new_tokens: int = 128,
        greedy: bool = True,
        temperature: float = 1.0,
        top_p: float = 1.0,
        batch_size: int = 8,
        max_prompt_tokens: int | None = None,
        device: Any = None,
    ) -> None:
        if (model is None) == (generate_fn is None):
            raise TypeError("pass either a model (checkpoint dir or loaded LM) or a generate_fn")
        if k < 0 or num_samples < 1 or summary_chars < 16:
            raise ValueError("need k >= 0, num_samples >= 1 and summary_chars >= 16")
        low, high = (float(x) for x in value_range)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ValueError(f"value_range must be finite (low, high), low < high: {value_range}")
        if fallback is not None and not math.isfinite(fallback):
            raise ValueError(f"fallback must be finite or None, got {fallback}")
        PromptStyle.parse(prompt_style)  # raises for an unknown style
        if generate_fn is None:
            if isinstance(model, (str, Path)):
                model, loaded_tok = load_causal_lm(model)
                tokenizer = tokenizer if tokenizer is not None else loaded_tok
            elif tokenizer is None:
                raise TypeError("pass the tokenizer together with a loaded model")
            if device is not None:
                model = model.to(device)
            if greedy and num_samples > 1:
                raise ValueError(
                    "greedy decoding gives identical samples: num_samples > 1 needs greedy=False"
                )
            generate_fn = HFGenerator(
                model,
                tokenizer,
                max_new_tokens=max_new_tokens,
                greedy=greedy,
                temperature=temperature,
                top_p=top_p,
                batch_size=batch_size,
                max_prompt_tokens=max_prompt_tokens,
            )
        self.generate_fn: GenerateFn = generate_fn
        self.k, self.num_samples = int(k), int(num_samples)
        self.low, self.high = low, high
        self.fallback = fallback
        self.prompt_style: PromptStyle = prompt_style
        self.summary_chars = int(summary_chars)
        self._buffer: deque[InContextSample] = deque(maxlen=self.k)
        self.last_outputs: list[list[str]] = []
        self.last_parsed: list[list[ParsedValue]] = []
        self.reset_stats()

    # ------------------------------------------------------------------------------ counters
    def reset_stats(self) -> None:
        """Zero the counters."""
        self.calls = 0  # score() calls
        self.states_scored = 0
        self.generations = 0  # samples generated (states × S)
        self.parse_failures = 0  # samples without a usable value
        self.clipped = 0  # samples whose value was clipped into value_range
        self.fallbacks = 0  # states valued by the fallback (no sample parsed)
        self.status_counts: Counter[str] = Counter()

    @property
    def calls_per_state(self) -> int:
        """Model sequences per scored state (``VGuidedAgent`` counts model calls with it)."""
        return self.num_samples

    # ------------------------------------------------------------------ in-context buffer
    def summarize(self, state: str | Any) -> str:
        """A one-paragraph summary of a state (text or ``TextState``) for the buffer."""
        text = self._state_block(state)
        text = " ".join(text.split())
        if len(text) > self.summary_chars:
            half = (self.summary_chars - 5) // 2
            text = f"{text[:half]} ... {text[-half:]}"
        return text

    def observe(self, state: str | Any, action: str, outcome: float) -> None:
        """Add one sample of the current actor (oldest dropped beyond ``k``).

        ``outcome``: what followed ``action`` (the episode's return, or the step's reward).
        """
        if not isinstance(action, str):
            raise TypeError(f"action must be a string, got {type(action).__name__}")
        outcome = float(outcome)
        if not math.isfinite(outcome):
            raise ValueError(f"outcome must be finite, got {outcome}")
        if self.k > 0:
            self._buffer.append(InContextSample(self.summarize(state), action.strip(), outcome))

    @property
    def context(self) -> list[InContextSample]:
        """The in-context samples, oldest first (at most ``k``)."""
        return list(self._buffer)

    def clear_context(self) -> None:
        self._buffer.clear()

    # ---------------------------------------------------------------------------- prompts
    def _state_block(self, state: str | Any) -> str:
        text = state if isinstance(state, str) else render_state(state)
        text = style_prompt(text, self.prompt_style).rstrip()
        if text.endswith("Action:"):  # rendered states end with the policy's "Action: " cue
            text = text[: -len("Action:")].rstrip()
        return text

    def build_prompt(self, state: str | Any, action: str | None = None) -> str:
        """The critic's prompt for ``state`` (and a proposed ``action``); see the module doc."""
        lines = ["You are the critic of an agent acting in a text environment."]
        if self._buffer:
            lines.append("Recent attempts of this agent (state, action, observed outcome):")
            for i, s in enumerate(self._buffer, 1):
                lines += [f"Example {i}:", f"State: {s.state}", f"Action: {s.action}"]
                lines.append(f"Outcome: {s.outcome:.2f}")
        lines += ["Current state:", self._state_block(state)]
        after = ""
        if action is not None:
            lines.append(f"Proposed action: {action.strip()}")
            after = " after this action"
        lines.append(
            f"Estimate the expected final reward of the agent from this state{after}, a number "
            f"from {self.low:g} to {self.high:g}. Think step by step, then end with one line "
            '"Value: <number>".'
        )
        lines.append("Reasoning:")
        return "\n".join(lines)

    # ---------------------------------------------------------------------------- scoring
    def fallback_value(self) -> float:
        """The value of a state none of whose samples parsed (see the module docstring)."""
        if self.fallback is not None:
            x = self.fallback
        elif self._buffer:
            x = float(np.mean([s.outcome for s in self._buffer]))
        else:
            x = (self.low + self.high) / 2
        return min(max(x, self.low), self.high)

    def score(self, states: Sequence[str], actions: Sequence[str] | None = None) -> np.ndarray:
        """Values of ``B`` states (rendered texts; with ``actions``, of taking them), float64 [B].

        Raises only for bad arguments (empty list, wrong lengths, non-strings) or a
        ``generate_fn`` that returns the wrong number of texts, never for what the model wrote.
        """
        texts = check_texts(states)
        if actions is not None:
            if isinstance(actions, str) or len(actions) != len(texts):
                raise ValueError(
                    f"actions must be a list with one action per state: {len(texts)} states, "
                    f"got {'a string' if isinstance(actions, str) else len(actions)}"
                )
            if not all(isinstance(a, str) for a in actions):
                raise TypeError("actions must be strings")
        prompts = [
            self.build_prompt(s, None if actions is None else actions[i])
            for i, s in enumerate(texts)
        ]
        outputs = self.generate_fn(prompts, self.num_samples)
        if len(outputs) != len(prompts) or any(len(o) != self.num_samples for o in outputs):
            raise ValueError(
                f"generate_fn must return {len(prompts)} lists of {self.num_samples} texts, got "
                f"{[len(o) for o in outputs]}"
            )
        self.calls += 1
        self.states_scored += len(texts)
        values = np.empty(len(texts), dtype=np.float64)
        parsed_all = []
        for b, samples in enumerate(outputs):
            parsed = [parse_value(t, low=self.low, high=self.high) for t in samples]
            parsed_all.append(parsed)
            self.generations += len(parsed)
            self.status_counts.update(p.status for p in parsed)
            self.parse_failures += sum(p.failed for p in parsed)
            self.clipped += sum(p.status == "clipped" for p in parsed)
            good = [p.value for p in parsed if p.value is not None]
            if good:
                values[b] = float(np.mean(good))
            else:
                values[b] = self.fallback_value()
                self.fallbacks += 1
        self.last_outputs = [list(o) for o in outputs]
        self.last_parsed = parsed_all
        return values
