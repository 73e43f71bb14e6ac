"""Host-side pieces shared by the log-prob ops: output type, target handling, reference math and
the PyTorch path of their custom ops (vocabulary-chunked statistics and logit gradients).

Legend: ``N`` tokens (rows), ``V`` vocabulary, ``D`` hidden size.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from typing import NamedTuple

import torch

__all__ = [
    "TokenLogprobs",
    "check_logit_transform",
    "check_positive",
    "check_same_dtype",
    "compute_dtype",
    "dlogits_chunk",
    "fake_logprob_outputs",
    "logit_stats_chunked",
    "logit_stats_reference",
    "normalize_target",
    "transform_reference",
    "upstream_grad",
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


def _positive_finite(x: object) -> bool:
    try:
        x = float(x)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return False
    return math.isfinite(x) and x > 0


def check_positive(name: str, value: float) -> None:
    """ValueError unless ``value`` is a finite number > 0 (temperatures, ``beta``)."""
    if not _positive_finite(value):
        raise ValueError(f"{name} must be finite and > 0, got {value!r}")


def check_logit_transform(temperature: float, softcap: float | None) -> None:
    """ValueError unless ``temperature`` is finite and > 0 and ``softcap`` is None or finite and
    > 0 (``softcap=0`` would divide by zero inside tanh; NaN would poison every row)."""
    check_positive("temperature", temperature)
    if softcap is not None and not _positive_finite(softcap):
        raise ValueError(f"softcap must be None (no cap) or finite and > 0, got {softcap!r}")


def check_same_dtype(**tensors: torch.Tensor | None) -> None:
    """TypeError unless the given tensors share one dtype (the same error on every path)."""
    given = {name: t.dtype for name, t in tensors.items() if t is not None}
    if len(set(given.values())) > 1:
        shown = ", ".join(f"{name} {str(dt).removeprefix('torch.')}" for name, dt in given.items())
        raise TypeError(f"dtypes differ ({shown}); cast them to one dtype first")


def fake_logprob_outputs(
    like: torch.Tensor, n: int, *, with_entropy: bool, use_triton: bool
) -> tuple[torch.Tensor, ...]:
    """Meta outputs of ops 1 and 2 for ``register_fake``: (logp, lse, target_logit, entropy,
    argmax) [N]; entropy is [0] without ``with_entropy``, argmax int64, the rest fp32 (the PyTorch
    path keeps fp64)."""
    dt = torch.float32 if use_triton else compute_dtype(like.dtype)
    out = [like.new_empty(n, dtype=dt) for _ in range(3)]
    entropy = like.new_empty(n if with_entropy else 0, dtype=dt)
    return *out, entropy, like.new_empty(n, dtype=torch.int64)


def normalize_target(
    target: torch.Tensor, ignore_index: int, mask: torch.Tensor | None, vocab_size: int
) -> torch.Tensor:
    """Flatten ``target`` to int32 [N], every ignored token (``ignore_index``, ``~mask``) = -1.

    The kernels treat any negative id as "ignored", so ``ignore_index`` may be any value. A kept id
    outside [0, vocab_size) raises IndexError instead of silently scoring a logit of 0 (one
    reduction and one host sync per call; skipped under torch.compile).
    """
    if target.dtype.is_floating_point or target.dtype == torch.bool:
        raise TypeError(f"target must hold integer token ids, got dtype {target.dtype}")
    flat = target.reshape(-1)
    ignored = flat == ignore_index
    if mask is not None:
        if mask.shape != target.shape:
            raise ValueError(f"mask {tuple(mask.shape)} != target shape {tuple(target.shape)}")
        ignored = ignored | ~mask.reshape(-1).bool()
    # bool(tensor) is a host sync, which torch.compile(fullgraph=True) cannot trace: the check runs
    # in eager mode only (compiled, an id >= V gets a target logit of 0, a negative one is ignored).
    if not torch.compiler.is_compiling():
        bad = ~ignored & ((flat < 0) | (flat >= vocab_size))
        if bool(bad.any()):
            first = int(flat[bad][0])
            raise IndexError(
                f"target id {first} is outside the vocabulary [0, {vocab_size}); mark tokens "
                f"that must not be scored with ignore_index={ignore_index} or the mask"
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


# ----------------------------------------------------------------------------- PyTorch op path
def compute_dtype(dtype: torch.dtype) -> torch.dtype:
    """Statistics dtype of the PyTorch path: fp32 at least, fp64 stays fp64."""
    return torch.promote_types(dtype, torch.float32)


def logit_stats_chunked(
    chunks: Iterable[tuple[int, torch.Tensor]],
    target: torch.Tensor,
    *,
    temperature: float,
    softcap: float | None,
    with_entropy: bool,
    dtype: torch.dtype,
) -> tuple[torch.Tensor, ...]:
    """Online per-row statistics over vocabulary chunks (PyTorch twin of :mod:`._tile`).

    ``chunks`` yields ``(v0, raw)``: raw logits [N, c] of the columns ``v0 .. v0 + c``, consumed one
    at a time, so only one chunk's [N, c] temporaries (in ``dtype``) are alive. ``target`` [N] is
    normalised (-1 = ignored). Returns ``(logp, lse, z_t, entropy, argmax)``, each [N] in
    ``dtype`` except ``argmax`` (int64, first occurrence); ``entropy`` is [0] without
    ``with_entropy``.
    """
    valid = target >= 0
    m = s = a = zt = arg = None
    for v0, raw in chunks:
        z = transform_reference(raw.to(dtype), temperature, softcap)
        c = z.shape[1]
        c_arg = z.argmax(1)
        c_max = z.gather(1, c_arg[:, None]).squeeze(1)
        shifted = z - c_max[:, None]
        e = shifted.exp()
        c_s = e.sum(1)
        c_a = (e * shifted).sum(1) if with_entropy else None
        idx = target.long() - v0
        hit = valid & (idx >= 0) & (idx < c)
        c_zt = torch.where(hit, z.gather(1, idx.clamp(0, c - 1)[:, None]).squeeze(1), 0.0)
        if m is None:
            m, s, a, zt, arg = c_max, c_s, c_a, c_zt, c_arg
            continue
        m_new = torch.maximum(m, c_max)
        old, new = torch.exp(m - m_new), torch.exp(c_max - m_new)
        if with_entropy:  # shifted first moments, re-based on the new running max
            a = old * (a + (m - m_new) * s) + new * (c_a + (c_max - m_new) * c_s)
        s = old * s + new * c_s
        arg = torch.where(c_max > m, c_arg + v0, arg)  # only a strictly larger max replaces it
        m, zt = m_new, zt + c_zt
    if m is None:
        raise ValueError("the vocabulary is empty (V = 0)")
    log_s = torch.log(s)
    lse = m + log_s
    logp = torch.where(valid, zt - lse, 0.0)
    ent = log_s - a / s if with_entropy else lse.new_empty(0)
    return logp, lse, zt, ent, arg


def upstream_grad(g: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor:
    """A per-row upstream gradient as a contiguous tensor of ``like``'s dtype (zeros if None)."""
    return torch.zeros_like(like) if g is None else g.to(like.dtype).contiguous()


def dlogits_chunk(
    raw: torch.Tensor,
    v0: int,
    target: torch.Tensor,
    lse: torch.Tensor,
    ent: torch.Tensor,
    grads: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None],
    *,
    temperature: float,
    softcap: float | None,
    dtype: torch.dtype,
) -> torch.Tensor:
    """d(loss)/d(raw) [N, c] in ``dtype`` for the raw logits of columns ``v0 .. v0 + c``.

    PyTorch twin of ``dlogits_tile``: given per-row upstream grads of (logp, lse, z_t, H | None),
    ``dz_j = (g_lp + g_zt) 1[j = t] + (g_lse - g_lp) p_j - g_H p_j (z_j - lse + H)`` and
    ``draw_j = dz_j (1 - tanh^2(raw_j / cap)) / T``.
    """
    g_lp, g_lse, g_zt, g_ent = grads
    x = raw.to(dtype)
    if softcap is not None:
        th = torch.tanh(x / softcap)
        z = softcap * th
    else:
        z = x
    if temperature != 1.0:
        z = z / temperature
    valid = target >= 0
    g_lp = torch.where(valid, g_lp, 0.0)  # ignored rows have a constant logp of 0
    p = torch.exp(z - lse[:, None])
    coef = (g_lse - g_lp)[:, None]
    if g_ent is not None:
        coef = coef - g_ent[:, None] * (z - lse[:, None] + ent[:, None])
    dz = p * coef
    c = z.shape[1]
    idx = target.long() - v0
    hit = valid & (idx >= 0) & (idx < c)
    one_hot = torch.where(hit, g_lp + g_zt, 0.0).to(dtype)
    dz.scatter_add_(1, idx.clamp(0, c - 1)[:, None], one_hot[:, None])
    if softcap is not None:
        dz = dz * (1.0 - th * th)
    if temperature != 1.0:
        dz = dz / temperature
    return dz
