"""Ahead-of-time compile check of every Triton kernel, for NVIDIA GPUs, on a machine without one.

Each launcher of this package is called with ``device="meta"`` tensors inside
:func:`._triton.capture_launches`, so the arguments, constexprs and launch options compiled here are
exactly those a real launch would use (no second, hand-written argument list). Triton's own binder
turns them into a signature, and ``triton.compile`` lowers it to PTX and a cubin for a
``GPUTarget``; the cubin's resources come from ``cuobjdump -res-usage`` (both tools ship in the
Triton wheel). A variant fails the check on a compile error, on shared memory above the
architecture's per-block limit, or on any local memory / stack use (register spills).

    python -m qengine.kernels.aot --arch 80 90          # exits 1 on any failure
    python bench/kernels_aot.py                          # + the resource tables in bench/results

Legend: ``N`` tokens, ``D`` hidden size, ``V`` vocabulary (the shapes of ``bench/kernels.py``).
Must run with ``TRITON_INTERPRET`` unset: the interpreter replaces kernels by Python functions.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import os
import re
import subprocess
import sys
import tempfile
import warnings
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch

from ._triton import HAS_TRITON, KernelLaunch, capture_launches, interpreting
from .fused_linear_logprobs import (
    FUSED_LINEAR_TILES,
    FusedLinearConfig,
    fused_linear_logprobs_backward,
    fused_linear_logprobs_forward,
)
from .logprobs import token_logprobs_backward, token_logprobs_forward
from .q_scoring import value_head_backward, value_head_forward
from .segments import segment_reduce_forward

__all__ = [
    "ARCHS",
    "ArchLimits",
    "CompiledVariant",
    "KernelVariant",
    "compile_variant",
    "compile_variants",
    "failures",
    "fused_linear_tile_variants",
    "kernel_variants",
    "main",
    "supported_archs",
]

# Shapes of the kernels benchmark (bench/kernels.py): only divisibility by 16 reaches the compiler.
N, D, V = 8192, 4096, 128256
SMALL_V = 1000  # op 1's vocabulary tile follows V: a small vocabulary takes another variant
SOFTCAP = 30.0
DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


@dataclass(frozen=True)
class ArchLimits:
    """Per-SM and per-block limits of one compute capability (CUDA programming guide, table 21)."""

    name: str
    max_shared_per_block: int  # bytes, opt-in maximum of dynamic shared memory
    shared_per_sm: int
    max_warps_per_sm: int = 64
    max_blocks_per_sm: int = 32
    registers_per_sm: int = 65536
    tensor_core_op: str = "mma.sync"  # the PTX instruction tl.dot should lower to


ARCHS = {
    80: ArchLimits("sm_80 (A100)", 166912, 167936),
    90: ArchLimits("sm_90 (H100/H200)", 232448, 233472, tensor_core_op="wgmma.mma_async"),
    100: ArchLimits("sm_100 (B200)", 232448, 233472, tensor_core_op="tcgen05.mma"),
}


@dataclass(frozen=True)
class KernelVariant:
    """One distinct compilation of a kernel, as a launcher produced it."""

    name: str  # the @triton.jit function
    variant: str  # dtype, flags and tiles, human-readable
    launch: KernelLaunch


@dataclass
class CompiledVariant:
    """Resources of one variant compiled for one architecture (sizes in bytes)."""

    name: str
    variant: str
    arch: int
    num_warps: int
    num_stages: int
    registers: int = 0
    spill_bytes: int = 0  # local memory + stack per thread, from cuobjdump -res-usage
    shared_bytes: int = 0  # static + dynamic shared memory per block
    resident_warps_per_sm: int = 0  # static occupancy
    uses_dot: bool = False  # the kernel has a tl.dot
    tensor_core_op: str | None = None  # the tensor-core PTX instruction found, if any
    error: str | None = None


# ----------------------------------------------------------------------------- variants
def _meta(*shape: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return torch.empty(*shape, device="meta", dtype=dtype)


def _tile_label(cfg: FusedLinearConfig) -> str:
    return f"tile {cfg.block_n}x{cfg.block_v}x{cfg.block_d} w{cfg.num_warps} s{cfg.num_stages}"


def _flag(label: str, on: bool) -> list[str]:
    return [label] if on else []


def _fused_linear_cases(
    tiles: dict[str, tuple[FusedLinearConfig, ...]], *, worst_case_only: bool = False
) -> Iterator[tuple[str, Callable[[], Any]]]:
    """Ops 2's forward and backward over ``tiles`` (dtype name -> tiles) and the flags; with
    ``worst_case_only`` just bias + softcap (+ entropy), the most registers, for tile scans."""
    flag_sets = (
        [(True, True)] if worst_case_only else list(itertools.product((False, True), repeat=2))
    )
    for dname, cfgs in tiles.items():
        dtype = DTYPES[dname]
        for (bias, cap), cfg in itertools.product(flag_sets, cfgs):
            h, w = _meta(N, D, dtype=dtype), _meta(V, D, dtype=dtype)
            b = _meta(V, dtype=dtype) if bias else None
            tgt, row = _meta(N, dtype=torch.int32), _meta(N)
            kw = dict(temperature=0.7, softcap=SOFTCAP if cap else None, cfg=cfg)
            flags = [dname, *_flag("bias", bias), *_flag("softcap", cap)]
            yield (
                ", ".join([*flags, _tile_label(cfg)]),
                functools.partial(fused_linear_logprobs_forward, h, w, b, tgt, **kw),
            )
            for ent in (True,) if worst_case_only else (False, True):
                grads = (row, row, row, row if ent else None)
                label = ", ".join([*flags, *_flag("entropy", ent), _tile_label(cfg)])
                yield label, functools.partial(
                    fused_linear_logprobs_backward, h, w, b, tgt, row, row, grads,
                    (True, True, bias), **kw,
                )  # fmt: skip


def _logprobs_cases() -> Iterator[tuple[str, Callable[[], Any]]]:
    for (dname, dtype), cap, ent, v in itertools.product(
        DTYPES.items(), (False, True), (False, True), (V, SMALL_V)
    ):
        x, tgt, row = _meta(N, v, dtype=dtype), _meta(N, dtype=torch.int32), _meta(N)
        kw = dict(temperature=0.7, softcap=SOFTCAP if cap else None)
        label = ", ".join([dname, *_flag("softcap", cap), *_flag("entropy", ent), f"V={v}"])
        yield label, functools.partial(token_logprobs_forward, x, tgt, with_entropy=ent, **kw)
        grads = (row, row, row, row if ent else None)
        yield label, functools.partial(token_logprobs_backward, x, tgt, row, row, grads, **kw)


def _value_head_cases() -> Iterator[tuple[str, Callable[[], Any]]]:
    segments = _meta(N // 64 + 1, dtype=torch.int32)
    for (dname, dtype), bias, mask in itertools.product(
        DTYPES.items(), (False, True), (False, True)
    ):
        h, w = _meta(N, D, dtype=dtype), _meta(D, dtype=dtype)
        b = _meta(1, dtype=dtype) if bias else None
        m = _meta(N) if mask else None
        label = ", ".join([dname, *_flag("bias", bias), *_flag("mask", mask)])
        yield label, functools.partial(value_head_forward, h, w, b, segments, m)
        if not bias and not mask:  # the backward has neither flag
            yield dname, functools.partial(value_head_backward, h, w, _meta(N))


def _segment_cases() -> Iterator[tuple[str, Callable[[], Any]]]:
    segments = _meta(N // 64 + 1, dtype=torch.int32)
    for (dname, dtype), mask in itertools.product(DTYPES.items(), (False, True)):
        m = _meta(N) if mask else None
        label = ", ".join([dname, *_flag("mask", mask)])
        yield label, functools.partial(segment_reduce_forward, _meta(N, dtype=dtype), segments, m)


def _launch_key(launch: KernelLaunch) -> tuple:
    """What decides a compilation: argument types and alignment, constexprs, options."""

    def arg_key(a: Any) -> Any:
        if isinstance(a, torch.Tensor):
            return ("tensor", a.dtype)
        if isinstance(a, bool) or a is None:
            return a
        if isinstance(a, int):
            return ("int", a == 1, a % 16 == 0)
        return type(a).__name__

    return (
        launch.kernel.fn.__name__,
        tuple(arg_key(a) for a in launch.args),
        tuple(sorted(launch.kwargs.items())),
    )


def _default_tiles() -> dict[str, tuple[FusedLinearConfig, ...]]:
    return {name: (FUSED_LINEAR_TILES[dtype],) for name, dtype in DTYPES.items()}


def kernel_variants() -> tuple[KernelVariant, ...]:
    """Every distinct (kernel, constexprs, options) the launchers produce over dtypes, flags and
    each dtype's default tile, in a fixed order."""
    return _variants(
        _fused_linear_cases(_default_tiles()), _logprobs_cases(), _value_head_cases(),
        _segment_cases(),
    )  # fmt: skip


def fused_linear_tile_variants(
    tiles: dict[str, tuple[FusedLinearConfig, ...]],
) -> tuple[KernelVariant, ...]:
    """Op 2's kernels at candidate ``tiles`` (dtype name -> tiles), worst-case flags only."""
    return _variants(_fused_linear_cases(tiles, worst_case_only=True))


def _variants(*cases: Iterator[tuple[str, Callable[[], Any]]]) -> tuple[KernelVariant, ...]:
    if not HAS_TRITON:
        raise RuntimeError("the AOT compile check needs Triton: pip install triton")
    variants, seen = [], set()
    for case in cases:
        for label, call in case:
            with capture_launches() as launches:
                call()
            for launch in launches:
                key = _launch_key(launch)
                if key not in seen:
                    seen.add(key)
                    variants.append(KernelVariant(launch.kernel.fn.__name__, label, launch))
    return tuple(variants)


# ----------------------------------------------------------------------------- compile
def supported_archs() -> list[int]:
    """Architectures of :data:`ARCHS` the bundled ptxas can target."""
    from triton.backends.nvidia.compiler import get_ptxas

    out = []
    for arch in ARCHS:
        help_text = subprocess.run(
            [get_ptxas(arch).path, "--help"], capture_output=True, text=True, check=False
        ).stdout
        if f"sm_{arch}" in help_text:
            out.append(arch)
    return out


def _resource_usage(cubin: bytes, name: str) -> dict[str, int]:
    """REG / STACK / SHARED / LOCAL of ``name`` from ``cuobjdump -res-usage``."""
    from triton import knobs

    with tempfile.NamedTemporaryFile(suffix=".cubin") as f:
        f.write(cubin)
        f.flush()
        text = subprocess.run(
            [knobs.nvidia.cuobjdump.path, "-res-usage", f.name],
            capture_output=True, text=True, check=True,
        ).stdout  # fmt: skip
    for block in text.split("Function ")[1:]:
        if block.startswith(name):
            return {k: int(v) for k, v in re.findall(r"\b(REG|STACK|SHARED|LOCAL):(\d+)", block)}
    raise RuntimeError(f"cuobjdump found no function {name!r}:\n{text}")


def resident_warps(registers: int, shared: int, num_warps: int, limits: ArchLimits) -> int:
    """Static occupancy: warps of this kernel resident per SM (register, shared, slot limits).

    Registers are allocated per warp in units of 256; each block also reserves 1 KiB of shared
    memory on sm_80 and later (CUDA occupancy calculator).
    """
    regs_per_warp = math.ceil(max(registers, 1) * 32 / 256) * 256
    by_regs = (limits.registers_per_sm // regs_per_warp) // num_warps
    by_shared = limits.shared_per_sm // (shared + 1024)
    by_warps = limits.max_warps_per_sm // num_warps
    return min(by_regs, by_shared, by_warps, limits.max_blocks_per_sm) * num_warps


def compile_variant(variant: KernelVariant, arch: int) -> CompiledVariant:
    """Compile one variant for ``sm_{arch}`` and read its resources (errors are recorded)."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource, make_backend
    from triton.runtime.jit import create_function_from_signature

    kernel, kwargs = variant.launch.kernel, dict(variant.launch.kwargs)
    out = CompiledVariant(
        variant.name, variant.variant, arch, kwargs.get("num_warps", 4), kwargs.get("num_stages", 3)
    )
    target = GPUTarget("cuda", arch, 32)
    backend = make_backend(target)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # Triton 3.9's notice about its FP-fusion default
            # Triton's own binder: the same specialisation (alignment, == 1) a launch would compute.
            binder = create_function_from_signature(kernel.signature, kernel.params, backend)
            bound, specialization, options = binder(*variant.launch.args, **kwargs)
            options, signature, constexprs, attrs = kernel._pack_args(
                backend, kwargs, bound, specialization, options
            )
            compiled = triton.compile(
                ASTSource(kernel, signature, constexprs, attrs),
                target=target,
                options=options.__dict__,
            )
    except Exception as exc:  # a compile error is a result of the check, not a crash of it
        out.error = f"{type(exc).__name__}: {str(exc).strip().splitlines()[-1][:400]}"
        return out
    usage = _resource_usage(compiled.asm["cubin"], compiled.metadata.name)
    limits = ARCHS[arch]
    ptx = compiled.asm["ptx"]
    out.registers = usage.get("REG", 0)
    out.spill_bytes = usage.get("LOCAL", 0) + usage.get("STACK", 0)
    out.shared_bytes = usage.get("SHARED", 0) + compiled.metadata.shared
    out.num_warps = compiled.metadata.num_warps
    out.num_stages = compiled.metadata.num_stages
    out.resident_warps_per_sm = resident_warps(
        out.registers, out.shared_bytes, out.num_warps, limits
    )
    out.uses_dot = "tt.dot" in compiled.asm["ttir"]
    found = [op for op in ("tcgen05.mma", "wgmma.mma_async", "mma.sync") if op in ptx]
    out.tensor_core_op = found[0] if found else None
    return out


def failures(results: list[CompiledVariant]) -> list[str]:
    """Why each failing variant fails: compile error, shared memory over the limit, spills, or a
    tl.dot of 16-bit inputs that did not reach the architecture's tensor-core instruction."""
    out = []
    for r in results:
        where = f"{r.name} [{r.variant}] sm_{r.arch}"
        limits = ARCHS[r.arch]
        if r.error:
            out.append(f"{where}: compile error: {r.error}")
            continue
        if r.shared_bytes > limits.max_shared_per_block:
            out.append(
                f"{where}: {r.shared_bytes} B shared memory > {limits.max_shared_per_block} B"
            )
        if r.spill_bytes:
            out.append(f"{where}: {r.spill_bytes} B local memory / stack (register spills)")
        low_precision = not r.variant.startswith("fp32")
        if r.uses_dot and low_precision and r.tensor_core_op != limits.tensor_core_op:
            out.append(
                f"{where}: tl.dot lowered to {r.tensor_core_op}, not {limits.tensor_core_op}"
            )
    return out


_WORKER_VARIANTS: dict[str, tuple[KernelVariant, ...]] = {}


def _compile_indexed(job: tuple[Callable[[], tuple[KernelVariant, ...]], int, int]):
    """Worker side: rebuild the variant list once per process (launches hold kernels and meta
    tensors, which do not pickle), then compile one entry."""
    make_variants, index, arch = job
    key = repr(make_variants)
    if key not in _WORKER_VARIANTS:
        _WORKER_VARIANTS[key] = make_variants()
    return compile_variant(_WORKER_VARIANTS[key][index], arch)


def compile_variants(
    archs: list[int],
    make_variants: Callable[[], tuple[KernelVariant, ...]] = kernel_variants,
    *,
    jobs: int | None = None,
    progress: bool = True,
) -> list[CompiledVariant]:
    """Compile every variant of ``make_variants()`` (a picklable, deterministic function) for every
    arch, ``jobs`` processes in parallel (default: all cores).

    Uses a fresh Triton cache: a cache hit would skip the front-end checks.
    """
    if interpreting():
        raise RuntimeError("unset TRITON_INTERPRET: the interpreter does not compile kernels")
    count = len(make_variants())
    work = [(make_variants, i, arch) for arch in archs for i in range(count)]
    jobs = jobs or os.cpu_count() or 1
    previous = os.environ.get("TRITON_CACHE_DIR")
    with tempfile.TemporaryDirectory(prefix="qengine-aot-cache-") as cache:
        os.environ["TRITON_CACHE_DIR"] = cache  # inherited by the worker processes
        try:
            if jobs == 1:
                results = [_compile_indexed(j) for j in _progress(work, progress, len(work))]
            else:
                ctx = torch.multiprocessing.get_context("spawn")
                with ProcessPoolExecutor(jobs, mp_context=ctx) as pool:
                    results = list(_progress(pool.map(_compile_indexed, work), progress, len(work)))
        finally:  # the caller's cache, not a deleted folder, for later compiles in this process
            if previous is None:
                os.environ.pop("TRITON_CACHE_DIR", None)
            else:
                os.environ["TRITON_CACHE_DIR"] = previous
    return results


def _progress(it: Any, enabled: bool, total: int | None = None) -> Any:
    if not enabled:
        return it
    from tqdm import tqdm

    return tqdm(it, total=total, desc="compiling kernel variants", unit="variant", file=sys.stderr)


# ----------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m qengine.kernels.aot",
        description="Compile every Triton kernel variant of qengine.kernels for NVIDIA GPUs "
        "without a GPU; fail on compile errors, shared memory over the limit and register spills.",
    )
    parser.add_argument(
        "--arch", type=int, nargs="+", default=[80, 90],
        help="compute capabilities, e.g. 80 90 100 (default: 80 90); unsupported ones by the "
        "bundled ptxas are skipped with a note",
    )  # fmt: skip
    parser.add_argument("--jobs", type=int, default=None, help="parallel compiles (default: cores)")
    parser.add_argument("--json", type=Path, help="write every variant's resources here")
    parser.add_argument("--list", action="store_true", help="list the variants and exit")
    args = parser.parse_args(argv)
    if args.list:
        for v in kernel_variants():
            print(f"{v.name:24s} {v.variant}")
        print(f"{len(kernel_variants())} variants")
        return 0
    archs = [a for a in args.arch if a in supported_archs()]
    for a in sorted(set(args.arch) - set(archs)):
        print(f"note: sm_{a} skipped: unknown here or not supported by the bundled ptxas")
    results = compile_variants(archs, jobs=args.jobs)
    if args.json:
        args.json.write_text(json.dumps([asdict(r) for r in results], indent=1) + "\n")
    for r in results:
        status = r.error or f"{r.registers} regs, {r.spill_bytes} B spill, {r.shared_bytes} B smem"
        print(f"sm_{r.arch} {r.name:24s} {r.variant:52s} {status}")
    bad = failures(results)
    for line in bad:
        print(f"FAIL {line}")
    print(f"{len(results)} compilations, {len(bad)} failures")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())
