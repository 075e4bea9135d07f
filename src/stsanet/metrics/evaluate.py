"""The benchmark evaluation protocol over saved predictions (METRICS.md section 1.1).

Input is a plain list of :class:`FrameItem` (video, frame, prediction PNG, ground-truth map,
fixation file), so any dataset layout can feed it. Per frame, as the DHF1K MATLAB driver:

1. the prediction is read as an 8-bit image, first channel, values 0..255 (not divided);
2. it is resized to the fixation map's size with MATLAB bicubic ``imresize`` when needed;
3. the continuous GT map is divided by 255; the fixation map is binary (``> 0``);
4. s-AUC's "other" map: ``n_other_frames`` frames drawn without replacement from the whole
   evaluated frame list (may include the frame itself), union of their fixations rescaled
   to this frame's size (count map, used as a set of locations);
5. scores are pooled over all frames (frame-level mean), NaN frames dropped and counted;
   per-video means are kept too.

Randomness (AUC-Judd jitter, the other-frame draw, s-AUC and AUC-Borji splits) comes from one
generator per frame seeded with ``(seed, crc32(video/frame))``, so a frame's scores do not
depend on the order, subset or resumption of the run; the seed is written with the results.

A frame that cannot be scored (missing or unreadable prediction, unreadable ground truth,
ground-truth map and fixation map of different sizes) is reported by name in
``results.errors`` and left out; the run goes on. Scored frames can be appended to a JSONL
checkpoint so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
import zlib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Sequence

import numpy as np
from PIL import Image

from stsanet.atomic import write_text_atomic
from stsanet.data.io import DataFileError, read_fixations, read_grey_image
from stsanet.metrics import benchmark, exact
from stsanet.metrics.resize import imresize

# Column names as the DHF1K benchmark table prints them (its five first), then KL and AUC-B.
BENCHMARK_COLUMNS = ("AUC-J", "SIM", "s-AUC", "CC", "NSS", "KL", "AUC-B")
EXACT_COLUMNS = ("AUC-J (exact)", "SIM", "s-AUC (exact)", "CC", "NSS", "KL", "AUC-B (exact)")
FAMILIES = {"benchmark": BENCHMARK_COLUMNS, "exact": EXACT_COLUMNS}
# Metrics that need the continuous map / the fixations / the other-frame map.
_NEEDS_MAP = {"SIM", "CC", "KL"}
_NEEDS_OTHER = {"s-AUC", "s-AUC (exact)"}


class EvaluationInputError(ValueError):
    """A frame cannot be scored; the message names the file and what is wrong."""

    def __init__(self, kind: str, path: str | os.PathLike | None, message: str) -> None:
        super().__init__(f"{path}: {message}" if path is not None else message)
        self.kind = kind
        self.path = str(path) if path is not None else None


@dataclass(frozen=True)
class FrameItem:
    """One frame to score. Paths may be None where the dataset has no such annotation."""

    video: str
    frame: str
    prediction: Path
    saliency_map: Path | None
    fixations: Path | None

    @property
    def key(self) -> str:
        return f"{self.video}/{self.frame}"


@dataclass(frozen=True)
class EvalSettings:
    """Protocol options; the defaults are the DHF1K driver's."""

    family: str = "benchmark"
    metrics: tuple[str, ...] | None = None  # None: every column of the family
    seed: int = 0
    n_other_frames: int = 10
    n_splits: int = 100
    step: float = 0.1
    jitter: bool = True
    max_frames: int | None = None  # DHF1K driver mode: random subset of this many frames

    def columns(self) -> tuple[str, ...]:
        if self.family not in FAMILIES:
            raise ValueError(f"unknown metric family {self.family!r}; choose one of {sorted(FAMILIES)}")
        allowed = FAMILIES[self.family]
        if self.metrics is None:
            return allowed
        unknown = [m for m in self.metrics if m not in allowed]
        if unknown:
            raise ValueError(
                f"metrics {unknown} are not in the {self.family!r} family; choose from {list(allowed)} "
                "(the benchmark and exact families are never mixed in one table)"
            )
        return tuple(m for m in allowed if m in self.metrics)

    def to_dict(self) -> dict:
        out = asdict(self)
        out["metrics"] = list(self.columns())
        return out


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

    def counts(self) -> dict:
        return {
            "items": self.n_items,
            "scored_frames": len(self.frames),
            "failed_frames": len(self.errors),
            "per_metric": self._pooled(self.frames)[1],
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
            "label": _family_label(self.settings["family"]),
            "settings": self.settings,
            "seed": self.settings["seed"],
            "columns": self.columns,
            "scores": self.summary(),
            "counts": self.counts(),
            "per_video": self.per_video(),
            "errors": self.errors,
        }


def _family_label(family: str) -> str:
    if family == "benchmark":
        return "benchmark (MATLAB-faithful: DHF1K/MIT protocol)"
    return "exact ROC (research; not comparable with benchmark numbers)"


# ---------------------------------------------------------------------------- reading


def read_prediction(path: str | os.PathLike) -> np.ndarray:
    """A saved prediction as float64 H×W in the file's value range (0..255 for 8-bit PNG).

    As in the MATLAB driver: first channel only, converted to double without scaling.
    """
    path = Path(path)
    if not path.is_file():
        raise EvaluationInputError("missing prediction", path, "prediction file not found")
    try:
        with Image.open(path) as image:
            if image.mode == "P":
                image = image.convert("RGB")
            array = np.asarray(image)
    except Exception as error:  # PIL raises many types for corrupt files
        raise EvaluationInputError("unreadable prediction", path, f"cannot read prediction ({error})") from None
    if array.ndim == 3:
        array = array[..., 0]
    if array.ndim != 2 or array.size == 0:
        raise EvaluationInputError("unreadable prediction", path, f"expected a 2-D image, got shape {array.shape}")
    return array.astype(np.float64)


def quantize_to_uint8(prediction: np.ndarray) -> np.ndarray:
    """An in-memory prediction in [0, 1] as the 8-bit values a saved PNG would hold."""
    return np.clip(np.floor(np.asarray(prediction, dtype=np.float64) * 255.0 + 0.5), 0, 255).astype(np.uint8)


@dataclass
class _Fixations:
    shape: tuple[int, int]
    rows: np.ndarray  # 0-based coordinates of fixated pixels
    cols: np.ndarray

    def mask(self) -> np.ndarray:
        out = np.zeros(self.shape, dtype=bool)
        out[self.rows, self.cols] = True
        return out


def _load_fixations(item: FrameItem) -> _Fixations:
    try:
        mask = read_fixations(item.fixations)
    except DataFileError as error:
        kind = "missing ground truth" if not Path(item.fixations).is_file() else "unreadable ground truth"
        raise EvaluationInputError(kind, item.fixations, str(error).split(": ", 1)[-1]) from None
    rows, cols = np.nonzero(mask)
    return _Fixations(mask.shape, rows.astype(np.int32), cols.astype(np.int32))


def other_fixation_map(shape: tuple[int, int], sources: Iterable[_Fixations]) -> np.ndarray:
    """Count map of the union of other frames' fixations at ``shape`` (DHF1K driver).

    1-based coordinates are scaled by (this size / source size) per axis, rounded half away
    from zero, and points falling outside are dropped; duplicates add up.
    """
    counts = np.zeros(shape, dtype=np.float64)
    for source in sources:
        r = np.floor((source.rows + 1) * (shape[0] / source.shape[0]) + 0.5).astype(np.int64)
        c = np.floor((source.cols + 1) * (shape[1] / source.shape[1]) + 0.5).astype(np.int64)
        inside = (r >= 1) & (r <= shape[0]) & (c >= 1) & (c <= shape[1])
        np.add.at(counts, (r[inside] - 1, c[inside] - 1), 1.0)
    return counts


def frame_generator(seed: int, item: FrameItem) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(item.key.encode("utf-8"))]))


# ---------------------------------------------------------------------------- scoring


def score_frame(
    prediction: np.ndarray,
    gt_map: np.ndarray | None,
    fixations: np.ndarray | None,
    other_map: np.ndarray | None,
    columns: Sequence[str],
    settings: EvalSettings,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Scores of one frame; the prediction is already at the ground-truth size."""
    out: dict[str, float] = {}
    for column in columns:
        if column in _NEEDS_MAP and gt_map is None:
            continue
        if column not in _NEEDS_MAP and fixations is None:
            continue
        if column == "CC":
            out[column] = benchmark.cc(prediction, gt_map)
        elif column == "SIM":
            out[column] = benchmark.sim(prediction, gt_map)
        elif column == "KL":
            out[column] = benchmark.kl(prediction, gt_map)
        elif column == "NSS":
            out[column] = benchmark.nss(prediction, fixations)
        elif column == "AUC-J":
            out[column] = benchmark.auc_judd(prediction, fixations, jitter=settings.jitter, seed=rng)
        elif column == "s-AUC":
            out[column] = benchmark.auc_shuffled(
                prediction, fixations, other_map, n_splits=settings.n_splits, step=settings.step, seed=rng
            )
        elif column == "AUC-B":
            out[column] = benchmark.auc_borji(
                prediction, fixations, n_splits=settings.n_splits, step=settings.step, seed=rng
            )
        elif column == "AUC-J (exact)":
            out[column] = exact.auc_judd(prediction, fixations)
        elif column == "s-AUC (exact)":
            out[column] = exact.auc_shuffled(prediction, fixations, other_map)
        elif column == "AUC-B (exact)":
            out[column] = exact.auc_borji(prediction, fixations)
        else:  # pragma: no cover - columns() validated the names
            raise ValueError(f"unknown metric column {column!r}")
    return out


def _read_gt_map(item: FrameItem) -> np.ndarray | None:
    if item.saliency_map is None:
        return None
    try:
        # uint8 / 255 in double, as MATLAB's im2double (read_saliency_map gives float32)
        return read_grey_image(item.saliency_map).astype(np.float64) / 255.0
    except DataFileError as error:
        kind = "missing ground truth" if not Path(item.saliency_map).is_file() else "unreadable ground truth"
        raise EvaluationInputError(kind, item.saliency_map, str(error).split(": ", 1)[-1]) from None


def _error_row(item: FrameItem, error: EvaluationInputError) -> dict:
    return {"video": item.video, "frame": item.frame, "kind": error.kind, "path": error.path, "message": str(error)}


def _checkpoint_header(settings: EvalSettings) -> dict:
    return {"stsanet_eval_checkpoint": 1, "settings": settings.to_dict()}


def _load_checkpoint(path: Path, settings: EvalSettings) -> dict[str, dict]:
    """Rows already scored by an interrupted run with the same settings (else nothing)."""
    if not path.is_file():
        return {}
    done: dict[str, dict] = {}
    with open(path, encoding="utf-8") as stream:
        lines = stream.read().splitlines()
    if not lines or json.loads(lines[0]) != json.loads(json.dumps(_checkpoint_header(settings))):
        return {}
    for line in lines[1:]:
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            break  # a line cut by the interruption
        done[f"{row['video']}/{row['frame']}"] = row
    return done


def evaluate_items(
    items: Sequence[FrameItem],
    settings: EvalSettings = EvalSettings(),
    *,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    report: Callable[[str], None] | None = None,
) -> EvaluationResults:
    """Score every item with the benchmark protocol; see the module doc for the steps.

    ``checkpoint``: a JSONL file to which each scored frame is appended; if it exists and was
    written with the same settings, those frames are not scored again. ``report`` receives a
    one-line message for every frame that fails (default: printed above the progress bar).
    """
    from tqdm.auto import tqdm

    columns = settings.columns()
    items = list(items)
    if settings.max_frames is not None and len(items) > settings.max_frames:
        chosen = np.random.default_rng(settings.seed).choice(len(items), settings.max_frames, replace=False)
        items = [items[i] for i in sorted(chosen)]
    keys = [item.key for item in items]
    if len(set(keys)) != len(keys):
        duplicates = sorted({k for k in keys if keys.count(k) > 1})[:5]
        raise ValueError(f"duplicate frames in the evaluation list: {duplicates}")
    say = report or tqdm.write
    results = EvaluationResults(settings=settings.to_dict(), columns=list(columns), n_items=len(items))

    # Fixations of the whole split first: s-AUC draws other frames from all of them.
    fixations: dict[str, _Fixations] = {}
    failed: dict[str, dict] = {}
    for item in tqdm(items, desc="reading fixations", disable=not progress, leave=False):
        if item.fixations is None:
            continue
        try:
            fixations[item.key] = _load_fixations(item)
        except EvaluationInputError as error:
            failed[item.key] = _error_row(item, error)
            say(f"skipped {item.key}: {error}")
    pool = [fixations[item.key] for item in items if item.key in fixations]

    done = _load_checkpoint(Path(checkpoint), settings) if checkpoint is not None else {}
    stream = None
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        if done:
            stream = open(checkpoint, "a", encoding="utf-8")
        else:
            stream = open(checkpoint, "w", encoding="utf-8")
            stream.write(json.dumps(_checkpoint_header(settings)) + "\n")
    try:
        for item in tqdm(items, desc=f"scoring ({settings.family})", disable=not progress, unit="frame"):
            if item.key in failed:
                results.errors.append(failed[item.key])
                continue
            if item.key in done:
                results.frames.append(done[item.key])
                continue
            try:
                row = _score_item(item, fixations.get(item.key), pool, columns, settings)
            except EvaluationInputError as error:
                results.errors.append(_error_row(item, error))
                say(f"skipped {item.key}: {error}")
                continue
            results.frames.append(row)
            if stream is not None:
                stream.write(json.dumps(row) + "\n")
                stream.flush()
    finally:
        if stream is not None:
            stream.close()
    return results


def _score_item(
    item: FrameItem,
    fix: _Fixations | None,
    pool: Sequence[_Fixations],
    columns: Sequence[str],
    settings: EvalSettings,
) -> dict:
    if item.saliency_map is None and fix is None:
        raise EvaluationInputError("missing ground truth", None, f"{item.key}: no saliency map and no fixations")
    prediction = read_prediction(item.prediction)
    gt_map = _read_gt_map(item)
    target_shape = fix.shape if fix is not None else gt_map.shape
    if gt_map is not None and gt_map.shape != target_shape:
        raise EvaluationInputError(
            "size mismatch",
            item.saliency_map,
            f"saliency map is {gt_map.shape[0]}x{gt_map.shape[1]} but the fixation map "
            f"{item.fixations} is {target_shape[0]}x{target_shape[1]}",
        )
    if prediction.shape != target_shape:
        prediction = imresize(prediction, target_shape)
    rng = frame_generator(settings.seed, item)
    other = None
    if fix is not None and any(c in _NEEDS_OTHER for c in columns):
        count = min(settings.n_other_frames, len(pool))
        picks = rng.choice(len(pool), size=count, replace=False)
        other = other_fixation_map(target_shape, (pool[i] for i in picks))
    scores = score_frame(
        prediction, gt_map, fix.mask() if fix is not None else None, other, columns, settings, rng
    )
    return {"video": item.video, "frame": item.frame, **scores}


# ---------------------------------------------------------------------------- writing


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
        f"# Saliency evaluation: {_family_label(settings['family'])}",
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


def folder_pair_items(pred_root: str | os.PathLike, gt_root: str | os.PathLike) -> list[FrameItem]:
    """Items for ``gt_root/<video>/{maps,fixation}/<frame>.png`` vs ``pred_root/<video>/<frame>.png``.

    The frame list is the ground truth's (every ``maps/*.png``, or ``fixation/*.png`` when a
    video has no maps), so a missing prediction is reported, not silently skipped. Fixations
    are read from ``fixation/maps/<frame>.mat`` when present (DHF1K), else ``fixation/<frame>.png``.
    """
    pred_root, gt_root = Path(pred_root), Path(gt_root)
    if not gt_root.is_dir():
        raise FileNotFoundError(f"gt_root {gt_root} is not a folder")
    if not pred_root.is_dir():
        raise FileNotFoundError(f"pred_root {pred_root} is not a folder")
    items: list[FrameItem] = []
    for video_dir in sorted(p for p in gt_root.iterdir() if p.is_dir()):
        maps_dir = video_dir / "maps"
        fix_dir = video_dir / "fixation"
        stems = {p.stem for p in maps_dir.glob("*.png")} if maps_dir.is_dir() else set()
        if not stems and fix_dir.is_dir():
            stems = {p.stem for p in fix_dir.glob("*.png")} | {p.stem for p in (fix_dir / "maps").glob("*.mat")}
        for stem in sorted(stems):
            saliency = maps_dir / f"{stem}.png"
            mat = fix_dir / "maps" / f"{stem}.mat"
            png = fix_dir / f"{stem}.png"
            # A frame whose fixation file is missing is reported by name, not skipped quietly.
            fixation = mat if mat.is_file() else png if fix_dir.is_dir() else None
            items.append(
                FrameItem(
                    video=video_dir.name,
                    frame=stem,
                    prediction=pred_root / video_dir.name / f"{stem}.png",
                    saliency_map=saliency if saliency.is_file() else None,
                    fixations=fixation,
                )
            )
    if not items:
        raise FileNotFoundError(
            f"no ground-truth frames under {gt_root}; expected <video>/maps/<frame>.png "
            "and <video>/fixation/<frame>.png (or fixation/maps/<frame>.mat)"
        )
    return items


__all__ = [
    "BENCHMARK_COLUMNS",
    "EXACT_COLUMNS",
    "EvalSettings",
    "EvaluationInputError",
    "EvaluationResults",
    "FrameItem",
    "evaluate_items",
    "folder_pair_items",
    "other_fixation_map",
    "quantize_to_uint8",
    "read_prediction",
    "score_frame",
    "write_results",
]
