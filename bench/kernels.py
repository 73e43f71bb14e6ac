"""Benchmark of qengine.kernels against eager PyTorch, torch.compile, Liger-Kernel and Cut
Cross-Entropy (each where installed), in the same run.

GPU mode (default with CUDA): per op, forward / backward / full; median (p20, p80) time from
``triton.testing.do_bench``, peak memory, achieved TFLOP/s or GB/s and the roofline fraction.
Shapes: N=8192, D=4096, V in {32000, 128256}, bf16; DPO with 4 pairs x 1024 tokens.
CPU mode (``--cpu`` or no CUDA): small shapes, the PyTorch reference path against plain eager
code, so that this script runs in CI anywhere.

FLOP / byte counts (compulsory work only, so recomputation shows up as a lower fraction):
fused linear log-probs forward 2NVD, backward 4NVD (dh and dW); logits log-probs forward reads
N*V elements once, backward reads and writes them once each.

    python bench/kernels.py                 # GPU, writes bench/results/kernels-<gpu>.json
    python bench/kernels.py --cpu --json bench/results/kernels-cpu.json
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch
from hardware import peaks_for

from qengine import kernels as K

RESULTS = Path(__file__).resolve().parent / "results"


# ----------------------------------------------------------------------------- eager baselines
def eager_token_logprobs(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """What a user writes without kernels: log_softmax(...).gather(...)."""
    valid = target != -100
    lp = torch.log_softmax(logits.float(), -1).gather(-1, target.clamp_min(0)[:, None])
    return lp.squeeze(-1) * valid


def eager_fused_linear_logprobs(h, w, target):
    return eager_token_logprobs(h @ w.t(), target)


def eager_dpo(h, w, rw, target, beta=0.1):
    lp = eager_fused_linear_logprobs(h, w, target).view(8, -1).sum(-1)
    with torch.no_grad():
        rl = eager_fused_linear_logprobs(h, rw, target).view(8, -1).sum(-1)
    delta = (lp[:4] - rl[:4]) - (lp[4:] - rl[4:])
    return -torch.nn.functional.logsigmoid(beta * delta).mean()


# ----------------------------------------------------------------------------- timing
def _time_cpu(fn: Callable[[], object], reps: int) -> tuple[float, float, float]:
    fn()
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        fn()
        ts.append((time.perf_counter() - t0) * 1e3)
    ts.sort()
    return statistics.median(ts), ts[len(ts) // 5], ts[(4 * len(ts)) // 5]


def _time_gpu(fn: Callable[[], object], grad_to_none) -> tuple[float, float, float]:
    from triton.testing import do_bench

    p50, p20, p80 = do_bench(fn, quantiles=[0.5, 0.2, 0.8], grad_to_none=grad_to_none)
    return p50, p20, p80


def measure(
    make_loss: Callable[[], torch.Tensor], leaves: list[torch.Tensor], mode: str, gpu: bool,
    reps: int,
) -> dict:  # fmt: skip
    """Time ``mode`` in {fwd, bwd, full} of the scalar ``make_loss`` and record peak memory."""
    if mode == "fwd":

        def fn():
            with torch.no_grad():
                return make_loss()
    elif mode == "bwd":
        loss = make_loss()

        def fn():
            loss.backward(retain_graph=True)
    else:

        def fn():
            make_loss().backward()

    if gpu:
        torch.cuda.synchronize()
        torch.cuda.empty_cache()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        p50, p20, p80 = _time_gpu(fn, leaves)
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    else:
        p50, p20, p80 = _time_cpu(fn, reps)
        peak = None  # no allocator statistics on CPU
    for x in leaves:
        x.grad = None
    return {"ms": p50, "ms_p20": p20, "ms_p80": p80, "peak_mib": peak}


# ----------------------------------------------------------------------------- cases
def _inputs(n, d, v, dtype, device, seed=0):
    g = torch.Generator(device="cpu").manual_seed(seed)
    h = (torch.randn(n, d, generator=g) / 2).to(device, dtype).requires_grad_()
    w = (torch.randn(v, d, generator=g) / d**0.5).to(device, dtype).requires_grad_()
    t = torch.randint(0, v, (n,), generator=g).to(device)
    t[: n // 8] = -100  # prompt tokens
    return h, w, t


def fused_linear_cases(n, d, v, dtype, device, gpu):
    h, w, t = _inputs(n, d, v, dtype, device)
    impls: dict[str, Callable[[], torch.Tensor]] = {
        "eager": lambda: eager_fused_linear_logprobs(h, w, t).sum(),
        "reference": lambda: K.fused_linear_logprobs(h, w, t, impl="torch").logp.sum(),
    }
    if gpu:
        impls["qengine"] = lambda: K.fused_linear_logprobs(h, w, t, impl="triton").logp.sum()
        compiled = torch.compile(eager_fused_linear_logprobs)
        impls["torch.compile"] = lambda: compiled(h, w, t).sum()
        try:
            from liger_kernel.transformers import LigerFusedLinearCrossEntropyLoss

            lce = LigerFusedLinearCrossEntropyLoss(reduction="sum")
            impls["liger"] = lambda: -lce(w, h, t)
        except ImportError:
            pass
        try:
            from cut_cross_entropy import linear_cross_entropy

            impls["cce"] = lambda: -linear_cross_entropy(h, w, t, reduction="sum")
        except ImportError:
            pass
    flops = {"fwd": 2 * n * v * d, "bwd": 4 * n * v * d, "full": 6 * n * v * d}
    return f"fused_linear_logprobs N={n} D={d} V={v}", impls, [h, w], flops, "flop"


def logits_cases(n, v, dtype, device, gpu):
    g = torch.Generator(device="cpu").manual_seed(1)
    x = (torch.randn(n, v, generator=g) * 3).to(device, dtype).requires_grad_()
    t = torch.randint(0, v, (n,), generator=g).to(device)
    impls = {
        "eager": lambda: eager_token_logprobs(x, t).sum(),
        "reference": lambda: K.token_logprobs(x, t, impl="torch").logp.sum(),
    }
    if gpu:
        impls["qengine"] = lambda: K.token_logprobs(x, t, impl="triton").logp.sum()
        compiled = torch.compile(eager_token_logprobs)
        impls["torch.compile"] = lambda: compiled(x, t).sum()
    e = x.element_size()
    nbytes = {"fwd": n * v * e, "bwd": 2 * n * v * e, "full": 3 * n * v * e}
    return f"token_logprobs N={n} V={v}", impls, [x], nbytes, "byte"


def dpo_cases(t_len, d, v, dtype, device, gpu):
    n = 8 * t_len  # 4 pairs: 4 chosen then 4 rejected sequences
    h, w, t = _inputs(n, d, v, dtype, device)
    t = t.view(8, t_len).clone()
    t[:, : t_len // 4] = -100
    tf = t.view(-1)
    rw = (w.detach() + 0.01 * torch.randn_like(w)).requires_grad_(False)
    h3 = h.view(8, t_len, d)

    def ours(impl):
        return lambda: K.fused_linear_dpo_loss(h3, w, t, ref_weight=rw, impl=impl).loss

    impls = {"eager": lambda: eager_dpo(h, w, rw, tf), "reference": ours("torch")}
    if gpu:
        impls["qengine"] = ours("triton")
        compiled = torch.compile(eager_dpo)
        impls["torch.compile"] = lambda: compiled(h, w, rw, tf)
        try:
            from liger_kernel.chunked_loss import LigerFusedLinearDPOLoss

            ldpo = LigerFusedLinearDPOLoss(beta=0.1, use_ref_model=True)
            impls["liger"] = lambda: ldpo(w, h3, t, ref_input=h3, ref_weight=rw)[0]
        except ImportError:
            pass
    # policy fwd + reference fwd (no grad) + policy bwd
    flops = {"fwd": 4 * n * v * d, "bwd": 4 * n * v * d, "full": 8 * n * v * d}
    return f"dpo_loss 4x{t_len} D={d} V={v}", impls, [h, w], flops, "flop"


# ----------------------------------------------------------------------------- driver
def run(args) -> dict:
    gpu = torch.cuda.is_available() and not args.cpu
    device = "cuda" if gpu else "cpu"
    name = torch.cuda.get_device_name() if gpu else platform.processor() or platform.machine()
    peaks = peaks_for(name) if gpu else None
    if gpu:
        dtype = torch.bfloat16
        cases = [fused_linear_cases(8192, 4096, v, dtype, device, gpu) for v in (32000, 128256)]
        cases += [logits_cases(8192, v, dtype, device, gpu) for v in (32000, 128256)]
        cases += [dpo_cases(1024, 4096, v, dtype, device, gpu) for v in (32000, 128256)]
    else:
        dtype = torch.float32
        n, d, v = (64, 32, 500) if args.tiny else (512, 128, 8000)
        cases = [
            fused_linear_cases(n, d, v, dtype, device, gpu),
            logits_cases(n, v, dtype, device, gpu),
            dpo_cases(n // 8, d, v, dtype, device, gpu),
        ]
    rows = []
    for label, impls, leaves, work, unit in cases:
        for impl, make_loss in impls.items():
            for mode in ("fwd", "bwd", "full"):
                try:
                    r = measure(make_loss, leaves, mode, gpu, args.reps)
                except Exception as exc:  # a baseline failing must not sink the run
                    print(f"  {label} {impl} {mode}: failed ({type(exc).__name__}: {exc})")
                    continue
                rate = work[mode] / (r["ms"] * 1e-3)
                r.update(case=label, impl=impl, mode=mode, unit=unit)
                if unit == "flop":
                    r["tflops"] = rate / 1e12
                    r["roofline"] = r["tflops"] / peaks.bf16 if peaks else None
                else:
                    r["gbps"] = rate / 1e9
                    r["roofline"] = r["gbps"] / peaks.hbm if peaks else None
                rows.append(r)
    return {
        "mode": "gpu" if gpu else "cpu",
        "device": name,
        "machine": {"platform": platform.platform(), "python": platform.python_version()},
        "torch": torch.__version__,
        "triton": _version("triton"),
        "dtype": str(dtype).removeprefix("torch."),
        "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "results": rows,
    }


def _version(mod: str) -> str | None:
    try:
        return __import__(mod).__version__
    except ImportError:
        return None


def print_table(report: dict) -> None:
    print(f"# {report['device']} ({report['mode']}, {report['dtype']}, torch {report['torch']})")
    hdr = f"{'case':<42} {'impl':<14} {'mode':<5} {'ms':>9} {'vs eager':>9} {'rate':>14} "
    print(hdr + f"{'roof':>6} {'peak MiB':>9}")
    eager = {(r["case"], r["mode"]): r["ms"] for r in report["results"] if r["impl"] == "eager"}
    for r in report["results"]:
        base = eager.get((r["case"], r["mode"]))
        ratio = f"{base / r['ms']:.2f}x" if base else "-"
        rate = f"{r['tflops']:.2f} TFLOP/s" if "tflops" in r else f"{r['gbps']:.1f} GB/s"
        roof = f"{r['roofline']:.0%}" if r.get("roofline") is not None else "-"
        peak = "-" if r["peak_mib"] is None else f"{r['peak_mib']:.1f}"
        print(
            f"{r['case']:<42} {r['impl']:<14} {r['mode']:<5} {r['ms']:>9.3f} {ratio:>9} "
            f"{rate:>14} {roof:>6} {peak:>9}"
        )


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    ap.add_argument("--cpu", action="store_true", help="small CPU mode (automatic without CUDA)")
    ap.add_argument("--tiny", action="store_true", help="CPU mode at tiny sizes (tests)")
    ap.add_argument("--reps", type=int, default=5, help="CPU repetitions per measurement")
    ap.add_argument("--json", type=Path, default=None, help="output JSON path")
    args = ap.parse_args(argv)
    report = run(args)
    print_table(report)
    out = args.json
    if out is None:
        tag = "cpu" if report["mode"] == "cpu" else report["device"].replace(" ", "-").lower()
        out = RESULTS / f"kernels-{tag}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1) + "\n")
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
