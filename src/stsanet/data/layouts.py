"""Dataset folder layouts parsed into one index (SPEC section 9, PEERS section 2).

Every layout becomes a :class:`DatasetIndex`: a list of :class:`VideoRecord`, one per video,
with its frame source (video file or image folder), its frame count and, per 0-based frame
index, the path of the saliency map and of the fixation map (``None`` where the release has
none). File numbers in the releases are 1-based; frame ``k`` of a file name is index ``k - 1``.

Supported layouts (``dataset`` argument):

* ``dhf1k``: ``annotation/NNNN/{maps,fixation}/NNNN.png`` (+ ``fixation/maps/NNNN.mat``) with
  frames from ``video/NNN.AVI`` (the release), ``frames/NNNN/images/`` (official STSANet
  loader), or ``annotation/NNNN/images/`` (ViNet/UNISAL); also ViNet/TMFI's
  ``{train,val}/NNNN/{images,maps,fixation}``. Sorted videos 1-600 train, 601-700 val,
  the rest (no annotations) test.
* ``hollywood2``, ``ucf``: ``{training,testing}/<vid>/{images,maps,fixation}/`` (train / test).
* ``diem``: ``{training,testing}/<vid>/img_%05d.jpg`` with ``ann/<vid>/maps/eyeMap_%05d.jpg``
  and ``ann/<vid>/fixMap_%05d.mat`` (train / test).
* ``synthetic``: the DHF1K layout written by :mod:`stsanet.data.synthetic`, split sizes read
  from its ``synthetic.json``.

:func:`stsanet.data.index.build_index` picks the parser and caches its index.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from stsanet.data.frames import IMAGE_SUFFIXES, VIDEO_SUFFIXES, frame_number
from stsanet.data.io import DataFileError

DATASETS = ("dhf1k", "hollywood2", "ucf", "diem", "synthetic")


@dataclass
class VideoRecord:
    name: str
    split: str  # "train", "val" or "test"
    frames_path: Path  # a video file or a folder of numbered images
    num_frames: int
    maps: list[Path | None]
    fixations: list[Path | None]
    # Annotation files whose frame number lies beyond the frame count (a count mismatch).
    extra_maps: int = 0
    extra_fixations: int = 0
    frames_error: str | None = None  # why the frame source could not be opened, if it could not
    height: int = 0  # frame size, 0 when the source could not be opened
    width: int = 0

    @property
    def annotated(self) -> bool:
        return any(m is not None for m in self.maps)


@dataclass
class DatasetIndex:
    dataset: str
    root: Path
    videos: list[VideoRecord] = field(default_factory=list)

    def split(self, name: str) -> list[VideoRecord]:
        return [v for v in self.videos if v.split == name]

    def splits(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for video in self.videos:
            counts[video.split] = counts.get(video.split, 0) + 1
        return counts


class LayoutError(DataFileError):
    """The root does not look like the chosen dataset's layout."""


# ----------------------------------------------------------------------------------------------
# Helpers


def _numbered_files(folder: Path, suffixes: tuple[str, ...], prefix: str = "") -> dict[int, Path]:
    if not folder.is_dir():
        return {}
    found: dict[int, Path] = {}
    for entry in os.scandir(folder):
        path = Path(entry.path)
        if not entry.is_file() or path.suffix.lower() not in suffixes:
            continue
        if prefix and not path.name.startswith(prefix):
            continue
        number = frame_number(path)
        if number is not None:
            found[number] = path
    return found


def _count_frames(frames_path: Path) -> tuple[int, int, int, int, str | None]:
    """(frame count, first frame number, height, width, error) of a video or image folder."""
    from stsanet.data.frames import open_frame_source

    try:
        source = open_frame_source(frames_path, seek_mode="random")
    except DataFileError as error:
        return 0, 1, 0, 0, str(error)
    first = frame_number(source.files[0]) if hasattr(source, "files") else 1
    return source.num_frames, first, source.height, source.width, None


def _record(name, split, frames_path, maps_by_number, fixations_by_number) -> VideoRecord:
    num_frames, first, height, width, error = _count_frames(frames_path)
    if num_frames == 0 and error is None:
        error = f"{frames_path}: no frames"
    if first not in (0, 1):
        first = 1
    maps: list[Path | None] = [maps_by_number.get(first + i) for i in range(num_frames)]
    fixations: list[Path | None] = [fixations_by_number.get(first + i) for i in range(num_frames)]
    return VideoRecord(
        name=name,
        split=split,
        frames_path=frames_path,
        num_frames=num_frames,
        maps=maps,
        fixations=fixations,
        extra_maps=sum(1 for k in maps_by_number if not first <= k < first + num_frames),
        extra_fixations=sum(1 for k in fixations_by_number if not first <= k < first + num_frames),
        frames_error=error,
        height=height,
        width=width,
    )


def natural_key(name: str) -> list:
    """Sort key that orders embedded numbers by value (``v2`` before ``v10``)."""
    return [(0, int(chunk), "") if chunk.isdigit() else (1, 0, chunk)
            for chunk in re.split(r"(\d+)", name) if chunk]


def _sorted_dirs(folder: Path) -> list[Path]:
    dirs = [p for p in folder.iterdir() if p.is_dir() and not p.name.startswith(".")]
    return sorted(dirs, key=lambda p: natural_key(p.name))


def _require(root: Path, dataset: str, *candidates: str) -> None:
    if not any((root / c).is_dir() for c in candidates):
        raise LayoutError(
            f"{root}: not a {dataset} root (expected {' or '.join(c + '/' for c in candidates)}); "
            f"set data.root to the folder that holds them"
        )


# ----------------------------------------------------------------------------------------------
# Layouts


def _dhf1k_fixations(annotation: Path) -> dict[int, Path]:
    fixations = _numbered_files(annotation / "fixation" / "maps", (".mat",))
    fixations.update(_numbered_files(annotation / "fixation", IMAGE_SUFFIXES))  # PNG preferred
    return fixations


def parse_dhf1k(root: Path, train_videos: int = 600, val_videos: int = 100) -> list[VideoRecord]:
    records: list[VideoRecord] = []
    if (root / "train").is_dir() and not (root / "annotation").is_dir():
        # ViNet / TMFI: {train,val}/NNNN/{images,maps,fixation}
        for folder, split in (("train", "train"), ("val", "val"), ("test", "test")):
            if not (root / folder).is_dir():
                continue
            for video in _sorted_dirs(root / folder):
                records.append(
                    _record(
                        video.name, split, video / "images",
                        _numbered_files(video / "maps", IMAGE_SUFFIXES),
                        _dhf1k_fixations(video),
                    )
                )
        return records
    _require(root, "DHF1K", "annotation", "train")
    annotations = {int(p.name): p for p in _sorted_dirs(root / "annotation") if p.name.isdigit()}
    videos: dict[int, Path] = {}
    if (root / "video").is_dir():
        for path in (root / "video").iterdir():
            if path.suffix.lower() in VIDEO_SUFFIXES and path.stem.isdigit():
                videos[int(path.stem)] = path
    numbers = sorted(set(annotations) | set(videos))
    for position, number in enumerate(numbers):
        annotation = annotations.get(number, root / "annotation" / f"{number:04d}")
        name = annotation.name
        candidates = [
            root / "frames" / name / "images",
            root / "frames" / name,
            annotation / "images",
        ]
        frames_path = videos.get(number)
        if frames_path is None:
            frames_path = next((c for c in candidates if c.is_dir()), root / "video" / f"{number:03d}.AVI")
        if number in annotations:
            split = "train" if position < train_videos else (
                "val" if position < train_videos + val_videos else "test"
            )
        else:
            split = "test"
        records.append(
            _record(
                name, split, frames_path,
                _numbered_files(annotation / "maps", IMAGE_SUFFIXES),
                _dhf1k_fixations(annotation),
            )
        )
    return records


def parse_training_testing(root: Path, dataset: str) -> list[VideoRecord]:
    """Hollywood-2 and UCF Sports: {training,testing}/<vid>/{images,maps,fixation}."""
    _require(root, dataset, "training", "testing")
    records = []
    for folder, split in (("training", "train"), ("testing", "test")):
        if not (root / folder).is_dir():
            continue
        for video in _sorted_dirs(root / folder):
            fixations = _numbered_files(video / "fixation" / "maps", (".mat",))
            fixations.update(_numbered_files(video / "fixation", IMAGE_SUFFIXES))
            records.append(
                _record(
                    video.name, split, video / "images",
                    _numbered_files(video / "maps", IMAGE_SUFFIXES), fixations,
                )
            )
    return records


def parse_diem(root: Path) -> list[VideoRecord]:
    _require(root, "DIEM", "training", "testing")
    records = []
    for folder, split in (("training", "train"), ("testing", "test")):
        if not (root / folder).is_dir():
            continue
        for video in _sorted_dirs(root / folder):
            annotation = root / "ann" / video.name
            records.append(
                _record(
                    video.name, split, video,
                    _numbered_files(annotation / "maps", IMAGE_SUFFIXES, prefix="eyeMap_"),
                    _numbered_files(annotation, (".mat",) + IMAGE_SUFFIXES, prefix="fixMap_"),
                )
            )
    return records


def parse_synthetic(root: Path) -> list[VideoRecord]:
    meta_file = root / "synthetic.json"
    if not meta_file.is_file():
        partial = root / "synthetic.partial.json"  # written by an interrupted generation
        try:
            meta = json.loads(partial.read_text()) if partial.is_file() else {}
        except (OSError, ValueError):
            meta = {}
        if meta.get("size") in (None, "custom"):
            raise LayoutError(f"{root}: no synthetic.json; generate the dataset with "
                              f"`stsanet-make-synthetic root={root} size=<ci|demo> seed=<N>`")
        raise LayoutError(f"{root}: its generation was interrupted; complete it with "
                          f"`stsanet-make-synthetic root={root} size={meta['size']} "
                          f"seed={meta.get('seed', 0)}`")
    meta = json.loads(meta_file.read_text())
    return parse_dhf1k(root, train_videos=meta["train_videos"], val_videos=meta["val_videos"])
