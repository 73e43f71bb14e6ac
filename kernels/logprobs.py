"""Op 1 - token log-probabilities from materialised logits.

``logits [N, V] -> logp [N]`` with ``logp_i = z_{i,t_i} - logsumexp_j z_{i,j}`` and, from the same
single pass over the row, ``lse``, the target logit, the entropy (optional) and the argmax.
``z = softcap(logits) / T`` (see :mod:`._tile`). Any leading shape ``[..., V]`` is accepted.

Bandwidth-bound: the forward reads the logits once; the backward reads them once more and writes
d(logits) once. Both are single-pass online-softmax kernels (one program per ``BLOCK_N`` rows), so
the only O(N*V) tensor is the gradient the caller asked for.
"""

from __future__ import annotations

import torch

from ._common import (
    TokenLogprobs,
    check_logit_transform,
    compute_dtype,
    dlogits_chunk,
    fake_logprob_outputs,
    logit_stats_chunked,
    logit_stats_reference,
    normalize_target,
    transform_reference,
    upstream_grad,
)
from ._dispatch import use_triton
from ._tile import NEG_BIG, dlogits_tile, online_update, transform_logits
from ._triton import kernel_store_dtype, launch, tl, triton

__all__ = ["token_logprobs", "token_logprobs_reference"]


# ----------------------------------------------------------------------------- Triton kernels
@triton.jit
def _logprobs_fwd_kernel(
    x_ptr, stride_x, tgt_ptr,
    logp_ptr, lse_ptr, zt_ptr, ent_ptr, amax_ptr,
    N, V, inv_temp, cap,
    HAS_CAP: tl.constexpr, HAS_ENT: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    rmask = rows < N
    tgt = tl.load(tgt_ptr + rows, mask=rmask, other=-1)
    row_ptr = x_ptr + rows.to(tl.int64)[:, None] * stride_x
    m = tl.full([BLOCK_N], NEG_BIG, tl.float32)
    s = tl.zeros([BLOCK_N], tl.float32)
    a = tl.zeros([BLOCK_N], tl.float32)
    zt = tl.zeros([BLOCK_N], tl.float32)
    best = tl.full([BLOCK_N], float("-inf"), tl.float32)
    best_idx = tl.zeros([BLOCK_N], tl.int32)
    for v0 in range(0, V, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        valid = rmask[:, None] & (cols < V)[None, :]
        raw = tl.load(row_ptr + cols[None, :], mask=valid, other=0.0).to(tl.float32)
        z = transform_logits(raw, inv_temp, cap, HAS_CAP)
        m, s, a, best, best_idx, zt = online_update(
            m, s, a, best, best_idx, zt, z, cols, v0, valid, tgt
        )
    log_s = tl.log(s)
    lse = m + log_s
    tl.store(lse_ptr + rows, lse, mask=rmask)
    tl.store(zt_ptr + rows, zt, mask=rmask)
    tl.store(logp_ptr + rows, tl.where(tgt >= 0, zt - lse, 0.0), mask=rmask)
    tl.store(amax_ptr + rows, best_idx.to(tl.int64), mask=rmask)
    if HAS_ENT:
        tl.store(ent_ptr + rows, log_s - a / s, mask=rmask)


@triton.jit
def _logprobs_bwd_kernel(
    x_ptr, stride_x, dx_ptr, stride_dx, tgt_ptr, lse_ptr, ent_ptr,
    g_lp_ptr, g_lse_ptr, g_zt_ptr, g_ent_ptr,
    N, V, inv_temp, cap,
    HAS_CAP: tl.constexpr, HAS_ENT: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr,
):  # fmt: skip
    rows = tl.program_id(0) * BLOCK_N + tl.arange(0, BLOCK_N)
    rmask = rows < N
    tgt = tl.load(tgt_ptr + rows, mask=rmask, other=-1)
    lse = tl.load(lse_ptr + rows, mask=rmask, other=0.0)
    g_lp = tl.load(g_lp_ptr + rows, mask=rmask, other=0.0)
    g_lse = tl.load(g_lse_ptr + rows, mask=rmask, other=0.0)
    g_zt = tl.load(g_zt_ptr + rows, mask=rmask, other=0.0)
    ent = tl.zeros([BLOCK_N], tl.float32)
    g_ent = tl.zeros([BLOCK_N], tl.float32)
    if HAS_ENT:
        ent = tl.load(ent_ptr + rows, mask=rmask, other=0.0)
        g_ent = tl.load(g_ent_ptr + rows, mask=rmask, other=0.0)
    rows64 = rows.to(tl.int64)[:, None]
    for v0 in range(0, V, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        valid = rmask[:, None] & (cols < V)[None, :]
        raw = tl.load(x_ptr + rows64 * stride_x + cols[None, :], mask=valid, other=0.0)
        dz = dlogits_tile(
            raw.to(tl.float32), cols, valid, tgt, lse, ent, g_lp, g_lse, g_zt, g_ent,
            inv_temp, cap, HAS_CAP, HAS_ENT,
        )  # fmt: skip
        dx_ptrs = dx_ptr + rows64 * stride_dx + cols[None, :]
        tl.store(dx_ptrs, dz.to(dx_ptr.dtype.element_ty), mask=valid)


# ----------------------------------------------------------------------------- launchers
def _blocks(V: int, block_v: int | None) -> tuple[int, int, int]:
    """(BLOCK_N, BLOCK_V, num_warps). One row per program, wide vocab tiles: the kernel is a pure
    stream over the row, and 4096-wide fp32 tiles keep 16 loads in flight per thread (8 warps)."""
    if block_v is None:
        block_v = min(4096, triton.next_power_of_2(V))
    return 1, block_v, 8 if block_v >= 2048 else 4


def token_logprobs_forward(
    logits: torch.Tensor,
    tgt: torch.Tensor,
    *,
    temperature: float,
    softcap: float | None,
    with_entropy: bool,
    block_v: int | None = None,
) -> tuple[torch.Tensor, ...]:
    """Launch the forward on ``logits`` [N, V] (unit stride in V) and normalised ``tgt`` [N]."""
    n, v = logits.shape
    out = [torch.empty(n, device=logits.device, dtype=torch.float32) for _ in range(4)]
    logp, lse, zt, ent = out
    amax = torch.empty(n, device=logits.device, dtype=torch.int64)
    bn, bv, warps = _blocks(v, block_v)
    launch(
        _logprobs_fwd_kernel, (triton.cdiv(n, bn),),
        logits, logits.stride(0), tgt, logp, lse, zt, ent, amax,
        n, v, 1.0 / temperature, softcap or 1.0,
        HAS_CAP=softcap is not None, HAS_ENT=with_entropy, BLOCK_N=bn, BLOCK_V=bv,
        num_warps=warps,
    )  # fmt: skip
    return logp, lse, zt, ent, amax


def token_logprobs_backward(
    logits: torch.Tensor,
    tgt: torch.Tensor,
    lse: torch.Tensor,
    ent: torch.Tensor | None,
    grads: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None],
    *,
    temperature: float,
    softcap: float | None,
    block_v: int | None = None,
) -> torch.Tensor:
    """d(logits) [N, V] (dtype of logits) from per-row upstream grads of (logp, lse, z_t, H)."""
    n, v = logits.shape
    g_lp, g_lse, g_zt, g_ent = grads
    has_ent = g_ent is not None and ent is not None
    dx = torch.empty(n, v, device=logits.device, dtype=kernel_store_dtype(logits.dtype))
    bn, bv, warps = _blocks(v, block_v)
    launch(
        _logprobs_bwd_kernel, (triton.cdiv(n, bn),),
        logits, logits.stride(0), dx, dx.stride(0), tgt, lse, ent if has_ent else lse,
        g_lp, g_lse, g_zt, g_ent if has_ent else g_lp,
        n, v, 1.0 / temperature, softcap or 1.0,
        HAS_CAP=softcap is not None, HAS_ENT=has_ent, BLOCK_N=bn, BLOCK_V=bv, num_warps=warps,
    )  # fmt: skip
    return dx.to(logits.dtype)


# ----------------------------------------------------------------------------- custom ops
# ``qengine::token_logprobs`` runs the kernels when ``use_triton`` (resolved by the public function)
# and a PyTorch implementation of the same math otherwise; torch.compile sees one opaque op with a
# fake (meta) implementation and a backward that is itself the op ``token_logprobs_backward``.
@torch.library.custom_op("qengine::token_logprobs", mutates_args=())
def _token_logprobs_op(
    logits: torch.Tensor,
    target: torch.Tensor,
    temperature: float,
    softcap: float | None,
    with_entropy: bool,
    block_v: int | None,
    use_triton: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logp, lse, z_t, entropy, argmax) for ``logits`` [N, V] and normalised ``target`` [N].

    ``entropy`` is [0] without ``with_entropy``. Outputs are fp32 (PyTorch path: fp64 for fp64).
    """
    if use_triton:
        logp, lse, zt, ent, amax = token_logprobs_forward(
            logits, target, temperature=temperature, softcap=softcap,
            with_entropy=with_entropy, block_v=block_v,
        )  # fmt: skip
        return logp, lse, zt, ent if with_entropy else ent.new_empty(0), amax
    return logit_stats_chunked(
        [(0, logits)], target, temperature=temperature, softcap=softcap,
        with_entropy=with_entropy, dtype=compute_dtype(logits.dtype),
    )  # fmt: skip


@_token_logprobs_op.register_fake
def _(logits, target, temperature, softcap, with_entropy, block_v, use_triton):
    return fake_logprob_outputs(
        logits, logits.shape[0], with_entropy=with_entropy, use_triton=use_triton
    )


@torch.library.custom_op("qengine::token_logprobs_backward", mutates_args=())
def _token_logprobs_backward_op(
    logits: torch.Tensor,
    target: torch.Tensor,
    lse: torch.Tensor,
    entropy: torch.Tensor,
    g_logp: torch.Tensor,
    g_lse: torch.Tensor,
    g_target_logit: torch.Tensor,
    g_entropy: torch.Tensor | None,
    temperature: float,
    softcap: float | None,
    block_v: int | None,
    use_triton: bool,
) -> torch.Tensor:
    """d(logits) [N, V] (dtype of logits) from per-row upstream grads (``g_entropy`` optional)."""
    grads = (g_logp, g_lse, g_target_logit, g_entropy)
    if use_triton:
        return token_logprobs_backward(
            logits, target, lse, entropy, grads,
            temperature=temperature, softcap=softcap, block_v=block_v,
        )  # fmt: skip
    dx = dlogits_chunk(
        logits, 0, target, lse, entropy, grads,
        temperature=temperature, softcap=softcap, dtype=compute_dtype(logits.dtype),
    )  # fmt: skip
    return dx.to(logits.dtype, memory_format=torch.contiguous_format)


@_token_logprobs_backward_op.register_fake
def _(logits, target, lse, entropy, g_logp, g_lse, g_target_logit, g_entropy, *_scalars):
    return torch.empty_like(logits, memory_format=torch.contiguous_format)


def _setup_context(ctx, inputs, output):
    logits, target, temperature, softcap, with_entropy, block_v, use_triton = inputs
    _, lse, _, ent, _ = output
    ctx.save_for_backward(logits, target, lse, ent)
    ctx.scalars = (temperature, softcap, with_entropy, block_v, use_triton)


def _backward(ctx, g_lp, g_lse, g_zt, g_ent, _g_argmax):
    logits, target, lse, ent = ctx.saved_tensors
    temperature, softcap, with_entropy, block_v, use_triton = ctx.scalars
    dx = _token_logprobs_backward_op(
        logits, target, lse, ent,
        upstream_grad(g_lp, lse), upstream_grad(g_lse, lse), upstream_grad(g_zt, lse),
        upstream_grad(g_ent, lse) if with_entropy and g_ent is not None else None,
        temperature, softcap, block_v, use_triton,
    )  # fmt: skip
    return dx, None, None, None, None, None, None


_token_logprobs_op.register_autograd(_backward, setup_context=_setup_context)


# ----------------------------------------------------------------------------- reference
def token_logprobs_reference(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    temperature: float = 1.0,
    softcap: float | None = None,
    ignore_index: int = -100,
    mask: torch.Tensor | None = None,
    with_entropy: bool = False,
) -> TokenLogprobs:
    """Eager PyTorch reference of :func:`token_logprobs` (materialises fp32 [N, V])."""
    lead = logits.shape[:-1]
    tgt = normalize_target(target, ignore_index, mask, logits.shape[-1])
    z = transform_reference(
        logits.reshape(-1, logits.shape[-1]).to(torch.promote_types(logits.dtype, torch.float32)),
        temperature,
        softcap,
    )
    out = logit_stats_reference(z, tgt, with_entropy=with_entropy)
    return TokenLogprobs(*(None if t is None else t.reshape(lead) for t in out))


# ----------------------------------------------------------------------------- public op
def token_logprobs(
    logits: torch.Tensor,
    target: torch.Tensor,
    *,
    temperature: float = 1.0,
    softcap: float | None = None,
    ignore_index: int = -100,
    mask: torch.Tensor | None = None,
    with_entropy: bool = False,
    impl: str = "auto",
    block_v: int | None = None,
) -> TokenLogprobs:
    """Per-token log-probabilities of ``target`` under ``softmax(softcap(logits) / temperature)``.

    Args:
        logits: [..., V] bf16 / fp16 / fp32 (fp64 on the reference path).
        target: [...] integer token ids; ``ignore_index`` (or ``mask == False``) marks tokens whose
            ``logp`` and ``target_logit`` are 0 and receive no gradient through them.
        temperature: T > 0, divides the (soft-capped) logits.
        softcap: optional Gemma-2 style cap, ``cap * tanh(x / cap)``.
        with_entropy: also return the entropy (differentiable).
        impl: ``"auto" | "triton" | "torch"`` (see :mod:`qengine.kernels._dispatch`).
        block_v: override the vocabulary tile of the Triton kernels (power of two).

    Returns:
        :class:`TokenLogprobs` with fp32 [...] fields; ``logp``, ``lse``, ``target_logit`` and
        ``entropy`` are differentiable w.r.t. ``logits``.
    """
    if logits.dim() < 1 or logits.shape[:-1] != target.shape:
        raise ValueError(
            f"logits [..., V] and target [...] disagree: {tuple(logits.shape)} vs "
            f"{tuple(target.shape)}"
        )
    check_logit_transform(temperature, softcap)
    on_triton = use_triton(impl, logits, target)
    lead = logits.shape[:-1]
    x = logits.reshape(-1, logits.shape[-1])
    if on_triton and x.stride(-1) != 1:
        x = x.contiguous()
    tgt = normalize_target(target, ignore_index, mask, logits.shape[-1])
    logp, lse, zt, ent, amax = _token_logprobs_op(
        x, tgt, float(temperature), None if softcap is None else float(softcap), with_entropy,
        block_v, on_triton,
    )  # fmt: skip
    return TokenLogprobs(
        logp.reshape(lead),
        lse.reshape(lead),
        zt.reshape(lead),
        ent.reshape(lead) if with_entropy else None,
        amax.reshape(lead),
    )
