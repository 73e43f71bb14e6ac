"""Kernel tests run the Triton code on CPU through Triton's interpreter, or compiled on a GPU.

``TRITON_INTERPRET`` must be set before ``triton`` is first imported, so it is set here, at
collection time, before any test module imports ``qengine.kernels``. With
``QENGINE_TEST_DEVICE=cuda`` (bench/gpu_check.sh) the tests make their tensors on the GPU instead
(the default device) and the kernels are compiled, not interpreted.
"""

import os
import sys

_ON_GPU = os.environ.get("QENGINE_TEST_DEVICE", "cpu") == "cuda"
os.environ.setdefault("TRITON_INTERPRET", "0" if _ON_GPU else "1")
# The shared checks module sits next to this file; make it importable under any import mode.
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import pytest  # noqa: E402  (after TRITON_INTERPRET: pytest plugins may import triton)
from hypothesis import HealthCheck, settings  # noqa: E402

if _ON_GPU:
    import torch

    torch.set_default_device("cuda")

settings.register_profile(
    "kernels",
    max_examples=6,
    deadline=None,
    derandomize=True,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture],
)
settings.load_profile("kernels")


def pytest_collection_modifyitems(config, items):
    from qengine.kernels._triton import HAS_TRITON, TRITON_IMPORT_ERROR

    if HAS_TRITON:
        return
    skip = pytest.mark.skip(reason=f"triton not installed ({TRITON_IMPORT_ERROR}): Triton path")
    for item in items:
        if "triton" in item.keywords:
            item.add_marker(skip)


def pytest_configure(config):
    config.addinivalue_line("markers", "triton: runs a Triton kernel (interpreted on CPU)")
