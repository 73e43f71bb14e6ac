"""Model helpers: tiny offline models and tokenizers, loading local checkpoints."""

from .tiny import build_word_tokenizer, tiny_causal_lm

__all__ = ["build_word_tokenizer", "tiny_causal_lm"]
