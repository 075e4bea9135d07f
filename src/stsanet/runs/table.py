"""An ablation table from its finished runs: the paper's rows, each run's results.json, the
mean ± std over seeds, the paired test against "ours", written as markdown, CSV and a chart."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import statistics
from dataclasses import dataclass, field
from pathlib import Path

from stsanet.atomic import write_bytes_atomic, write_text_atomic
from stsanet.lit.record import convergence
from stsanet.metrics.significance import BOOTSTRAP_SAMPLES, mean_std, paired_bootstrap
from stsanet.render.chart import Bar, bar_chart
from stsanet.runs.config import CONF_DIR
from stsanet.runs.report import write_report

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
PAPER_GLOBAL_BATCH = 3


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


def collect(rows: list[Row], seeds: list[int], runs_dir: Path,
            require_score: bool = True) -> dict[str, list[RunResult]]:
    """Row -> its finished runs among `seeds` (seeds finished earlier but not asked for are
    left out)."""
    out = {}
    for name in dict.fromkeys(r.row for r in rows):
        found = [read_result(run_dir(runs_dir, name, s), s, require_score) for s in seeds]
        out[name] = [r for r in found if r is not None]
    return out


def _seed_mean_per_video(results: list[RunResult], metric: str) -> dict[str, float]:
    """Per-video score of one metric, averaged over the seeds that scored the video."""
    pooled: dict[str, list[float]] = {}
    for result in results:
        for video, scores in result.per_video.items():
            if metric in scores and math.isfinite(scores[metric]):
                pooled.setdefault(video, []).append(scores[metric])
    return {video: sum(v) / len(v) for video, v in pooled.items()}


def significance(results: dict[str, list[RunResult]]) -> dict[str, dict[str, dict | None]]:
    """Row -> metric -> paired bootstrap of the row against "ours" (None: too few videos)."""
    ours = results.get("ours") or []
    out: dict[str, dict[str, dict | None]] = {}
    for name, runs in results.items():
        if name == "ours" or not runs or not ours:
            continue
        out[name] = {m: paired_bootstrap(_seed_mean_per_video(runs, m),
                                         _seed_mean_per_video(ours, m)) for m in METRICS}
    return out


def _fmt(value: float | None, digits: int = 3) -> str:
    return "—" if value is None or not math.isfinite(value) else f"{value:.{digits}f}"


# --- Runs that did not finish: what the scheduler says of them -----------------------------
# A SLURM sweep leaves slurm.json in each run folder (stsanet.runs.slurm_jobs): the job, its
# final state and its log, so the table can name why a run is missing and where to look.
RUN_SLURM_FILE = "slurm.json"


def slurm_record(path: Path) -> dict | None:
    try:
        record = json.loads((path / RUN_SLURM_FILE).read_text())
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) and "job" in record else None


def run_status(path: Path) -> str:
    """Why the run in ``path`` has no result: its SLURM job's state, else what the folder says."""
    record = slurm_record(path)
    if record is not None:
        return f"{record.get('state', 'UNKNOWN')} (SLURM job {record['job']})"
    return "interrupted or failed" if path.exists() else "not run"


def missing_run_notes(rows: list[Row], seeds: list[int], runs_dir: Path, out_dir: Path,
                      results: dict[str, list[RunResult]]) -> list[str]:
    """One line per unfinished run that has a SLURM record: its state, job and log."""
    lines = []
    for row in rows:
        done = {r.seed for r in results[row.row]}
        for seed in seeds:
            path = run_dir(runs_dir, row.row, seed)
            record = None if seed in done else slurm_record(path)
            if record is None:
                continue
            log = (f"log {os.path.relpath(record['log'], out_dir)}" if record.get("log") else
                   "no log (the job never started)")
            lines.append(f"- {row.label}, seed {seed}: {run_status(path)}, {log}")
    return lines


def _cell(row: Row, runs: list[RunResult], metric: str, test: dict | None) -> str:
    values = [r.scores[metric] for r in runs]
    mean, std = mean_std(values)
    undefined = sum(not math.isfinite(v) for v in values)
    spread = f" ± {_fmt(std)}" if mean is not None and len(runs) > 1 else ""
    mark = "" if test is None else " ≈" if test["noise"] else " *"
    nan = f" ({undefined} of {len(values)} seeds NaN)" if undefined else ""
    paper = f" ({row.paper[metric]:.3f})" if metric in row.paper else ""
    return f"{_fmt(mean)}{spread}{mark}{nan}{paper}"


def _delta(row: Row, cc: dict | None) -> str:
    if row.row == "ours":
        return "reference"
    if cc is None:
        return "—"
    text = (f"{cc['diff']:+.3f} [{cc['low']:+.3f}, {cc['high']:+.3f}]"
            + (" within noise" if cc["noise"] else f" p={cc['p']:.3f}"))
    if cc["videos"] < 10:
        text += f" ({cc['videos']} videos: too few for a reliable interval)"
    return text


def _csv(rows: list[Row], seeds: list[int], runs_dir: Path,
         results: dict[str, list[RunResult]]) -> str:
    """One line per row x seed, finished or not."""
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
                row.row, row.label, seed, "done" if r else run_status(path),
                *[f"{r.scores[m]:.4f}" if r else "" for m in METRICS],
                (r.steps if r and r.steps is not None else ""),
                (f"{r.train_seconds:.1f}" if r and r.train_seconds is not None else ""),
                (r.global_batch if r and r.global_batch is not None else ""),
                (r.convergence["verdict"] if r and r.convergence else ""),
                (r.protocol or "" if r else ""),
                *[f"{row.paper[m]:.3f}" if m in row.paper else "" for m in METRICS],
                path, (r.wandb or "") if r else ""])
    return buffer.getvalue()


def _markdown(table: int, rows: list[Row], seeds: list[int], runs_dir: Path, out_dir: Path,
              results: dict[str, list[RunResult]], tests: dict, title: str,
              notes: list[str]) -> str:
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
        row_tests = tests.get(row.row) or {}
        cells = [_cell(row, runs, m, row_tests.get(m)) for m in METRICS]
        steps = sorted({r.steps for r in runs if r.steps is not None})
        seconds = [r.train_seconds for r in runs if r.train_seconds is not None]
        verdicts = [r.convergence["verdict"] for r in runs if r.convergence]
        converged = ", ".join(f"{v} {verdicts.count(v)}/{len(runs)}"
                              for v in dict.fromkeys(verdicts)) or "—"
        links = []
        for seed in seeds:
            path = run_dir(runs_dir, row.row, seed)
            r = next((r for r in runs if r.seed == seed), None)
            link = os.path.relpath(path, out_dir)
            text = f"[s{seed}]({link})" if r else f"s{seed} {run_status(path)}"
            if r and r.wandb:
                text += f" wandb {r.wandb}"
            links.append(text)
        lines.append(
            f"| {row.label} | " + " | ".join(cells) + f" | {_delta(row, row_tests.get('CC'))} | "
            f"{len(runs)}/{len(seeds)} | {'/'.join(map(str, steps)) or '—'} | "
            f"{_fmt(statistics.fmean(seconds) / 60, 1) + ' min' if seconds else '—'} | "
            f"{converged} | {' '.join(links)} |")
    if any(not math.isfinite(v) for runs in results.values() for r in runs
           for v in r.scores.values()):
        lines += ["", "NaN: the metric was undefined on every scored frame of that seed (the "
                      "benchmark's NaN: a constant predicted map has no CC, NSS, SIM or AUC), "
                      "i.e. that network predicts the same value everywhere; the cell's mean "
                      "is over the seeds where it is defined."]
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
        lines += missing_run_notes(rows, seeds, runs_dir, out_dir, results)
    return "\n".join(lines) + "\n"


def _chart(table: int, rows: list[Row], results: dict[str, list[RunResult]],
           title: str) -> bytes:
    panels = {}
    for metric in METRICS:
        bars = []
        for row in rows:
            seeds = [r.scores[metric] for r in results[row.row]]
            mean, std = mean_std(seeds)
            bars.append(Bar(row.label, [s for s in seeds if math.isfinite(s)], mean, std,
                            row.paper.get(metric)))
        panels[f"{metric} {'↓' if metric in LOWER_IS_BETTER else '↑'}"] = bars
    return bar_chart(f"Table {ROMAN[table]}: {title}", panels)


def aggregate(table: int, rows: list[Row], seeds: list[int], runs_dir: Path, out_dir: Path,
              title: str, notes: list[str] = ()) -> dict[str, Path]:
    """Write table<N>.md, .csv (every seed), .png and the report (stsanet.runs.report: .html,
    _examples.png, _loss.png, .json) from what finished; returns the paths."""
    results = collect(rows, seeds, runs_dir)
    tests = significance(results)
    stem = out_dir / f"table{table}"
    write_text_atomic(stem.with_suffix(".csv"), _csv(rows, seeds, runs_dir, results))
    write_text_atomic(stem.with_suffix(".md"), _markdown(table, rows, seeds, runs_dir, out_dir,
                                                         results, tests, title, notes))
    write_bytes_atomic(stem.with_suffix(".png"), _chart(table, rows, results, title))
    paths = {"md": stem.with_suffix(".md"), "csv": stem.with_suffix(".csv"),
             "png": stem.with_suffix(".png")}
    # the page, the comparison figure, the loss curves and the aggregate as JSON
    paths.update(write_report(table, rows, seeds, runs_dir, out_dir, results, tests))
    return paths
