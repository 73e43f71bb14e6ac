"""Op 3 - token-level Q scoring (Q-RM's discriminative policy) and a fused scalar value head.

Q-RM (Chen et al. 2025, "Discriminative Policy Optimization for Token-Level Reward Models",
arXiv:2505.23363) reads a discriminative policy ``φ = softmax(Z)`` for which
``β log φ(a | s) = Q(s, a) - V(s)``. With ``Z`` the LM logits (``N`` tokens, ``V`` vocab,
``D`` hidden):

    Q_t = β z_t[target],   V_t = β logsumexp(z_t),   A_t = Q_t - V_t = β log φ(target | s_t)

all three from one pass of op 2 (:func:`fused_linear_logprobs`, no logits in HBM). With a scalar
value head, ``Z_t = h_t · w + b`` (one score per token): :func:`value_head_scores`, whose Triton
kernel runs one program per segment and reduces the scores it has just computed in registers
(per-sequence or per-step sum / mean / count, deterministic, no atomics).
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._common import check_same_dtype
from ._dispatch import use_triton
from ._triton import kernel_store_dtype, launch, tl, triton
from .fused_linear_logprobs import FusedLinearConfig, fused_linear_logprobs
from .segments import (
    SegmentStats,
    check_cu_seqlens,
    resolve_cu_seqlens,
    segment_ids,
    segment_reduce,
    segment_reduce_torch,
)

__all__ = [
    "TokenQ",
    "ValueHeadScores",
    "token_q_scores",
    "value_head_scores",
    "value_head_scores_reference",
]


class TokenQ(NamedTuple):
    """Per-token fp32 [...] ``q``, ``v``, ``advantage`` (q and advantage are 0 on ignored tokens);
    ``segments``: reductions of the advantage over the action tokens of each segment, or None."""

    q: torch.Tensor
    v: torch.Tensor
    advantage: torch.Tensor
    segments: SegmentStats | None


class ValueHeadScores(NamedTuple):
    """``z`` fp32 [N] per-token scores; ``segments`` [S] reductions over unmasked tokens or None."""

    z: torch.Tensor
    segments: SegmentStats | None


def token_q_scores(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    beta: float = 1.0,
    cu_seqlens: torch.Tensor | None = None,
    reduce_segments: bool = False,
    temperature: float = 1.0,
    softcap: float | None = None,
    ignore_index: int = -100,
    impl: str = "auto",
    config: FusedLinearConfig | None = None,
    validate: bool = True,
) -> TokenQ:
    """Q, V and A = Q - V per token from hidden states [..., D] and the LM head [V, D].

    With ``reduce_segments`` (or ``cu_seqlens`` given) the advantage is also summed / averaged over
    the action tokens of each segment: rows of a padded [B, T] batch, or ``cu_seqlens`` [S + 1] of
    a packed [N] batch (sequences, or steps for per-step values).
    """
    out = fused_linear_logprobs(
        hidden, weight, target, bias, temperature=temperature, softcap=softcap,
        ignore_index=ignore_index, impl=impl, config=config,
    )  # fmt: skip
    q, v, adv = beta * out.target_logit, beta * out.lse, beta * out.logp
    segments = None
    if reduce_segments or cu_seqlens is not None:
        cu = resolve_cu_seqlens(target, cu_seqlens, validate=validate)
        action = (target.reshape(-1) != ignore_index).float()
        segments = segment_reduce(adv.reshape(-1), cu, mask=action, impl=impl, validate=False)
    return TokenQ(q, v, adv, segments)


# ----------------------------------------------------------------------------- value head kernels
@triton.jit
def _value_head_fwd_kernel(
    h_ptr, w_ptr, b_ptr, cu_ptr, mask_ptr, z_ptr, sum_ptr, mean_ptr, count_ptr,
    D, stride_h,
    HAS_BIAS: tl.constexpr, HAS_MASK: tl.constexpr, BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    seg = tl.program_id(0)
    start = tl.load(cu_ptr + seg)
    end = tl.load(cu_ptr + seg + 1)
    acc = tl.zeros([BLOCK_N], tl.float32)
    cnt = tl.zeros([BLOCK_N], tl.float32)
    bias = 0.0
    if HAS_BIAS:
        bias = tl.load(b_ptr).to(tl.float32)
    for r0 in range(start, end, BLOCK_N):
        rows = r0 + tl.arange(0, BLOCK_N)
        rmask = rows < end
        z = tl.zeros([BLOCK_N], tl.float32)
        for d0 in range(0, D, BLOCK_D):
            dk = d0 + tl.arange(0, BLOCK_D)
            dmask = dk < D
            hh = tl.load(
                h_ptr + rows.to(tl.int64)[:, None] * stride_h + dk[None, :],
                mask=rmask[:, None] & dmask[None, :], other=0.0,
            )  # fmt: skip
            ww = tl.load(w_ptr + dk, mask=dmask, other=0.0)
            z += tl.sum(hh.to(tl.float32) * ww.to(tl.float32)[None, :], axis=1)
        z += bias
        tl.store(z_ptr + rows, z, mask=rmask)
        ok = rmask
        if HAS_MASK:
            ok = ok & (tl.load(mask_ptr + rows, mask=rmask, other=0.0) != 0)
        acc += tl.where(ok, z, 0.0)
        cnt += ok.to(tl.float32)
    total = tl.sum(acc, axis=0)
    count = tl.sum(cnt, axis=0)
    tl.store(sum_ptr + seg, total)
    tl.store(count_ptr + seg, count)
    tl.store(mean_ptr + seg, total / tl.maximum(count, 1.0))


@triton.jit
def _value_head_bwd_kernel(
    h_ptr, w_ptr, g_ptr, dh_ptr, dw_ptr, N, D, stride_h, stride_dh,
    BLOCK_N: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """One program per D slice streams all rows once: dh = g w^T (written once), dw = h^T g
    accumulated in fp32 registers (deterministic, no atomics)."""
    dk = tl.program_id(0) * BLOCK_D + tl.arange(0, BLOCK_D)
    dmask = dk < D
    ww = tl.load(w_ptr + dk, mask=dmask, other=0.0).to(tl.float32)
    dw = tl.zeros([BLOCK_D], tl.float32)
    for r0 in range(0, N, BLOCK_N):
        rows = r0 + tl.arange(0, BLOCK_N)
        rmask = rows < N
        m2 = rmask[:, None] & dmask[None, :]
        g = tl.load(g_ptr + rows, mask=rmask, other=0.0)
        r64 = rows.to(tl.int64)[:, None]
        hh = tl.load(h_ptr + r64 * stride_h + dk[None, :], mask=m2, other=0.0)
        dw += tl.sum(hh.to(tl.float32) * g[:, None], axis=0)
        dh = g[:, None] * ww[None, :]
        tl.store(dh_ptr + r64 * stride_dh + dk[None, :], dh.to(dh_ptr.dtype.element_ty), mask=m2)
    tl.store(dw_ptr + dk, dw, mask=dmask)


_VH_BLOCK_N, _VH_BLOCK_D = 32, 128


def value_head_forward(
    h: torch.Tensor, w: torch.Tensor, b: torch.Tensor | None, cu: torch.Tensor,
    mask: torch.Tensor | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:  # fmt: skip
    n, d = h.shape
    s = cu.numel() - 1
    z = torch.empty(n, device=h.device, dtype=torch.float32)
    st = torch.empty(3, s, device=h.device, dtype=torch.float32)
    launch(
        _value_head_fwd_kernel, (s,),
        h, w, b if b is not None else w, cu, mask if mask is not None else z,
        z, st[0], st[1], st[2], d, h.stride(0),
        HAS_BIAS=b is not None, HAS_MASK=mask is not None,
        BLOCK_N=_VH_BLOCK_N, BLOCK_D=min(_VH_BLOCK_D, triton.next_power_of_2(d)),
    )  # fmt: skip
    return z, st[0], st[1], st[2]


def value_head_backward(
    h: torch.Tensor, w: torch.Tensor, g: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    n, d = h.shape
    dh = torch.empty(n, d, device=h.device, dtype=kernel_store_dtype(h.dtype))
    dw = torch.empty(d, device=h.device, dtype=torch.float32)
    block_d = min(64, triton.next_power_of_2(d))
    launch(
        _value_head_bwd_kernel,
        (triton.cdiv(d, block_d),),
        h,
        w,
        g,
        dh,
        dw,
        n,
        d,
        h.stride(0),
        dh.stride(0),
        BLOCK_N=_VH_BLOCK_N,
        BLOCK_D=block_d,
    )
    return dh.to(h.dtype), dw


# ----------------------------------------------------------------------------- PyTorch path
def _value_head_torch(h, w, b, cu, mask):
    """z = h w + b in fp32 (fp64 stays fp64) and index_add segment reductions."""
    dt = torch.promote_types(h.dtype, torch.float32)
    z = h.to(dt) @ w.to(dt)
    if b is not None:
        z = z + b.to(dt)
    return (z, *segment_reduce_torch(z, cu, mask))


def _value_head_backward_torch(h, w, g):
    """dh = g w^T (input dtype), dw = h^T g (fp32, fp64 stays fp64)."""
    dt = torch.promote_types(h.dtype, torch.float32)
    g = g.to(dt)
    return (g[:, None] * w.to(dt)[None, :]).to(h.dtype), h.to(dt).t() @ g


# ----------------------------------------------------------------------------- custom ops
# ``qengine::value_head_scores``: the fused kernel when ``use_triton`` (resolved by the public
# function), PyTorch otherwise; its backward turns the upstream grads of (z, sum, mean) into one
# per-token gradient (traced PyTorch) and calls the op ``value_head_scores_backward``.
@torch.library.custom_op("qengine::value_head_scores", mutates_args=())
def _value_head_op(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    cu_seqlens: torch.Tensor,
    mask: torch.Tensor | None,
    use_triton: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(z [N], sum [S], mean [S], count [S]) for ``hidden`` [N, D], ``weight`` [D], ``bias`` [1],
    ``cu_seqlens`` int32 [S + 1], ``mask`` fp32 [N]. fp32 (PyTorch path: fp64 for fp64)."""
    if use_triton:
        z, total, mean, count = value_head_forward(hidden, weight, bias, cu_seqlens, mask)
        return z, total.clone(), mean.clone(), count.clone()  # rows of one buffer
    return _value_head_torch(hidden, weight, bias, cu_seqlens, mask)


@_value_head_op.register_fake
def _(hidden, weight, bias, cu_seqlens, mask, use_triton):
    dt = torch.float32 if use_triton else torch.promote_types(hidden.dtype, torch.float32)
    s = cu_seqlens.shape[0] - 1
    z = hidden.new_empty(hidden.shape[0], dtype=dt)
    return z, *(hidden.new_empty(s, dtype=dt) for _ in range(3))


@torch.library.custom_op("qengine::value_head_scores_backward", mutates_args=())
def _value_head_backward_op(
    hidden: torch.Tensor, weight: torch.Tensor, g: torch.Tensor, use_triton: bool
) -> tuple[torch.Tensor, torch.Tensor]:
    """(dh [N, D] in the dtype of ``hidden``, dw [D] fp32 (PyTorch path: fp64 for fp64)) from the
    per-token gradient ``g`` [N]."""
    if use_triton:
        return value_head_backward(hidden, weight, g.float().contiguous())
    return _value_head_backward_torch(hidden, weight, g)


@_value_head_backward_op.register_fake
def _(hidden, weight, g, use_triton):
    dt = torch.float32 if use_triton else torch.promote_types(hidden.dtype, torch.float32)
    return hidden.new_empty(hidden.shape), hidden.new_empty(hidden.shape[1], dtype=dt)


def _setup_context(ctx, inputs, output):
    hidden, weight, bias, cu_seqlens, mask, use_triton = inputs
    ctx.save_for_backward(hidden, weight, bias, cu_seqlens, mask, output[3])
    ctx.use_triton = use_triton


def _backward(ctx, g_z, g_sum, g_mean, _g_count):
    h, w, b, cu, mask, count = ctx.saved_tensors
    g_seg = torch.zeros_like(count)
    if g_sum is not None:
        g_seg = g_seg + g_sum
    if g_mean is not None:
        g_seg = g_seg + g_mean / count.clamp_min(1.0)
    g = g_seg[segment_ids(cu, h.shape[0])]
    if mask is not None:
        g = g * mask
    if g_z is not None:
        g = g + g_z
    dh, dw = _value_head_backward_op(h, w, g, ctx.use_triton)
    db = None
    if b is not None and ctx.needs_input_grad[2]:
        db = g.sum().reshape(b.shape).to(b.dtype)
    return dh, dw.to(w.dtype), db, None, None, None


_value_head_op.register_autograd(_backward, setup_context=_setup_context)


def value_head_scores_reference(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    cu_seqlens: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
) -> ValueHeadScores:
    """Eager reference: ``z = (h @ w + b)`` in fp32 (fp64 stays fp64), index_add reductions."""
    dt = torch.promote_types(hidden.dtype, torch.float32)
    h = hidden.reshape(-1, hidden.shape[-1]).to(dt)
    z = h @ weight.reshape(-1).to(dt)
    if bias is not None:
        z = z + bias.to(dt).reshape(())
    segments = None
    if cu_seqlens is not None:
        from .segments import segment_reduce_reference

        segments = segment_reduce_reference(
            z, cu_seqlens, mask=None if mask is None else mask.reshape(-1)
        )
    return ValueHeadScores(z, segments)


def value_head_scores(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    cu_seqlens: torch.Tensor | None = None,
    mask: torch.Tensor | None = None,
    impl: str = "auto",
    validate: bool = True,
) -> ValueHeadScores:
    """Scalar value-head scores ``z_t = h_t · w + b`` and their segment reductions.

    Args:
        hidden: [..., D] (flattened to [N, D]); weight: [D] or [1, D]; bias: optional [] or [1].
        cu_seqlens: optional [S + 1] segments (sequences or steps) of the flattened rows.
        mask: optional [...] bool, tokens counted in the segment sums / means (all by default).
        validate: check ``cu_seqlens`` (one host sync, see ``segments.check_cu_seqlens``).
    Returns:
        :class:`ValueHeadScores`: ``z`` fp32 [N]; ``segments`` (sum, mean, count) [S] or None.
    """
    if hidden.dim() < 1 or weight.numel() != hidden.shape[-1]:
        raise ValueError(
            f"value head weight must have D={hidden.shape[-1] if hidden.dim() else '?'} entries, "
            f"got {tuple(weight.shape)}"
        )
    check_same_dtype(hidden=hidden, weight=weight, bias=bias)
    if bias is not None and bias.numel() != 1:
        raise ValueError(f"value head bias must be a scalar ([] or [1]), got {tuple(bias.shape)}")
    if mask is not None and mask.numel() != hidden[..., 0].numel():
        raise ValueError(f"mask {tuple(mask.shape)} must have one entry per row of hidden")
    if cu_seqlens is not None:
        check_cu_seqlens(cu_seqlens, hidden[..., 0].numel(), validate=validate)
    on_triton = use_triton(impl, hidden, weight, bias)
    h = hidden.reshape(-1, hidden.shape[-1])
    h = h if h.stride(-1) == 1 else h.contiguous()
    n = h.shape[0]
    if cu_seqlens is None:  # row blocks as throwaway segments: same kernel, full parallelism
        cu = torch.arange(0, n + _VH_BLOCK_N, _VH_BLOCK_N, device=h.device).clamp_max(n)
        cu = cu.to(torch.int32)
    else:
        cu = cu_seqlens.to(device=h.device, dtype=torch.int32).contiguous()
    m = None if mask is None else mask.reshape(-1).to(torch.float32).contiguous()
    b = None if bias is None else bias.reshape(1)
    w = weight.reshape(-1).contiguous()
    z, total, mean, count = _value_head_op(h, w, b, cu, m, on_triton)
    return ValueHeadScores(z, None if cu_seqlens is None else SegmentStats(total, mean, count))
