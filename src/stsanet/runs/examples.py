"""Example frames and the qualitative comparison of models on them (the paper's Fig. 5).

Which maps are kept. Scoring deletes its predicted maps (every frame of every evaluation video
is too much to keep per run), so each scored run keeps the maps of a few *example frames*,
chosen by a rule that depends only on the evaluation videos and the scoring protocol, never on
the model, so every row of a table keeps the same frames: the videos in name order, at most
:data:`MAX_EXAMPLE_VIDEOS` spread evenly over them, and in each, among the annotated frames the
protocol scores for a middle-supervised network (every frame under the benchmark protocol), the
frame nearest to each of :data:`EXAMPLE_POSITIONS` of their span. They sit in
``<run>/score/examples/`` in the stsanet-predict layout (``<video>/maps/0001.png``), with
``examples.json`` naming the frames, videos and ground-truth files. Maps scoring predicted are
copied, so they cost nothing; only a last-supervised network under the official sampling
(whose labelled frames differ) predicts its example frames, one window each.

Which frames are shown. Of the frames every model has a map for (and, for folders holding
many, at most ``max_candidates`` spread evenly over them), the figure shows ``fixed`` fixed
frames (the first of the first video, the last of the last: the same frames in every table
of the same data) and the ``disagree`` frames where the models' per-frame CC differs most
(largest max − min; benchmark CC of each map against the ground-truth map).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

from stsanet.atomic import write_bytes_atomic, write_text_atomic
from stsanet.data.frames import open_frame_source
from stsanet.data.io import DataFileError, read_fixations, read_saliency_map
from stsanet.errors import InputError
from stsanet.metrics.benchmark import cc
from stsanet.render.compare import ExamplePanel, comparison_figure
from stsanet.runs.evaluate import _prediction_path
from stsanet.runs.predictor import VideoOutputs

EXAMPLE_POSITIONS = (1 / 3, 2 / 3)
MAX_EXAMPLE_VIDEOS = 24
EXAMPLES_DIR = "examples"  # under a run's score folder
EXAMPLES_FILE = "examples.json"
SHOWN_FIXED, SHOWN_DISAGREE = 2, 3
MAX_CANDIDATES = 200


class CompareError(InputError):
    """Inputs the comparison cannot use; the message names the folder or option and the fix."""


@dataclass(frozen=True)
class ExampleFrame:
    video: str
    frame: int  # 0-based
    frames_path: str
    saliency: str  # the ground-truth map (example frames are frames that have one)
    fixations: str | None


def _spread(items: list, count: int) -> list:
    """`count` items spread evenly over `items`, first and last included (all of them when
    there are no more than `count`)."""
    if len(items) <= count:
        return list(items)
    if count == 1:
        return [items[0]]
    return [items[round(i * (len(items) - 1) / (count - 1))] for i in range(count)]


def example_frames(videos, scored=None, positions: tuple[float, ...] = EXAMPLE_POSITIONS,
                   max_videos: int = MAX_EXAMPLE_VIDEOS) -> list[ExampleFrame]:
    """The frames a scored run keeps maps for (the rule in the module doc). ``scored(video)``:
    the frames the scoring protocol predicts for a middle-supervised network (None: all)."""
    out = []
    for video in _spread(sorted(videos, key=lambda v: v.name), max_videos):
        frames = scored(video) if scored is not None else None
        frames = range(video.num_frames) if frames is None else sorted(frames)
        annotated = [i for i in frames if video.maps[i] is not None]
        chosen = []
        for position in positions:
            if annotated:
                target = annotated[0] + position * (annotated[-1] - annotated[0])
                best = min(annotated, key=lambda i: (abs(i - target), i))
                if best not in chosen:
                    chosen.append(best)
        for frame in sorted(chosen):
            fixation = video.fixations[frame]
            out.append(ExampleFrame(video.name, frame, str(video.frames_path),
                                    str(video.maps[frame]),
                                    None if fixation is None else str(fixation)))
    return out


def keep_examples(predictor, videos, pred_root: Path, out_dir: Path,
                  scored=None) -> list[ExampleFrame]:
    """Keep the example frames' maps of a scored network in ``out_dir`` (copied from
    ``pred_root`` where scoring predicted them, predicted otherwise) with ``examples.json``;
    ``scored`` as in :func:`example_frames`."""
    examples = example_frames(videos, scored)
    by_name = {v.name: v for v in videos}
    for name in dict.fromkeys(e.video for e in examples):
        frames = [e.frame for e in examples if e.video == name]
        predicted, kept = VideoOutputs(Path(pred_root), name), VideoOutputs(Path(out_dir), name)
        missing = []
        for frame in frames:
            if predicted.map(frame).is_file():
                kept.maps.mkdir(parents=True, exist_ok=True)
                write_bytes_atomic(kept.map(frame), predicted.map(frame).read_bytes())
            elif not kept.map(frame).is_file():
                missing.append(frame)
        if missing:  # e.g. a last-supervised network under the official sampling
            predictor.predict_video(Path(by_name[name].frames_path), Path(out_dir), name=name,
                                    frames=missing)
    write_text_atomic(Path(out_dir) / EXAMPLES_FILE, json.dumps(
        {"rule": f"at most {MAX_EXAMPLE_VIDEOS} evaluation videos spread evenly; in each, of "
                 "the annotated frames the protocol scores (middle supervision), those nearest "
                 f"to {', '.join(f'{p:.2f}' for p in EXAMPLE_POSITIONS)} of their span",
         "frames": [asdict(e) for e in examples]}, indent=1))
    return examples


def read_examples(folder: Path) -> list[ExampleFrame]:
    """The example frames a run kept (``examples.json``), or [] when it kept none."""
    try:
        data = json.loads((Path(folder) / EXAMPLES_FILE).read_text())
        return [ExampleFrame(**entry) for entry in data["frames"]]
    except (OSError, ValueError, KeyError, TypeError):
        return []


def frames_of_index(index, split: str, videos: list[str] | None = None) -> list[ExampleFrame]:
    """Every frame of a split with a ground-truth map (the candidates of stsanet-compare)."""
    records = index.split(split)
    if not records:
        raise CompareError(f"--split {split}: no such split in {index.root}; available: "
                           f"{', '.join(sorted(index.splits()))}")
    if videos:
        unknown = sorted(set(videos) - {v.name for v in records})
        if unknown:
            raise CompareError(f"--videos {', '.join(unknown)}: not videos of split {split!r} "
                               f"in {index.root}")
        records = [v for v in records if v.name in set(videos)]
    return [ExampleFrame(v.name, i, str(v.frames_path), str(m),
                         None if v.fixations[i] is None else str(v.fixations[i]))
            for v in records for i, m in enumerate(v.maps) if m is not None]


def prediction_file(folder: Path, example: ExampleFrame) -> Path | None:
    """A folder's map of one example frame (stsanet-predict or eval layout), or None."""
    path = _prediction_path(Path(folder) / example.video, Path(example.saliency).stem,
                            example.frame)
    return path if path.is_file() else None


def choose_frames(candidates: list[ExampleFrame], scores: dict[ExampleFrame, list[float]],
                  fixed: int = SHOWN_FIXED, disagree: int = SHOWN_DISAGREE
                  ) -> list[tuple[ExampleFrame, str]]:
    """(frame, why) for the frames shown (the rule in the module doc), fixed ones first."""
    ordered = sorted(candidates, key=lambda e: (e.video, e.frame))
    shown = []
    if fixed >= 1 and ordered:
        shown.append((ordered[0], "fixed: the first frame"))
    if fixed >= 2 and len(ordered) > 1:
        shown.append((ordered[-1], "fixed: the last frame"))
    taken = {e for e, _ in shown}

    def spread(example: ExampleFrame) -> float:
        finite = [s for s in scores[example] if math.isfinite(s)]
        return max(finite) - min(finite) if len(finite) >= 2 else -1.0

    rest = sorted((e for e in ordered if e not in taken), key=lambda e: -spread(e))
    for example in rest[:disagree]:
        value = spread(example)
        shown.append((example, "models disagree most" +
                       (f" (CC spread {value:.2f})" if value >= 0 else "")))
    return shown


def compare(folders: dict[str, Path], candidates: list[ExampleFrame], title: str,
            fixed: int = SHOWN_FIXED, disagree: int = SHOWN_DISAGREE,
            max_candidates: int = MAX_CANDIDATES) -> tuple[bytes, list[dict]]:
    """The comparison figure (PNG bytes) of ``folders`` (label -> prediction folder) on the
    frames chosen from ``candidates``, and one record per shown frame (its CC per label)."""
    if not folders:
        raise CompareError("no prediction folders to compare: give at least one LABEL=FOLDER")
    for label, folder in folders.items():
        if not Path(folder).is_dir():
            raise CompareError(f"{folder} ({label}): no such prediction folder")
    maps = {}
    for example in candidates:
        found = [prediction_file(folder, example) for folder in folders.values()]
        if all(found):
            maps[example] = found
    if not maps:
        videos = sorted({e.video for e in candidates})[:5]
        listed = ", ".join(map(str, folders.values()))
        raise CompareError(
            f"no frame has a predicted map in every folder ({listed}); expected "
            "<folder>/<video>/maps/0001.png (stsanet-predict) or <folder>/<video>/<frame>.png "
            f"for videos such as {', '.join(videos) or '(none annotated)'}")
    pool = _spread(sorted(maps, key=lambda e: (e.video, e.frame)), max_candidates)
    scores = {}
    for example in pool:
        truth = read_saliency_map(example.saliency)
        scores[example] = [cc(read_saliency_map(path), truth) for path in maps[example]]
    shown = choose_frames(pool, scores, fixed, disagree)
    panels, records = [], []
    for example, why in shown:
        frame = open_frame_source(example.frames_path).read([example.frame])[0]
        truth = read_saliency_map(example.saliency)
        fixations = read_fixations(example.fixations) if example.fixations else None
        panels.append(ExamplePanel(
            caption=f"{example.video}\nframe {example.frame + 1}\n" + why.replace(" (", "\n("),
            frame=frame, truth=truth, fixations=fixations,
            maps=[read_saliency_map(path) for path in maps[example]],
            scores=scores[example]))
        records.append({"video": example.video, "frame": example.frame + 1, "why": why,
                        "cc": {label: value if math.isfinite(value) else None
                               for label, value in zip(folders, scores[example])}})
    fixed_shown = sum(why.startswith("fixed") for _, why in shown)
    rule = (f"{len(shown)} of {len(pool)} frames with a map from every model: "
            + (f"{fixed_shown} fixed ({' and '.join(('the first', 'the last')[:fixed_shown])}), "
               if fixed_shown else "")
            + "the rest where the models' per-frame CC differs most")
    png = comparison_figure(f"{title}\n{rule}", list(folders), panels)
    return png, records


def write_comparison(path: Path, folders: dict[str, Path], candidates: list[ExampleFrame],
                     title: str, **options) -> list[dict]:
    """:func:`compare`, written to ``path`` (PNG) with the shown frames' scores beside it."""
    try:
        png, records = compare(folders, candidates, title, **options)
    except DataFileError as error:
        raise CompareError(str(error)) from None
    write_bytes_atomic(path, png)
    write_text_atomic(Path(path).with_suffix(".json"), json.dumps(
        {"title": title, "models": {k: str(v) for k, v in folders.items()},
         "frames": records}, indent=1))
    return records


def parse_models(models: list[str]) -> dict[str, Path]:
    """``LABEL=FOLDER`` (or ``FOLDER``, labelled by its name) -> {label: folder}."""
    folders: dict[str, Path] = {}
    for model in models:
        label, sep, folder = model.partition("=")
        if not sep:
            label, folder = Path(model).name or model, model
        if not label or not folder:
            raise CompareError(f"{model!r}: give a model as LABEL=FOLDER or FOLDER")
        if label in folders:
            raise CompareError(f"{model!r}: the label {label!r} is given twice; label the "
                               "folders apart as LABEL=FOLDER")
        folders[label] = Path(folder)
    return folders


def compare_folders(models: list[str], data: str, data_root: str, split: str = "val",
                    videos: list[str] | None = None, output: str = "comparison.png",
                    title: str | None = None, fixed: int = SHOWN_FIXED,
                    disagree: int = SHOWN_DISAGREE,
                    max_candidates: int = MAX_CANDIDATES) -> tuple[Path, list[dict]]:
    """stsanet-compare: the comparison figure of prediction folders against a dataset's ground
    truth, written to ``output`` (with its JSON); returns the path and the shown frames."""
    from stsanet.data.index import build_index
    from stsanet.data.layouts import DATASETS

    folders = parse_models(models)
    if data not in DATASETS:
        raise CompareError(f"--data {data}: unknown layout; choose one of {', '.join(DATASETS)}")
    if disagree < 0 or max_candidates < 1:
        raise CompareError("--disagree must be >= 0 and --max-candidates >= 1")
    try:
        index = build_index(data, data_root)
    except DataFileError as error:
        raise CompareError(f"--data-root {data_root}: {error}") from None
    candidates = frames_of_index(index, split, videos)
    path = Path(output)
    try:
        records = write_comparison(path, folders, candidates,
                                   title or f"{data} {split}: " + ", ".join(folders),
                                   fixed=fixed, disagree=disagree, max_candidates=max_candidates)
    except OSError as error:
        raise CompareError(f"--output {output}: cannot be written ({error.strerror or error})") \
            from None
    return path, records
