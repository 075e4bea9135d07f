"""The GPU benchmark exits cleanly, with a message, on a machine without a GPU."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.skipif(torch.cuda.is_available(), reason="this checks the CPU-only exit")
def test_gpu_benchmark_exits_cleanly_without_cuda():
    done = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "no CUDA device" in done.stdout


def test_gpu_shell_script_exits_cleanly_without_nvidia_smi(tmp_path):
    # a PATH without nvidia-smi stands for a CPU-only machine
    env = dict(os.environ, PATH=f"{tmp_path}:/usr/bin:/bin", PY=sys.executable)
    done = subprocess.run(["bash", str(ROOT / "benchmarks" / "gpu.sh")], capture_output=True,
                          text=True, timeout=120, env=env)
    if Path("/usr/bin/nvidia-smi").exists():
        pytest.skip("nvidia-smi is installed system-wide")
    assert done.returncode == 0, done.stderr
    assert "no NVIDIA GPU" in done.stdout
