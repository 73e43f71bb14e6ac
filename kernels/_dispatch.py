"""Choosing between the Triton kernel and the op's pure-PyTorch implementation.

Every public op takes ``impl: "auto" | "triton" | "torch"``, resolved here in Python and passed to
the op's ``torch.library`` custom op as its ``use_triton`` argument:

- ``"auto"`` (default): Triton on CUDA tensors when Triton is importable, PyTorch otherwise.
  The environment variable ``QENGINE_KERNELS_IMPL`` (``triton`` or ``torch``) overrides ``auto``
  process-wide, e.g. ``QENGINE_KERNELS_IMPL=triton TRITON_INTERPRET=1`` runs the kernels on CPU.
- ``"triton"``: always the kernel (on CPU this requires ``TRITON_INTERPRET=1``).
- ``"torch"``: always PyTorch (a separate implementation from the ``*_reference`` oracles).
"""

from __future__ import annotations

import os
from typing import Literal

import torch

from ._triton import HAS_TRITON, TRITON_IMPORT_ERROR, interpreting

__all__ = ["Impl", "use_triton"]

Impl = Literal["auto", "triton", "torch"]
_ENV = "QENGINE_KERNELS_IMPL"


def use_triton(impl: str, *tensors: torch.Tensor | None) -> bool:
    """Resolve ``impl`` for the given inputs; raise a readable error when it cannot be honoured."""
    if impl == "auto":
        impl = os.environ.get(_ENV, "auto") or "auto"
        if impl == "auto":
            return HAS_TRITON and all(t is None or t.is_cuda for t in tensors)
    if impl == "torch":
        return False
    if impl != "triton":
        raise ValueError(f"impl must be 'auto', 'triton' or 'torch', got {impl!r} (or ${_ENV})")
    if not HAS_TRITON:
        raise RuntimeError(
            f"impl='triton' requested but Triton cannot be imported ({TRITON_IMPORT_ERROR}); "
            "install triton or use impl='torch'"
        )
    on_cpu = [t for t in tensors if t is not None and not t.is_cuda]
    if on_cpu and not interpreting():
        raise RuntimeError(
            "impl='triton' got CPU tensors; move them to CUDA or set TRITON_INTERPRET=1 "
            "(before triton is imported) to run the kernels through Triton's interpreter"
        )
    return True
