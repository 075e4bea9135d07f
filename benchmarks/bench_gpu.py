"""ms/frame of STSANet on a GPU at the paper size: fp32, bf16 autocast, torch.compile; peak memory.

    .venv/bin/python benchmarks/bench_gpu.py [--batch 1] [--repeats 20] [--no-compile]

One forward of a 32-frame clip yields the map of one frame (sliding-window inference), so
ms/frame = ms per clip forward / 1 at batch 1, and ms per forward / batch otherwise; the paper
reports 0.035 s/frame. Exits with status 0 and a message when no CUDA device is present.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
PAPER_S_PER_FRAME = 0.035


def measure(model, clip, repeats: int, dtype=None) -> dict:
    torch.cuda.reset_peak_memory_stats()

    def step():
        with torch.no_grad(), torch.autocast("cuda", dtype=dtype, enabled=dtype is not None):
            return model(clip)

    for _ in range(3):
        step()
    torch.cuda.synchronize()
    times = []
    for _ in range(repeats):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record()
        step()
        end.record()
        torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / clip.shape[0])  # ms per frame
    return {"ms_per_frame": statistics.median(times), "min": min(times), "max": max(times),
            "peak_mem_mib": torch.cuda.max_memory_allocated() / 2**20}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--no-compile", action="store_true")
    args = parser.parse_args()
    if not torch.cuda.is_available():
        print("bench_gpu: no CUDA device visible to torch "
              f"(torch {torch.__version__}); nothing to measure. Run on a GPU machine with a "
              "CUDA build of torch.")
        return
    from stsanet.models import STSANet

    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda")
    torch.manual_seed(0)
    ref = STSANet(fast=False).eval().to(device)
    fast = STSANet().eval().to(device)
    fast.load_state_dict(ref.state_dict())
    clip = torch.rand(args.batch, 3, 32, 224, 384, device=device)
    rows = {"reference fp32": measure(ref, clip, args.repeats),
            "fast fp32": measure(fast, clip, args.repeats),
            "fast bf16 autocast": measure(fast, clip, args.repeats, torch.bfloat16)}
    with torch.no_grad():
        diff = float((ref(clip) - fast(clip)).abs().max())
    if not args.no_compile:
        compiled = torch.compile(fast)
        rows["fast fp32 torch.compile"] = measure(compiled, clip, args.repeats)
        rows["fast bf16 torch.compile"] = measure(compiled, clip, args.repeats, torch.bfloat16)
    name = torch.cuda.get_device_name(device)
    lines = [f"{name}, batch {args.batch}, 3 x 32 x 224 x 384, torch {torch.__version__}",
             f"{'what':28s} {'ms/frame':>9s} {'min-max':>15s} {'peak MiB':>9s} {'vs paper':>9s}"]
    for k, r in rows.items():
        lines.append(f"{k:28s} {r['ms_per_frame']:9.2f} {r['min']:7.2f}-{r['max']:<7.2f} "
                     f"{r['peak_mem_mib']:9.0f} {PAPER_S_PER_FRAME * 1000 / r['ms_per_frame']:8.2f}x")
    lines.append(f"fast vs reference fp32 max |diff| = {diff:.3g} (TF32 off)")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"bench_gpu-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps({"device": name, "rows": rows,
                                                     "max_abs_diff": diff}, indent=1))
    stem.with_suffix(".txt").write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
