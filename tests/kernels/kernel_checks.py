"""Shared numerics checks for the kernel tests (flash-attention's tolerance rule).

``check(out, ref64, eager)``: ``ref64`` is the float64 reference on the same inputs, ``eager`` the
plain PyTorch implementation in the test dtype. fp32: max error <= 1e-5 relative to the reference's
scale. bf16 / fp16: error <= 2x eager PyTorch's error, in two norms. The RMS error carries the rule;
the max error gets one output ulp of slack, because on tensors this small a single element rounded
the other way decides the max (eager PyTorch is sometimes lucky by half an ulp on one element).
"""

from __future__ import annotations

import os

import torch
from qengine.kernels import FusedLinearConfig

# Tiny tiles so that odd shapes span several tiles, splits and backward vocab slices.
TINY = FusedLinearConfig(
    block_n=16, block_v=32, block_d=16, splits=3, vocab_slice=64, num_warps=4, num_stages=1
)
DTYPES = [torch.float32, torch.bfloat16]
# "cuda": kernels compiled on a GPU (bench/gpu_check.sh); by default interpreted on the CPU.
DEVICE = os.environ.get("QENGINE_TEST_DEVICE", "cpu")


def generator(seed: int = 0) -> torch.Generator:
    """Seeded generator on the test device (conftest makes it the default device)."""
    return torch.Generator(DEVICE).manual_seed(seed)


def max_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).abs().max().item() if a.numel() else 0.0


def rms_err(a: torch.Tensor, b: torch.Tensor) -> float:
    return (a.double() - b.double()).pow(2).mean().sqrt().item() if a.numel() else 0.0


def ulp(dtype: torch.dtype, scale: float) -> float:
    """Spacing of ``dtype`` numbers at magnitude ``scale``."""
    return torch.finfo(dtype).eps * 2.0 ** torch.tensor(scale).log2().floor().item()


def check(name: str, out, ref64, eager, dtype: torch.dtype, floor: float = 1e-3) -> None:
    """``floor`` bounds the scale from below (1.0 for O(log V) statistics such as log-probs)."""
    if out is None and ref64 is None:
        return
    assert out.shape == ref64.shape, f"{name}: shape {tuple(out.shape)} vs {tuple(ref64.shape)}"
    scale = max(ref64.double().abs().max().item() if ref64.numel() else 0.0, floor)
    err = max_err(out, ref64)
    if dtype in (torch.float32, torch.float64):
        assert err <= 1e-5 * scale, f"{name}: fp32 error {err:.3g} > 1e-5 x {scale:.3g}"
    else:
        rms, rms_eager = rms_err(out, ref64), rms_err(eager, ref64)
        bound = 2 * rms_eager + 1e-5 * scale
        assert rms <= bound, f"{name}: {dtype} RMS error {rms:.3g} > 2x eager ({bound:.3g})"
        bound = 2 * max_err(eager, ref64) + ulp(dtype, scale)
        assert err <= bound, f"{name}: {dtype} max error {err:.3g} > 2x eager + 1 ulp ({bound:.3g})"


def leaves(dtype: torch.dtype, *tensors: torch.Tensor | None) -> list[torch.Tensor | None]:
    return [None if t is None else t.detach().to(dtype).requires_grad_() for t in tensors]


def grads(tensors) -> list[torch.Tensor | None]:
    return [None if t is None else t.grad for t in tensors]
