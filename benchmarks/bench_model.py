"""Forward and training-step time and peak memory of STSANet on this machine (the baseline).

    .venv/bin/python benchmarks/bench_model.py [--size 224 384] [--repeats 3] [--warmup 1]

Each phase runs in its own process so its peak RSS is its own:
  forward  model.eval(), torch.no_grad(), batch 1;
  train    model.train(), forward + KL - CC loss + backward + Adam step, batch 1.
Times are medians over --repeats after --warmup untimed runs. --formulation reference (default)
is the plain official computation, the baseline; fast is the batched path. The table is printed and the
JSON written to benchmarks/results/ (not versioned). The paper size uses the official
full-shape norm; other sizes use the resolution-agnostic norm.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import time
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "results"
PAPER_SIZE = (224, 384)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def build(size, unpool, formulation):
    import torch

    from stsanet.models import STSANet

    torch.manual_seed(0)
    norm = "full_shape" if tuple(size) == PAPER_SIZE else "agnostic"
    return STSANet(norm=norm, unpool=unpool, input_size=size, fast=formulation == "fast")


def run_phase(phase: str, size, repeats: int, warmup: int, unpool: str, formulation: str) -> dict:
    import torch

    t0 = time.perf_counter()
    model = build(size, unpool, formulation)
    build_s = time.perf_counter() - t0
    rss_model = peak_rss_mb()
    g = torch.Generator().manual_seed(1)
    clip = torch.rand(1, 3, 32, *size, generator=g)
    result = {"phase": phase, "build_s": build_s, "rss_after_build_mb": rss_model}

    if phase == "forward":
        model.eval()
        times = []
        with torch.no_grad():
            for i in range(warmup + repeats):
                t = time.perf_counter()
                model(clip)
                if i >= warmup:
                    times.append(time.perf_counter() - t)
        result.update(forward_s=statistics.median(times), forward_runs_s=times)
    else:
        from stsanet.metrics.loss import kl_cc_loss

        model.train()
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-4)
        target = torch.rand(1, *size, generator=g) ** 4
        runs = []
        for i in range(warmup + repeats):
            t = time.perf_counter()
            optimizer.zero_grad(set_to_none=True)
            loss = kl_cc_loss(model(clip), target)
            t_fwd = time.perf_counter()
            loss.backward()
            t_bwd = time.perf_counter()
            optimizer.step()
            t_end = time.perf_counter()
            if i >= warmup:
                runs.append({"forward_s": t_fwd - t, "backward_s": t_bwd - t_fwd,
                             "adam_s": t_end - t_bwd, "step_s": t_end - t})
        result.update({k: statistics.median(r[k] for r in runs) for k in runs[0]})
        result["step_runs_s"] = [r["step_s"] for r in runs]
    result["peak_rss_mb"] = peak_rss_mb()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--size", nargs=2, type=int, default=list(PAPER_SIZE), metavar=("H", "W"))
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--unpool", default="maxunpool", choices=["maxunpool", "export_friendly"])
    parser.add_argument("--formulation", default="reference", choices=["reference", "fast"],
                        help="reference = the plain official formulation (the baseline)")
    parser.add_argument("--threads", type=int, default=min(2, os.cpu_count() or 1))
    parser.add_argument("--phases", nargs="+", default=["forward", "train"],
                        choices=["forward", "train"])
    parser.add_argument("--phase", help=argparse.SUPPRESS)  # child process mode
    args = parser.parse_args()
    if args.repeats < 1 or args.warmup < 0:
        parser.error("--repeats must be >= 1 and --warmup >= 0")

    if args.phase:
        import torch

        torch.set_num_threads(args.threads)
        print(json.dumps(run_phase(args.phase, args.size, args.repeats, args.warmup, args.unpool,
                                   args.formulation)))
        return

    results = []
    for phase in args.phases:
        cmd = [sys.executable, __file__, "--phase", phase, "--size", *map(str, args.size),
               "--repeats", str(args.repeats), "--warmup", str(args.warmup),
               "--unpool", args.unpool, "--threads", str(args.threads),
               "--formulation", args.formulation]
        proc = subprocess.run(cmd, capture_output=True, text=True)
        if proc.returncode != 0:
            sys.exit(f"bench_model: the {phase} phase failed:\n{proc.stderr[-3000:]}")
        results.append(json.loads(proc.stdout.strip().splitlines()[-1]))

    import torch

    h, w = args.size
    print(f"STSANet 1 x 3 x 32 x {h} x {w}, {args.formulation} formulation, unpool={args.unpool}, "
          f"torch {torch.__version__}, "
          f"{args.threads} threads, median of {args.repeats} (+{args.warmup} warm-up)")
    print(f"load average at the end: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    print(f"{'phase':<9} {'time (s)':>9} {'fwd':>7} {'bwd':>7} {'adam':>6} {'peak RSS (GB)':>14}")
    for r in results:
        if r["phase"] == "forward":
            print(f"{'forward':<9} {r['forward_s']:>9.2f} {'':>7} {'':>7} {'':>6} "
                  f"{r['peak_rss_mb'] / 1024:>14.2f}")
        else:
            print(f"{'train':<9} {r['step_s']:>9.2f} {r['forward_s']:>7.2f} {r['backward_s']:>7.2f} "
                  f"{r['adam_s']:>6.2f} {r['peak_rss_mb'] / 1024:>14.2f}")

    RESULTS.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    out = RESULTS / f"bench_model-{args.formulation}-{h}x{w}-{stamp}.json"
    payload = {"size": [h, w], "unpool": args.unpool, "formulation": args.formulation, "threads": args.threads,
               "repeats": args.repeats, "warmup": args.warmup, "torch": torch.__version__,
               "machine": platform.machine(), "cpu_count": os.cpu_count(),
               "load_average": os.getloadavg(), "results": results}
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(payload, indent=2))
    os.replace(tmp, out)
    print(f"written {out.relative_to(Path.cwd()) if out.is_relative_to(Path.cwd()) else out}")


if __name__ == "__main__":
    main()
