"""Segment reductions over packed sequences (part of op 3).

Per-sequence or per-step sums / means of any per-token quantity. Segments are given by
``cu_seqlens`` [S + 1] (int, non-decreasing, ``cu_seqlens[0] == 0``, ``cu_seqlens[-1] == N``), the
FlashAttention varlen convention; a padded [B, T] batch is ``cu_seqlens = arange(B + 1) * T``.

The Triton kernel runs one program per segment and sums in fp32 registers in row order: the result
is deterministic (no atomics) and independent of the launch. The backward is a gather.
"""

from __future__ import annotations

from typing import NamedTuple

import torch

from ._dispatch import use_triton
from ._triton import launch, tl, triton

__all__ = [
    "SegmentStats",
    "check_cu_seqlens",
    "cu_seqlens_from_lengths",
    "resolve_cu_seqlens",
    "segment_ids",
    "segment_reduce",
    "segment_reduce_reference",
    "segment_reduce_torch",
]


class SegmentStats(NamedTuple):
    """fp32 [S] reductions over each segment's unmasked tokens (``mean`` = 0 if ``count`` = 0)."""

    sum: torch.Tensor
    mean: torch.Tensor
    count: torch.Tensor


def cu_seqlens_from_lengths(lengths: torch.Tensor) -> torch.Tensor:
    """[S] lengths -> [S + 1] int32 cumulative offsets starting at 0."""
    return torch.nn.functional.pad(torch.cumsum(lengths, 0, dtype=torch.int32), (1, 0))


def segment_ids(cu_seqlens: torch.Tensor, n: int) -> torch.Tensor:
    """[N] int64 segment index of every row (no host sync: ``output_size`` is given)."""
    lengths = (cu_seqlens[1:] - cu_seqlens[:-1]).long()
    ids = torch.arange(lengths.numel(), device=cu_seqlens.device)
    return torch.repeat_interleave(ids, lengths, output_size=n)


@triton.jit
def _segment_reduce_kernel(
    x_ptr, mask_ptr, cu_ptr, sum_ptr, mean_ptr, count_ptr,
    HAS_MASK: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    seg = tl.program_id(0)
    start = tl.load(cu_ptr + seg)
    end = tl.load(cu_ptr + seg + 1)
    acc = tl.zeros([BLOCK], tl.float32)
    cnt = tl.zeros([BLOCK], tl.float32)
    for r0 in range(start, end, BLOCK):
        rows = r0 + tl.arange(0, BLOCK)
        ok = rows < end
        if HAS_MASK:
            ok = ok & (tl.load(mask_ptr + rows, mask=ok, other=0) != 0)
        acc += tl.where(ok, tl.load(x_ptr + rows, mask=ok, other=0.0).to(tl.float32), 0.0)
        cnt += ok.to(tl.float32)
    total = tl.sum(acc, axis=0)
    count = tl.sum(cnt, axis=0)
    tl.store(sum_ptr + seg, total)
    tl.store(count_ptr + seg, count)
    tl.store(mean_ptr + seg, total / tl.maximum(count, 1.0))


def segment_reduce_forward(
    x: torch.Tensor, cu_seqlens: torch.Tensor, mask: torch.Tensor | None, block: int = 256
) -> SegmentStats:
    s = cu_seqlens.numel() - 1
    out = torch.empty(3, s, device=x.device, dtype=torch.float32)
    launch(
        _segment_reduce_kernel, (s,),
        x, mask if mask is not None else x, cu_seqlens, out[0], out[1], out[2],
        HAS_MASK=mask is not None, BLOCK=block,
    )  # fmt: skip
    return SegmentStats(out[0], out[1], out[2])


def segment_reduce_torch(
    x: torch.Tensor, cu_seqlens: torch.Tensor, mask: torch.Tensor | None
) -> SegmentStats:
    """PyTorch path of the op: index_add over segment ids, in fp32 (fp64 stays fp64)."""
    dt = torch.promote_types(x.dtype, torch.float32)
    xs = x.to(dt)
    w = torch.ones_like(xs) if mask is None else mask.to(dt)
    ids = segment_ids(cu_seqlens, xs.shape[0])
    zeros = xs.new_zeros(cu_seqlens.shape[0] - 1)
    total = zeros.index_add(0, ids, xs * w)
    count = zeros.index_add(0, ids, w)
    return SegmentStats(total, total / count.clamp_min(1.0), count)


# ----------------------------------------------------------------------------- custom op
# ``qengine::segment_reduce``: the kernel when ``use_triton`` (resolved by the public function),
# index_add otherwise. The backward is a gather, plain PyTorch that torch.compile traces.
@torch.library.custom_op("qengine::segment_reduce", mutates_args=())
def _segment_reduce_op(
    values: torch.Tensor, cu_seqlens: torch.Tensor, mask: torch.Tensor | None, use_triton: bool
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(sum, mean, count) [S] of ``values`` [N]; ``cu_seqlens`` int32 [S + 1], ``mask`` fp32 [N]."""
    if use_triton:
        stats = segment_reduce_forward(values, cu_seqlens, mask)
        return stats.sum.clone(), stats.mean.clone(), stats.count.clone()  # rows of one buffer
    return tuple(segment_reduce_torch(values, cu_seqlens, mask))


@_segment_reduce_op.register_fake
def _(values, cu_seqlens, mask, use_triton):
    dt = torch.float32 if use_triton else torch.promote_types(values.dtype, torch.float32)
    s = cu_seqlens.shape[0] - 1
    return tuple(values.new_empty(s, dtype=dt) for _ in range(3))


def _setup_context(ctx, inputs, output):
    values, cu_seqlens, mask, _ = inputs
    ctx.save_for_backward(cu_seqlens, mask, output[2])
    ctx.n, ctx.dtype = values.shape[0], values.dtype


def _backward(ctx, g_sum, g_mean, _g_count):
    cu_seqlens, mask, count = ctx.saved_tensors
    g = torch.zeros_like(count)
    if g_sum is not None:
        g = g + g_sum
    if g_mean is not None:
        g = g + g_mean / count.clamp_min(1.0)
    gx = g[segment_ids(cu_seqlens, ctx.n)]
    if mask is not None:
        gx = gx * mask
    return gx.to(ctx.dtype), None, None, None


_segment_reduce_op.register_autograd(_backward, setup_context=_setup_context)


def segment_reduce_reference(
    values: torch.Tensor, cu_seqlens: torch.Tensor, *, mask: torch.Tensor | None = None
) -> SegmentStats:
    """index_add based reference (fp32 at least)."""
    x = values.to(torch.promote_types(values.dtype, torch.float32))
    w = torch.ones_like(x) if mask is None else mask.to(x.dtype)
    ids = segment_ids(cu_seqlens, x.numel())
    s = cu_seqlens.numel() - 1
    total = torch.zeros(s, dtype=x.dtype, device=x.device).index_add(0, ids, x * w)
    count = torch.zeros(s, dtype=x.dtype, device=x.device).index_add(0, ids, w)
    return SegmentStats(total, total / count.clamp_min(1.0), count)


def check_cu_seqlens(cu_seqlens: torch.Tensor, n: int, *, validate: bool = True) -> None:
    """Raise ValueError unless ``cu_seqlens`` is [S + 1] integer offsets, ``cu[0] == 0``,
    non-decreasing, ``cu[-1] == n``: the kernels index rows with them unchecked (an offset past
    ``n`` reads or writes out of bounds).

    The values cost one host sync, skipped with ``validate=False`` (offsets the caller built) and
    while ``torch.compile`` traces (a sync would break the graph).
    """
    if cu_seqlens.dim() != 1 or cu_seqlens.numel() < 1:
        raise ValueError(f"cu_seqlens must be [S + 1] offsets, got shape {tuple(cu_seqlens.shape)}")
    if cu_seqlens.dtype.is_floating_point or cu_seqlens.dtype in (torch.bool, torch.complex64):
        raise TypeError(f"cu_seqlens must hold integer offsets, got dtype {cu_seqlens.dtype}")
    if not validate or torch.compiler.is_compiling():
        return
    cu = cu_seqlens.long()
    bad = (cu[0] != 0) | (cu[-1] != n) | (cu.diff() < 0).any()
    if bool(bad):
        shown = cu.tolist() if cu.numel() <= 12 else f"{cu[:6].tolist()} ... {cu[-3:].tolist()}"
        raise ValueError(
            f"cu_seqlens must start at 0, never decrease and end at N={n} (the number of rows), "
            f"got {shown}"
        )


def segment_reduce(
    values: torch.Tensor,
    cu_seqlens: torch.Tensor,
    *,
    mask: torch.Tensor | None = None,
    impl: str = "auto",
    validate: bool = True,
) -> SegmentStats:
    """Sum, mean and count of ``values`` [N] over the segments of ``cu_seqlens`` [S + 1].

    ``mask`` [N] (bool) excludes tokens from sums, means and counts. Differentiable w.r.t.
    ``values`` through ``sum`` and ``mean``. ``validate``: check the offsets (see
    :func:`check_cu_seqlens`; one host sync).
    """
    if values.dim() != 1:
        raise ValueError(f"expected values [N], got {tuple(values.shape)}")
    check_cu_seqlens(cu_seqlens, values.shape[0], validate=validate)
    if mask is not None and mask.shape != values.shape:
        raise ValueError(f"mask {tuple(mask.shape)} must match values {tuple(values.shape)}")
    on_triton = use_triton(impl, values, cu_seqlens, mask)
    cu = cu_seqlens.to(torch.int32).contiguous()
    m = None if mask is None else mask.to(torch.float32).contiguous()
    return SegmentStats(*_segment_reduce_op(values.contiguous(), cu, m, on_triton))


def resolve_cu_seqlens(
    target: torch.Tensor, cu_seqlens: torch.Tensor | None, *, validate: bool = True
) -> torch.Tensor:
    """Segments of a batch: ``cu_seqlens`` for packed [N] targets (checked, see
    :func:`check_cu_seqlens`), one per row for padded [B, T]."""
    if cu_seqlens is not None:
        if target.dim() != 1:
            raise ValueError(f"with cu_seqlens, target must be [N], got {tuple(target.shape)}")
        check_cu_seqlens(cu_seqlens, target.shape[0], validate=validate)
        return cu_seqlens.to(device=target.device, dtype=torch.int32)
    if target.dim() != 2:
        raise ValueError(f"without cu_seqlens, target must be padded [B, T], got {target.dim()}-D")
    b, t = target.shape
    return torch.arange(b + 1, device=target.device, dtype=torch.int32) * t
