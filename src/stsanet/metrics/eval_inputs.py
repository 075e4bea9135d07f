"""The inputs of one evaluated frame (METRICS.md section 1.1): the saved prediction, the
ground-truth map and the fixations, read as the DHF1K MATLAB driver reads them, and the s-AUC
"other" map built from other frames' fixations. A file that cannot be used raises
:class:`EvaluationInputError` naming it.

Ground truth that cannot score some metrics is named, not scored: an all-black saliency map
has no distribution (CC is NaN, SIM and KL come out 0, the best KL), so it is left out of CC,
SIM and KL; an empty fixation map has no fixated pixel, so it is left out of NSS and the AUCs
(:func:`frame_notes`). A prediction whose aspect ratio differs from its ground truth's is
stretched by the resize, with a named warning. ``strict`` makes each of these an error of the
frame instead."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np
from PIL import Image

from stsanet.data.io import DataFileError, read_fixations, read_grey_image
from stsanet.errors import InputError


class EvaluationInputError(InputError):
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
class Fixations:
    shape: tuple[int, int]
    rows: np.ndarray  # 0-based coordinates of fixated pixels
    cols: np.ndarray

    def mask(self) -> np.ndarray:
        out = np.zeros(self.shape, dtype=bool)
        out[self.rows, self.cols] = True
        return out


def load_fixations(item: FrameItem) -> Fixations:
    try:
        mask = read_fixations(item.fixations)
    except DataFileError as error:
        kind = "missing ground truth" if not Path(item.fixations).is_file() else "unreadable ground truth"
        raise EvaluationInputError(kind, item.fixations, str(error).split(": ", 1)[-1]) from None
    rows, cols = np.nonzero(mask)
    return Fixations(mask.shape, rows.astype(np.int32), cols.astype(np.int32))


def other_fixation_map(shape: tuple[int, int], sources: Iterable[Fixations]) -> np.ndarray:
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


# Ground truth that cannot score some metrics, and the metrics each one breaks.
ALL_BLACK_MAP = "all-black ground-truth map"
EMPTY_FIXATIONS = "empty fixation map"
ASPECT_MISMATCH = "aspect ratio differs from the ground truth"
MAP_METRICS = ("CC", "SIM", "KL")
FIXATION_METRICS = ("NSS", "AUC-J", "s-AUC", "AUC-B", "AUC-J (exact)", "s-AUC (exact)",
                    "AUC-B (exact)")
EXCLUDES = {ALL_BLACK_MAP: MAP_METRICS, EMPTY_FIXATIONS: FIXATION_METRICS, ASPECT_MISMATCH: ()}
# Relative difference of height/width ratios above which a prediction counts as stretched
# (a rounded frame size differs by well under 1%).
ASPECT_TOLERANCE = 0.02


def aspect_differs(shape: tuple[int, int], target: tuple[int, int]) -> bool:
    return abs((shape[0] * target[1]) / (shape[1] * target[0]) - 1.0) > ASPECT_TOLERANCE


def frame_notes(item: FrameItem, prediction_shape: tuple[int, int], target_shape: tuple[int, int],
                gt_map: np.ndarray | None, fixations: Fixations | None,
                strict: bool = False) -> list[dict]:
    """What about this frame's inputs the results must say (see the module doc); under
    ``strict`` the first of them raises :class:`EvaluationInputError` instead."""
    notes = []
    if gt_map is not None and not gt_map.any():
        notes.append({"kind": ALL_BLACK_MAP, "path": str(item.saliency_map),
                      "excluded": list(MAP_METRICS)})
    if fixations is not None and fixations.rows.size == 0:
        notes.append({"kind": EMPTY_FIXATIONS, "path": str(item.fixations),
                      "excluded": list(FIXATION_METRICS)})
    if aspect_differs(tuple(prediction_shape), tuple(target_shape)):
        (ph, pw), (th, tw) = prediction_shape, target_shape
        notes.append({"kind": ASPECT_MISMATCH, "path": str(item.prediction),
                      "detail": f"prediction {pw}x{ph}, ground truth {tw}x{th}"})
    if strict and notes:
        first = notes[0]
        raise EvaluationInputError(first["kind"], first["path"],
                                   f"{first['kind']}{': ' + first['detail'] if 'detail' in first else ''}"
                                   " (strict=true)")
    return notes


def scorable_ground_truth(notes: list[dict], gt_map: np.ndarray | None,
                          fixations: Fixations | None):
    """(gt_map, fixations) with what cannot score taken out (None: its metrics are skipped)."""
    kinds = {note["kind"] for note in notes}
    return (None if ALL_BLACK_MAP in kinds else gt_map,
            None if EMPTY_FIXATIONS in kinds else fixations)


def read_gt_map(item: FrameItem) -> np.ndarray | None:
    if item.saliency_map is None:
        return None
    try:
        # uint8 / 255 in double, as MATLAB's im2double (read_saliency_map gives float32)
        return read_grey_image(item.saliency_map).astype(np.float64) / 255.0
    except DataFileError as error:
        kind = "missing ground truth" if not Path(item.saliency_map).is_file() else "unreadable ground truth"
        raise EvaluationInputError(kind, item.saliency_map, str(error).split(": ", 1)[-1]) from None


def folder_pair_items(pred_root: str | os.PathLike, gt_root: str | os.PathLike) -> list[FrameItem]:
    """Items for ``gt_root/<video>/{maps,fixation}/<frame>.png`` vs ``pred_root/<video>/<frame>.png``.

    The frame list is the ground truth's (every ``maps/*.png``, or ``fixation/*.png`` when a
    video has no maps), so a missing prediction is reported, not silently skipped. Fixations
    are read from ``fixation/maps/<frame>.mat`` when present (DHF1K), else ``fixation/<frame>.png``.
    """
    pred_root, gt_root = Path(pred_root), Path(gt_root)
    if not gt_root.is_dir():
        raise FileNotFoundError(f"{gt_root} is not a folder")
    if not pred_root.is_dir():
        raise FileNotFoundError(f"{pred_root} is not a folder")
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
