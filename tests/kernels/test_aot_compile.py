"""Every Triton kernel compiles for real GPUs (sm_80, sm_90, sm_100) without spills: no GPU needed.

The compile runs in a subprocess: this test session interprets kernels (``TRITON_INTERPRET=1``,
see conftest.py), and interpreted kernels cannot be compiled.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

pytestmark = pytest.mark.triton


def _run(code: str, tmp_path, timeout: int = 1500) -> subprocess.CompletedProcess:
    """Run ``code`` as a script file (Triton reads a kernel's source from its file)."""
    env = {**os.environ, "TRITON_INTERPRET": "0", "TRITON_CACHE_DIR": str(tmp_path / "cache")}
    script = tmp_path / f"script_{abs(hash(code))}.py"
    script.write_text(textwrap.dedent(code))
    return subprocess.run(
        [sys.executable, str(script)],
        capture_output=True, text=True, cwd=tmp_path, env=env, timeout=timeout,
    )  # fmt: skip


def test_every_kernel_variant_compiles_without_spills(tmp_path):
    out = tmp_path / "aot.json"
    res = _run(
        f"""
        import sys
        from qengine.kernels import aot
        if __name__ == "__main__":  # the compile workers are spawned: they import this file
            sys.exit(aot.main(["--arch", "80", "90", "100", "--json", {str(out)!r}]))
        """,
        tmp_path,
    )
    assert res.returncode == 0, res.stdout[-6000:] + res.stderr[-3000:]
    results = json.loads(out.read_text())
    archs = {r["arch"] for r in results}
    assert {80, 90} <= archs, archs
    # Every @triton.jit kernel of the package is launched by some variant (none escapes the check).
    res = _run(
        """
        import importlib, pkgutil, qengine.kernels as K
        from triton.runtime.jit import JITFunction
        names = set()
        for m in pkgutil.iter_modules(K.__path__):
            mod = importlib.import_module(f"qengine.kernels.{m.name}")
            names |= {n for n, v in vars(mod).items() if isinstance(v, JITFunction)
                      and n.endswith("_kernel")}
        print(" ".join(sorted(names)))
        """,
        tmp_path,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    kernels = set(res.stdout.split())
    assert len(kernels) >= 7, kernels
    compiled = {r["name"] for r in results}
    assert kernels == compiled, f"kernels not compiled: {kernels - compiled}"
    for r in results:
        assert r["error"] is None and r["spill_bytes"] == 0, r
        assert 0 < r["registers"] <= 255 and r["resident_warps_per_sm"] >= r["num_warps"], r
        if r["uses_dot"] and not r["variant"].startswith("fp32"):
            assert r["tensor_core_op"] == {80: "mma.sync", 90: "wgmma.mma_async"}.get(
                r["arch"], r["tensor_core_op"]
            ), r
    dtypes = {r["variant"].split(",")[0] for r in results}
    assert dtypes == {"fp32", "bf16", "fp16"}


def test_check_reports_compile_errors_spills_and_shared_memory(tmp_path):
    """The check is not vacuous: a non-constexpr global, a spilling tile and an oversized
    pipeline each fail it (the first two are what the kernels did before this check existed)."""
    res = _run(
        """
        import torch, triton, triton.language as tl
        from qengine.kernels import aot
        from qengine.kernels._triton import capture_launches, launch
        from qengine.kernels.fused_linear_logprobs import (
            FusedLinearConfig, fused_linear_logprobs_forward)

        NOT_CONSTEXPR = -1.0e30

        @triton.jit
        def _global_kernel(x_ptr, BLOCK: tl.constexpr):
            tl.store(x_ptr + tl.arange(0, BLOCK), tl.full([BLOCK], NOT_CONSTEXPR, tl.float32))

        def variant(label, call):
            with capture_launches() as launches:
                call()
            return aot.KernelVariant(launches[0].kernel.fn.__name__, label, launches[0])

        x = torch.empty(64, device="meta")
        m = lambda *s, dtype=torch.bfloat16: torch.empty(*s, device="meta", dtype=dtype)
        h, w, t = m(8192, 4096), m(128256, 4096), m(8192, dtype=torch.int32)
        old = FusedLinearConfig(block_n=128, block_v=128, block_d=64, num_warps=8, num_stages=3)
        huge = FusedLinearConfig(block_n=128, block_v=256, block_d=128, num_warps=8, num_stages=6)
        fwd = lambda cfg: lambda: fused_linear_logprobs_forward(
            h, w, None, t, temperature=1.0, softcap=30.0, cfg=cfg)
        results = [
            aot.compile_variant(
                variant("bf16", lambda: launch(_global_kernel, (1,), x, BLOCK=64)), 90
            ),
            aot.compile_variant(variant("bf16, softcap, old tile", fwd(old)), 90),
            aot.compile_variant(variant("bf16, softcap, huge", fwd(huge)), 80),
        ]
        for line in aot.failures(results):
            print(line)
        """,
        tmp_path,
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-3000:]
    lines = res.stdout.splitlines()
    assert any(
        "_global_kernel" in s and "compile error" in s and "NOT_CONSTEXPR" in s for s in lines
    )
    assert any("old tile" in s and "register spills" in s for s in lines), lines
    assert any("huge" in s and "shared memory" in s for s in lines), lines
