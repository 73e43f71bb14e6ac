"""Op 2 - token log-probabilities straight from hidden states and the LM head, no logits in HBM.

``h [N, D], W [V, D] (+ b [V]) -> logp [N]`` with ``z = softcap(h W^T + b) / T`` and the same
outputs as op 1 (:func:`token_logprobs`): ``logp``, ``lse``, ``target_logit``, ``entropy``,
``argmax``. Cut Cross-Entropy (Wijmans et al., 2024, arXiv:2411.09009) is the closest peer.

Forward (``_flp_fwd_kernel``, grid ``(splits, N / BLOCK_N)``): each program owns ``BLOCK_N`` rows
and one contiguous vocabulary range; per ``BLOCK_V`` tile it computes the logit tile on tensor cores
(K-loop over D) and merges it into online (max, sum-exp, shifted first moment, target logit,
argmax) statistics held in registers. The ``splits`` partial statistics ([splits, N] fp32, tiny)
are merged on the host. The split axis is the fastest grid axis so that the programs resident at
once share a few ``h`` row blocks and a few ``W`` vocabulary ranges in L2.

Backward (recomputing, per vocabulary slice ``[v0, v0 + VS)``):
  1. ``_flp_dlogits_kernel`` recomputes the logit tiles of the slice and writes
     ``dZ_s = dL/draw`` [N, VS] (input dtype) into one reused buffer - O(N * VS), never O(N * V);
  2. ``dW[v0:v0+VS] = dZ_s^T h`` is written exactly once, straight into its slice of dW (cuBLAS,
     ``out=``), so dW sees no per-chunk read-modify-write and no atomics;
  3. ``dh += dZ_s W_s`` accumulates in fp32 (``dh`` is [N, D], far smaller than dW at LLM sizes);
     ``db[v0:v0+VS] = sum_rows dZ_s``.
Compute: 2 N V D (forward) + 6 N V D (backward: recompute, dW, dh) - the minimum for a
recomputing backward.

The per-token upstream gradients (of logp, lse, target logit, entropy) make it a weighted
cross-entropy backward: DPO, Q-RM and plain SFT losses all backpropagate through this one kernel.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ._common import (
    TokenLogprobs,
    check_logit_transform,
    check_same_dtype,
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
from ._tile import NEG_BIG, dlogits_tile, dot_tile, online_update, transform_logits
from ._triton import interpreting, kernel_store_dtype, launch, tl, triton

__all__ = [
    "FUSED_LINEAR_TILES",
    "FusedLinearConfig",
    "fused_linear_logprobs",
    "fused_linear_logprobs_reference",
]


@dataclass(frozen=True)
class FusedLinearConfig:
    """Tiling of the fused linear kernels; the defaults are the bf16 / fp16 tile.

    ``splits``: vocabulary ranges per row block in the forward (None: enough programs to fill the
    GPU several times). ``vocab_slice``: VS of the backward (None: the dZ buffer is capped at
    ``slice_bytes``), rounded to a multiple of ``block_v``.
    """

    block_n: int = 64
    block_v: int = 64
    block_d: int = 32
    num_warps: int = 8
    num_stages: int = 2
    splits: int | None = None
    vocab_slice: int | None = None
    slice_bytes: int = 64 << 20


# Default tile per input dtype (``config=None``), chosen by ``python bench/kernels_aot.py
# --scan-tiles`` (bench/results/kernels-aot-tile-scan.md): no register spills and the most resident
# warps on sm_80 and sm_90, forward and backward. The tile used before (128x128x64, 8 warps, 3
# stages) spilled 96-280 B per thread in the bf16 forward on sm_90 (255 registers, 8 warps/SM);
# 64x64x32 / 8 warps / 2 stages takes 116 registers there, 16 resident warps (forward) and 24
# (backward). fp32 inputs take an exact (IEEE, no tensor-core) dot with a smaller tile.
FUSED_LINEAR_TILES: dict[torch.dtype, FusedLinearConfig] = {
    torch.bfloat16: FusedLinearConfig(),
    torch.float16: FusedLinearConfig(),
    torch.float32: FusedLinearConfig(block_n=32, block_v=64, block_d=32),
}


def default_config(dtype: torch.dtype) -> FusedLinearConfig:
    """The default tile for inputs of ``dtype`` (see ``FUSED_LINEAR_TILES``)."""
    return FUSED_LINEAR_TILES.get(dtype, FusedLinearConfig())


# ----------------------------------------------------------------------------- Triton kernels
@triton.jit
def _logit_tile(
    h_ptr, w_ptr, b_ptr, rows, rmask, cols, cmask, D, stride_h, stride_w,
    HAS_BIAS: tl.constexpr, DOT_FP32: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    """raw = h[rows] @ W[cols]^T (+ b[cols]) as a fp32 [BLOCK_N, BLOCK_V] tile."""
    acc = tl.zeros([BLOCK_N, BLOCK_V], tl.float32)
    h_rows = h_ptr + rows.to(tl.int64)[:, None] * stride_h
    w_rows = w_ptr + cols.to(tl.int64)[:, None] * stride_w
    for d0 in range(0, D, BLOCK_D):
        dk = d0 + tl.arange(0, BLOCK_D)
        dmask = (dk < D)[None, :]
        hh = tl.load(h_rows + dk[None, :], mask=rmask[:, None] & dmask, other=0.0)
        ww = tl.load(w_rows + dk[None, :], mask=cmask[:, None] & dmask, other=0.0)
        acc = dot_tile(hh, ww, acc, DOT_FP32, IEEE)
    if HAS_BIAS:
        acc += tl.load(b_ptr + cols, mask=cmask, other=0.0).to(tl.float32)[None, :]
    return acc


@triton.jit
def _flp_fwd_kernel(
    h_ptr, w_ptr, b_ptr, tgt_ptr,
    pm_ptr, ps_ptr, pa_ptr, pzt_ptr, pbest_ptr, parg_ptr,
    N, V, D, stride_h, stride_w, v_per_split, inv_temp, cap,
    HAS_BIAS: tl.constexpr, HAS_CAP: tl.constexpr, DOT_FP32: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    split = tl.program_id(0)
    rows = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
    rmask = rows < N
    tgt = tl.load(tgt_ptr + rows, mask=rmask, other=-1)
    v_start = split * v_per_split
    v_end = tl.minimum(v_start + v_per_split, V)
    m = tl.full([BLOCK_N], NEG_BIG, tl.float32)
    s = tl.zeros([BLOCK_N], tl.float32)
    a = tl.zeros([BLOCK_N], tl.float32)
    zt = tl.zeros([BLOCK_N], tl.float32)
    best = tl.full([BLOCK_N], float("-inf"), tl.float32)
    best_idx = tl.zeros([BLOCK_N], tl.int32)
    for v0 in range(v_start, v_end, BLOCK_V):
        cols = v0 + tl.arange(0, BLOCK_V)
        cmask = cols < v_end
        raw = _logit_tile(
            h_ptr, w_ptr, b_ptr, rows, rmask, cols, cmask, D, stride_h, stride_w,
            HAS_BIAS, DOT_FP32, IEEE, BLOCK_N, BLOCK_V, BLOCK_D,
        )  # fmt: skip
        z = transform_logits(raw, inv_temp, cap, HAS_CAP)
        valid = rmask[:, None] & cmask[None, :]
        m, s, a, best, best_idx, zt = online_update(
            m, s, a, best, best_idx, zt, z, cols, v0, valid, tgt
        )
    out = split * N + rows
    tl.store(pm_ptr + out, m, mask=rmask)
    tl.store(ps_ptr + out, s, mask=rmask)
    tl.store(pa_ptr + out, a, mask=rmask)
    tl.store(pzt_ptr + out, zt, mask=rmask)
    tl.store(pbest_ptr + out, best, mask=rmask)
    tl.store(parg_ptr + out, best_idx, mask=rmask)


@triton.jit
def _flp_dlogits_kernel(
    h_ptr, w_ptr, b_ptr, tgt_ptr, lse_ptr, ent_ptr,
    g_lp_ptr, g_lse_ptr, g_zt_ptr, g_ent_ptr, dz_ptr,
    N, D, stride_h, stride_w, stride_dz, v_lo, v_hi, inv_temp, cap,
    HAS_BIAS: tl.constexpr, HAS_CAP: tl.constexpr, HAS_ENT: tl.constexpr,
    DOT_FP32: tl.constexpr, IEEE: tl.constexpr,
    BLOCK_N: tl.constexpr, BLOCK_V: tl.constexpr, BLOCK_D: tl.constexpr,
):  # fmt: skip
    local = tl.program_id(0) * BLOCK_V + tl.arange(0, BLOCK_V)
    cols = v_lo + local
    cmask = cols < v_hi
    rows = tl.program_id(1) * BLOCK_N + tl.arange(0, BLOCK_N)
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
    raw = _logit_tile(
        h_ptr, w_ptr, b_ptr, rows, rmask, cols, cmask, D, stride_h, stride_w,
        HAS_BIAS, DOT_FP32, IEEE, BLOCK_N, BLOCK_V, BLOCK_D,
    )  # fmt: skip
    valid = rmask[:, None] & cmask[None, :]
    dz = dlogits_tile(
        raw, cols, valid, tgt, lse, ent, g_lp, g_lse, g_zt, g_ent, inv_temp, cap, HAS_CAP, HAS_ENT
    )
    dz_ptrs = dz_ptr + rows.to(tl.int64)[:, None] * stride_dz + local[None, :]
    tl.store(dz_ptrs, dz.to(dz_ptr.dtype.element_ty), mask=valid)


# ----------------------------------------------------------------------------- launchers
def _precision_flags(dtype: torch.dtype) -> tuple[bool, bool]:
    """(DOT_FP32, IEEE): upcast under the interpreter; exact fp32 dots for fp32 inputs."""
    return interpreting(), dtype == torch.float32


def _num_sms(device: torch.device) -> int:
    if device.type == "cuda":
        return torch.cuda.get_device_properties(device).multi_processor_count
    return 4


def _splits(cfg: FusedLinearConfig, n: int, v: int, device: torch.device) -> tuple[int, int]:
    """(splits, vocab columns per split), each split a whole number of BLOCK_V tiles."""
    v_tiles = triton.cdiv(v, cfg.block_v)
    if cfg.splits is not None:
        splits = cfg.splits
    else:
        # >= 4 waves of programs, but >= 8 vocab tiles per program so the partials stay cheap.
        n_blocks = triton.cdiv(n, cfg.block_n)
        want = triton.cdiv(4 * _num_sms(device), n_blocks)
        splits = max(1, min(want, max(v_tiles // 8, 1)))
    splits = max(1, min(splits, v_tiles))
    per_split = triton.cdiv(v_tiles, splits) * cfg.block_v
    return triton.cdiv(v, per_split), per_split


def fused_linear_logprobs_forward(
    h: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    tgt: torch.Tensor,
    *,
    temperature: float,
    softcap: float | None,
    cfg: FusedLinearConfig,
) -> tuple[torch.Tensor, ...]:
    """(logp, lse, z_t, entropy, argmax) for ``h`` [N, D], ``w`` [V, D], ``tgt`` [N] (int32, -1 =
    ignored). The entropy is always produced: it costs one FMA per logit in registers."""
    n, d = h.shape
    v = w.shape[0]
    splits, per_split = _splits(cfg, n, v, h.device)
    part = torch.empty(5, splits, n, device=h.device, dtype=torch.float32)
    parg = torch.empty(splits, n, device=h.device, dtype=torch.int32)
    dot_fp32, ieee = _precision_flags(h.dtype)
    launch(
        _flp_fwd_kernel, (splits, triton.cdiv(n, cfg.block_n)),
        h, w, b if b is not None else h, tgt,
        part[0], part[1], part[2], part[3], part[4], parg,
        n, v, d, h.stride(0), w.stride(0), per_split, 1.0 / temperature, softcap or 1.0,
        HAS_BIAS=b is not None, HAS_CAP=softcap is not None, DOT_FP32=dot_fp32, IEEE=ieee,
        BLOCK_N=cfg.block_n, BLOCK_V=cfg.block_v, BLOCK_D=cfg.block_d,
        num_warps=cfg.num_warps, num_stages=cfg.num_stages,
    )  # fmt: skip
    return _merge_partials(part, parg, tgt, v)


def _merge_partials(
    part: torch.Tensor, parg: torch.Tensor, tgt: torch.Tensor, v: int
) -> tuple[torch.Tensor, ...]:
    """Combine [splits, N] online statistics (see :mod:`._tile`) into per-row outputs."""
    pm, ps, pa, pzt, pbest = part.unbind(0)
    m = pm.max(0).values
    scale = torch.exp(pm - m)
    s = (ps * scale).sum(0)
    a = (scale * (pa + (pm - m) * ps)).sum(0)
    log_s = torch.log(s)
    lse = m + log_s
    ent = log_s - a / s
    zt = pzt.sum(0)  # exactly one split holds the target column
    logp = torch.where(tgt >= 0, zt - lse, 0.0)
    best = pbest.max(0).values
    amax = torch.where(pbest == best, parg, v).min(0).values.long()
    return logp, lse, zt, ent, amax


def _vocab_slice(cfg: FusedLinearConfig, n: int, v: int, elem: int) -> int:
    if cfg.vocab_slice is not None:
        vs = cfg.vocab_slice
    else:
        vs = cfg.slice_bytes // max(1, n * elem)
    vs = max(cfg.block_v, vs // cfg.block_v * cfg.block_v)
    return min(vs, triton.cdiv(v, cfg.block_v) * cfg.block_v)


def fused_linear_logprobs_backward(
    h: torch.Tensor,
    w: torch.Tensor,
    b: torch.Tensor | None,
    tgt: torch.Tensor,
    lse: torch.Tensor,
    ent: torch.Tensor,
    grads: tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor | None],
    needs: tuple[bool, bool, bool],
    *,
    temperature: float,
    softcap: float | None,
    cfg: FusedLinearConfig,
) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
    """(dh, dW, db) given per-row upstream grads of (logp, lse, z_t, entropy | None)."""
    n, d = h.shape
    v = w.shape[0]
    need_dh, need_dw, need_db = needs
    g_lp, g_lse, g_zt, g_ent = grads
    has_ent = g_ent is not None
    vs = _vocab_slice(cfg, n, v, h.element_size())
    dz = torch.empty(n, vs, device=h.device, dtype=kernel_store_dtype(h.dtype))
    dh = torch.zeros(n, d, device=h.device, dtype=torch.float32) if need_dh else None
    dw = torch.empty_like(w) if need_dw else None
    db = torch.empty(v, device=h.device, dtype=torch.float32) if need_db else None
    dot_fp32, ieee = _precision_flags(h.dtype)
    for v_lo in range(0, v, vs):
        v_hi = min(v_lo + vs, v)
        dz_s = dz[:, : v_hi - v_lo]
        launch(
            _flp_dlogits_kernel,
            (triton.cdiv(v_hi - v_lo, cfg.block_v), triton.cdiv(n, cfg.block_n)),
            h, w, b if b is not None else h, tgt, lse, ent,
            g_lp, g_lse, g_zt, g_ent if has_ent else g_lp, dz,
            n, d, h.stride(0), w.stride(0), dz.stride(0), v_lo, v_hi, 1.0 / temperature,
            softcap or 1.0,
            HAS_BIAS=b is not None, HAS_CAP=softcap is not None, HAS_ENT=has_ent,
            DOT_FP32=dot_fp32, IEEE=ieee,
            BLOCK_N=cfg.block_n, BLOCK_V=cfg.block_v, BLOCK_D=cfg.block_d,
            num_warps=cfg.num_warps, num_stages=cfg.num_stages,
        )  # fmt: skip
        if dz_s.dtype != h.dtype:  # interpreter only, see kernel_store_dtype
            dz_s = dz_s.to(h.dtype)
        if dw is not None:
            torch.mm(dz_s.t(), h, out=dw[v_lo:v_hi])  # written once per slice
        if db is not None:
            db[v_lo:v_hi] = dz_s.sum(0, dtype=torch.float32)
        if dh is not None:
            dh += torch.mm(dz_s, w[v_lo:v_hi])
    return (
        None if dh is None else dh.to(h.dtype),
        dw,
        None if db is None else db.to(b.dtype),  # type: ignore[union-attr]
    )


# ----------------------------------------------------------------------------- PyTorch path
def _torch_vocab_chunk(cfg: FusedLinearConfig, n: int, v: int, dtype: torch.dtype) -> int:
    """Columns per chunk of the PyTorch path: [N, VS] temporaries of at most ``cfg.slice_bytes`` in
    the statistics dtype (a few are alive at a time). ``vocab_slice`` is a Triton tile choice and
    does not apply: the PyTorch path has no tiles, only this memory budget."""
    vs = cfg.slice_bytes // max(1, n * compute_dtype(dtype).itemsize)
    return max(1, min(vs, v))


def _raw_logits(h, w, b, v0: int, v1: int) -> torch.Tensor:
    """h @ W[v0:v1]^T (+ b[v0:v1]) in the input dtype, as a model's LM head would compute it."""
    raw = h @ w[v0:v1].t()
    return raw if b is None else raw + b[v0:v1]


def _forward_torch(h, w, b, tgt, *, temperature, softcap, with_entropy, cfg):
    n, v = h.shape[0], w.shape[0]
    vs = _torch_vocab_chunk(cfg, n, v, h.dtype)
    chunks = ((v0, _raw_logits(h, w, b, v0, min(v0 + vs, v))) for v0 in range(0, v, vs))
    return logit_stats_chunked(
        chunks, tgt, temperature=temperature, softcap=softcap, with_entropy=with_entropy,
        dtype=compute_dtype(h.dtype),
    )  # fmt: skip


def _backward_torch(h, w, b, tgt, lse, ent, grads, needs, *, temperature, softcap, cfg):
    """(dh, dW, db) chunk by chunk over the vocabulary, as the kernels: recompute the chunk's
    logits, dZ in the input dtype, ``dW[v0:v1] = dZ^T h`` written once, dh accumulated."""
    n, d = h.shape
    v = w.shape[0]
    need_dh, need_dw, need_db = needs
    acc = compute_dtype(h.dtype)
    dh = torch.zeros(n, d, device=h.device, dtype=acc) if need_dh else None
    dw = torch.empty_like(w, memory_format=torch.contiguous_format) if need_dw else None
    db = torch.empty(v, device=h.device, dtype=acc) if need_db else None
    vs = _torch_vocab_chunk(cfg, n, v, h.dtype)
    for v0 in range(0, v, vs):
        v1 = min(v0 + vs, v)
        dz = dlogits_chunk(
            _raw_logits(h, w, b, v0, v1), v0, tgt, lse, ent, grads,
            temperature=temperature, softcap=softcap, dtype=acc,
        ).to(h.dtype)  # fmt: skip
        if dw is not None:
            dw[v0:v1] = dz.t() @ h
        if db is not None:
            db[v0:v1] = dz.sum(0, dtype=acc)
        if dh is not None:
            dh += dz @ w[v0:v1]
    return dh, dw, db


# ----------------------------------------------------------------------------- custom ops
# ``qengine::fused_linear_logprobs`` runs the kernels when ``use_triton`` (resolved by the public
# function) and the chunked PyTorch path otherwise; torch.compile sees one opaque op with a fake
# (meta) implementation and a backward that is the op ``fused_linear_logprobs_backward``.
# FusedLinearConfig travels as its fields (block_n ... slice_bytes), in declaration order.
@torch.library.custom_op("qengine::fused_linear_logprobs", mutates_args=())
def _fused_linear_logprobs_op(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    target: torch.Tensor,
    temperature: float,
    softcap: float | None,
    with_entropy: bool,
    block_n: int,
    block_v: int,
    block_d: int,
    num_warps: int,
    num_stages: int,
    splits: int | None,
    vocab_slice: int | None,
    slice_bytes: int,
    use_triton: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """(logp, lse, z_t, entropy, argmax) for ``hidden`` [N, D], ``weight`` [V, D], ``bias`` [V]
    and normalised ``target`` [N]. ``entropy`` is [0] without ``with_entropy``. Outputs are fp32
    (PyTorch path: fp64 for fp64)."""
    cfg = FusedLinearConfig(
        block_n, block_v, block_d, num_warps, num_stages, splits, vocab_slice, slice_bytes
    )  # declaration order (tests/kernels/test_custom_ops.py checks it)
    if use_triton:
        logp, lse, zt, ent, amax = fused_linear_logprobs_forward(
            hidden, weight, bias, target, temperature=temperature, softcap=softcap, cfg=cfg
        )
        return logp, lse, zt, ent if with_entropy else ent.new_empty(0), amax
    return _forward_torch(
        hidden, weight, bias, target, temperature=temperature, softcap=softcap,
        with_entropy=with_entropy, cfg=cfg,
    )  # fmt: skip


@_fused_linear_logprobs_op.register_fake
def _(hidden, weight, bias, target, temperature, softcap, with_entropy, *config_and_impl):
    return fake_logprob_outputs(
        hidden, hidden.shape[0], with_entropy=with_entropy, use_triton=config_and_impl[-1]
    )


@torch.library.custom_op("qengine::fused_linear_logprobs_backward", mutates_args=())
def _fused_linear_logprobs_backward_op(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    target: torch.Tensor,
    lse: torch.Tensor,
    entropy: torch.Tensor,
    g_logp: torch.Tensor,
    g_lse: torch.Tensor,
    g_target_logit: torch.Tensor,
    g_entropy: torch.Tensor | None,
    need_hidden: bool,
    need_weight: bool,
    need_bias: bool,
    temperature: float,
    softcap: float | None,
    block_n: int,
    block_v: int,
    block_d: int,
    num_warps: int,
    num_stages: int,
    splits: int | None,
    vocab_slice: int | None,
    slice_bytes: int,
    use_triton: bool,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dh [N, D], dW [V, D], db [V]) in the dtypes of the inputs; a gradient that is not needed
    is returned as an empty [0] tensor."""
    cfg = FusedLinearConfig(
        block_n, block_v, block_d, num_warps, num_stages, splits, vocab_slice, slice_bytes
    )
    grads = (g_logp, g_lse, g_target_logit, g_entropy)
    needs = (need_hidden, need_weight, need_bias and bias is not None)
    if use_triton:
        # the kernels read the entropy only with g_entropy; [0] is not a valid pointer for them
        ent = entropy if g_entropy is not None else lse
        dh, dw, db = fused_linear_logprobs_backward(
            hidden, weight, bias, target, lse, ent, grads, needs,
            temperature=temperature, softcap=softcap, cfg=cfg,
        )  # fmt: skip
    else:
        dh, dw, db = _backward_torch(
            hidden, weight, bias, target, lse, entropy, grads, needs,
            temperature=temperature, softcap=softcap, cfg=cfg,
        )  # fmt: skip
    empty = hidden.new_empty(0)
    return (
        empty if dh is None else dh.to(hidden.dtype),
        empty.clone() if dw is None else dw,
        empty.clone() if db is None else db.to(bias.dtype),  # type: ignore[union-attr]
    )


@_fused_linear_logprobs_backward_op.register_fake
def _(hidden, weight, bias, target, lse, entropy, g_lp, g_lse, g_zt, g_ent, nh, nw, nb, *_rest):
    return (
        hidden.new_empty(hidden.shape if nh else (0,)),
        weight.new_empty(weight.shape) if nw else hidden.new_empty(0),
        bias.new_empty(bias.shape) if nb and bias is not None else hidden.new_empty(0),
    )


def _setup_context(ctx, inputs, output):
    hidden, weight, bias, target, *scalars = inputs
    _, lse, _, ent, _ = output
    ctx.save_for_backward(hidden, weight, bias, target, lse, ent)
    ctx.scalars = scalars  # temperature, softcap, with_entropy, *config fields, use_triton


def _backward(ctx, g_lp, g_lse, g_zt, g_ent, _g_argmax):
    hidden, weight, bias, target, lse, ent = ctx.saved_tensors
    temperature, softcap, with_entropy, *config_and_impl = ctx.scalars
    needs = ctx.needs_input_grad[:3]
    dh, dw, db = _fused_linear_logprobs_backward_op(
        hidden, weight, bias, target, lse, ent,
        upstream_grad(g_lp, lse), upstream_grad(g_lse, lse), upstream_grad(g_zt, lse),
        upstream_grad(g_ent, lse) if with_entropy and g_ent is not None else None,
        *needs, temperature, softcap, *config_and_impl,
    )  # fmt: skip
    grads = (dh if needs[0] else None, dw if needs[1] else None, db if needs[2] else None)
    return *grads, None, *(None for _ in ctx.scalars)


_fused_linear_logprobs_op.register_autograd(_backward, setup_context=_setup_context)


# ----------------------------------------------------------------------------- reference
def fused_linear_logprobs_reference(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    softcap: float | None = None,
    ignore_index: int = -100,
    mask: torch.Tensor | None = None,
    with_entropy: bool = False,
) -> TokenLogprobs:
    """Eager reference: ``logits = h @ W^T + b`` in the input dtype (as a model would), then the
    statistics in fp32 (fp64 for fp64 inputs). Materialises [N, V]."""
    lead = hidden.shape[:-1]
    h = hidden.reshape(-1, hidden.shape[-1])
    logits = h @ weight.t()
    if bias is not None:
        logits = logits + bias
    z = transform_reference(
        logits.to(torch.promote_types(logits.dtype, torch.float32)), temperature, softcap
    )
    out = logit_stats_reference(
        z, normalize_target(target, ignore_index, mask, weight.shape[0]), with_entropy=with_entropy
    )
    return TokenLogprobs(*(None if t is None else t.reshape(lead) for t in out))


# ----------------------------------------------------------------------------- public op
def fused_linear_logprobs(
    hidden: torch.Tensor,
    weight: torch.Tensor,
    target: torch.Tensor,
    bias: torch.Tensor | None = None,
    *,
    temperature: float = 1.0,
    softcap: float | None = None,
    ignore_index: int = -100,
    mask: torch.Tensor | None = None,
    with_entropy: bool = False,
    impl: str = "auto",
    config: FusedLinearConfig | None = None,
) -> TokenLogprobs:
    """Token log-probs of ``target`` under ``softmax(softcap(hidden @ weight^T + bias) / T)``.

    Args:
        hidden: [..., D] final hidden states (bf16 / fp16 / fp32), one row per token. Pass only the
            rows you need (e.g. response tokens): cost is linear in the row count.
        weight: [V, D] LM head, same dtype as ``hidden``; ``bias``: optional [V].
        target: [...] token ids; ``ignore_index`` / ``mask == False`` rows get logp = 0.
        temperature, softcap: logit transform, ``z = cap * tanh(raw / cap) / T``.
        with_entropy: return the (differentiable) entropy as well.
        impl: ``"auto" | "triton" | "torch"``.
        config: Triton tiling, see :class:`FusedLinearConfig`.

    Returns:
        :class:`TokenLogprobs` (fp32 [...], ``argmax`` int64); differentiable w.r.t. ``hidden``,
        ``weight`` and ``bias`` through ``logp``, ``lse``, ``target_logit`` and ``entropy``.
    """
    if hidden.shape[:-1] != target.shape or weight.dim() != 2:
        raise ValueError(
            f"expected hidden [..., D], weight [V, D], target [...]; got {tuple(hidden.shape)}, "
            f"{tuple(weight.shape)}, {tuple(target.shape)}"
        )
    if weight.shape[1] != hidden.shape[-1]:
        raise ValueError(f"hidden size mismatch: {hidden.shape[-1]} vs weight {weight.shape[1]}")
    if bias is not None and bias.shape != (weight.shape[0],):
        raise ValueError(f"bias must be [V]={weight.shape[0]}, got {tuple(bias.shape)}")
    check_logit_transform(temperature, softcap)
    check_same_dtype(hidden=hidden, weight=weight, bias=bias)
    on_triton = use_triton(impl, hidden, weight, target, bias)
    lead = hidden.shape[:-1]
    h = hidden.reshape(-1, hidden.shape[-1])
    w = weight
    if on_triton:
        h = h if h.stride(-1) == 1 else h.contiguous()
        w = w if w.stride(-1) == 1 else w.contiguous()
        bias = None if bias is None else bias.contiguous()
    tgt = normalize_target(target, ignore_index, mask, weight.shape[0])
    cfg = config or default_config(hidden.dtype)
    logp, lse, zt, ent, amax = _fused_linear_logprobs_op(
        h, w, bias, tgt, float(temperature), None if softcap is None else float(softcap),
        with_entropy, cfg.block_n, cfg.block_v, cfg.block_d, cfg.num_warps, cfg.num_stages,
        cfg.splits, cfg.vocab_slice, cfg.slice_bytes, on_triton,
    )  # fmt: skip
    return TokenLogprobs(
        logp.reshape(lead),
        lse.reshape(lead),
        zt.reshape(lead),
        ent.reshape(lead) if with_entropy else None,
        amax.reshape(lead),
    )
