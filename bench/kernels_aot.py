"""Resource tables of every Triton kernel variant, compiled ahead of time for NVIDIA GPUs.

No GPU needed: :mod:`qengine.kernels.aot` compiles each variant the launchers produce for
``sm_{arch}`` and reads registers, spills and shared memory from the cubin. Per architecture this
writes ``bench/results/kernels-aot-sm{arch}.json`` (a list ``kernels``: ``name``, ``variant``,
``registers``, ``spill_bytes``, ``shared_bytes``, ``resident_warps_per_sm``, ``tensor_core_op``,
``roofline_estimate``) and a Markdown table next to it, and exits 1 if any variant fails the check.

The roofline estimate is an estimate, not a measurement: max(compulsory FLOPs / peak, compulsory
bytes / HBM bandwidth) at the shapes of ``bench/kernels.py`` (N=8192 tokens, D=4096, V=128256
unless the variant says otherwise), with the peaks of the GPU named in ``hardware.ARCH_GPU``.

    python bench/kernels_aot.py                 # sm_80, sm_90, sm_100 (--arch to choose)
    python bench/kernels_aot.py --scan-tiles    # how op 2's default tiles were chosen

``--scan-tiles`` compiles op 2's forward and backward over a grid of candidate tiles with the
flags that need the most registers (bias, soft-cap, entropy) and ranks them: no spills and shared
memory within the limit on every architecture, then the most resident warps summed over kernels
and architectures, then the largest tile. It writes ``kernels-aot-tile-scan.{json,md}``.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import platform
import re
import subprocess
import sys
import time
from dataclasses import asdict
from pathlib import Path

from hardware import ARCH_GPU, GPU_PEAKS
from qengine.kernels import FusedLinearConfig, aot

RESULTS = Path(__file__).resolve().parent / "results"


def compulsory_work(name: str, variant: str) -> tuple[float, float, str]:
    """(FLOPs, bytes, shape label) a kernel must do over the whole op at the bench shapes."""
    e = 4 if variant.startswith("fp32") else 2
    v = int(m.group(1)) if (m := re.search(r"V=(\d+)", variant)) else aot.V
    n, d = aot.N, aot.D
    if name == "_flp_fwd_kernel":  # logits on tensor cores; h and W read once
        return 2 * n * v * d, (n * d + v * d) * e, f"N={n} D={d} V={v}"
    if name == "_flp_dlogits_kernel":  # recomputed logits; dZ written once over all slices
        return 2 * n * v * d, (n * d + v * d + n * v) * e, f"N={n} D={d} V={v}"
    if name == "_logprobs_fwd_kernel":
        return 0.0, n * v * e, f"N={n} V={v}"
    if name == "_logprobs_bwd_kernel":
        return 0.0, 2 * n * v * e, f"N={n} V={v}"
    if name == "_value_head_fwd_kernel":
        return 2 * n * d, n * d * e, f"N={n} D={d}"
    if name == "_value_head_bwd_kernel":
        return 2 * n * d, 2 * n * d * e, f"N={n} D={d}"
    if name == "_segment_reduce_kernel":
        return 0.0, n * e, f"N={n}"
    raise KeyError(f"no work model for kernel {name}: add one to bench/kernels_aot.py")


def roofline_estimate(name: str, variant: str, arch: int) -> dict:
    flops, nbytes, shape = compulsory_work(name, variant)
    gpu = ARCH_GPU[arch]
    peaks = GPU_PEAKS[gpu]
    tflops = peaks.fp32 if variant.startswith("fp32") else peaks.bf16
    t_compute = flops / (tflops * 1e12)
    t_memory = nbytes / (peaks.hbm * 1e9)
    return {
        "estimate": True,
        "gpu": gpu,
        "shape": shape,
        "flops": flops,
        "bytes": nbytes,
        "time_us": max(t_compute, t_memory) * 1e6,
        "bound": "compute" if t_compute > t_memory else "memory",
    }


def triton_version() -> str:
    import triton

    return triton.__version__


def _ptxas_version(arch: int) -> str:
    from triton.backends.nvidia.compiler import get_ptxas

    out = subprocess.run([get_ptxas(arch).path, "--version"], capture_output=True, text=True)
    return out.stdout.strip().splitlines()[-1]


def report(results: list[aot.CompiledVariant], arch: int) -> dict:
    import torch
    import triton

    kernels = []
    for r in results:
        entry = asdict(r)
        entry["roofline_estimate"] = roofline_estimate(r.name, r.variant, arch)
        kernels.append(entry)
    limits = aot.ARCHS[arch]
    return {
        "arch": f"sm_{arch}",
        "limits": asdict(limits),
        "triton": triton.__version__,
        "torch": torch.__version__,
        "ptxas": _ptxas_version(arch),
        "machine": {"platform": platform.platform(), "processor": platform.processor()},
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "failures": aot.failures(results),
        "kernels": kernels,
    }


def markdown(rep: dict) -> str:
    limits = rep["limits"]
    lines = [
        f"# Triton kernels compiled for {limits['name']}, no GPU",
        "",
        f"Regenerate: `python bench/kernels_aot.py`. Triton {rep['triton']}, {rep['ptxas']}, "
        f"compiled on {rep['machine']['platform']}, {rep['time']}. Resident warps: static "
        f"occupancy out of {limits['max_warps_per_sm']} per SM. Roofline: **estimate** on the "
        "named GPU's datasheet peaks, compulsory work only (not a measurement).",
        "",
        f"Failures: {len(rep['failures'])}" + "".join(f"\n- {f}" for f in rep["failures"]),
        "",
        "| kernel | variant | warps | stages | regs | spill B | smem KiB | warps/SM | tl.dot "
        "| roofline est. |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in rep["kernels"]:
        est = k["roofline_estimate"]
        dot = (k["tensor_core_op"] or "FMA (fp32 IEEE)") if k["uses_dot"] else "-"
        lines.append(
            f"| `{k['name']}` | {k['variant']} | {k['num_warps']} | {k['num_stages']} "
            f"| {k['registers']} | {k['spill_bytes']} | {k['shared_bytes'] / 1024:.1f} "
            f"| {k['resident_warps_per_sm']} | {dot} "
            f"| {est['time_us']:.0f} µs ({est['bound']}, {est['gpu']}, {est['shape']}) |"
        )
    if any(k["error"] for k in rep["kernels"]):
        lines += ["", "Errors:"] + [
            f"- `{k['name']}` {k['variant']}: {k['error']}" for k in rep["kernels"] if k["error"]
        ]
    return "\n".join(lines) + "\n"


# Candidate tiles of the scan: (block_n, block_v, block_d, num_warps, num_stages) axes per dtype.
SCAN_GRID = {
    "bf16": ((64, 128), (64, 128, 256), (32, 64, 128), (4, 8), (2, 3, 4)),
    "fp32": ((32, 64), (64, 128), (16, 32), (4, 8), (2,)),
}


def scan_tiles(dtype: str) -> tuple[FusedLinearConfig, ...]:
    """Candidates of ``SCAN_GRID[dtype]`` with 4 to 128 accumulator elements per thread."""
    out = []
    for bn, bv, bd, warps, stages in itertools.product(*SCAN_GRID[dtype]):
        if 4 <= bn * bv // (warps * 32) <= 128:
            out.append(FusedLinearConfig(bn, bv, bd, warps, stages))
    return tuple(out)


def rank_tiles(results: list[aot.CompiledVariant]) -> list[dict]:
    """One row per (dtype, tile): passes everywhere?, summed resident warps, per-kernel detail."""
    rows: dict[tuple[str, str], dict] = {}
    for r in results:
        dtype, tile = r.variant.split(",")[0], r.variant.split(", ")[-1]
        row = rows.setdefault((dtype, tile), {"dtype": dtype, "tile": tile, "ok": True,
                                              "warps": 0, "kernels": {}})  # fmt: skip
        row["ok"] &= not aot.failures([r])
        row["warps"] += r.resident_warps_per_sm
        row["kernels"][f"{r.name} sm_{r.arch}"] = (
            f"{r.registers} regs, {r.spill_bytes} B spill, {r.shared_bytes // 1024} KiB, "
            f"{r.resident_warps_per_sm} warps"
        )

    def volume(tile: str) -> int:
        return math.prod(int(x) for x in tile.split()[1].split("x"))

    return sorted(rows.values(), key=lambda x: (x["dtype"], not x["ok"], -x["warps"],
                                               -volume(x["tile"])))  # fmt: skip


def run_scan(archs: list[int], jobs: int | None, out_dir: Path) -> int:
    tiles = {dtype: scan_tiles(dtype) for dtype in SCAN_GRID}
    make = functools.partial(aot.fused_linear_tile_variants, tiles)
    ranked = rank_tiles(aot.compile_variants(archs, make, jobs=jobs))
    (out_dir / "kernels-aot-tile-scan.json").write_text(json.dumps(ranked, indent=1) + "\n")
    lines = [
        "# Op 2 tile scan (compiled, no GPU): `python bench/kernels_aot.py --scan-tiles`",
        "",
        f"Architectures: {', '.join(f'sm_{a}' for a in archs)}. Flags: bias, soft-cap (and "
        "entropy in the backward). Ranked by: passes the check everywhere, resident warps summed "
        "over both kernels and all architectures, tile volume.",
        "",
        f"Compiled on {platform.platform()} ({platform.processor() or platform.machine()}), "
        f"Triton {triton_version()}, {time.strftime('%Y-%m-%d')}.",
        "",
        "| dtype | tile | passes | resident warps (sum) | " + " | ".join(
            sorted(ranked[0]["kernels"])) + " |",
        "|---|---|---|---|" + "---|" * len(ranked[0]["kernels"]),
    ]  # fmt: skip
    for row in ranked:
        cells = " | ".join(row["kernels"][k] for k in sorted(row["kernels"]))
        lines.append(f"| {row['dtype']} | {row['tile']} | {'yes' if row['ok'] else 'no'} "
                     f"| {row['warps']} | {cells} |")  # fmt: skip
    (out_dir / "kernels-aot-tile-scan.md").write_text("\n".join(lines) + "\n")
    for dtype in SCAN_GRID:
        best = next(r for r in ranked if r["dtype"] == dtype)
        print(f"{dtype}: best tile {best['tile']} (passes: {best['ok']}, warps {best['warps']})")
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--arch", type=int, nargs="+", default=[80, 90, 100])
    ap.add_argument("--jobs", type=int, default=None, help="parallel compiles (default: cores)")
    ap.add_argument("--out", type=Path, default=RESULTS, help="output folder")
    ap.add_argument("--scan-tiles", action="store_true", help="rank candidate tiles of op 2")
    args = ap.parse_args(argv)
    args.arch = args.arch or ([80, 90] if args.scan_tiles else [80, 90, 100])
    archs = [a for a in args.arch if a in aot.supported_archs()]
    for a in sorted(set(args.arch) - set(archs)):
        print(f"note: sm_{a} skipped: not supported by the bundled ptxas")
    args.out.mkdir(parents=True, exist_ok=True)
    if args.scan_tiles:
        return run_scan(archs, args.jobs, args.out)
    results = aot.compile_variants(archs, jobs=args.jobs)
    failed = 0
    for arch in archs:
        rep = report([r for r in results if r.arch == arch], arch)
        stem = args.out / f"kernels-aot-sm{arch}"
        stem.with_suffix(".json").write_text(json.dumps(rep, indent=1) + "\n")
        stem.with_suffix(".md").write_text(markdown(rep))
        print(f"sm_{arch}: {len(rep['kernels'])} variants, {len(rep['failures'])} failures "
              f"-> {stem}.{{json,md}}")  # fmt: skip
        for line in rep["failures"]:
            print(f"  FAIL {line}")
        failed += len(rep["failures"])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
