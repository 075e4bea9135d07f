"""ms/frame of STSANet on a GPU at the paper size: eager and compiled, fp32 and bf16; peak memory.

    .venv/bin/python benchmarks/bench_gpu.py [--batch 1] [--repeats 20] [--no-compile]

One forward of a 32-frame clip yields the map of one frame (sliding-window inference), so
ms/frame = ms per clip forward / 1 at batch 1, and ms per forward / batch otherwise; the paper
reports 0.035 s/frame. Every variant is an `InferenceModel` (the predictor's), bf16 with the
model's precision policy; CC and max |difference| of each map against eager fp32 are printed.
Exits with status 0 and a message when no CUDA device is present.
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


def measure(model, clip, repeats: int) -> dict:
    torch.cuda.reset_peak_memory_stats()

    def step():
        return model(clip)

    start = time.perf_counter()
    step()
    torch.cuda.synchronize()
    first = time.perf_counter() - start
    for _ in range(2):
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
            "peak_mem_mib": torch.cuda.max_memory_allocated() / 2**20, "first_call_s": first}


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
    from stsanet.models.inference import InferenceModel

    torch.backends.cudnn.benchmark = True
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    device = torch.device("cuda")
    torch.manual_seed(0)
    net = STSANet().eval()
    clip = torch.rand(args.batch, 3, 32, 224, 384, device=device)
    variants = {"eager fp32": ("fp32", False), "eager bf16": ("bf16", False)}
    if not args.no_compile:
        variants.update({"compiled fp32": ("fp32", True), "compiled bf16": ("bf16", True)})
    rows, maps = {}, {}
    for name, (precision, compile) in variants.items():
        model = InferenceModel(net, device, precision, compile)
        rows[name] = measure(model, clip, args.repeats)
        maps[name] = model(clip).double().flatten()
    reference = maps["eager fp32"]
    for name, m in maps.items():
        a, b = m - m.mean(), reference - reference.mean()
        rows[name]["cc_vs_eager_fp32"] = float((a * b).sum() / (a.norm() * b.norm()))
        rows[name]["max_abs_diff"] = float((m - reference).abs().max())
    name = torch.cuda.get_device_name(device)
    lines = [f"{name}, batch {args.batch}, 3 x 32 x 224 x 384, torch {torch.__version__}, TF32 off",
             f"{'what':16s} {'ms/frame':>9s} {'min-max':>15s} {'peak MiB':>9s} {'vs paper':>9s} "
             f"{'first call s':>12s} {'CC vs fp32':>10s} {'max diff':>9s}"]
    for k, r in rows.items():
        lines.append(f"{k:16s} {r['ms_per_frame']:9.2f} {r['min']:7.2f}-{r['max']:<7.2f} "
                     f"{r['peak_mem_mib']:9.0f} {PAPER_S_PER_FRAME * 1000 / r['ms_per_frame']:8.2f}x "
                     f"{r['first_call_s']:12.1f} {r['cc_vs_eager_fp32']:10.6f} {r['max_abs_diff']:9.2g}")
    text = "\n".join(lines)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"bench_gpu-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps({"device": name, "rows": rows}, indent=1))
    stem.with_suffix(".txt").write_text(text + "\n")


if __name__ == "__main__":
    sys.exit(main())
