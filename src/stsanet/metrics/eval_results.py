"""The results of an evaluation: frame scores pooled over the split and per video (NaN frames
dropped and counted), the frames whose ground truth could not score some metrics (named per
file, with the metrics they were left out of) and the stretched predictions, and the files
they are written to (results.md/.csv/.json, frames.csv)."""

from __future__ import annotations

import csv
import io
import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from stsanet.atomic import write_text_atomic
from stsanet.metrics.eval_inputs import EXCLUDES


@dataclass
class EvaluationResults:
    settings: dict
    columns: list[str]
    frames: list[dict] = field(default_factory=list)  # {"video", "frame", column: score}
    errors: list[dict] = field(default_factory=list)  # {"video", "frame", "kind", "path", "message"}
    n_items: int = 0

    def _pooled(self, rows: Sequence[dict]) -> tuple[dict, dict]:
        means, counts = {}, {}
        for column in self.columns:
            values = np.array([row[column] for row in rows if column in row], dtype=np.float64)
            finite = values[np.isfinite(values)]
            means[column] = float(finite.mean()) if finite.size else float("nan")
            counts[column] = {"frames": int(finite.size), "nan": int(values.size - finite.size)}
        return means, counts

    def summary(self) -> dict[str, float]:
        """Frame-pooled means over the whole split (NaN frames dropped)."""
        return self._pooled(self.frames)[0]

    def notes(self) -> dict[str, list[dict]]:
        """Kind -> the frames it concerns ({video, frame, path, excluded | detail}), in order."""
        out: dict[str, list[dict]] = {}
        for row in self.frames:
            for note in row.get("notes", ()):
                out.setdefault(note["kind"], []).append(
                    {"video": row["video"], "frame": row["frame"], **note})
        return out

    def excluded_from(self, kind: str) -> list[str]:
        """The evaluated metrics a kind of ground truth was left out of."""
        return [c for c in self.columns if c in EXCLUDES.get(kind, ())]

    def counts(self) -> dict:
        return {
            "items": self.n_items,
            "scored_frames": len(self.frames),
            "failed_frames": len(self.errors),
            "per_metric": self._pooled(self.frames)[1],
            "notes": {kind: len(rows) for kind, rows in self.notes().items()},
        }

    def per_video(self) -> dict[str, dict]:
        groups: dict[str, list[dict]] = {}
        for row in self.frames:
            groups.setdefault(row["video"], []).append(row)
        out = {}
        for video in sorted(groups):
            means, counts = self._pooled(groups[video])
            out[video] = {"frames": len(groups[video]), "scores": means, "counts": counts}
        return out

    def to_dict(self) -> dict:
        return {
            "family": self.settings["family"],
            "label": family_label(self.settings["family"]),
            "settings": self.settings,
            "seed": self.settings["seed"],
            "columns": self.columns,
            "scores": self.summary(),
            "counts": self.counts(),
            "per_video": self.per_video(),
            "errors": self.errors,
            "notes": {kind: {"excluded_from": self.excluded_from(kind), "frames": rows}
                      for kind, rows in self.notes().items()},
        }


def family_label(family: str) -> str:
    if family == "benchmark":
        return "benchmark (MATLAB-faithful: DHF1K/MIT protocol)"
    return "exact ROC (research; not comparable with benchmark numbers)"


def _fmt(value: float) -> str:
    return "NaN" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:.4f}"


def _json_safe(value):
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_json_safe(v) for v in value]
    return value


def results_markdown(results: EvaluationResults) -> str:
    summary = results.summary()
    counts = results.counts()
    settings = results.settings
    lines = [
        f"# Saliency evaluation: {family_label(settings['family'])}",
        "",
        "| " + " | ".join(results.columns) + " | frames |",
        "|" + "---|" * (len(results.columns) + 1),
        "| " + " | ".join(_fmt(summary[c]) for c in results.columns) + f" | {counts['scored_frames']} |",
        "",
        f"Seed {settings['seed']}; s-AUC: {settings['n_other_frames']} other frames, "
        f"{settings['n_splits']} splits, step {settings['step']}; AUC-J jitter {settings['jitter']}. "
        "Frame-pooled means; NaN frames dropped.",
        "",
        "| metric | frames used | NaN frames dropped |",
        "|---|---|---|",
    ]
    for column in results.columns:
        c = counts["per_metric"][column]
        lines.append(f"| {column} | {c['frames']} | {c['nan']} |")
    lines += ["", f"{counts['items']} frames listed, {counts['scored_frames']} scored, "
              f"{counts['failed_frames']} failed."]
    for kind, rows in results.notes().items():
        excluded = results.excluded_from(kind)
        effect = (f"left out of {', '.join(excluded)} (their other metrics are scored)"
                  if excluded else "scored after the resize stretched them")
        lines += ["", f"## {kind}: {len(rows)} frames, {effect}", ""]
        for row in rows[:200]:
            detail = f": {row['detail']}" if row.get("detail") else ""
            lines.append(f"- `{row['video']}/{row['frame']}` `{row['path']}`{detail}")
        if len(rows) > 200:
            lines.append(f"- ... and {len(rows) - 200} more (all listed in results.json)")
    if results.errors:
        lines += ["", "## Frames that could not be scored", ""]
        for error in results.errors[:200]:
            lines.append(f"- `{error['video']}/{error['frame']}` ({error['kind']}): {error['message']}")
        if len(results.errors) > 200:
            lines.append(f"- ... and {len(results.errors) - 200} more (all listed in results.json)")
    return "\n".join(lines) + "\n"


def results_csv(results: EvaluationResults) -> str:
    """One row for the whole split ("ALL"), then one per video."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["scope", "frames", *results.columns, "family", "seed"])
    family, seed = results.settings["family"], results.settings["seed"]
    summary = results.summary()
    writer.writerow(["ALL", len(results.frames), *[_fmt(summary[c]) for c in results.columns], family, seed])
    for video, entry in results.per_video().items():
        writer.writerow([video, entry["frames"], *[_fmt(entry["scores"][c]) for c in results.columns], family, seed])
    return buffer.getvalue()


def frames_csv(results: EvaluationResults) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["video", "frame", *results.columns])
    for row in results.frames:
        writer.writerow([row["video"], row["frame"], *[_fmt(row.get(c, float("nan"))) for c in results.columns]])
    return buffer.getvalue()


def write_results(results: EvaluationResults, out_dir: str | os.PathLike) -> dict[str, Path]:
    """Write results.md, results.csv, results.json and frames.csv atomically; return the paths."""
    out_dir = Path(out_dir)
    paths = {
        "markdown": out_dir / "results.md",
        "csv": out_dir / "results.csv",
        "json": out_dir / "results.json",
        "frames": out_dir / "frames.csv",
    }
    write_text_atomic(paths["frames"], frames_csv(results))
    write_text_atomic(paths["json"], json.dumps(_json_safe(results.to_dict()), indent=2) + "\n")
    write_text_atomic(paths["csv"], results_csv(results))
    write_text_atomic(paths["markdown"], results_markdown(results))
    return paths
