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

Frames are read and scored in ``workers`` processes (default: every CPU this process may use,
which under SLURM is the job's allocation). Each frame's scores depend only on the frame and the
seed, and rows are collected in the list's order, so the results, the checkpoint and the files
are the same for any number of workers.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import json
import multiprocessing
import os
import zlib
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Callable, Iterable, Iterator, Sequence

import numpy as np

from stsanet.metrics import benchmark, exact
from stsanet.metrics.eval_inputs import (EvaluationInputError, Fixations, FrameItem,
                                         frame_notes, load_fixations, other_fixation_map,
                                         read_gt_map, read_prediction, scorable_ground_truth)
from stsanet.metrics.eval_results import EvaluationResults
from stsanet.metrics.resize import imresize

# Column names as the DHF1K benchmark table prints them (its five first), then KL and AUC-B.
BENCHMARK_COLUMNS = ("AUC-J", "SIM", "s-AUC", "CC", "NSS", "KL", "AUC-B")
EXACT_COLUMNS = ("AUC-J (exact)", "SIM", "s-AUC (exact)", "CC", "NSS", "KL", "AUC-B (exact)")
FAMILIES = {"benchmark": BENCHMARK_COLUMNS, "exact": EXACT_COLUMNS}
# Metrics that need the continuous map / the fixations / the other-frame map.
_NEEDS_MAP = {"SIM", "CC", "KL"}
_NEEDS_OTHER = {"s-AUC", "s-AUC (exact)"}


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
    strict: bool = False  # ground truth that cannot score, stretched predictions: frame errors

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


def frame_generator(seed: int, item: FrameItem) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), zlib.crc32(item.key.encode("utf-8"))]))


def score_frame(
    prediction: np.ndarray,
    gt_map: np.ndarray | None,
    fixations: np.ndarray | None,
    other_map: np.ndarray | None,
    columns: Sequence[str],
    settings: EvalSettings,
    rng: np.random.Generator,
) -> dict[str, float]:
    """Scores of one frame; the prediction is already at the ground-truth size. The maps are
    prepared once (:class:`~stsanet.metrics.benchmark.PreparedMap`) and shared by the metrics."""
    out: dict[str, float] = {}
    prediction = benchmark.PreparedMap(prediction)
    if gt_map is not None:
        gt_map = benchmark.PreparedMap(gt_map)
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
            out[column] = exact.auc_judd(prediction.values, fixations)
        elif column == "s-AUC (exact)":
            out[column] = exact.auc_shuffled(prediction.values, fixations, other_map)
        elif column == "AUC-B (exact)":
            out[column] = exact.auc_borji(prediction.values, fixations)
        else:  # pragma: no cover - columns() validated the names
            raise ValueError(f"unknown metric column {column!r}")
    return out


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


def default_workers() -> int:
    """The CPUs this process may use: its affinity mask, which SLURM sets to the job's
    allocation (``os.cpu_count`` would count the whole node)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # platforms without affinity masks
        return os.cpu_count() or 1


# Frames per task sent to a worker: a few dozen milliseconds of work, so the messages cost
# little and the last tasks still spread over the workers.
CHUNK = 8
# Up to this many frames the work stays in this process: starting workers (~0.5-1 s) would cost
# more than they save.
IN_PROCESS_FRAMES = 32
_WORKER: dict = {}


def _reuse_freed_memory() -> None:
    """Keep freed memory in this (worker) process for the next frame. glibc hands blocks of a
    frame's size (a 360 x 640 float64 map is 1.8 MB) back to the system when they are freed and
    faults them in again for the next frame: ~6,500 page faults per frame, about half of its
    time. mallopt(3) keeps them; a worker's memory is one frame's working set."""
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c"))
        libc.mallopt(-3, 32 << 20)  # M_MMAP_THRESHOLD: its largest value
        libc.mallopt(-1, 256 << 20)  # M_TRIM_THRESHOLD
    except (OSError, AttributeError, TypeError):  # not glibc: its allocator decides
        pass


def _start_worker(pool: Sequence[Fixations] = (), columns: Sequence[str] = (),
                  settings: EvalSettings | None = None) -> None:
    _reuse_freed_memory()
    _WORKER.update(pool=pool, columns=columns, settings=settings)


def _read_one(item: FrameItem) -> Fixations | dict:
    try:
        return load_fixations(item)
    except EvaluationInputError as error:
        return _error_row(item, error)


def _score_one(task: tuple[FrameItem, Fixations | None]) -> dict:
    item, fix = task
    try:
        return {"row": _score_item(item, fix, _WORKER["pool"], _WORKER["columns"], _WORKER["settings"])}
    except EvaluationInputError as error:
        return {"error": _error_row(item, error)}


class _Workers:
    """``map(fn, tasks)`` in order, over ``workers`` processes (forkserver: they start from a
    clean process, not a copy of a training job's threads); in this process for a few tasks."""

    def __init__(self, workers: int, tasks: int, initargs: tuple = ()):
        self.executor = None
        self.initargs = initargs
        if tasks > IN_PROCESS_FRAMES:
            context = multiprocessing.get_context("forkserver")
            context.set_forkserver_preload([__name__])
            self.executor = ProcessPoolExecutor(min(workers, -(-tasks // CHUNK)), mp_context=context,
                                                initializer=_start_worker, initargs=initargs)

    def map(self, fn: Callable, tasks: Iterable) -> Iterator:
        if self.executor is None:
            _WORKER.update(zip(("pool", "columns", "settings"), self.initargs))
            return map(fn, tasks)
        return self.executor.map(fn, tasks, chunksize=CHUNK)

    def __enter__(self) -> "_Workers":
        return self

    def __exit__(self, *exc) -> None:
        if self.executor is not None:
            # on an interruption do not wait for the frames still queued
            self.executor.shutdown(wait=exc[0] is None, cancel_futures=True)
        _WORKER.clear()


def evaluate_items(
    items: Sequence[FrameItem],
    settings: EvalSettings = EvalSettings(),
    *,
    progress: bool = True,
    checkpoint: str | os.PathLike | None = None,
    report: Callable[[str], None] | None = None,
    workers: int | None = None,
) -> EvaluationResults:
    """Score every item with the benchmark protocol; see the module doc for the steps.

    ``checkpoint``: a JSONL file to which each scored frame is appended; if it exists and was
    written with the same settings, those frames are not scored again. ``report`` receives a
    one-line message for every frame that fails (default: printed above the progress bar).
    ``workers``: processes that read and score frames (None: :func:`default_workers`); the
    results do not depend on it.
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
    workers = default_workers() if workers is None else int(workers)
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    say = report or tqdm.write
    results = EvaluationResults(settings=settings.to_dict(), columns=list(columns), n_items=len(items))

    # Fixations of the whole split first: s-AUC draws other frames from all of them.
    fixations: dict[str, Fixations] = {}
    failed: dict[str, dict] = {}
    annotated = [item for item in items if item.fixations is not None]
    with _Workers(workers, len(annotated)) as pool_of_workers:
        read = pool_of_workers.map(_read_one, annotated)
        for item, outcome in zip(annotated, tqdm(read, total=len(annotated), desc="reading fixations",
                                                 disable=not progress, leave=False)):
            if isinstance(outcome, Fixations):
                fixations[item.key] = outcome
            else:
                failed[item.key] = outcome
                say(f"skipped {item.key}: {outcome['message']}")
    pool = [fixations[item.key] for item in items if item.key in fixations]

    done = _load_checkpoint(Path(checkpoint), settings) if checkpoint is not None else {}
    todo = [item for item in items if item.key not in failed and item.key not in done]
    stream = None
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        checkpoint.parent.mkdir(parents=True, exist_ok=True)
        if done:
            stream = open(checkpoint, "a", encoding="utf-8")
        else:
            stream = open(checkpoint, "w", encoding="utf-8")
            stream.write(json.dumps(_checkpoint_header(settings)) + "\n")
    bar = tqdm(total=len(items), desc=f"scoring ({settings.family})", disable=not progress, unit="frame")
    try:
        with _Workers(workers, len(todo), (pool, columns, settings)) as pool_of_workers:
            scored = pool_of_workers.map(_score_one, ((item, fixations.get(item.key)) for item in todo))
            for item in items:
                if item.key in failed:
                    results.errors.append(failed[item.key])
                elif item.key in done:
                    results.frames.append(done[item.key])
                else:
                    outcome = next(scored)
                    if "error" in outcome:
                        results.errors.append(outcome["error"])
                        say(f"skipped {item.key}: {outcome['error']['message']}")
                    else:
                        results.frames.append(outcome["row"])
                        if stream is not None:
                            stream.write(json.dumps(outcome["row"]) + "\n")
                            stream.flush()
                bar.update()
    finally:
        bar.close()
        if stream is not None:
            stream.close()
    return results


def _score_item(
    item: FrameItem,
    fix: Fixations | None,
    pool: Sequence[Fixations],
    columns: Sequence[str],
    settings: EvalSettings,
) -> dict:
    if item.saliency_map is None and fix is None:
        raise EvaluationInputError("missing ground truth", None, f"{item.key}: no saliency map and no fixations")
    prediction = read_prediction(item.prediction)
    gt_map = read_gt_map(item)
    target_shape = fix.shape if fix is not None else gt_map.shape
    if gt_map is not None and gt_map.shape != target_shape:
        raise EvaluationInputError(
            "size mismatch",
            item.saliency_map,
            f"saliency map is {gt_map.shape[0]}x{gt_map.shape[1]} but the fixation map "
            f"{item.fixations} is {target_shape[0]}x{target_shape[1]}",
        )
    notes = frame_notes(item, prediction.shape, target_shape, gt_map, fix, settings.strict)
    gt_map, fix = scorable_ground_truth(notes, gt_map, fix)
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
    return {"video": item.video, "frame": item.frame, **scores, **({"notes": notes} if notes else {})}
