"""qengine.kernels - fused Triton kernels for token-level Q-value methods, with PyTorch references.

Importable without a GPU and without Triton: every op falls back to its PyTorch reference on CPU
(``impl="auto"``). Legend used throughout: ``N`` tokens (rows, packed over sequences), ``D`` hidden
size, ``V`` vocabulary, ``S`` sequences (segments), ``P`` preference pairs, ``β`` temperature.
"""

from ._common import TokenLogprobs
from ._triton import HAS_TRITON
from .logprobs import token_logprobs, token_logprobs_reference

__all__ = [
    "HAS_TRITON",
    "TokenLogprobs",
    "token_logprobs",
    "token_logprobs_reference",
]
