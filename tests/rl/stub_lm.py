"""A hand-computable stand-in for a decoder, shared by the RL tests."""

from __future__ import annotations

from types import SimpleNamespace

import torch
from torch import nn


class TableBody(nn.Module):
    """A 'decoder' whose hidden state at a position is a fixed row per token (no context)."""

    def __init__(self, table: torch.Tensor) -> None:
        super().__init__()
        self.embed = nn.Embedding.from_pretrained(table, freeze=False)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> SimpleNamespace:
        return SimpleNamespace(last_hidden_state=self.embed(input_ids))
