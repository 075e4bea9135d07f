"""The benchmark scoring route at scale, measured in one run: metrics, evaluation workers, DDP.

    .venv/bin/python benchmarks/bench_eval.py [--frames 20] [--eval-frames 160] [--repeats 5]
        [--phases metrics,eval,ddp]

* metrics: the seven benchmark metrics of one 360 x 640 frame in memory (8-bit prediction,
  DHF1K-like maps and fixations, s-AUC's other map from 10 frames), as formulated before
  (tests/metrics_reference.py: one Python-level split at a time, every metric normalising for
  itself; the baseline) and now (`stsanet.metrics.evaluate.score_frame`), interleaved, with
  every value checked equal; ms per frame per metric and in all.
* eval: `evaluate_items` + `write_results` (what stsanet-eval does after parsing its config)
  over --eval-frames 360 x 640 frames written as PNGs, with 1 and 2 workers, interleaved;
  frames/s, the speed-up, and the DHF1K validation split (58,000 frames) extrapolated to an
  8-CPU job from the measured rate and the measured 2-worker efficiency (stated as such).
* ddp: `score_network` (predict + eval route) of 2 synthetic evaluation videos under gloo with
  1 rank and with 2 ranks, one thread each (as each rank has its own device), and 1 rank with
  2 threads; rank 0's wall time of the prediction phase and of the whole call.
Medians over the repeats; the load average is printed beside them: on a shared machine the
ratios are the comparable numbers. Results go to benchmarks/results/bench_eval-*.{json,txt}.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
sys.path.insert(0, str(HERE.parent / "tests"))  # the previous metric formulation, the baseline
sys.path.insert(0, str(HERE))

DHF1K_VAL_FRAMES = 58_000
FRAME = (360, 640)
OBSERVERS = 24  # fixated pixels per DHF1K-like frame
SIGMA = 30 / (2 * np.sqrt(2 * np.log(2)))  # DHF1K's 30 px FWHM


def _gaussians(points, shape, sigma) -> np.ndarray:
    rows = np.arange(shape[0])[:, None]
    cols = np.arange(shape[1])[None, :]
    out = np.zeros(shape)
    for r, c in points:
        out += np.exp(-((rows - r) ** 2) / (2 * sigma**2)) * np.exp(-((cols - c) ** 2) / (2 * sigma**2))
    return out


def make_frames(count: int, seed: int = 0) -> list[dict]:
    """DHF1K-like frames: fixations around a few attended points, the GT map (Gaussians of 30 px
    FWHM, 8-bit), an 8-bit prediction that roughly follows it, a fixation mask."""
    rng = np.random.default_rng(seed)
    h, w = FRAME
    frames = []
    for _ in range(count):
        centres = np.stack([rng.uniform(60, h - 60, 3), rng.uniform(80, w - 80, 3)], 1)
        points = centres[rng.integers(0, 3, OBSERVERS)] + rng.normal(0, 20, (OBSERVERS, 2))
        points = np.clip(np.round(points), 0, [h - 1, w - 1]).astype(int)
        fixations = np.zeros(FRAME, bool)
        fixations[points[:, 0], points[:, 1]] = True
        gt = _gaussians(points, FRAME, SIGMA)
        gt = np.round(gt / gt.max() * 255).astype(np.uint8)
        guess = centres + rng.normal(0, 25, centres.shape)
        pred = _gaussians(guess, FRAME, 45.0) + 0.3 * _gaussians([(h / 2, w / 2)], FRAME, 120.0)
        pred = np.round(pred / pred.max() * 255).astype(np.uint8)
        frames.append({"pred": pred, "gt": gt, "fixations": fixations})
    return frames


def cpu_line() -> str:
    from bench_speed import cpu_features

    cpu = cpu_features()
    return (f"CPU: {cpu['model']}; AVX-512 {'yes' if cpu['avx512'] else 'no'}, AMX "
            f"{'yes' if cpu['amx'] else 'no'}; {len(os.sched_getaffinity(0))} CPUs usable")


def phase_metrics(count: int, repeats: int) -> dict:
    import metrics_reference as reference

    from stsanet.metrics import benchmark
    from stsanet.metrics.evaluate import BENCHMARK_COLUMNS, EvalSettings, score_frame
    from stsanet.metrics.eval_inputs import Fixations, other_fixation_map

    frames = make_frames(count)
    pool = [Fixations(FRAME, *np.nonzero(f["fixations"])) for f in frames]
    inputs = []
    for i, frame in enumerate(frames):
        picks = np.random.default_rng(100 + i).choice(len(pool), min(10, len(pool)), replace=False)
        inputs.append((frame["pred"].astype(np.float64), frame["gt"] / 255.0, frame["fixations"],
                       other_fixation_map(FRAME, (pool[j] for j in picks))))
    settings = EvalSettings()

    def before():
        return [reference.score_frame(p, g, f, o, np.random.default_rng(i))
                for i, (p, g, f, o) in enumerate(inputs)]

    def after():
        return [score_frame(p, g, f, o, BENCHMARK_COLUMNS, settings, np.random.default_rng(i))
                for i, (p, g, f, o) in enumerate(inputs)]

    equal = before() == after()
    totals = {}
    # glibc's default allocator first (this process), then as a scoring worker keeps freed
    # memory (mallopt, stsanet.metrics.evaluate): that cannot be undone, so it comes second
    for allocator in ("default allocator", "worker allocator"):
        if allocator == "worker allocator":
            from stsanet.metrics.evaluate import _reuse_freed_memory

            _reuse_freed_memory()
        for name, fn in (("before", before), ("after", after)):
            totals[f"{name}, {allocator}"] = {"cpu_ms": [], "wall_ms": []}
        for _ in range(repeats):
            for name, fn in (("before", before), ("after", after)):
                cpu, wall = time.process_time(), time.perf_counter()
                fn()
                runs = totals[f"{name}, {allocator}"]
                runs["cpu_ms"].append((time.process_time() - cpu) / count * 1e3)
                runs["wall_ms"].append((time.perf_counter() - wall) / count * 1e3)

    # each metric alone, on fresh arrays as a frame brings them (shared normalisations count once
    # in "all seven", here each metric pays its own)
    p, g, f, o = inputs[0]
    each_before = {
        "CC": lambda: reference.cc(p, g), "NSS": lambda: reference.nss(p, f),
        "SIM": lambda: reference.sim(p, g), "KL": lambda: reference.kl(p, g),
        "AUC-J": lambda: reference.auc_judd(p, f, seed=1),
        "s-AUC": lambda: reference.auc_shuffled(p, f, o, seed=1),
        "AUC-B": lambda: reference.auc_borji(p, f, seed=1)}
    each_after = {
        "CC": lambda: benchmark.cc(p, g), "NSS": lambda: benchmark.nss(p, f),
        "SIM": lambda: benchmark.sim(p, g), "KL": lambda: benchmark.kl(p, g),
        "AUC-J": lambda: benchmark.auc_judd(p, f, seed=1),
        "s-AUC": lambda: benchmark.auc_shuffled(p, f, o, seed=1),
        "AUC-B": lambda: benchmark.auc_borji(p, f, seed=1)}
    per_metric = {"before": {}, "after": {}}
    for metric in each_before:
        runs = {"before": [], "after": []}
        for _ in range(max(5, repeats)):
            for name, fn in (("before", each_before[metric]), ("after", each_after[metric])):
                start = time.process_time()
                fn()
                runs[name].append((time.process_time() - start) * 1e3)
        for name in runs:
            per_metric[name][metric] = statistics.median(runs[name])
    medians = {k: {unit: statistics.median(v) for unit, v in runs.items()} for k, runs in totals.items()}
    return {"frames": count, "values_equal": equal, "ms_per_frame": medians,
            "ms_per_frame_runs": totals, "cpu_ms_per_metric_worker_allocator": per_metric}


def write_folder_pair(root: Path, count: int, per_video: int = 40) -> tuple[Path, Path]:
    from PIL import Image

    frames = make_frames(count, seed=1)
    for i, frame in enumerate(frames):
        video, name = f"{i // per_video + 1:04d}", f"{i % per_video + 1:04d}.png"
        for folder, image in ((root / "gt" / video / "maps", frame["gt"]),
                              (root / "gt" / video / "fixation", frame["fixations"] * np.uint8(255)),
                              (root / "pred" / video, frame["pred"])):
            folder.mkdir(parents=True, exist_ok=True)
            Image.fromarray(image).save(folder / name)
    return root / "pred", root / "gt"


def phase_eval(count: int, repeats: int) -> dict:
    from stsanet.metrics.eval_inputs import folder_pair_items
    from stsanet.metrics.eval_results import write_results
    from stsanet.metrics.evaluate import EvalSettings, evaluate_items

    with tempfile.TemporaryDirectory() as tmp:
        pred_root, gt_root = write_folder_pair(Path(tmp), count)
        items = folder_pair_items(pred_root, gt_root)
        times = {1: [], 2: []}
        files = {}
        for repeat in range(repeats):
            for workers in times:
                out = Path(tmp) / f"out{workers}-{repeat}"
                start = time.perf_counter()
                results = evaluate_items(items, EvalSettings(), progress=False, workers=workers)
                paths = write_results(results, out)
                times[workers].append(time.perf_counter() - start)
                files[workers] = {k: p.read_bytes() for k, p in paths.items()}
    rate = {w: count / statistics.median(t) for w, t in times.items()}
    efficiency = rate[2] / (2 * rate[1])
    # workers share nothing but the fixation pool: linear in the CPUs a job has, unless the
    # measured 2-worker efficiency (on a loaded machine, other jobs' load too) says less
    linear = DHF1K_VAL_FRAMES / (8 * rate[1]) / 60
    measured = DHF1K_VAL_FRAMES / (8 * rate[1] * min(1.0, efficiency)) / 60
    return {"frames": count, "seconds": times, "frames_per_s": rate,
            "speedup_2_workers": rate[2] / rate[1], "efficiency_2_workers": efficiency,
            "same_files": files[1] == files[2],
            "dhf1k_minutes_8_cpus_extrapolated": {"linear": linear, "measured efficiency": measured}}


def _ddp_rank(rank: int, world: int, threads: int, init_file: str, root: str, out: str) -> None:
    import torch
    import torch.distributed as dist

    import stsanet.runs.scoring as scoring
    from bench_speed import spread_decoder
    from stsanet.data.index import build_index
    from stsanet.models import STSANet

    torch.set_num_threads(threads)
    marks = {}
    original = scoring.evaluate_items

    def timed_evaluate(*args, **kwargs):
        marks["predicted"] = time.perf_counter()
        return original(*args, **kwargs)

    scoring.evaluate_items = timed_evaluate
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        index = build_index("synthetic", root, use_cache=False)
        torch.manual_seed(0)
        net = spread_decoder(STSANet(norm="agnostic", input_size=(64, 96)))
        dist.barrier()
        start = time.perf_counter()
        scoring.score_network(net, index, scoring.ScoreOptions(workers=1, compile=False),
                              out, input_size=(64, 96))
        if rank == 0:
            Path(out, "timing.json").write_text(json.dumps(
                {"predict_s": marks["predicted"] - start, "total_s": time.perf_counter() - start}))
    finally:
        dist.destroy_process_group()


def phase_ddp(repeats: int) -> dict:
    import torch.multiprocessing as mp

    from stsanet.data.synthetic import SyntheticSize, generate

    setups = {"1 rank, 1 thread": (1, 1), "2 ranks, 1 thread each": (2, 1),
              "1 rank, 2 threads": (1, 2)}
    runs = {name: {"predict_s": [], "total_s": []} for name in setups}
    with tempfile.TemporaryDirectory() as tmp:
        root = generate(Path(tmp) / "data", size=SyntheticSize(videos=3, train_videos=1, frames=16))
        for repeat in range(repeats):
            for name, (world, threads) in setups.items():
                out = Path(tmp) / f"{world}x{threads}-{repeat}"
                out.mkdir()
                mp.spawn(_ddp_rank, args=(world, threads, str(out / "rendezvous"), str(root), str(out)),
                         nprocs=world, join=True)
                timing = json.loads((out / "timing.json").read_text())
                for key in timing:
                    runs[name][key].append(timing[key])
    medians = {name: {k: statistics.median(v) for k, v in r.items()} for name, r in runs.items()}
    base = medians["1 rank, 1 thread"]
    return {"videos": 2, "frames": 32, "input_size": [64, 96], "runs": runs, "medians": medians,
            "ratio_2_ranks_predict": medians["2 ranks, 1 thread each"]["predict_s"] / base["predict_s"],
            "ratio_2_ranks_total": medians["2 ranks, 1 thread each"]["total_s"] / base["total_s"]}


def report(result: dict) -> str:
    rows = [result["cpu"], f"load average at start {result['load_start']:.1f}"]
    m = result.get("metrics")
    if m:
        rows.append(f"metrics, all seven, one 360x640 frame in memory ({m['frames']} frames, medians; "
                    f"values {'identical' if m['values_equal'] else 'DIFFERENT'} before/after), "
                    f"ms per frame, CPU (wall):")
        for allocator in ("default allocator", "worker allocator"):
            b, a = m["ms_per_frame"][f"before, {allocator}"], m["ms_per_frame"][f"after, {allocator}"]
            rows.append(f"  {allocator:17s} before {b['cpu_ms']:6.2f} ({b['wall_ms']:6.2f}), after "
                        f"{a['cpu_ms']:6.2f} ({a['wall_ms']:6.2f}): {b['cpu_ms'] / a['cpu_ms']:.2f}x")
        base = m["ms_per_frame"]["before, default allocator"]["cpu_ms"]
        final = m["ms_per_frame"]["after, worker allocator"]["cpu_ms"]
        rows.append(f"  before (default allocator) -> after in a worker: {base / final:.2f}x; the MIT "
                    f"MATLAB code under Octave: 93.6 ms (issue 21, another machine)")
        per = m["cpu_ms_per_metric_worker_allocator"]
        rows.append("  each metric alone (worker allocator), CPU ms before -> after: " + ", ".join(
            f"{k} {per['before'][k]:.2f} -> {per['after'][k]:.2f}" for k in per["before"]))
    e = result.get("eval")
    if e:
        rows += [f"evaluation end to end ({e['frames']} 360x640 frames from PNG, results written): "
                 f"1 worker {e['frames_per_s'][1]:.1f} frames/s, 2 workers "
                 f"{e['frames_per_s'][2]:.1f} frames/s ({e['speedup_2_workers']:.2f}x; files "
                 f"{'identical' if e['same_files'] else 'DIFFERENT'})",
                 f"  DHF1K validation, {DHF1K_VAL_FRAMES} frames, 8-CPU job, EXTRAPOLATED from the "
                 f"1-worker rate: {e['dhf1k_minutes_8_cpus_extrapolated']['linear']:.1f} min with 8 "
                 f"workers scaling linearly, "
                 f"{e['dhf1k_minutes_8_cpus_extrapolated']['measured efficiency']:.1f} min at the "
                 f"2-worker efficiency measured here ({e['efficiency_2_workers']:.2f})"]
    d = result.get("ddp")
    if d:
        rows.append(f"scoring under DDP (gloo, {d['videos']} videos, {d['frames']} frames, model "
                    f"input {d['input_size'][0]}x{d['input_size'][1]}), rank 0's wall time:")
        for name, med in d["medians"].items():
            rows.append(f"  {name:24s} prediction {med['predict_s']:6.1f} s, whole call "
                        f"{med['total_s']:6.1f} s")
        rows.append(f"  2 ranks vs 1: prediction {d['ratio_2_ranks_predict']:.2f}x the wall time, "
                    f"whole call {d['ratio_2_ranks_total']:.2f}x")
    if "load_end" in result:
        rows.append(f"load average at end {result['load_end']:.1f} ({len(os.sched_getaffinity(0))} "
                    f"CPUs; a shared machine slows every column, the ratios are the comparable "
                    f"numbers)")
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=20, help="frames of the metrics phase")
    parser.add_argument("--eval-frames", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--ddp-repeats", type=int, default=2)
    parser.add_argument("--phases", default="metrics,eval,ddp")
    args = parser.parse_args()
    phases = set(args.phases.split(","))
    result = {"cpu": cpu_line(), "load_start": os.getloadavg()[0],
              "started": time.strftime("%Y-%m-%d %H:%M:%S")}
    if "metrics" in phases:
        result["metrics"] = phase_metrics(args.frames, args.repeats)
        print(report(result), flush=True)
    if "eval" in phases:
        result["eval"] = phase_eval(args.eval_frames, max(2, args.repeats // 2))
    if "ddp" in phases:
        result["ddp"] = phase_ddp(args.ddp_repeats)
    result["load_end"] = os.getloadavg()[0]
    text = report(result)
    print(text)
    RESULTS.mkdir(parents=True, exist_ok=True)
    stem = RESULTS / f"bench_eval-{time.strftime('%Y%m%d-%H%M%S')}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=1, default=str))
    stem.with_suffix(".txt").write_text(text + "\n")
    print(f"written: {stem}.json / .txt")


if __name__ == "__main__":
    main()
