"""Peak throughput of the GPUs the benchmarks compare against (vendor datasheets, SXM parts).

``bf16``: dense bf16/fp16 tensor-core TFLOP/s; ``fp32``: non-tensor-core fp32 TFLOP/s (what an
IEEE fp32 ``tl.dot`` runs at); ``hbm``: memory bandwidth in GB/s.
"""

from __future__ import annotations

from typing import NamedTuple


class Peaks(NamedTuple):
    bf16: float
    fp32: float
    hbm: float


GPU_PEAKS = {
    "H100": Peaks(989.0, 67.0, 3350.0),
    "H200": Peaks(989.0, 67.0, 4800.0),
    "A100": Peaks(312.0, 19.5, 2039.0),
    "B200": Peaks(2250.0, 80.0, 8000.0),
}

# The GPU whose peaks stand for a compute capability in the AOT roofline estimates.
ARCH_GPU = {80: "A100", 90: "H100", 100: "B200"}


def peaks_for(device_name: str) -> Peaks | None:
    """Peaks of the first known GPU named in ``device_name`` (e.g. "NVIDIA H100 80GB HBM3")."""
    return next((p for k, p in GPU_PEAKS.items() if k in device_name), None)
