"""Triton device helpers of the log-prob kernels (one [BLOCK_N, BLOCK_V] logit tile at a time).

Logit transform (same order as Gemma-2 soft-capping followed by sampling temperature)::

    c = cap * tanh(raw / cap)      (only when a soft-cap is given)
    z = c / T

Online statistics per row, merged tile by tile (Milakov & Gimelshein, "Online normalizer
calculation for softmax", 2018), extended with the shifted first moment needed for the entropy::

    m = max_j z_j,   s = sum_j exp(z_j - m),   a = sum_j exp(z_j - m) * (z_j - m)
    lse = m + log s,  H = -sum_j p_j log p_j = log s - a / s

Keeping ``a`` relative to the running max avoids the cancellation of ``lse - E[z]``.
"""

from __future__ import annotations

from ._triton import tl, triton

# Finite "minus infinity" for running maxima: keeps (m_old - m_new) * s_old == 0 instead of NaN.
# A constexpr: compiled kernels may read no other module-level globals.
NEG_BIG = tl.constexpr(-1.0e30)


@triton.jit
def _tanh(x):
    # tanh through exp: no libdevice dependency (works in the interpreter); saturates cleanly.
    return 1.0 - 2.0 / (tl.exp(2.0 * x) + 1.0)


@triton.jit
def transform_logits(raw, inv_temp, cap, HAS_CAP: tl.constexpr):
    """raw fp32 logits -> z (soft-cap then temperature)."""
    if HAS_CAP:
        raw = cap * _tanh(raw / cap)
    return raw * inv_temp


@triton.jit
def dot_tile(a, b, acc, DOT_FP32: tl.constexpr, IEEE: tl.constexpr):
    """acc += a @ b^T for a [BM, BK], b [BN, BK]."""
    if DOT_FP32:
        # The interpreter's tl.dot mis-handles bf16 (numpy has no bf16); bf16 x bf16 products
        # are exact in fp32, so upcasting gives the tensor-core result up to summation order.
        acc = tl.dot(a.to(tl.float32), tl.trans(b.to(tl.float32)), acc, input_precision="ieee")
    elif IEEE:
        acc = tl.dot(a, tl.trans(b), acc, input_precision="ieee")
    else:
        acc = tl.dot(a, tl.trans(b), acc)
    return acc


@triton.jit
def online_update(m, s, a, best, best_idx, zt, z, cols, v0, valid, tgt):
    """Merge tile ``z`` [BN, BV] (columns ``cols`` from ``v0``, ``valid`` mask) into row stats.

    ``tgt`` < 0 marks an ignored row: it matches no column, so its target logit stays 0.
    """
    zm = tl.where(valid, z, float("-inf"))
    tile_max = tl.max(zm, axis=1)
    m_new = tl.maximum(m, tile_max)
    scale = tl.exp(m - m_new)
    shifted = tl.where(valid, z - m_new[:, None], 0.0)  # no inf arithmetic on masked lanes
    e = tl.where(valid, tl.exp(shifted), 0.0)
    s_new = s * scale + tl.sum(e, axis=1)
    a_new = scale * (a + (m - m_new) * s) + tl.sum(e * shifted, axis=1)
    # argmax: first occurrence wins, across tiles only a strictly larger value replaces it
    tile_arg = tl.argmax(zm, axis=1)
    better = tile_max > best
    best_idx = tl.where(better, tile_arg + v0, best_idx)
    best = tl.maximum(best, tile_max)
    zt += tl.sum(tl.where(valid & (cols[None, :] == tgt[:, None]), z, 0.0), axis=1)
    return m_new, s_new, a_new, best, best_idx, zt


@triton.jit
def dlogits_tile(
    raw, cols, valid, tgt, lse, ent, g_lp, g_lse, g_zt, g_ent,
    inv_temp, cap, HAS_CAP: tl.constexpr, HAS_ENT: tl.constexpr,
):  # fmt: skip
    """d(loss)/d(raw) for one tile, given the upstream gradients of (logp, lse, z_t, H) per row.

    dz_j = (g_lp + g_zt) 1[j = t] + (g_lse - g_lp) p_j - g_ent p_j (z_j - lse + H)
    draw_j = dz_j * (1 - tanh^2(raw_j / cap)) / T
    """
    if HAS_CAP:
        th = _tanh(raw / cap)
        z = cap * th * inv_temp
    else:
        z = raw * inv_temp
    g_lp = tl.where(tgt >= 0, g_lp, 0.0)  # ignored rows (tgt < 0) have a constant logp of 0
    p = tl.exp(z - lse[:, None])
    dz = p * (g_lse - g_lp)[:, None]
    if HAS_ENT:
        dz -= g_ent[:, None] * p * (z - lse[:, None] + ent[:, None])
    dz += tl.where(cols[None, :] == tgt[:, None], (g_lp + g_zt)[:, None], 0.0)
    if HAS_CAP:
        dz = dz * (1.0 - th * th)
    dz = dz * inv_temp
    return tl.where(valid, dz, 0.0)
