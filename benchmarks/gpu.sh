#!/usr/bin/env bash
# ms/frame at the paper size on a GPU (fp32, bf16, torch.compile) and peak GPU memory,
# to compare with the paper's 0.035 s/frame. Exits 0 with a message where there is no GPU.
set -euo pipefail
cd "$(dirname "$0")/.."
PY="${PY:-.venv/bin/python}"
if ! command -v nvidia-smi >/dev/null 2>&1 || ! nvidia-smi -L >/dev/null 2>&1; then
    echo "gpu.sh: no NVIDIA GPU on this machine (nvidia-smi missing or finds none); skipping."
    exit 0
fi
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader
exec "$PY" benchmarks/bench_gpu.py "$@"
