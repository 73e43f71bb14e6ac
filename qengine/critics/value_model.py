"""``ValueModel``: a state-value model V(s), a scalar head on a Hugging Face causal LM.

    V(s) = w · h_last(s) + b

``h_last`` is the decoder's last hidden state at the last token of the state text (the rendered
prompt, styled ``"full"`` or ``"compact"`` like the Q-model's), so it has read the whole state.
The head runs in float32 whatever the body's dtype. Texts are right-padded; a state longer than
``max_length`` tokens keeps its first (bos) token and its most recent tokens, as the Q-model does.

Legend: ``B`` states, ``T`` tokens, ``D`` hidden size.

Saved layout (``save_pretrained``): the LM and the tokenizer via ``save_pretrained``, the head in
``value_head.safetensors`` and ``qengine_value.json`` (format, prompt style, max length, training
history). Train with :func:`qengine.critics.train_value_regression` (MCTS node values) or
:func:`qengine.critics.train_value_bt` (Bradley-Terry on sibling successor states).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.prompts import PromptStyle, style_prompt
from ..models.causal_lm import (
    check_texts,
    decoder,
    hidden_size,
    keep_recent,
    load_causal_lm,
    pad_id,
    pad_rows,
    special_prefix,
)
from ..models.pretrained import load_lm, load_tensors, read_config, save_model_dir

__all__ = ["VALUE_CONFIG", "VALUE_HEAD", "ValueModel"]

VALUE_CONFIG = "qengine_value.json"
VALUE_HEAD = "value_head.safetensors"
_FORMAT = 1


class ValueModel(nn.Module):
    """V(s) on any ``*ForCausalLM``; ``score(texts)`` is the critic interface.

    Args:
      model: a Hugging Face causal LM (Llama, Qwen, Phi, GPT-2, ...); only its decoder body runs.
      tokenizer: its tokenizer.
      prompt_style: ``"full"`` (the rendered state as it is) or ``"compact"`` (instruction, past
        actions, last observation; see ``qengine.data.prompts.compact_prompt``).
      max_length: token budget of a state (longer states lose their oldest history).
      value_head: an ``nn.Linear(D, 1)`` (for loading); a fresh zero-mean one otherwise.
    """

    calls_per_state = 1  # one forward row per scored state (VGuidedAgent's model-call count)

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        *,
        prompt_style: PromptStyle = "full",
        max_length: int = 512,
        value_head: nn.Linear | None = None,
    ) -> None:
        super().__init__()
        style_prompt("", prompt_style)  # raises for an unknown style
        if max_length < 2:
            raise ValueError(f"max_length must be >= 2, got {max_length}")
        self.model = model
        self.tokenizer = tokenizer
        self.prompt_style: PromptStyle = prompt_style
        self.max_length = int(max_length)
        if value_head is None:
            value_head = nn.Linear(hidden_size(model), 1)
            std = float(getattr(getattr(model, "config", None), "initializer_range", 0.02))
            nn.init.normal_(value_head.weight, std=std)
            nn.init.zeros_(value_head.bias)
        self.value_head = value_head.float().to(self.device)
        self.history: dict[str, Any] = {}

    # ------------------------------------------------------------------------------ construction
    @classmethod
    def from_causal_lm(
        cls,
        model_or_path: Any,
        tokenizer: Any = None,
        *,
        prompt_style: PromptStyle = "full",
        max_length: int = 512,
        dtype: Any = None,
    ) -> ValueModel:
        """A fresh value model on a loaded LM (pass its tokenizer) or a local checkpoint dir."""
        if isinstance(model_or_path, (str, Path)):
            model, loaded_tok = load_causal_lm(model_or_path, dtype=dtype)
            tokenizer = tokenizer if tokenizer is not None else loaded_tok
        else:
            if tokenizer is None:
                raise TypeError("pass the tokenizer together with a loaded model")
            model = model_or_path
        return cls(model, tokenizer, prompt_style=prompt_style, max_length=max_length)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def config_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "prompt_style": self.prompt_style,
            "max_length": self.max_length,
            "value_head": VALUE_HEAD,
            "history": self.history,
        }

    def save_pretrained(self, path: str | Path) -> Path:
        """Write the LM and tokenizer (``save_pretrained``), the head (safetensors) and
        ``qengine_value.json``; never pickle."""
        return save_model_dir(
            path,
            config_file=VALUE_CONFIG,
            config=self.config_dict(),
            model=self.model,
            tokenizer=self.tokenizer,
            tensors={VALUE_HEAD: self.value_head.state_dict()},
        )

    @classmethod
    def from_pretrained(
        cls, path: str | Path, *, device: torch.device | str | None = None, dtype: Any = None
    ) -> ValueModel:
        """Load a value model written by :meth:`save_pretrained` (nothing downloads).

        ``dtype``: the LM's (default bfloat16 on CUDA, else float32; the head stays float32).
        Raises :class:`~qengine.models.pretrained.NotAModelError` for a path that is not one.
        """
        root, meta = read_config(
            path,
            config_file=VALUE_CONFIG,
            kind="value model",
            hint="train one with qengine.critics.train_value_regression(..., output_dir=DIR) "
            "or train_value_bt",
            formats=(_FORMAT,),
        )
        model, tokenizer = load_lm(root, dtype=dtype, device=device)
        state = load_tensors(root, meta["value_head"])
        head = nn.Linear(int(state["weight"].shape[1]), 1)
        head.load_state_dict(state)
        vm = cls(
            model,
            tokenizer,
            prompt_style=meta["prompt_style"],
            max_length=int(meta["max_length"]),
            value_head=head,
        )
        vm.history = meta.get("history", {})
        return vm.eval()

    # ---------------------------------------------------------------------------------- forward
    def encode(self, states: Sequence[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """Styled, truncated, right-padded ``(input_ids, attention_mask)``, int64 [B, T]."""
        rows = []
        for text in states:
            ids = self.tokenizer(style_prompt(text, self.prompt_style), add_special_tokens=True)
            ids = list(ids["input_ids"])
            if not ids:
                raise ValueError(f"state {text[:60]!r} has no tokens; the tokenizer adds no bos")
            rows.append(keep_recent(ids, self.max_length, head=special_prefix(self.tokenizer)))
        return pad_rows(rows, pad_id(self.tokenizer), left=False, device=self.device)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        """V of right-padded rows → float32 [B] (the head reads each row's last real token)."""
        if input_ids.shape != attention_mask.shape or input_ids.ndim != 2:
            raise ValueError(
                f"input_ids {tuple(input_ids.shape)} and attention_mask "
                f"{tuple(attention_mask.shape)} must both be [B, T]"
            )
        lengths = attention_mask.sum(dim=1)
        if bool((lengths == 0).any()):
            raise ValueError("a row of attention_mask is all zeros: every state needs a token")
        hidden = decoder(self.model)(
            input_ids=input_ids, attention_mask=attention_mask
        ).last_hidden_state  # [B, T, D]
        last = hidden[torch.arange(hidden.shape[0], device=hidden.device), lengths - 1]  # [B, D]
        return self.value_head(last.float()).squeeze(-1)

    def values(self, states: Sequence[str]) -> torch.Tensor:
        """Differentiable V of state texts → float32 [B] (training)."""
        return self(*self.encode(states))

    @torch.no_grad()
    def score(
        self, states: Sequence[str], *, batch_size: int = 32, progress: bool = False
    ) -> np.ndarray:
        """V of rendered state texts (``render_state``), float64 [B], in batches; eval mode."""
        texts = check_texts(states)
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        was_training = self.training
        self.eval()
        out = []
        try:
            starts = range(0, len(texts), batch_size)
            for lo in tqdm(starts, desc="V scores", unit="batch", disable=not progress):
                out.append(self.values(texts[lo : lo + batch_size]).double().cpu())
        finally:
            self.train(was_training)
        return torch.cat(out).numpy()
