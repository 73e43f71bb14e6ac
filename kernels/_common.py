"""Host-side pieces shared by the log-prob ops: output type, target handling, reference math.

Legend: ``N`` tokens (rows), ``V`` vocabulary, ``D`` hidden size.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

__all__ = [
    "TokenLogprobs",
    "logit_stats_reference",
    "normalize_target",
    "transform_reference",
]


class TokenLogprobs(NamedTuple):
    """Per-token outputs of :func:`token_logprobs` and :func:`fused_linear_logprobs` (fp32, [...]).

    ``logp``: log softmax(z)[target] (0 on ignored tokens); ``lse``: logsumexp(z);
    ``target_logit``: z[target] (0 on ignored tokens); ``entropy``: -sum p log p (``None`` unless
    requested); ``argmax``: argmax_j z_j (int64, first occurrence). ``z`` is the transformed logit
    row (soft-cap, then temperature).
    """

    logp: torch.Tensor
    lse: torch.Tensor
    target_logit: torch.Tensor
    entropy: torch.Tensor | None
    argmax: torch.Tensor


def normalize_target(
    target: torch.Tensor, ignore_index: int, mask: torch.Tensor | None, vocab_size: int
) -> torch.Tensor:
    """Flatten ``target`` to int32 [N], every ignored token (``ignore_index``, ``~mask``) = -1.

    The kernels treat any negative id as "ignored", so ``ignore_index`` may be any value. A kept id
    outside [0, vocab_size) raises IndexError instead of silently scoring a logit of 0 (one
    reduction and one host sync per call).
    """
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer token ids, got dtype {target.dtype}")
    flat = target.reshape(-1)
    ignored = flat == ignore_index
    if mask is not None:
        if mask.shape != target.shape:
            raise ValueError(f"mask {tuple(mask.shape)} != target shape {tuple(target.shape)}")
        ignored = ignored | ~mask.reshape(-1).bool()
    bad = ~ignored & ((flat < 0) | (flat >= vocab_size))
    if bool(bad.any()):
        first = int(flat[bad][0])
        raise IndexError(
            f"target id {first} is outside the vocabulary [0, {vocab_size}); mark tokens that must "
            f"not be scored with ignore_index={ignore_index} or the mask"
        )
    return torch.where(ignored, -1, flat).to(torch.int32).contiguous()


def transform_reference(
    raw: torch.Tensor, temperature: float, softcap: float | None
) -> torch.Tensor:
    """z = (cap * tanh(raw / cap)) / T, in the dtype of ``raw``."""
    if softcap is not None:
        raw = softcap * torch.tanh(raw / softcap)
    return raw / temperature if temperature != 1.0 else raw


def logit_stats_reference(
    z: torch.Tensor, target: torch.Tensor, *, with_entropy: bool
) -> TokenLogprobs:
    """Reference statistics of transformed logits ``z`` [N, V] with normalised ``target`` [N].

    Computes in float32 at least (float64 stays float64); materialises [N, V] (reference only).
    """
    z = z.to(torch.promote_types(z.dtype, torch.float32))
    valid = target >= 0
    idx = torch.where(valid, target, 0).long()
    lse = torch.logsumexp(z, dim=-1)
    zt = torch.where(valid, z.gather(-1, idx[:, None]).squeeze(-1), 0.0)
    logp = torch.where(valid, zt - lse, 0.0)
    entropy = None
    if with_entropy:
        logp_all = z - lse[:, None]
        entropy = -(logp_all.exp() * logp_all).sum(-1)
    return TokenLogprobs(logp, lse, zt, entropy, z.detach().argmax(-1))
