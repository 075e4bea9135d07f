"""Everything a table's reader opens, beside ``table<N>.md``: ``table<N>.json`` (the aggregate as
numbers, for the tracker), ``table<N>_examples.png`` (the rows' maps side by side,
:mod:`stsanet.runs.examples`), ``table<N>_loss.png`` (each run's loss trace from its
results.json) and ``table<N>.html``, one self-contained page with all of it."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

from stsanet.atomic import write_bytes_atomic, write_text_atomic
from stsanet.metrics.significance import mean_std
from stsanet.render.chart import LossCurve, loss_chart
from stsanet.render.report import Figure, markdown_tables, report_page
from stsanet.runs.examples import (EXAMPLES_DIR, CompareError, read_examples,
                                   write_comparison)


def _finite(value: float | None) -> float | None:
    return value if value is not None and math.isfinite(value) else None


def _read_json(path: Path) -> dict:
    try:
        data = json.loads(Path(path).read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def table_aggregate(table: int, rows, seeds: list[int], results: dict, tests: dict,
                    markdown: str) -> dict:
    """The table as numbers (per row and metric: mean, std over seeds, paper, the bootstrap's
    mark) and as the markdown's own cells."""
    scored = [m for runs in results.values() for r in runs for m in r.scores]
    metrics = list(dict.fromkeys(scored or [m for row in rows for m in row.paper]))
    out_rows = []
    for row in rows:
        runs = results.get(row.row, [])
        entry = {"row": row.row, "label": row.label, "runs": len(runs),
                 "seeds": [r.seed for r in runs], "metrics": {}}
        for metric in metrics:
            mean, std = mean_std([r.scores[metric] for r in runs if metric in r.scores])
            test = (tests.get(row.row) or {}).get(metric)
            entry["metrics"][metric] = {
                "mean": _finite(mean), "std": _finite(std),
                "paper": row.paper.get(metric),
                "mark": "" if test is None else "≈" if test["noise"] else "*",
                "diff": None if test is None else test["diff"],
                "p": None if test is None else test["p"]}
        out_rows.append(entry)
    tables = markdown_tables(markdown)
    header, cells = tables[0] if tables else ([], [])
    protocols = sorted({r.protocol for runs in results.values() for r in runs if r.protocol})
    return {"table": table, "seeds": list(seeds), "metrics": metrics,
            "protocol": "; ".join(protocols), "rows": out_rows,
            "cells": {"columns": header, "rows": cells}}


def _loss_curves(rows, results: dict) -> dict[str, list[LossCurve]]:
    panels = {}
    for row in rows:
        curves = []
        for result in sorted(results.get(row.row, []), key=lambda r: r.seed):
            data = _read_json(result.run_dir / "results.json")
            curves.append(LossCurve(f"seed {result.seed}", data.get("train_loss_trace") or [],
                                    data.get("val_loss_trace") or []))
        panels[row.label] = curves
    return panels


def _examples(rows, results: dict, path: Path, title: str) -> tuple[bytes | None, str]:
    """The comparison figure of the rows (each row: its first finished seed's kept maps), or
    None and why not."""
    folders, seeds, candidates, lacking = {}, {}, [], []
    for row in rows:
        runs = sorted(results.get(row.row, []), key=lambda r: r.seed)
        if not runs:
            continue
        folder = runs[0].run_dir / "score" / EXAMPLES_DIR
        kept = read_examples(folder)
        if not kept:
            lacking.append(row.label)
            continue
        folders[row.label], seeds[row.label] = folder, runs[0].seed
        candidates = candidates or kept
    if not folders:
        return None, ("No qualitative figure: no finished run kept example maps"
                      + (f" ({', '.join(lacking)} were scored without them)" if lacking else ""))
    try:
        records = write_comparison(path, folders, candidates, title)
    except CompareError as error:
        return None, f"No qualitative figure: {error}"
    caption = (f"Each row's maps from its first finished seed ("
               + ", ".join(f"{label}: seed {seed}" for label, seed in seeds.items()) + "); "
               f"{len(records)} frames: the first and the last example frame, and those where "
               "the rows' per-frame CC (benchmark CC against the ground-truth map, in each "
               "map's corner) differs most. Example frames: in each of up to 24 evaluation "
               "videos, of the frames the protocol scores, those nearest a third and two "
               "thirds of the way.")
    if lacking:
        caption += f" Not shown (scored without example maps): {', '.join(lacking)}."
    return Path(path).read_bytes(), caption


def _runs_table(rows, seeds: list[int], runs_dir: Path, out_dir: Path,
                results: dict) -> list[list]:
    lines = []
    for row in rows:
        by_seed = {r.seed: r for r in results.get(row.row, [])}
        for seed in seeds:
            folder = runs_dir / row.row / f"seed{seed}"
            link = os.path.relpath(folder, out_dir)
            result = by_seed.get(seed)
            status = "done" if result else ("interrupted or failed" if folder.exists()
                                            else "not run")
            lines.append([
                row.label, seed, status,
                (link + "/", link + "/") if folder.exists() else link,
                (("results.json", f"{link}/results.json") if result else ""),
                (result.steps if result and result.steps is not None else ""),
                (f"{result.train_seconds / 60:.1f} min"
                 if result and result.train_seconds is not None else ""),
                (result.wandb or "") if result else ""])
    return lines


def write_report(table: int, rows, seeds: list[int], runs_dir: Path, out_dir: Path,
                 results: dict, tests: dict) -> dict[str, Path]:
    """Write the aggregate JSON, the comparison figure, the loss curves and the page of a table
    whose markdown, CSV and chart are already written; returns the paths written."""
    stem = Path(out_dir) / f"table{table}"
    markdown = stem.with_suffix(".md").read_text()
    heading = markdown.splitlines()[0].lstrip("# ").strip() if markdown else f"Table {table}"
    paths = {"json": stem.with_suffix(".json")}
    write_text_atomic(paths["json"], json.dumps(
        table_aggregate(table, rows, seeds, results, tests, markdown), indent=1))
    loss_png = loss_chart(heading, _loss_curves(rows, results))
    paths["loss"] = stem.parent / f"{stem.name}_loss.png"
    write_bytes_atomic(paths["loss"], loss_png)
    examples_path = stem.parent / f"{stem.name}_examples.png"
    examples_png, examples_caption = _examples(rows, results, examples_path, heading)
    if examples_png is not None:
        paths["examples"] = examples_path
    chart = stem.with_suffix(".png")
    figures = [
        Figure("Scores with their spread over seeds",
               chart.read_bytes() if chart.is_file() else None,
               "Bars: mean over seeds; error bars: std; dots: seeds; diamonds: the paper's "
               "values.", alt="error-bar chart"),
        Figure("Qualitative comparison", examples_png, examples_caption,
               alt="qualitative comparison"),
        Figure("Training loss of each run", loss_png,
               "The loss (KL − CC) traces each run recorded in its results.json.",
               alt="loss curves"),
    ]
    runs = ("Runs", ["row", "seed", "status", "folder", "results", "steps", "train time",
                     "wandb run"], _runs_table(rows, seeds, runs_dir, out_dir, results))
    footer = [(name, f"{stem.name}{suffix}") for name, suffix in
              (("markdown", ".md"), ("CSV (every seed)", ".csv"), ("aggregate JSON", ".json"))]
    paths["html"] = stem.with_suffix(".html")
    write_text_atomic(paths["html"], report_page(heading, markdown, figures, [runs], footer))
    return paths
