"""What ``stsanet-eval`` does with its configuration: build the frame list, score, write."""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from stsanet.atomic import check_folder_place
from stsanet.errors import ConfigError
from stsanet.metrics.evaluate import EvalSettings, evaluate_items
from stsanet.metrics.eval_results import EvaluationResults, write_results
from stsanet.metrics.eval_inputs import FrameItem, folder_pair_items

CHECKPOINT_NAME = "frames.partial.jsonl"
# video folders named in a message about predictions that are not where they are expected
SHOWN = 5


class EvalConfigError(ConfigError):
    """A configuration value that cannot work; the message names the key and the fix."""


def _prediction_path(pred_video: Path, stem: str, index: int) -> Path:
    """The prediction of frame ``index`` (0-based): ``<stem>.png`` beside or under ``maps/``,
    or the 1-based ``%04d.png`` that stsanet-predict writes; the first candidate if none exists."""
    candidates = [
        pred_video / f"{stem}.png",
        pred_video / "maps" / f"{stem}.png",
        pred_video / "maps" / f"{index + 1:04d}.png",
        pred_video / f"{index + 1:04d}.png",
    ]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    return candidates[0]


def items_from_index(index, split: str, pred_root: str | os.PathLike) -> list[FrameItem]:
    """Frame items of one split of a ``stsanet.data.layouts.DatasetIndex``.

    Frames with neither a saliency map nor fixations (unannotated) are not listed.
    """
    pred_root = Path(pred_root)
    videos = [v for v in index.videos if v.split == split]
    if not videos:
        available = sorted({v.split for v in index.videos})
        raise EvalConfigError(f"split={split!r} has no videos in {index.root}; available: {available}")
    items = []
    for video in videos:
        for i, (saliency, fixation) in enumerate(zip(video.maps, video.fixations)):
            if saliency is None and fixation is None:
                continue
            stem = Path(saliency if saliency is not None else fixation).stem
            items.append(
                FrameItem(
                    video=video.name,
                    frame=stem,
                    prediction=_prediction_path(pred_root / video.name, stem, i),
                    saliency_map=Path(saliency) if saliency is not None else None,
                    fixations=Path(fixation) if fixation is not None else None,
                )
            )
    if not items:
        raise EvalConfigError(f"split={split!r} of {index.root} has no annotated frames to score")
    return items


def _dataset_name(cfg: DictConfig) -> str:
    name = OmegaConf.select(cfg, "data.dataset", default=None)
    if name:
        return str(name)
    try:
        from hydra.core.hydra_config import HydraConfig

        return str(HydraConfig.get().runtime.choices.get("data"))
    except Exception:
        raise EvalConfigError("cannot tell which dataset layout to read: set data=<name>") from None


def frame_number(stem: str) -> int | None:
    """1-based frame number from a frame file's stem (0001, img_00001, eyeMap_00001)."""
    digits = re.search(r"(\d+)$", stem)
    return int(digits.group(1)) if digits else None


def select_protocol(items: list[FrameItem], videos=None, first_frames=None) -> list[FrameItem]:
    """The test protocols of the paper's Table II (DIEM): (i) `first_frames=300`, the first
    300 frames of each video; (ii) `videos=[...]`, a user-given subset of the videos; (iii)
    both null, every frame of every test video. They combine."""
    if videos is not None:
        wanted = [str(v) for v in videos]
        present = {item.video for item in items}
        unknown = sorted(set(wanted) - present)
        if unknown:
            raise EvalConfigError(f"videos={unknown} are not among the scored videos "
                                  f"({len(present)}, e.g. {sorted(present)[:5]})")
        items = [item for item in items if item.video in set(wanted)]
    if first_frames is not None:
        numbers = {item.key: frame_number(item.frame) for item in items}
        unnumbered = [item.key for item in items if numbers[item.key] is None]
        if unnumbered:
            raise EvalConfigError(f"first_frames needs numbered frame files; {unnumbered[0]} "
                                  "has no frame number")
        items = [item for item in items if numbers[item.key] <= int(first_frames)]
    if not items:
        raise EvalConfigError(f"no frames left to score with videos={videos} "
                              f"first_frames={first_frames}")
    return items


def video_list(videos) -> list[str] | None:
    """``videos``: a list of names, or the path of a text file with one name per line (blank
    lines and ``#`` comments ignored), e.g. the 17 DIEM test videos of the paper's Table II."""
    if videos is None or not isinstance(videos, (str, Path)):
        return videos
    path = Path(videos)
    try:
        lines = path.read_text().splitlines()
    except OSError as error:
        raise EvalConfigError(f"videos={videos}: cannot read the video list ({error.strerror}); "
                              f"give a text file with one video name per line, or "
                              f"videos=[name,...]") from None
    names = [line.split("#", 1)[0].strip() for line in lines]
    names = [name for name in names if name]
    if not names:
        raise EvalConfigError(f"videos={videos}: the file lists no video names")
    return names


def build_items(cfg: DictConfig) -> list[FrameItem]:
    items = _all_items(cfg)
    return select_protocol(items, video_list(cfg.get("videos")), cfg.get("first_frames"))


def _all_items(cfg: DictConfig) -> list[FrameItem]:
    pred_root = OmegaConf.select(cfg, "pred_root", throw_on_missing=False, default=None)
    if pred_root in (None, "???") or OmegaConf.is_missing(cfg, "pred_root"):
        raise EvalConfigError("pred_root is required: pass pred_root=<folder of predicted PNGs>")
    if not Path(pred_root).is_dir():
        raise EvalConfigError(f"pred_root={pred_root}: no such folder (the folder of predicted "
                              f"maps, <pred_root>/<video>/maps/0001.png as stsanet-predict "
                              f"writes them)")
    gt_root = cfg.get("gt_root")
    has_data = OmegaConf.select(cfg, "data", default=None) is not None
    if gt_root and has_data:
        raise EvalConfigError("give either gt_root=<folder> or data=<name> data.root=<path>, not both")
    if gt_root:
        if not Path(gt_root).is_dir():
            raise EvalConfigError(f"gt_root={gt_root}: no such folder (the ground truth, "
                                  f"<gt_root>/<video>/maps/<frame>.png and fixation/<frame>.png)")
        try:
            return folder_pair_items(pred_root, gt_root)
        except FileNotFoundError as error:
            raise EvalConfigError(f"gt_root={gt_root}: {error}") from None
    if has_data:
        from stsanet.data.io import DataFileError
        from stsanet.data.index import build_index

        if OmegaConf.is_missing(cfg.data, "root") or not cfg.data.get("root"):
            raise EvalConfigError("data.root is required: pass data.root=/path/to/the/dataset")
        try:
            options = cfg.data.get("index_options")
            options = OmegaConf.to_container(options, resolve=True) if options is not None else {}
            index = build_index(_dataset_name(cfg), cfg.data.root, **options)
        except (DataFileError, ValueError) as error:
            raise EvalConfigError(str(error)) from None
        return items_from_index(index, str(cfg.split), pred_root)
    raise EvalConfigError("no ground truth given: pass gt_root=<folder> or data=<name> data.root=<path>")


def settings_from_config(cfg: DictConfig) -> EvalSettings:
    metrics = cfg.get("metrics")
    settings = EvalSettings(
        family=str(cfg.family),
        metrics=tuple(str(m) for m in metrics) if metrics else None,
        seed=int(cfg.seed),
        n_other_frames=int(cfg.n_other_frames),
        n_splits=int(cfg.n_splits),
        step=float(cfg.step),
        jitter=bool(cfg.jitter),
        max_frames=int(cfg.max_frames) if cfg.get("max_frames") is not None else None,
        strict=bool(cfg.get("strict", False)),
    )
    return settings


def videos_without_predictions(items: list[FrameItem], pred_root: str | os.PathLike) -> list[str]:
    """The videos none of whose frames has a prediction file. When that is every video, the
    predictions are not where they are expected (a layout or naming mismatch, such as folders
    named 5 instead of 0005): raises EvalConfigError saying what was expected and found."""
    videos: dict[str, list[FrameItem]] = {}
    for item in items:
        videos.setdefault(item.video, []).append(item)
    missing = [v for v, its in videos.items() if not any(i.prediction.is_file() for i in its)]
    if missing and len(missing) == len(videos):
        pred_root = Path(pred_root)
        found = sorted(p.name for p in pred_root.iterdir() if p.is_dir())
        expected = sorted(videos)
        hint = ""
        by_number = {int(v): v for v in expected if v.isdigit()}
        renamed = [(f, by_number[int(f)]) for f in found if f.isdigit() and int(f) in by_number
                   and by_number[int(f)] != f]
        if renamed:
            hint = (f"; the folders must be named exactly as the videos ({renamed[0][1]}, not "
                    f"{renamed[0][0]})")
        raise EvalConfigError(
            f"pred_root={pred_root}: no prediction for any of the {len(items)} frames to score: "
            f"expected e.g. {items[0].prediction} (one folder per video: "
            f"{', '.join(expected[:SHOWN])}{', ...' if len(expected) > SHOWN else ''}), found "
            + (f"folders {', '.join(found[:SHOWN])}{', ...' if len(found) > SHOWN else ''}"
               if found else "no folders") + hint)
    return missing


def workers_from_config(value) -> int | None:
    """``workers``: null (every CPU this process may use) or a positive number of processes."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise EvalConfigError(f"workers={value!r}: give a number of processes >= 1, or null for "
                              f"every CPU this process may use")
    return value


def run_eval(cfg: DictConfig) -> tuple[EvaluationResults, dict[str, Path]]:
    """Score, write the results files atomically, drop the resume checkpoint; return both."""
    settings = settings_from_config(cfg)
    out_dir = check_folder_place(cfg.output, "output")
    items = build_items(cfg)
    missing = videos_without_predictions(items, cfg.pred_root)
    if missing:
        example = next(i.prediction for i in items if i.video == missing[0])
        print(f"stsanet-eval: warning: no predictions for {len(missing)} of "
              f"{len({i.video for i in items})} videos ({', '.join(missing[:SHOWN])}"
              f"{', ...' if len(missing) > SHOWN else ''}; expected e.g. {example}); their "
              f"frames are listed as failed in the results", file=sys.stderr)
    checkpoint = out_dir / CHECKPOINT_NAME
    if not cfg.get("resume", True) and checkpoint.exists():
        checkpoint.unlink()
    results = evaluate_items(items, settings, progress=bool(cfg.get("progress", True)),
                             checkpoint=checkpoint, report=_reporter(missing),
                             workers=workers_from_config(cfg.get("workers")))
    paths = write_results(results, out_dir)
    checkpoint.unlink(missing_ok=True)
    return results, paths


def _reporter(quiet_videos: list[str]):
    """Per-frame failure lines, except for videos already reported as a whole."""
    from tqdm.auto import tqdm

    prefixes = tuple(f"skipped {video}/" for video in quiet_videos)

    def report(line: str) -> None:
        if not line.startswith(prefixes) or not prefixes:
            tqdm.write(line)

    return report
