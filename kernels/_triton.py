"""Guarded Triton import shared by every op file.

``import qengine.kernels`` must work on machines without a GPU and without Triton. Op files import
``triton`` / ``tl`` from here: when Triton is missing they get a stand-in whose ``jit`` decorator
returns a kernel that raises a clear error if it is ever launched (dispatch never launches it, see
:mod:`._dispatch`). Annotations such as ``tl.constexpr`` resolve against the stand-in harmlessly.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any, NamedTuple

__all__ = [
    "HAS_TRITON",
    "TRITON_IMPORT_ERROR",
    "KernelLaunch",
    "capture_launches",
    "interpreting",
    "kernel_store_dtype",
    "launch",
    "tl",
    "triton",
]

if not __name__.startswith("qengine.kernels."):  # see kernels/__init__.py
    raise ImportError(
        f"{__name__}: qengine's kernels are importable only as qengine.kernels (this module was "
        "reached through the repository root on sys.path)"
    )

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


class _MissingConstexpr:
    """Stand-in for ``tl.constexpr``: an annotation; ``tl.constexpr(value)`` returns ``value``."""

    def __new__(cls, value: Any = None) -> Any:
        return value


class _MissingModule:
    """Stand-in for ``triton`` and ``triton.language`` when Triton cannot be imported."""

    constexpr = _MissingConstexpr

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


class KernelLaunch(NamedTuple):
    """One kernel launch as a launcher made it: ``kernel[grid](*args, **kwargs)``.

    ``kwargs`` holds the constexprs and the launch options (``num_warps``, ``num_stages``).
    """

    kernel: Any
    grid: tuple[int, ...]
    args: tuple[Any, ...]
    kwargs: dict[str, Any]


_CAPTURED: ContextVar[list[KernelLaunch] | None] = ContextVar(
    "qengine_kernel_launches", default=None
)


def launch(kernel: Any, grid: tuple[int, ...], *args: Any, **kwargs: Any) -> None:
    """Launch ``kernel`` on ``grid``; inside :func:`capture_launches`, only record the launch.

    Every launcher goes through here, so the compile-only path (``qengine.kernels.aot``) sees
    exactly the arguments, constexprs and options a real launch would use.
    """
    captured = _CAPTURED.get()
    if captured is not None:
        captured.append(KernelLaunch(kernel, tuple(grid), args, kwargs))
        return
    kernel[grid](*args, **kwargs)


@contextlib.contextmanager
def capture_launches() -> Iterator[list[KernelLaunch]]:
    """Record the launches of the launchers called inside the block instead of running them.

    Launchers do their host-side work as usual, so call them with ``device="meta"`` tensors: the
    outputs they allocate and post-process are shapes only, and nothing touches a GPU.
    """
    captured: list[KernelLaunch] = []
    token = _CAPTURED.set(captured)
    try:
        yield captured
    finally:
        _CAPTURED.reset(token)


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
