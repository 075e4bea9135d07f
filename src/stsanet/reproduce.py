"""make reproduce-table3..6: the paper's ablations (section IV-E), trained over seeds, scored with
the benchmark protocol, compared with "ours" by a paired bootstrap, written as a table.

    python -m stsanet.reproduce --table 3                        # pipeline check, synthetic data
    python -m stsanet.reproduce --table 4 --data dhf1k --data-root /data/DHF1K \\
        --backbone /weights/S3D_kinetics400.pt --seeds 3 --launcher slurm --gpus-per-node 4 \\
        --partition gpu --account myproj --time-min 1440
    python -m stsanet.reproduce --table 6 --data ucf --data-root /data/ucf   # fine-tunes from
                                                                  # the DHF1K sweep's same row
    python -m stsanet.reproduce --table 3 --aggregate-only       # table from what finished

Rows are the files of ``stsanet/experiments/ablation/`` (``+ablation=<row>``), the paper's numbers
``stsanet/experiments/paper_numbers.csv``. Each row x seed is one run (one Hydra job; one SLURM job
running DDP over its GPUs with ``--launcher slurm``) in ``<out>/<data>/runs/<row>/seed<N>/``.
A run trains, tests, and then scores its weights through the predict route and the eval route
(:mod:`stsanet.scoring`): by default every frame of every evaluation video at the original
resolution with the MATLAB-faithful metrics, s-AUC included (``--protocol official``: the
official validation sampling). Its ``results.json`` holds the scores (pooled and per video), the
steps, the wall time, the global batch and the loss traces, whatever logger was used.

A run whose ``results.json`` holds a score is finished and never launched again; an interrupted
run resumes from its ``last.ckpt`` (``ckpt_path=auto``), which is also how a preempted or
timed-out SLURM job continues after submitit requeues it. The table is written from whatever
finished: each cell is the mean ± std over seeds, the CSV keeps every seed, and every row is
compared with "ours" by a paired bootstrap over the evaluation videos (per-video scores
averaged over seeds), marking differences that are within noise.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import math
import os
import statistics
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from stsanet.lit.config import CONF_DIR
from stsanet.lit.record import convergence

EXPERIMENTS_DIR = Path(os.environ.get("STSANET_EXPERIMENTS_DIR", CONF_DIR.parent / "experiments"))
PAPER_NUMBERS = EXPERIMENTS_DIR / "paper_numbers.csv"
TABLES = (3, 4, 5, 6)
ROMAN = {3: "III", 4: "IV", 5: "V", 6: "VI"}
# table column -> column of the eval route's scores (stsanet.metrics.evaluate)
METRICS = {"CC": "CC", "NSS": "NSS", "SIM": "SIM", "AUC": "AUC-J", "s-AUC": "s-AUC", "KL": "KL"}
# the fast test-stage values (model selection only), for runs scored without the eval route
TEST_METRICS = {"CC": "test/cc", "NSS": "test/nss", "SIM": "test/sim", "AUC": "test/auc_judd",
                "KL": "test/kl"}
LOWER_IS_BETTER = {"KL"}
REAL_DATASETS = ("dhf1k", "hollywood2", "ucf", "diem")
FINETUNED = ("hollywood2", "ucf", "diem")  # the paper fine-tunes these from the DHF1K model
PAPER_GLOBAL_BATCH = 3
# The synthetic pipeline check: optimiser steps per row and seeds (batch 4, 64 x 96, CPU).
# Measured on this project's 2-core machine (see README, "Reproducing the ablations").
SYNTHETIC_STEPS = 60
SYNTHETIC_SEEDS = 2
# Scoring every frame costs about as much as 25 training steps per run on 2 cores (512 windows),
# so the synthetic check scores the official sampling at a denser stride (5 labelled frames per
# 64-frame video) unless --protocol benchmark is given; the table names the protocol.
SYNTHETIC_PROTOCOL, SYNTHETIC_VAL_STRIDE = "official", 8
REAL_SEEDS = 3
BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0
BACKBONE_FORMATS = ("kylemin S3D (S3D_kinetics400.pt: keys base.N.*), torchvision S3D "
                    "(features.N.*), the authors' STSANet checkpoint (base1..4.*), or one of "
                    "ours (backbone.*); see stsanet.models.weights.load_backbone")


class ReproduceError(ValueError):
    """A reproduce setting that cannot work; the message names it and the fix."""


@dataclass(frozen=True)
class Row:
    table: int
    row: str
    label: str
    paper: dict[str, float]


def paper_rows(table: int, dataset: str, path: Path = PAPER_NUMBERS) -> list[Row]:
    """The rows of one paper table, with the paper's numbers for `dataset` (DHF1K when the
    dataset is not one the paper reports, e.g. synthetic)."""
    if table not in TABLES:
        raise ValueError(f"table must be one of {TABLES}, got {table}")
    with open(path, newline="") as handle:
        records = [r for r in csv.DictReader(handle) if int(r["table"]) == table]
    datasets = {r["dataset"] for r in records}
    chosen = dataset if dataset in datasets else "dhf1k"
    rows = [Row(table, r["row"], r["label"],
                {m: float(r[m]) for m in METRICS if r.get(m) not in (None, "")})
            for r in records if r["dataset"] == chosen]
    for row in rows:
        if not (EXPERIMENTS_DIR / "ablation" / f"{row.row}.yaml").is_file():
            raise FileNotFoundError(f"{path}: row {row.row!r} has no experiment file "
                                    f"{EXPERIMENTS_DIR / 'ablation' / (row.row + '.yaml')}")
    return rows


# ---------------------------------------------------------------------------------- results
@dataclass
class RunResult:
    """One finished row x seed, as its results.json says."""

    seed: int
    run_dir: Path
    scores: dict[str, float]
    per_video: dict[str, dict[str, float]] = field(default_factory=dict)
    protocol: str | None = None  # the scoring protocol's description; None: fast test values
    steps: int | None = None
    train_seconds: float | None = None
    global_batch: int | None = None
    convergence: dict | None = None
    wandb: str | None = None


def run_dir(runs_dir: Path, row: str, seed: int) -> Path:
    return runs_dir / row / f"seed{seed}"


def read_result(path: Path, seed: int = 0, require_score: bool = True) -> RunResult | None:
    """A finished run, or None (not run, interrupted, failed). Finished means scored by the
    eval route; with ``require_score=False`` the fast test-stage metrics also count."""
    try:
        data = json.loads((path / "results.json").read_text())
        metrics = data.get("metrics", {})
    except (OSError, ValueError, AttributeError):
        return None
    score = data.get("score") if isinstance(data, dict) else None
    if isinstance(score, dict) and all(c in score.get("scores", {}) for c in METRICS.values()):
        scores = {m: float(score["scores"][c]) for m, c in METRICS.items()}
        per_video = {v: {m: float(s[c]) for m, c in METRICS.items() if c in s}
                     for v, s in score.get("per_video", {}).items()}
        protocol = score.get("description") or score.get("protocol")
    elif not require_score and all(k in metrics for k in TEST_METRICS.values()):
        scores = {m: float(metrics[k]) for m, k in TEST_METRICS.items()}
        per_video, protocol = {}, None
    else:
        return None
    trace = data.get("val_loss_trace") or data.get("train_loss_trace") or []
    verdict = convergence(trace)
    if verdict is not None:
        verdict["loss"] = "val" if data.get("val_loss_trace") else "train"
    return RunResult(seed=int(data.get("seed", seed)), run_dir=path, scores=scores,
                     per_video=per_video, protocol=protocol, steps=data.get("steps"),
                     train_seconds=data.get("train_seconds"),
                     global_batch=data.get("global_batch"), convergence=verdict,
                     wandb=(data.get("loggers") or {}).get("wandb"))


def paired_bootstrap(row: dict[str, float], ours: dict[str, float],
                     samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
                     level: float = 0.95) -> dict | None:
    """Paired bootstrap over videos of mean(row - ours): the mean difference, its `level`
    confidence interval, a two-sided p-value, and whether the difference is within noise (the
    interval holds 0). Videos present in both; None when fewer than two."""
    videos = sorted(v for v in set(row) & set(ours)
                    if math.isfinite(row[v]) and math.isfinite(ours[v]))
    if len(videos) < 2:
        return None
    diff = np.array([row[v] - ours[v] for v in videos], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    p = min(1.0, 2 * min(float((means <= 0).mean()), float((means >= 0).mean())))
    return {"diff": float(diff.mean()), "low": float(low), "high": float(high), "p": p,
            "noise": bool(low <= 0 <= high), "videos": len(videos)}


def _seed_mean_per_video(results: list[RunResult], metric: str) -> dict[str, float]:
    """Per-video score of one metric, averaged over the seeds that scored the video."""
    pooled: dict[str, list[float]] = {}
    for result in results:
        for video, scores in result.per_video.items():
            if metric in scores and math.isfinite(scores[metric]):
                pooled.setdefault(video, []).append(scores[metric])
    return {video: sum(v) / len(v) for video, v in pooled.items()}


# ---------------------------------------------------------------------------------- sweep
def seeds_of(args: argparse.Namespace) -> list[int]:
    return [args.seed + i for i in range(args.seeds)]


def world_batch(global_batch: int, world: int) -> tuple[int, int, int]:
    """(per-device batch, gradient accumulation, resulting global batch) for `world` devices:
    exact when `global_batch` splits evenly, else one clip per device and the accumulation that
    comes closest (the table records the global batch the runs report)."""
    if world < 1:
        raise ReproduceError(f"device count must be >= 1, got {world}")
    if global_batch % world == 0:
        return global_batch // world, 1, global_batch
    accumulate = max(1, round(global_batch / world))
    return 1, accumulate, world * accumulate


def check_backbone(path: str) -> None:
    """Refuse a backbone file that does not load, naming the formats that do."""
    from stsanet.models.weights import WeightsError, detect_naming, read_state_dict

    try:
        naming = detect_naming(read_state_dict(path))
    except (FileNotFoundError, WeightsError) as error:
        raise ReproduceError(f"--backbone {path}: {error}. Formats that load: "
                             f"{BACKBONE_FORMATS}") from None
    if naming == "unknown":
        raise ReproduceError(f"--backbone {path}: not an S3D backbone file. Formats that load: "
                             f"{BACKBONE_FORMATS}")


def finetune_source(args: argparse.Namespace) -> str | None:
    """Where fine-tuned rows take their weights: a file, the DHF1K sweep (a path pattern with
    the row and seed), or None (not fine-tuned)."""
    if args.data not in FINETUNED:
        return None
    if args.finetune_from in (None, "auto"):
        dhf1k_runs = Path(args.out).resolve() / "dhf1k" / "runs"
        return str(dhf1k_runs) + "/${ablation.row}/seed${seed}/weights.pt"
    if args.finetune_from == "scratch":
        return None
    return args.finetune_from


def check_finetune(args: argparse.Namespace, todo: dict[str, list[int]]) -> None:
    if args.data not in FINETUNED or args.finetune_from == "scratch":
        return
    if args.finetune_from not in (None, "auto"):
        if not Path(args.finetune_from).is_file():
            raise ReproduceError(f"--finetune-from {args.finetune_from}: file not found (a DHF1K "
                                 "checkpoint, or 'auto' for the DHF1K sweep's same row)")
        return
    dhf1k_runs = Path(args.out).resolve() / "dhf1k" / "runs"
    missing = [str(run_dir(dhf1k_runs, row, seed) / "weights.pt")
               for row, seeds in todo.items() for seed in seeds
               if not (run_dir(dhf1k_runs, row, seed) / "weights.pt").is_file()]
    if missing:
        raise ReproduceError(
            f"{args.data} rows are fine-tuned from the DHF1K model (paper section IV-B), but the "
            f"DHF1K sweep has not produced {missing[0]}" + (f" (and {len(missing) - 1} more)"
                                                           if len(missing) > 1 else "") +
            f". Run the same table with --data dhf1k --out {args.out} first, give one DHF1K "
            "checkpoint with --finetune-from PATH, or opt out with --finetune-from scratch (the "
            "table then says the rows were not fine-tuned from DHF1K)")


def sweep_overrides(args: argparse.Namespace, rows: list[str], seeds: list[int],
                    runs_dir: Path) -> list[str]:
    """Hydra overrides of one multirun over `rows` x `seeds`."""
    overrides = [
        f"hydra.searchpath=[file://{EXPERIMENTS_DIR.resolve()}]",
        f"+ablation={','.join(rows)}",
        f"seed={','.join(str(s) for s in seeds)}",
        f"hydra.sweep.dir={runs_dir}",
        "hydra.sweep.subdir=${ablation.row}/seed${seed}",
        # no test stage: the fast test metrics are for model selection only; a run is scored by
        # the predict + eval route after training (stsanet.scoring)
        "test=false",
        "ckpt_path=auto",
        f"+score.protocol={args.protocol}",
        f"+score.save_weights={str(args.data == 'dhf1k').lower()}",
        f"tags=[reproduce,table{args.table},{args.data}]",
    ]
    if args.first_frames is not None:
        overrides.append(f"+score.first_frames={args.first_frames}")
    if args.videos_file:
        # quoted: a numeric name (DHF1K's 0601) must stay a string
        names = ",".join(f"'{name}'" for name in read_video_list(args.videos_file))
        overrides.append(f"+score.videos=[{names}]")
    if args.data == "synthetic":
        overrides += [
            "experiment=demo", "callbacks=none", f"logger={args.logger or 'csv'}",
            # no validation during these short runs: the final weights are scored
            "++trainer.limit_val_batches=0",
            f"data.val_stride={SYNTHETIC_VAL_STRIDE if args.protocol == 'official' else 32}",
            # no checkpoint files (Lightning's default callback writes 1.6 GB per run)
            "++trainer.enable_checkpointing=false",
            "trainer.max_epochs=100000", "trainer.log_every_n_steps=1",
        ]
        if args.data_root:
            overrides.append(f"data.root={args.data_root}")
    else:
        overrides += ["experiment=paper_dhf1k", f"data={args.data}", f"data.root={args.data_root}"]
        if args.logger:
            overrides.append(f"logger={args.logger}")
        if args.backbone and args.backbone != "scratch":
            overrides.append(f"init.backbone={args.backbone}")
        source = finetune_source(args)
        if source:
            overrides.append(f"init.weights={source}")
        if not args.sync_bn:
            overrides.append("++trainer.sync_batchnorm=false")
    if args.logger == "wandb":
        # one dashboard per table: group = table, tags = row and seed, name = row/seed
        overrides += [f"+logger.wandb.group=table{args.table}-{args.data}",
                      "logger.wandb.tags=[table" + str(args.table) + ",${ablation.row},seed${seed}]",
                      "logger.wandb.name=${ablation.row}-seed${seed}"]
    if args.steps:
        # equal steps, not equal wall time: the rows differ 3x in cost per step
        overrides.append(f"++trainer.max_steps={args.steps}")
    if args.global_batch is not None:
        per_device, accumulate, _ = world_batch(args.global_batch, args.devices * args.nodes)
        overrides += [f"data.batch_size={per_device}",
                      f"++trainer.accumulate_grad_batches={accumulate}"]
    if args.launcher == "slurm":
        overrides += ["trainer=ddp", f"trainer.devices={args.devices}",
                      f"trainer.num_nodes={args.nodes}", "hydra/launcher=slurm",
                      f"hydra.launcher.gpus_per_node={args.devices}",
                      f"hydra.launcher.tasks_per_node={args.devices}",
                      f"hydra.launcher.nodes={args.nodes}"]
        for key in ("partition", "account", "time_min"):
            value = getattr(args, key)
            if value is not None:
                name = "timeout_min" if key == "time_min" else key
                overrides.append(f"hydra.launcher.{name}={value}")
    elif args.launcher == "submitit_local":
        overrides.append("hydra/launcher=submitit_local")
        if args.time_min is not None:
            overrides.append(f"hydra.launcher.timeout_min={args.time_min}")
    if args.trainer and args.launcher != "slurm":
        overrides.append(f"trainer={args.trainer}")
    return overrides + list(args.overrides)


def read_video_list(path: str) -> list[str]:
    try:
        names = [line.strip() for line in Path(path).read_text().splitlines()]
    except OSError as error:
        raise ReproduceError(f"--videos-file {path}: cannot be read ({error})") from None
    names = [n for n in names if n and not n.startswith("#")]
    bad = [n for n in names if any(c in n for c in ",[]'\" ")]
    if not names or bad:
        raise ReproduceError(f"--videos-file {path}: needs one video name per line"
                             + (f"; cannot pass {bad[0]!r}" if bad else " (it is empty)"))
    return names


def pending(rows: list[Row], seeds: list[int], runs_dir: Path) -> dict[str, list[int]]:
    """Row -> seeds not finished yet, "ours" first (a sweep cut short can still compare)."""
    todo = {}
    for name in sorted(dict.fromkeys(r.row for r in rows), key=lambda n: n != "ours"):
        missing = [s for s in seeds if read_result(run_dir(runs_dir, name, s), s) is None]
        if missing:
            todo[name] = missing
    return todo


def multiruns(todo: dict[str, list[int]], launcher: str) -> list[tuple[list[str], list[int]]]:
    """Group the pending row x seed pairs into multiruns that launch only pending pairs: rows
    with the same pending seeds share one. On this machine's local executor (every job of a
    multirun starts at once) one multirun per seed bounds the processes to the rows."""
    groups: dict[tuple[int, ...], list[str]] = {}
    for row, seeds in todo.items():
        groups.setdefault(tuple(seeds), []).append(row)
    out = []
    for seeds, rows in groups.items():
        if launcher == "submitit_local":
            out += [(rows, [seed]) for seed in seeds]
        else:
            out.append((rows, list(seeds)))
    return out


# ---------------------------------------------------------------------------------- table
def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


def write_atomic(path: Path, data: str | bytes) -> None:
    from stsanet.atomic import atomic_path

    with atomic_path(path) as temporary:
        temporary.write_bytes(data.encode() if isinstance(data, str) else data)


def collect(rows: list[Row], seeds: list[int], runs_dir: Path,
            require_score: bool = True) -> dict[str, list[RunResult]]:
    out = {}
    for name in dict.fromkeys(r.row for r in rows):
        found = [read_result(run_dir(runs_dir, name, s), s, require_score) for s in seeds]
        # seeds beyond the requested ones that finished earlier are kept out: cells use `seeds`
        out[name] = [r for r in found if r is not None]
    return out


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def significance(results: dict[str, list[RunResult]]) -> dict[str, dict[str, dict | None]]:
    ours = results.get("ours") or []
    out: dict[str, dict[str, dict | None]] = {}
    for name, runs in results.items():
        if name == "ours" or not runs or not ours:
            continue
        out[name] = {m: paired_bootstrap(_seed_mean_per_video(runs, m),
                                         _seed_mean_per_video(ours, m)) for m in METRICS}
    return out


def _mark(test: dict | None) -> str:
    if test is None:
        return ""
    return " ≈" if test["noise"] else " *"


def _status(path: Path) -> str:
    return "interrupted or failed" if path.exists() else "not run"


def aggregate(table: int, rows: list[Row], seeds: list[int], runs_dir: Path, out_dir: Path,
              title: str, notes: list[str] = ()) -> dict[str, Path]:
    """Write table<N>.md, .csv (every seed) and .png from what finished; returns the paths."""
    results = collect(rows, seeds, runs_dir)
    tests = significance(results)
    stem = out_dir / f"table{table}"

    # CSV: one line per row x seed
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "label", "seed", "status", *METRICS, "steps", "train_seconds",
                     "global_batch", "converged", "protocol", *[f"{m}_paper" for m in METRICS],
                     "run_dir", "wandb_run"])
    for row in rows:
        by_seed = {r.seed: r for r in results[row.row]}
        for seed in seeds:
            r = by_seed.get(seed)
            path = run_dir(runs_dir, row.row, seed)
            writer.writerow([
                row.row, row.label, seed, "done" if r else _status(path),
                *[f"{r.scores[m]:.4f}" if r else "" for m in METRICS],
                (r.steps if r and r.steps is not None else ""),
                (f"{r.train_seconds:.1f}" if r and r.train_seconds is not None else ""),
                (r.global_batch if r and r.global_batch is not None else ""),
                (r.convergence["verdict"] if r and r.convergence else ""),
                (r.protocol or "" if r else ""),
                *[f"{row.paper[m]:.3f}" if m in row.paper else "" for m in METRICS],
                path, (r.wandb or "") if r else ""])
    write_atomic(stem.with_suffix(".csv"), buffer.getvalue())

    protocols = sorted({r.protocol for runs in results.values() for r in runs if r.protocol})
    batches = sorted({r.global_batch for runs in results.values() for r in runs
                      if r.global_batch is not None})
    lines = [f"# Table {ROMAN[table]}: {title}", ""]
    lines += [f"- {note}" for note in notes]
    lines += [f"- Scoring protocol: {'; '.join(protocols) if protocols else '— (nothing scored)'}",
              f"- Seeds: {', '.join(map(str, seeds))} ({len(seeds)} per row); global batch: "
              f"{', '.join(map(str, batches)) or '—'} clips"
              + ("" if batches == [PAPER_GLOBAL_BATCH] else
                 f" (the paper's is {PAPER_GLOBAL_BATCH})"),
              "- Each cell: mean ± std over seeds (paper). ↑ higher is better, ↓ lower is better. "
              "Marks compare the row with Ours by a paired bootstrap over the evaluation videos "
              f"(per-video scores averaged over seeds, {BOOTSTRAP_SAMPLES} resamples, 95% "
              "interval): * the difference is resolved, ≈ within noise.",
              "- converged: the loss over the last quarter of the recorded steps against the "
              "quarter before (plateau: within 2%; still falling: dropped more).", ""]
    lines += ["| Model | " + " | ".join(f"{m} {'↓' if m in LOWER_IS_BETTER else '↑'}"
                                       for m in METRICS)
              + " | Δ CC vs Ours [95% CI] | seeds | steps | train time | converged | runs |",
              "|---" * (len(METRICS) + 7) + "|"]
    for row in rows:
        runs = results[row.row]
        cells = []
        for m in METRICS:
            mean, std = mean_std([r.scores[m] for r in runs])
            paper = f" ({row.paper[m]:.3f})" if m in row.paper else ""
            spread = f" ± {_fmt(std)}" if mean is not None and len(runs) > 1 else ""
            mark = _mark((tests.get(row.row) or {}).get(m))
            cells.append(f"{_fmt(mean)}{spread}{mark}{paper}")
        cc = (tests.get(row.row) or {}).get("CC")
        delta = ("reference" if row.row == "ours" else "—" if cc is None else
                 f"{cc['diff']:+.3f} [{cc['low']:+.3f}, {cc['high']:+.3f}]"
                 + (" within noise" if cc["noise"] else f" p={cc['p']:.3f}"))
        if cc is not None and cc["videos"] < 10:
            delta += f" ({cc['videos']} videos: too few for a reliable interval)"
        steps = sorted({r.steps for r in runs if r.steps is not None})
        seconds = [r.train_seconds for r in runs if r.train_seconds is not None]
        verdicts = [r.convergence["verdict"] for r in runs if r.convergence]
        converged = ", ".join(f"{v} {verdicts.count(v)}/{len(runs)}"
                              for v in dict.fromkeys(verdicts)) or "—"
        links = []
        for seed in seeds:
            path = run_dir(runs_dir, row.row, seed)
            link = os.path.relpath(path, out_dir)
            r = next((r for r in runs if r.seed == seed), None)
            text = f"[s{seed}]({link})" if r else f"s{seed} {_status(path)}"
            if r and r.wandb:
                text += f" wandb {r.wandb}"
            links.append(text)
        lines.append(
            f"| {row.label} | " + " | ".join(cells) + f" | {delta} | {len(runs)}/{len(seeds)} | "
            f"{'/'.join(map(str, steps)) or '—'} | "
            f"{_fmt(statistics.fmean(seconds) / 60, 1) + ' min' if seconds else '—'} | "
            f"{converged} | {' '.join(links)} |")
    cc_tests = [t["CC"] for t in tests.values() if t.get("CC")]
    if cc_tests:
        half = statistics.median((t["high"] - t["low"]) / 2 for t in cc_tests)
        verdict = ("resolves them" if half <= 0.003 else
                   f"resolves only gaps larger than about {half:.3f}" if half < 0.01 else
                   "cannot resolve them")
        lines += ["", f"Noise: the 95% interval of a row-vs-Ours CC difference is ± {half:.3f} "
                      f"(median over rows, {cc_tests[0]['videos']} evaluation videos); the "
                      f"paper's gaps are 0.003–0.01 CC, so this table {verdict}."]
    missing = [f"{row.label} ({len(seeds) - len(results[row.row])} of {len(seeds)} seeds)"
               for row in rows if len(results[row.row]) < len(seeds)]
    if missing:
        lines += ["", f"Missing runs (not finished): {', '.join(missing)}. Rerun the same "
                      "command to train them; finished runs are kept."]
    write_atomic(stem.with_suffix(".md"), "\n".join(lines) + "\n")
    write_atomic(stem.with_suffix(".png"), bar_chart(table, rows, results, title))
    return {"md": stem.with_suffix(".md"), "csv": stem.with_suffix(".csv"),
            "png": stem.with_suffix(".png")}


def bar_chart(table: int, rows: list[Row], results: dict[str, list[RunResult]],
              title: str) -> bytes:
    """One panel per metric: mean over seeds as a bar with the seed std as error bar, each
    seed as a small dot, the paper's value as a black diamond."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 4.0))
    positions = list(range(len(rows)))
    colors = plt.get_cmap("tab10").colors
    for ax, metric in zip(axes, METRICS):
        stats = [mean_std([r.scores[metric] for r in results[row.row]]) for row in rows]
        means = [m if m is not None else 0.0 for m, _ in stats]
        errors = [s if s is not None else 0.0 for _, s in stats]
        bars = ax.bar(positions, means, yerr=errors, capsize=3,
                      color=[colors[i % 10] for i in positions], ecolor="black")
        for i, (bar, row) in enumerate(zip(bars, rows)):
            if not results[row.row]:
                bar.set_hatch("//")
                bar.set_alpha(0.3)
            seeds = [r.scores[metric] for r in results[row.row]]
            ax.plot([i] * len(seeds), seeds, ".", color="grey", markersize=3)
        paper = [(i, row.paper[metric]) for i, row in enumerate(rows) if metric in row.paper]
        if paper:
            ax.plot(*zip(*paper), "kD", markersize=4, label="paper")
        ax.set_title(f"{metric} {'↓' if metric in LOWER_IS_BETTER else '↑'}")
        ax.set_xticks(positions)
        ax.set_xticklabels([r.label for r in rows], rotation=60, ha="right", fontsize=7)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Table {ROMAN[table]}: {title}\n(bars: mean over seeds, error bars: std, "
                 "dots: seeds, diamonds: paper)", fontsize=8)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def table_title(args: argparse.Namespace) -> tuple[str, list[str]]:
    """The table's title and its protocol notes, from the settings the sweep ran with."""
    name = {3: "main components", 4: "STSA module", 5: "AMSF module",
            6: "supervision manner"}[args.table]
    paper_on = args.data if args.data in ("dhf1k", "hollywood2", "ucf") else "DHF1K val"
    if args.data == "synthetic":
        title = (f"{name} — PIPELINE CHECK on generated data (synthetic), not the paper's claim; "
                 f"paper values (DHF1K val) for reference only")
        notes = [f"{args.steps} optimiser steps per run (batch 4, 64 × 96 input, agnostic norm, "
                 "CPU demo settings), backbone from scratch; the rows are small networks "
                 "trained briefly, so their order says nothing about the paper's ablation"]
        return title, notes
    title = f"{name} — ours on {args.data}, paper on {paper_on}"
    notes = []
    if args.backbone == "scratch":
        title += " — backbone from scratch — not the paper's protocol"
        notes.append("Backbone: trained from scratch (init.backbone=scratch), not from "
                     "Kinetics-400 S3D weights as in the paper")
    elif args.backbone:
        notes.append(f"Backbone: S3D weights from {args.backbone}")
    if args.data in FINETUNED:
        if args.finetune_from == "scratch":
            title += " — not fine-tuned from DHF1K — not the paper's protocol"
            notes.append("Not fine-tuned from a DHF1K model (--finetune-from scratch)")
        elif args.finetune_from in (None, "auto"):
            notes.append("Fine-tuned from the DHF1K sweep's model of the same row and seed "
                         f"({Path(args.out).resolve() / 'dhf1k' / 'runs'})")
        else:
            notes.append(f"Fine-tuned from the DHF1K checkpoint {args.finetune_from}")
    if args.first_frames is not None or args.videos_file:
        notes.append("Table II protocol: " + "; ".join(
            filter(None, [f"first {args.first_frames} frames" if args.first_frames else "",
                          f"videos listed in {args.videos_file}" if args.videos_file else ""])))
    return title, notes


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=int, required=True, choices=TABLES)
    parser.add_argument("--data", default="synthetic",
                        help="synthetic (a CPU-sized pipeline check) or dhf1k, hollywood2, ucf, "
                             "diem")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--backbone", default=None,
                        help="S3D Kinetics-400 weights for real data, or 'scratch' to opt out")
    parser.add_argument("--finetune-from", default=None,
                        help="hollywood2/ucf/diem: 'auto' (default: the DHF1K sweep's same row "
                             "and seed in --out), a DHF1K checkpoint, or 'scratch'")
    parser.add_argument("--protocol", default=None, choices=("benchmark", "official"),
                        help="benchmark: every frame of every evaluation video (real-data "
                             "default); official: the official validation sampling (synthetic "
                             f"default, stride {SYNTHETIC_VAL_STRIDE})")
    parser.add_argument("--first-frames", type=int, default=None,
                        help="Table II (i): score the first N frames of each video (DIEM: 300)")
    parser.add_argument("--videos-file", default=None,
                        help="Table II (ii): score only the videos listed (one name per line)")
    parser.add_argument("--seeds", type=int, default=None,
                        help=f"runs per row (default {SYNTHETIC_SEEDS} synthetic, "
                             f"{REAL_SEEDS} real data)")
    parser.add_argument("--seed", type=int, default=12345, help="first seed; then +1, +2, ...")
    parser.add_argument("--steps", type=int, default=None,
                        help=f"optimiser steps per run (synthetic default {SYNTHETIC_STEPS}; "
                             "real data: the paper schedule unless given)")
    parser.add_argument("--global-batch", type=int, default=None,
                        help=f"clips per optimiser step over all devices (real data default "
                             f"{PAPER_GLOBAL_BATCH}, the paper's)")
    parser.add_argument("--launcher", default="basic",
                        choices=("basic", "submitit_local", "slurm"))
    parser.add_argument("--devices", "--gpus-per-node", type=int, default=1, dest="devices")
    parser.add_argument("--nodes", type=int, default=1)
    parser.add_argument("--partition", default=None)
    parser.add_argument("--account", default=None)
    parser.add_argument("--time-min", type=int, default=None,
                        help="SLURM time limit per job (minutes); the job requeues past it")
    parser.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm under DDP")
    parser.add_argument("--trainer", default=None, help="trainer config, e.g. ddp or gpu")
    parser.add_argument("--logger", default=None, choices=("csv", "wandb", "none"))
    parser.add_argument("--out", default=str(Path(os.environ.get("STSANET_ROOT", "."))
                                             / "outputs" / "reproduce"))
    parser.add_argument("--aggregate-only", action="store_true")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides (after --)")
    args = parser.parse_args(argv)
    if args.data != "synthetic":
        if not args.data_root:
            parser.error(f"--data {args.data} needs --data-root (DATA_ROOT=... for make)")
        if args.data not in REAL_DATASETS:
            parser.error(f"--data must be synthetic or one of {', '.join(REAL_DATASETS)}")
        needs_backbone = args.data not in FINETUNED or args.finetune_from == "scratch"
        if needs_backbone and not args.backbone and not args.aggregate_only:
            parser.error(
                f"--data {args.data} trains from Kinetics-400 S3D weights as the paper did: pass "
                f"--backbone /path/S3D_kinetics400.pt (BACKBONE=... for make; formats that load: "
                f"{BACKBONE_FORMATS}), or --backbone scratch to train from scratch (the table "
                "then says so)")
        if args.global_batch is None:
            args.global_batch = PAPER_GLOBAL_BATCH
    if args.data == "synthetic" and args.steps is None:
        args.steps = SYNTHETIC_STEPS
    if args.protocol is None:
        args.protocol = SYNTHETIC_PROTOCOL if args.data == "synthetic" else "benchmark"
    if args.seeds is None:
        args.seeds = SYNTHETIC_SEEDS if args.data == "synthetic" else REAL_SEEDS
    if args.seeds < 1:
        parser.error("--seeds must be >= 1")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    rows = paper_rows(args.table, args.data)
    seeds = seeds_of(args)
    base = Path(args.out).resolve() / args.data
    runs_dir = base / "runs"
    todo = pending(rows, seeds, runs_dir)
    finished = [f"{r.row}/seed{s}" for r in rows for s in seeds if s not in todo.get(r.row, [])]
    code = 0
    if finished:
        print(f"reproduce: finished runs kept: {', '.join(dict.fromkeys(finished))}", flush=True)
    if todo and not args.aggregate_only:
        try:
            if args.backbone and args.backbone != "scratch":
                check_backbone(args.backbone)
            check_finetune(args, todo)
            if args.videos_file:
                read_video_list(args.videos_file)
        except ReproduceError as error:
            print(f"reproduce: {error}", file=sys.stderr)
            return 2
        for group_rows, group_seeds in multiruns(todo, args.launcher):
            command = [sys.executable, "-m", "stsanet.cli.train", "-m",
                       *sweep_overrides(args, group_rows, group_seeds, runs_dir)]
            print("$ " + " ".join(command), flush=True)
            returncode = subprocess.run(command).returncode
            if returncode:
                code = returncode
                print(f"reproduce: a sweep stopped with exit code {returncode}; the table shows "
                      "what finished, rerun to continue", file=sys.stderr)
    title, notes = table_title(args)
    paths = aggregate(args.table, rows, seeds, runs_dir, base, title, notes)
    print(Path(paths["md"]).read_text())
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return code


if __name__ == "__main__":
    sys.exit(main())
