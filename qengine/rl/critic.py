"""A critic for PPO on a Hugging Face causal LM: ``V(s_t)`` before every response token.

Legend: ``B`` sequences, ``T`` positions, ``D`` hidden size. ``values[b, t]`` estimates the state
*before* token ``input_ids[b, t]`` (read from the hidden state at ``t - 1``, which has not seen the
token), the layout :func:`qengine.rl.q_advantages` and :func:`qengine.rl.gae_advantages` expect.
With Q-RM token rewards the paper's PPO uses ``A = r - c·V`` (``c = 0.01``) and fits ``V`` to ``r``
(:func:`qengine.rl.value_loss`).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from qengine.models.causal_lm import decoder, hidden_size
from qengine.qrm.rewards import check_token_masks

__all__ = ["ValueCritic"]


class ValueCritic(nn.Module):
    """A causal-LM trunk (e.g. a copy of the SFT policy) and a linear value head ``D → 1``.

    Args:
        model: a ``*ForCausalLM``; only its decoder is used.
        init_std: std of the head's weight (bias 0), so the first values are near 0.
    """

    def __init__(self, model: Any, *, init_std: float = 0.02) -> None:
        super().__init__()
        self.model = model
        self.head = nn.Linear(hidden_size(model), 1)
        nn.init.normal_(self.head.weight, std=init_std)
        nn.init.zeros_(self.head.bias)
        self.head.to(next(model.parameters()).device)

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor, response_mask: torch.Tensor
    ) -> torch.Tensor:
        """Values fp32 [B, T], differentiable: ``V`` of the state before each response token;
        0 off ``response_mask`` (which must not cover position 0)."""
        attention, response = check_token_masks(input_ids, attention_mask, response_mask)
        device = self.head.weight.device
        hidden = decoder(self.model)(
            input_ids=input_ids.to(device), attention_mask=attention.long().to(device)
        ).last_hidden_state  # [B, T, D]
        v = self.head(hidden).squeeze(-1).float()  # v[:, t] read at t: the state before t + 1
        out = v.new_zeros(input_ids.shape)
        out[:, 1:] = v[:, :-1]
        return out * response.to(device)
