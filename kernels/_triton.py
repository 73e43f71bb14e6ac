"""Guarded Triton import shared by every op file.

``import qengine.kernels`` must work on machines without a GPU and without Triton. Op files import
``triton`` / ``tl`` from here: when Triton is missing they get a stand-in whose ``jit`` decorator
returns a kernel that raises a clear error if it is ever launched (dispatch never launches it, see
:mod:`._dispatch`). Annotations such as ``tl.constexpr`` resolve against the stand-in harmlessly.
"""

from __future__ import annotations

import os
from typing import Any

__all__ = [
    "HAS_TRITON",
    "TRITON_IMPORT_ERROR",
    "interpreting",
    "kernel_store_dtype",
    "tl",
    "triton",
]

_INSTALL_HINT = (
    "Triton is not installed, so the Triton path of qengine.kernels is unavailable. Install "
    "it with `pip install triton` (or `pip install qengine[gpu]`), or call the op with "
    "impl='torch'."
)


class _MissingKernel:
    def __init__(self, fn: Any) -> None:
        self.fn = fn
        self.__name__ = getattr(fn, "__name__", "kernel")

    def __getitem__(self, grid: Any) -> Any:
        raise RuntimeError(f"{self.__name__}: {_INSTALL_HINT}")

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        raise RuntimeError(f"{self.__name__}: {_INSTALL_HINT}")


class _MissingModule:
    """Stand-in for ``triton`` and ``triton.language`` when Triton cannot be imported."""

    constexpr = Any

    def jit(self, fn: Any = None, **kwargs: Any) -> Any:
        if fn is None:
            return lambda f: _MissingKernel(f)
        return _MissingKernel(fn)

    def __getattr__(self, name: str) -> Any:
        return self


try:
    import triton
    import triton.language as tl

    HAS_TRITON = True
    TRITON_IMPORT_ERROR: str | None = None
except ImportError as exc:  # pragma: no cover - exercised only where Triton is absent
    triton = _MissingModule()  # type: ignore[assignment]
    tl = _MissingModule()  # type: ignore[assignment]
    HAS_TRITON = False
    TRITON_IMPORT_ERROR = f"{type(exc).__name__}: {exc}"


def interpreting() -> bool:
    """True when Triton runs kernels through its CPU interpreter (``TRITON_INTERPRET=1``)."""
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def kernel_store_dtype(dtype):  # torch.dtype -> torch.dtype
    """Dtype a kernel should write a low-precision output in.

    Triton's interpreter (3.x) converts fp32 -> bf16 by truncation, not round-to-nearest-even as
    the GPU does; under the interpreter kernels therefore write fp32 and the launcher rounds with
    ``Tensor.to`` (RTNE), reproducing the GPU's numerics.
    """
    import torch

    return torch.float32 if interpreting() and dtype in (torch.bfloat16, torch.float16) else dtype
