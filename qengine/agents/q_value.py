"""`QValueModel`: implicit step-level Q-values of candidate actions from a step-DPO-trained model.

    Q(s, a) = β · Σ_{t ∈ a} (log πθ(a_t | s, a_<t) − log πref(a_t | s, a_<t))

The state prefix is run once per model with a KV cache; the n candidates of that state are then
run together in one batch on top of the cached prefix. Only the decoder bodies run: the final hidden
states of the candidates' tokens meet the two LM heads in ``qengine.kernels.implicit_step_q``, so no
[tokens × V] logits are made (on CUDA not even for the scored tokens).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..data.prompts import style_actions, style_prompt
from ..models.causal_lm import (
    decoder,
    head_logprobs,
    keep_recent,
    lm_head,
    special_prefix,
)
from ..models.pretrained import load_lm, read_config, save_model_dir

__all__ = ["QMODEL_CONFIG", "REFERENCE_DIR", "QValueModel", "candidate_logprobs", "candidate_rows"]

QMODEL_CONFIG = "qengine_qmodel.json"
REFERENCE_DIR = "reference"
_FORMAT = 1


@functools.cache
def _cache_argument(model_class: type) -> str:
    """The forward's KV-cache argument: ``cache`` (transformers >= 5.x), else the older
    ``past_key_values`` (looked up once per model class, not per scored state)."""
    accepted = inspect.signature(model_class.forward).parameters
    return "cache" if "cache" in accepted else "past_key_values"


@torch.no_grad()
def candidate_rows(
    model: Any, prompt_ids: list[int], candidates: Sequence[list[int]]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Final hidden states of the positions predicting each candidate's tokens after a shared
    prompt, packed: (rows [N, D], targets [N] int64, cu_seqlens [n + 1] int32), candidate ``c``
    owning rows ``cu_seqlens[c]:cu_seqlens[c + 1]``.

    Only the decoder body runs (no LM head): the prompt goes through it once (``use_cache=True``);
    the cache is repeated n times and the right-padded candidates run in one batch on top of it.
    """
    body = decoder(model)
    device = next(model.parameters()).device
    n = len(candidates)
    width = max(len(c) for c in candidates)
    if width == 0:
        raise ValueError("every candidate is empty after tokenisation")
    prefix = torch.tensor([prompt_ids], device=device)
    first = body(input_ids=prefix, use_cache=True)
    cache = getattr(first, "cache", None)
    if cache is None:  # transformers < 5
        cache = first.past_key_values
    cache.batch_repeat_interleave(n)
    tokens = torch.zeros((n, width), dtype=torch.long, device=device)
    mask = torch.zeros((n, width), dtype=torch.bool, device=device)
    for i, ids in enumerate(candidates):
        tokens[i, : len(ids)] = torch.tensor(ids, device=device)
        mask[i, : len(ids)] = True
    attention = torch.cat(
        [torch.ones((n, prefix.shape[1]), dtype=torch.long, device=device), mask.long()], dim=1
    )
    rest = body(
        input_ids=tokens,
        attention_mask=attention,
        use_cache=False,
        **{_cache_argument(type(body)): cache},
    )
    # The prompt's last state predicts each candidate's first token; the rest predict the next.
    hidden = torch.cat(
        [first.last_hidden_state[:, -1:].expand(n, -1, -1), rest.last_hidden_state[:, :-1]], dim=1
    )  # [n, width, D]
    lengths = mask.sum(dim=1)
    cu_seqlens = torch.zeros(n + 1, dtype=torch.int32, device=device)
    cu_seqlens[1:] = torch.cumsum(lengths, 0)
    return hidden[mask], tokens[mask], cu_seqlens


@torch.no_grad()
def candidate_logprobs(
    model: Any, prompt_ids: list[int], candidates: Sequence[list[int]]
) -> torch.Tensor:
    """Σ log π over each candidate's tokens given a shared prompt → float32 [n].

    The candidates' rows (:func:`candidate_rows`) meet the LM head through the fused kernel
    (:func:`qengine.models.causal_lm.head_logprobs`): no [tokens × V] logits.
    """
    from qengine.kernels import segment_reduce

    rows, targets, cu_seqlens = candidate_rows(model, prompt_ids, candidates)
    return segment_reduce(head_logprobs(model, rows, targets), cu_seqlens).sum


class QValueModel:
    """Scores candidate actions of agent states with a model trained by ``train_step_dpo``.

    Args:
      model: the trained causal LM (πθ); reference: the frozen initial one (πref), same
        architecture; tokenizer: theirs.
      beta: the DPO β the model was trained with (Q = β · log-ratio).
      prompt_style, env, max_length: how states and candidates are styled and truncated, as in
        training.
      history: the training history (saved with the model).

    Saved layout (:meth:`save_pretrained`, read by :meth:`from_pretrained`): the model and the
    tokenizer (``save_pretrained``), the reference in ``reference/`` and ``qengine_qmodel.json``.
    """

    def __init__(
        self,
        model: Any,
        reference: Any,
        tokenizer: Any,
        *,
        beta: float,
        prompt_style: str = "full",
        env: str | None = None,
        max_length: int = 512,
        history: dict[str, Any] | None = None,
    ) -> None:
        self.model = model.eval()
        self.reference = reference.eval()
        self.tokenizer = tokenizer
        self.beta = float(beta)
        self.prompt_style = prompt_style
        self.env = env  # whose rendering hooks style its prompts (None: legacy)
        self.max_length = int(max_length)
        self.history = history or {}
        self.device = next(model.parameters()).device

    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, device: Any = None, dtype: Any = torch.float32
    ) -> QValueModel:
        """Load a Q-value model written by :meth:`save_pretrained` (or ``qengine train-q``).

        ``device``: default CUDA when available; ``dtype``: float32 by default, as trained.
        Raises :class:`~qengine.models.pretrained.NotAModelError` for a path that is not one.
        """
        root, meta = read_config(
            path,
            config_file=QMODEL_CONFIG,
            kind="Q-value model",
            hint="pass a directory written by `qengine train-q --out DIR` or "
            "qengine.train.train_step_dpo(..., output_dir=DIR)",
        )
        device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        model, tokenizer = load_lm(root, device=device, dtype=dtype)
        reference, _ = load_lm(
            root / meta["reference"], device=device, dtype=dtype, tokenizer=False
        )
        return cls(
            model,
            reference,
            tokenizer,
            beta=float(meta["beta"]),
            prompt_style=meta.get("prompt_style", "full"),
            env=meta.get("env"),
            max_length=int(meta.get("max_length", 512)),
            history=meta.get("history", {}),
        )

    def config_dict(self) -> dict[str, Any]:
        """The ``qengine_qmodel.json`` contents."""
        return {
            "format": _FORMAT,
            "beta": self.beta,
            "reference": REFERENCE_DIR,
            "prompt_style": self.prompt_style,
            "env": self.env,
            "max_length": self.max_length,
            "history": self.history,
        }

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the model, tokenizer, ``reference/`` and ``qengine_qmodel.json`` to ``path``."""
        return save_model_dir(
            path,
            config_file=QMODEL_CONFIG,
            config=self.config_dict(),
            model=self.model,
            tokenizer=self.tokenizer,
            submodels={REFERENCE_DIR: self.reference},
        )

    def _ids(self, prompt: str, candidates: Sequence[str]) -> tuple[list[int], list[list[int]]]:
        """Token ids styled and truncated exactly as in training (``encode_completions``)."""
        candidates = style_actions(prompt, candidates, self.prompt_style, self.env)
        prompt = style_prompt(prompt, self.prompt_style, self.env)
        prompt_ids = self.tokenizer(prompt, add_special_tokens=True)["input_ids"]
        eos = self.tokenizer.eos_token_id
        cands = []
        for text in candidates:
            ids = self.tokenizer(text, add_special_tokens=False)["input_ids"]
            cands.append(ids + ([eos] if eos is not None else []))
        keep = self.max_length - max(len(c) for c in cands)
        if len(prompt_ids) > keep:  # drop the oldest history, keep a BOS if there is one
            prompt_ids = keep_recent(prompt_ids, keep, head=special_prefix(self.tokenizer))
        return prompt_ids, cands

    def score(self, prompt: str, candidates: Sequence[str]) -> np.ndarray:
        """Q-values float64 [n] of ``candidates`` after ``prompt`` (see ``render_state``)."""
        if len(candidates) == 0:
            raise ValueError("score() needs at least one candidate action")
        from qengine.kernels import implicit_step_q

        prompt_ids, cands = self._ids(prompt, candidates)
        rows, targets, cu_seqlens = candidate_rows(self.model, prompt_ids, cands)
        ref_rows, _, _ = candidate_rows(self.reference, prompt_ids, cands)
        head, ref = lm_head(self.model), lm_head(self.reference)
        if (head.softcap, head.temperature) != (ref.softcap, ref.temperature):
            raise ValueError(
                "the Q-value model and its reference transform their logits differently "
                f"(softcap, temperature {head.softcap, head.temperature} vs "
                f"{ref.softcap, ref.temperature}); they must share one architecture"
            )
        q = implicit_step_q(
            rows.to(head.weight.dtype),
            head.weight,
            targets,
            ref_weight=ref.weight,
            ref_hidden=ref_rows.to(ref.weight.dtype),
            bias=head.bias,
            ref_bias=ref.bias,
            cu_seqlens=cu_seqlens,
            beta=self.beta,
            temperature=head.temperature,
            softcap=head.softcap,
        ).q
        return q.double().cpu().numpy()

    def score_batch(
        self, prompts: Sequence[str], candidates: Sequence[Sequence[str]]
    ) -> list[np.ndarray]:
        """``score`` for many states."""
        if len(prompts) != len(candidates):
            raise ValueError(f"{len(prompts)} prompts but {len(candidates)} candidate lists")
        return [self.score(p, c) for p, c in zip(prompts, candidates, strict=True)]
