"""make reproduce-table3..6: the paper's ablations (section IV-E) as one Hydra multirun, then a table.

    python -m stsanet.reproduce --table 3                       # CPU-sized, synthetic data
    python -m stsanet.reproduce --table 4 --data dhf1k --data-root /data/DHF1K --trainer ddp
    python -m stsanet.reproduce --table 3 --aggregate-only      # table from what finished

Every row is one file in ``stsanet/experiments/ablation/`` (``+ablation=<row>``) and the paper's
numbers are ``stsanet/experiments/paper_numbers.csv``. Runs go to ``<out>/<data>/runs/<row>/``
(stable names, so a row shared by several tables, "ours", is trained once); a row whose
``results.json`` holds test metrics is finished and is not run again, so an interrupted sweep
resumes where it stopped. The table (Markdown, CSV, bar chart) is written from whatever
finished; missing rows are marked.

On the synthetic data (the default) the rows train with the CPU demo settings (agnostic norm,
64 x 96, BatchNorm momentum 0.1, constant lr) for the same number of optimiser steps each
(``--steps``, default 40), then are scored with the benchmark metrics on the validation videos.
Anything else uses ``experiment=paper_dhf1k`` with the chosen dataset; further Hydra overrides
go after ``--``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from stsanet.lit.config import CONF_DIR

EXPERIMENTS_DIR = Path(os.environ.get("STSANET_EXPERIMENTS_DIR", CONF_DIR.parent / "experiments"))
PAPER_NUMBERS = EXPERIMENTS_DIR / "paper_numbers.csv"
TABLES = (3, 4, 5, 6)
# table column -> key of the test metrics stsanet-train writes to results.json
METRICS = {"CC": "test/cc", "NSS": "test/nss", "SIM": "test/sim", "AUC": "test/auc_judd",
           "KL": "test/kl"}
LOWER_IS_BETTER = {"KL"}
# optimiser steps per row of the CPU-sized (synthetic) reproduction, batch 4
CPU_STEPS = 40  # about 9 minutes for Table III on 2 free cores; enough to separate the rows


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
    rows = [Row(table, r["row"], r["label"], {m: float(r[m]) for m in METRICS})
            for r in records if r["dataset"] == chosen]
    for row in rows:
        if not (EXPERIMENTS_DIR / "ablation" / f"{row.row}.yaml").is_file():
            raise FileNotFoundError(f"{path}: row {row.row!r} has no experiment file "
                                    f"{EXPERIMENTS_DIR / 'ablation' / (row.row + '.yaml')}")
    return rows


def read_result(run_dir: Path) -> dict[str, float] | None:
    """Test metrics of a finished row, or None (not run, interrupted, or failed)."""
    path = run_dir / "results.json"
    try:
        metrics = json.loads(path.read_text())["metrics"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    if not all(key in metrics for key in METRICS.values()):
        return None
    return {name: float(metrics[key]) for name, key in METRICS.items()}


def trained_steps(run_dir: Path) -> int | None:
    """Optimiser steps the row trained for (largest `step` the CSV logger wrote)."""
    steps = []
    for log in run_dir.glob("csv/version_*/metrics.csv"):
        with open(log, newline="") as handle:
            steps += [int(r["step"]) for r in csv.DictReader(handle)
                      if r.get("step") and r.get("train/loss")]
    return max(steps) + 1 if steps else None


def sweep_overrides(args: argparse.Namespace, rows: list[str], runs_dir: Path) -> list[str]:
    overrides = [
        f"hydra.searchpath=[file://{EXPERIMENTS_DIR.resolve()}]",
        f"+ablation={','.join(rows)}",
        f"hydra.sweep.dir={runs_dir}",
        "hydra.sweep.subdir=${ablation.row}",
        "test=true",
        f"seed={args.seed}",
    ]
    if args.data == "synthetic":
        overrides += [
            "experiment=demo", "callbacks=none", "logger=csv",
            # no validation during these short runs: the test stage scores the final weights
            # on the validation videos (every 32nd frame) with the benchmark metrics
            "++trainer.limit_val_batches=0", "data.val_stride=32",
            "trainer.max_epochs=100000", "trainer.log_every_n_steps=1",
        ]
        if args.data_root:
            overrides.append(f"data.root={args.data_root}")
    else:
        overrides += ["experiment=paper_dhf1k", f"data={args.data}"]
        if args.data_root:
            overrides.append(f"data.root={args.data_root}")
    if args.steps:
        # equal steps, not equal wall time: the rows differ 3x in cost per step, and a time
        # budget would hand the cheap rows more updates (and depend on the machine's load)
        overrides.append(f"++trainer.max_steps={args.steps}")
    if args.trainer:
        overrides.append(f"trainer={args.trainer}")
    return overrides + list(args.overrides)


def _fmt(value: float | None) -> str:
    return "—" if value is None else f"{value:.3f}"


def write_atomic(path: Path, data: str | bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_bytes(data.encode() if isinstance(data, str) else data)
    temporary.replace(path)


def aggregate(table: int, rows: list[Row], runs_dir: Path, out_dir: Path,
              title: str) -> dict[str, Path]:
    """Write table<N>.md, .csv and .png from the rows that finished; returns the paths."""
    results = {row.row: read_result(runs_dir / row.row) for row in rows}
    stem = out_dir / f"table{table}"

    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["row", "label", "status", "steps",
                     *[f"{m}" for m in METRICS], *[f"{m}_paper" for m in METRICS], "run_dir"])
    for row in rows:
        ours = results[row.row]
        writer.writerow([row.row, row.label, "done" if ours else _status(runs_dir / row.row),
                         trained_steps(runs_dir / row.row) or "",
                         *[f"{ours[m]:.4f}" if ours else "" for m in METRICS],
                         *[f"{row.paper[m]:.3f}" for m in METRICS], runs_dir / row.row])
    write_atomic(stem.with_suffix(".csv"), buffer.getvalue())

    lines = [f"# Table {['III', 'IV', 'V', 'VI'][table - 3]}: {title}", "",
             "Each cell: ours (paper). ↑ higher is better, ↓ lower is better.", "",
             "| Model | " + " | ".join(f"{m} {'↓' if m in LOWER_IS_BETTER else '↑'}"
                                     for m in METRICS) + " | steps | run |",
             "|---" * (len(METRICS) + 3) + "|"]
    for row in rows:
        ours = results[row.row]
        cells = [f"{_fmt(ours[m] if ours else None)} ({row.paper[m]:.3f})" for m in METRICS]
        run = runs_dir / row.row
        link = os.path.relpath(run, out_dir)
        status = f"[{link}]({link})" if ours else f"{_status(run)}: [{link}]({link})"
        lines.append(f"| {row.label} | " + " | ".join(cells) +
                     f" | {trained_steps(run) or '—'} | {status} |")
    missing = [row.label for row in rows if results[row.row] is None]
    if missing:
        lines += ["", f"Missing rows (not finished): {', '.join(missing)}. Rerun the same make "
                      "target to train them; finished rows are kept."]
    write_atomic(stem.with_suffix(".md"), "\n".join(lines) + "\n")
    write_atomic(stem.with_suffix(".png"), bar_chart(table, rows, results, title))
    return {"md": stem.with_suffix(".md"), "csv": stem.with_suffix(".csv"),
            "png": stem.with_suffix(".png")}


def _status(run_dir: Path) -> str:
    return "missing (interrupted or failed)" if run_dir.exists() else "missing (not run)"


def bar_chart(table: int, rows: list[Row], results: dict, title: str) -> bytes:
    """One panel per metric: our value per row as a bar, the paper's as a black dot."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(METRICS), figsize=(3.2 * len(METRICS), 3.8))
    positions = range(len(rows))
    colors = plt.get_cmap("tab10").colors
    for ax, metric in zip(axes, METRICS):
        ours = [results[r.row][metric] if results[r.row] else 0.0 for r in rows]
        bars = ax.bar(positions, ours, color=[colors[i % 10] for i in positions])
        for bar, row in zip(bars, rows):
            if results[row.row] is None:
                bar.set_hatch("//")
                bar.set_alpha(0.3)
        ax.plot(list(positions), [r.paper[metric] for r in rows], "ko", markersize=4,
                label="paper")
        ax.set_title(f"{metric} {'↓' if metric in LOWER_IS_BETTER else '↑'}")
        ax.set_xticks(list(positions))
        ax.set_xticklabels([r.label for r in rows], rotation=60, ha="right", fontsize=7)
    axes[0].legend(fontsize=7)
    fig.suptitle(f"Table {table}: {title} (bars: this run; dots: paper)", fontsize=9)
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=110)
    plt.close(fig)
    return buffer.getvalue()


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=int, required=True, choices=TABLES)
    parser.add_argument("--data", default="synthetic",
                        help="data config (synthetic = CPU-sized run; dhf1k, hollywood2, ucf)")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--trainer", default=None, help="trainer config, e.g. ddp or gpu")
    parser.add_argument("--out", default=str(Path(os.environ.get("STSANET_ROOT", "."))
                                             / "outputs" / "reproduce"))
    parser.add_argument("--steps", type=int, default=None,
                        help="optimiser steps per row (synthetic default: 40; real data: the "
                             "paper schedule unless given)")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument("--aggregate-only", action="store_true")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides (after --)")
    args = parser.parse_args(argv)
    if args.data != "synthetic" and not args.data_root:
        parser.error(f"--data {args.data} needs --data-root (DATA_ROOT=... for make)")
    if args.data == "synthetic" and args.steps is None:
        args.steps = CPU_STEPS
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    dataset = args.data
    rows = paper_rows(args.table, dataset)
    base = Path(args.out).resolve() / dataset
    runs_dir = base / "runs"
    # the reference row first, so that a sweep cut short still has something to compare with
    todo = sorted((row.row for row in rows if read_result(runs_dir / row.row) is None),
                  key=lambda name: name != "ours")
    done = [row.row for row in rows if row.row not in todo]
    code = 0
    if done:
        print(f"reproduce: finished rows kept: {', '.join(done)}", flush=True)
    if todo and not args.aggregate_only:
        command = [sys.executable, "-m", "stsanet.cli.train", "-m",
                   *sweep_overrides(args, todo, runs_dir)]
        print("$ " + " ".join(command), flush=True)
        code = subprocess.run(command).returncode
        if code:
            print(f"reproduce: the sweep stopped with exit code {code}; the table shows what "
                  "finished, rerun to continue", file=sys.stderr)
    title = {3: "main components", 4: "STSA module", 5: "AMSF module",
             6: "supervision manner"}[args.table] + f" — ours on {dataset}, paper on " + (
        dataset if dataset in ("dhf1k", "hollywood2", "ucf") else "DHF1K val")
    paths = aggregate(args.table, rows, runs_dir, base, title)
    print(Path(paths["md"]).read_text())
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return code


if __name__ == "__main__":
    sys.exit(main())
