"""``QRewardModel``: the Q-function reward model of Chen et al. 2025 (arXiv:2505.23363).

A discriminative policy ``φ(a | s) = softmax(Z(s, ·))`` trained on preference pairs with

    L = -log σ( β (mean_t Z_w,t - mean_t Z_l,t) - γ ),      β = 0.2, γ = 2 by default,

(means over each response's tokens) learns token-level Q-values: ``Q(s_t, a_t) = β Z(s_t, a_t)``.
``Z`` is read from any Hugging Face causal LM in one of two ways:

- ``head="lm"``: the LM-head logits, ``Z_t = z_t[a_t]``; the token Q is ``β z_t[a_t]`` and the
  advantage ``β log φ(a_t | s_t) = β (z_t[a_t] - logsumexp z_t)``;
- ``head="value"``: a scalar head on the last hidden states, ``Z_t = h_t · w + b`` where ``h_t`` is
  the hidden state *at* token ``a_t`` (it has read the action, so it can score it), which is what
  the authors' verifier does: one score per response token.

Both go through ``qengine.kernels`` (``qrm_pairwise_loss`` for training, ``token_q_scores`` /
``value_head_scores`` for scoring), on the packed rows that predict response tokens only, so on
CUDA no [tokens × vocab] logits are written. Legend: ``B`` sequences, ``T`` positions, ``D`` hidden
size, ``P`` pairs, ``n`` packed response tokens.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Literal

import torch
from torch import nn

from qengine.models.causal_lm import decoder, hidden_size, lm_head, load_causal_lm
from qengine.models.pretrained import load_lm, load_tensors, read_config, save_model_dir
from qengine.train.tokenize import CompletionBatch

from .rewards import Normalization, check_token_masks, normalize_token_rewards

__all__ = ["QRM_CONFIG", "QRM_VALUE_HEAD", "QRewardModel"]

QRM_CONFIG = "qengine_qrm.json"
QRM_VALUE_HEAD = "qrm_value_head.safetensors"
_FORMAT = 1

Head = Literal["lm", "value"]
Score = Literal["q", "advantage"]


class QRewardModel(nn.Module):
    """Token-level Q reward model on a Hugging Face causal LM.

    Args:
        model: a ``*ForCausalLM`` (Llama, Qwen, Phi, GPT-2, a PEFT wrapper, ...).
        head: ``"value"`` (scalar head on the hidden states, default, as the authors' code) or
            ``"lm"`` (the LM-head logits are Z).
        beta, gamma: the loss's temperature and margin (paper: 0.2, 2.0); rewards are ``β·Z``.
        value_head: an existing ``nn.Linear(D, 1)`` (for loading); a fresh one otherwise.
    """

    def __init__(
        self,
        model: Any,
        *,
        head: Head = "value",
        beta: float = 0.2,
        gamma: float = 2.0,
        value_head: nn.Linear | None = None,
    ) -> None:
        super().__init__()
        if head not in ("lm", "value"):
            raise ValueError(f"head must be 'lm' or 'value', got {head!r}")
        if not (beta > 0 and math.isfinite(beta)):
            raise ValueError(f"beta must be a positive number, got {beta}")
        if not math.isfinite(gamma):
            raise ValueError(f"gamma must be finite, got {gamma}")
        self.model = model
        self.head: Head = head
        self.beta = float(beta)
        self.gamma = float(gamma)
        self.value_head: nn.Linear | None = None
        if head == "value":
            if value_head is None:
                d = hidden_size(model)
                value_head = nn.Linear(d, 1)
                std = float(getattr(getattr(model, "config", None), "initializer_range", 0.02))
                nn.init.normal_(value_head.weight, std=std)
                nn.init.zeros_(value_head.bias)
                param = next(model.parameters())
                value_head.to(device=param.device)
            self.value_head = value_head
        elif value_head is not None:
            raise ValueError("value_head is only used with head='value'")

    # ------------------------------------------------------------------------------ construction
    @classmethod
    def from_causal_lm(
        cls,
        model_or_path: Any,
        *,
        head: Head = "value",
        beta: float = 0.2,
        gamma: float = 2.0,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> QRewardModel:
        """A fresh Q-RM on a causal LM object or a local checkpoint directory (or ``"smollm2"``),
        loaded by :func:`qengine.models.causal_lm.load_causal_lm`; nothing downloads."""
        model = model_or_path
        if isinstance(model_or_path, (str, Path)):
            model, _ = load_causal_lm(model_or_path, dtype=dtype, device=device, tokenizer=False)
        return cls(model, head=head, beta=beta, gamma=gamma)

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def config_dict(self) -> dict[str, Any]:
        return {
            "format": _FORMAT,
            "head": self.head,
            "beta": self.beta,
            "gamma": self.gamma,
            "value_head": QRM_VALUE_HEAD if self.head == "value" else None,
        }

    def save_pretrained(self, path: str | Path, tokenizer: Any = None) -> Path:
        """Write the LM (``save_pretrained``), the value head (safetensors), ``qengine_qrm.json``
        and, when given, the tokenizer (layout: :mod:`qengine.models.pretrained`)."""
        tensors = {}
        if self.value_head is not None:
            tensors[QRM_VALUE_HEAD] = self.value_head.state_dict()
        return save_model_dir(
            path, config_file=QRM_CONFIG, config=self.config_dict(), model=self.model,
            tokenizer=tokenizer, tensors=tensors,
        )  # fmt: skip

    @classmethod
    def from_pretrained(
        cls,
        path: str | Path,
        *,
        dtype: torch.dtype | None = None,
        device: torch.device | str | None = None,
    ) -> QRewardModel:
        """Load a Q-RM written by :meth:`save_pretrained` (``dtype`` of the LM: default bfloat16
        on CUDA, else float32; the value head stays float32). Raises
        :class:`~qengine.models.pretrained.NotAModelError` for a path that is not one."""
        root, meta = read_config(
            path, config_file=QRM_CONFIG, kind="Q-RM",
            hint="train one with qengine.qrm.train_qrm(..., output_dir=DIR)", formats=(_FORMAT,),
        )  # fmt: skip
        model, _ = load_lm(root, dtype=dtype, device=device, tokenizer=False)
        value_head = None
        if meta["head"] == "value":
            state = load_tensors(root, meta["value_head"])
            value_head = nn.Linear(int(state["weight"].shape[1]), 1)
            value_head.load_state_dict(state)
            value_head.to(next(model.parameters()).device)
        return cls(
            model, head=meta["head"], beta=meta["beta"], gamma=meta["gamma"], value_head=value_head
        )

    # ----------------------------------------------------------------------------------- scoring
    def _head_args(self) -> tuple[torch.Tensor, torch.Tensor | None, dict[str, Any]]:
        """(weight, bias, logit transform) of the head that reads Z: the value head, or the LM's
        own output layer with its soft-cap / logit scale (``Z`` = the logits the LM computes)."""
        if self.value_head is not None:
            return self.value_head.weight.reshape(-1), self.value_head.bias, {}
        head = lm_head(self.model)
        return head.weight, head.bias, {"temperature": head.temperature, "softcap": head.softcap}

    def _response_rows(
        self, batch: CompletionBatch
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Packed hidden rows scoring the response tokens, row-major over the response positions.

        LM head: the row *before* each response token (its logits predict the token); value head:
        the row *at* each response token. Returns (rows [n, D], targets [n] int64, cu_seqlens
        [B + 1] int32).
        """
        hidden = decoder(self.model)(
            input_ids=batch.input_ids, attention_mask=batch.attention_mask
        ).last_hidden_state  # [B, T, D]
        mask = batch.completion_mask
        if self.head == "lm":
            rows = hidden[:, :-1][mask[:, 1:]]
        else:
            rows = hidden[mask]
        targets = batch.input_ids[mask]
        cu = torch.zeros(mask.shape[0] + 1, dtype=torch.int32, device=rows.device)
        cu[1:] = torch.cumsum(mask.sum(1), 0)
        return rows, targets, cu

    def pairwise_loss(self, batch: CompletionBatch) -> Any:
        """Q-RM loss of ``2P`` rows (P chosen, then their P rejected) through the fused
        ``qengine.kernels.qrm_pairwise_loss``.

        Args:
            batch: from :func:`qengine.train.tokenize.encode_completions` ([2P, T]).
        Returns:
            ``qengine.kernels.QRMOutput``: loss (scalar, differentiable), per-pair mean Z of the
            chosen / rejected responses [P], margins [P], accuracy.
        """
        from qengine.kernels import qrm_pairwise_loss

        if batch.input_ids.shape[0] % 2:
            raise ValueError(
                f"pairwise_loss needs 2P rows (P chosen, then P rejected), got "
                f"{batch.input_ids.shape[0]}"
            )
        check_token_masks(batch.input_ids, batch.attention_mask, batch.completion_mask)
        rows, targets, cu = self._response_rows(batch)
        weight, bias, transform = self._head_args()
        if self.head == "lm":
            rows = rows.to(weight.dtype)
        return qrm_pairwise_loss(
            rows, weight, targets, head=self.head, bias=bias, cu_seqlens=cu, beta=self.beta,
            gamma=self.gamma, **transform,
        )  # fmt: skip

    def _packed_scores(self, batch: CompletionBatch, score: Score) -> torch.Tensor:
        """β·Z (``"q"``) or β·log φ (``"advantage"``, LM head only) of the packed response
        tokens → fp32 [n]."""
        from qengine.kernels import token_q_scores, value_head_scores

        rows, targets, _ = self._response_rows(batch)
        weight, bias, transform = self._head_args()
        if self.head == "value":
            z = value_head_scores(rows, weight, bias).z
            return self.beta * z.float()
        out = token_q_scores(
            rows.to(weight.dtype), weight, targets, bias, beta=self.beta, **transform
        )
        return (out.q if score == "q" else out.advantage).float()

    def token_scores(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        response_mask: torch.Tensor,
        *,
        score: Score = "q",
    ) -> torch.Tensor:
        """Raw token rewards, differentiable: ``β·Z`` of every response token.

        Args:
            input_ids: int [B, T]; attention_mask, response_mask: bool / 0-1 [B, T]
                (see :func:`qengine.qrm.check_token_masks`).
            score: ``"q"`` (``β z[token]``, or ``β·(h·w+b)`` for the value head) or
                ``"advantage"`` (``β log φ(token)``, LM head only).
        Returns:
            fp32 [B, T]; entry ``[b, t]`` scores token ``input_ids[b, t]``; 0 off the response.
        """
        if score not in ("q", "advantage"):
            raise ValueError(f"score must be 'q' or 'advantage', got {score!r}")
        if score == "advantage" and self.head != "lm":
            raise ValueError("score='advantage' needs head='lm' (a value head has no softmax)")
        attention, response = check_token_masks(input_ids, attention_mask, response_mask)
        device = self.device
        batch = CompletionBatch(
            input_ids.to(device), attention.long().to(device), response.to(device)
        )
        packed = self._packed_scores(batch, score)
        return packed.new_zeros(input_ids.shape).masked_scatter(batch.completion_mask, packed)

    @torch.no_grad()
    def token_rewards(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        response_mask: torch.Tensor,
        *,
        normalize: Normalization = "std",
        eos_mean: bool = False,
        clip: float | None = None,
        score: Score = "q",
        batch_size: int | None = None,
        bf16: bool | None = None,
    ) -> torch.Tensor:
        """Token rewards for RL: ``β·Z`` per response token, then normalised over the batch.

        Args:
            input_ids: int [B, T]; attention_mask, response_mask: bool / 0-1 [B, T].
            normalize: ``"std"`` (divide by std, the authors' default), ``"mean_std"`` (the
                paper's text), ``"none"``; statistics over every response token of the batch.
            eos_mean: set each row's last response reward to its mean (authors' REINFORCE).
            clip: clamp the normalised rewards to ``[-clip, clip]``.
            score: ``"q"`` or ``"advantage"`` (LM head only), see :meth:`token_scores`.
            batch_size: rows per forward pass (None: all at once); normalisation still uses the
                statistics of the whole input.
            bf16: autocast to bfloat16 (None: on CUDA when supported).
        Returns:
            fp32 [B, T] on the input's device, 0 outside ``response_mask``.
        """
        check_token_masks(input_ids, attention_mask, response_mask)
        device = self.device
        if bf16 is None:
            bf16 = device.type == "cuda" and torch.cuda.is_bf16_supported()
        was_training = self.training
        self.eval()
        step = batch_size or input_ids.shape[0]
        if step < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        chunks = []
        try:
            for start in range(0, input_ids.shape[0], step):
                sl = slice(start, start + step)
                with torch.autocast(device.type, dtype=torch.bfloat16, enabled=bf16):
                    chunks.append(
                        self.token_scores(
                            input_ids[sl], attention_mask[sl], response_mask[sl], score=score
                        ).float()
                    )
        finally:
            self.train(was_training)
        raw = torch.cat(chunks) if chunks else torch.zeros(input_ids.shape, device=device)
        rewards = normalize_token_rewards(
            raw, response_mask.to(device), normalize=normalize, eos_mean=eos_mean, clip=clip
        )
        return rewards.to(input_ids.device)

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        response_mask: torch.Tensor,
    ) -> torch.Tensor:
        """Alias of :meth:`token_scores` (raw ``β·Z`` [B, T], differentiable)."""
        return self.token_scores(input_ids, attention_mask, response_mask)
