#!/usr/bin/env bash
# One GPU check, ready to run on a CUDA machine (target: under 8 minutes on an H100/H200):
#   1. the kernel tests with the kernels compiled for this GPU (no interpreter);
#   2. bench/kernels.py (qengine vs eager / torch.compile / Liger / CCE where installed);
# results land in ${OUT:-bench/results}: kernels-<gpu>.json (the GPU's name inside) and the test log.
#
#   bash bench/gpu_check.sh            # from the repository root, qengine installed with torch+CUDA
set -euo pipefail
cd "$(dirname "$0")/.."
OUT=${OUT:-bench/results}
mkdir -p "$OUT"

GPU=$(python -c "import torch; assert torch.cuda.is_available(), 'no CUDA device'; print(torch.cuda.get_device_name())")
TAG=$(echo "$GPU" | tr ' ' '-' | tr '[:upper:]' '[:lower:]')
echo "== $GPU (torch $(python -c 'import torch; print(torch.__version__)'), triton $(python -c 'import triton; print(triton.__version__)'))"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true

echo "== kernel tests, compiled for the GPU"
# The AOT compile check needs no GPU and runs in CI; here the kernels run for real.
QENGINE_TEST_DEVICE=cuda TRITON_INTERPRET=0 timeout 240 \
  python -m pytest -q -p no:cacheprovider tests/kernels --ignore=tests/kernels/test_aot_compile.py \
  2>&1 | tee "$OUT/kernel-tests-$TAG.log"

echo "== kernel benchmark"
timeout 300 python bench/kernels.py --json "$OUT/kernels-$TAG.json"
