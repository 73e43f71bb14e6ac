"""``VLLMPolicy``: the policy interface over an in-process ``vllm.LLM`` (optional GPU extra).

Install with ``pip install vllm`` (needs a CUDA GPU). All states of a ``propose`` call go to one
``LLM.generate`` call (vLLM batches and schedules them itself) with
``SamplingParams(n=n, temperature=..., top_p=..., max_tokens=..., logprobs=0, stop=...)``;
``logprobs=0`` makes vLLM return the log-prob of each sampled token. Prompting, parsing,
deduplication and the log-prob of an action (sum over the sampled tokens that overlap the
action's text) are those of the HTTP policy: see :mod:`qengine.policies.react` and
:func:`~qengine.policies.react.candidates_from_samples`. vLLM reports log-probs of the model's
distribution before temperature by default (its ``logprobs_mode="raw_logprobs"``).

Status: written against vLLM's documented ``LLM`` / ``SamplingParams`` / ``RequestOutput`` API but
NOT run against a real vLLM in qengine's CI (no GPU there). The tests cover the import guard and
this module's plumbing with a stand-in ``vllm`` module; check it on a GPU machine before relying
on it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from qengine.envs.base import TextState

from .base import Candidate
from .react import ActionGrammar, build_prompt, candidates_from_samples, grammar_for

__all__ = ["VLLMPolicy"]

_INSTALL_HINT = (
    "VLLMPolicy needs vLLM, which runs on CUDA GPUs: pip install vllm (or pip install "
    "'qengine[vllm]'); on a CPU-only machine use HFPolicy, or OpenAICompatiblePolicy against a "
    "remote `vllm serve` endpoint"
)


def _import_vllm() -> Any:
    try:
        import vllm
    except ImportError as e:
        raise ImportError(f"{_INSTALL_HINT} (import failed: {e})") from e
    return vllm


class VLLMPolicy:
    """Propose ReAct actions with a vLLM engine.

    Args:
        model: a local checkpoint directory, or an existing ``vllm.LLM``.
        temperature, top_p: sampling parameters; ``temperature=0`` or ``greedy=True`` gives one
            greedy sample per state.
        max_new_tokens: cap on generated tokens per sample.
        think: ReAct prompting (thought, then action) or the action alone.
        seed: per-request sampling seed (``SamplingParams.seed``), for reproducible proposals.
        restrict_to_admissible: keep only actions among the state's admissible ones (when known).
        grammars: per-environment :class:`~qengine.policies.react.ActionGrammar` overrides.
        **llm_kwargs: passed to ``vllm.LLM`` when ``model`` is a path (``dtype``,
            ``tensor_parallel_size``, ``gpu_memory_utilization``, ``max_model_len``, ...).
    """

    def __init__(
        self,
        model: str | Path | Any,
        *,
        temperature: float = 1.0,
        top_p: float = 1.0,
        max_new_tokens: int = 64,
        greedy: bool = False,
        think: bool = True,
        seed: int | None = None,
        restrict_to_admissible: bool = False,
        grammars: Mapping[str, ActionGrammar] | None = None,
        **llm_kwargs: Any,
    ) -> None:
        self._vllm = _import_vllm()
        if temperature < 0:
            raise ValueError(f"temperature must be >= 0, got {temperature}")
        if not 0.0 < top_p <= 1.0:
            raise ValueError(f"top_p must be in (0, 1], got {top_p}")
        if max_new_tokens < 1:
            raise ValueError(f"max_new_tokens must be >= 1, got {max_new_tokens}")
        if isinstance(model, (str, Path)):
            path = Path(model).expanduser()
            if not path.is_dir():
                raise FileNotFoundError(
                    f"{str(model)!r} is not a local directory; qengine never downloads models: "
                    "pass a local checkpoint directory or an existing vllm.LLM"
                )
            self.llm = self._vllm.LLM(model=str(path), **llm_kwargs)
        else:
            if llm_kwargs:
                raise TypeError("engine options (llm_kwargs) only apply when model is a path")
            self.llm = model
        self.temperature = float(temperature)
        self.top_p = float(top_p)
        self.max_new_tokens = int(max_new_tokens)
        self.greedy = bool(greedy) or self.temperature == 0.0
        self.think = bool(think)
        self.seed = seed
        self.restrict_to_admissible = bool(restrict_to_admissible)
        self.grammars = dict(grammars or {})

    def sampling_params(self, n: int) -> Any:
        """The ``vllm.SamplingParams`` of one state's ``n`` samples."""
        greedy = self.greedy
        return self._vllm.SamplingParams(
            n=1 if greedy else n,
            temperature=0.0 if greedy else self.temperature,
            top_p=1.0 if greedy else self.top_p,
            max_tokens=self.max_new_tokens,
            logprobs=0,  # the sampled token's log-prob only
            stop=["\nObservation", "\nInstruction"] if self.think else ["\n"],
            seed=self.seed,
        )

    def propose(self, states: Sequence[TextState], n: int) -> list[list[Candidate]]:
        """``B`` lists of at most ``n`` distinct parsed actions, one ``generate`` call in all."""
        if n < 1:
            raise ValueError(f"n must be >= 1, got {n}")
        out: list[list[Candidate]] = [[] for _ in states]
        live = [i for i, s in enumerate(states) if not s.done]
        if not live:
            return out
        grammars = [grammar_for(states[i].env_name, self.grammars) for i in live]
        prompts = [
            build_prompt(states[i], g, think=self.think)
            for i, g in zip(live, grammars, strict=True)
        ]
        results = self.llm.generate(
            [p.text for p in prompts], self.sampling_params(n), use_tqdm=False
        )
        for i, g, p, res in zip(live, grammars, prompts, results, strict=True):
            samples = [_sample(c) for c in res.outputs]
            out[i] = candidates_from_samples(
                states[i], g, p.tail, samples, n, restrict_to_admissible=self.restrict_to_admissible
            )
        return out

    def act(self, states: Sequence[TextState]) -> list[str | None]:
        """One action per state (``None`` for a finished episode or no parseable sample)."""
        return [c[0].text if c else None for c in self.propose(states, 1)]


def _sample(completion: Any) -> tuple[str, list[str] | None, list[float | None]]:
    """``(text, token texts, token log-probs)`` of a ``vllm.CompletionOutput``."""
    text = completion.text
    steps = completion.logprobs
    ids = list(completion.token_ids)
    if not steps or len(steps) != len(ids):
        return text, None, []
    toks: list[str] = []
    vals: list[float | None] = []
    for tid, step in zip(ids, steps, strict=True):
        entry = step.get(tid) if step else None
        if entry is None or entry.decoded_token is None:
            return text, None, []
        toks.append(entry.decoded_token)
        vals.append(entry.logprob)
    if not "".join(toks).startswith(text):  # offsets would be wrong (text may drop a stop string)
        return text, None, []
    return text, toks, vals
