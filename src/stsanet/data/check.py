"""Validation of a parsed dataset: one list of problems, shared by the command and the DataModule.

Errors make a root unusable (the command exits non-zero, the DataModule stops at setup);
warnings are printed and worked around, each as ``HANDLING`` says (the command and the
DataModule both print it next to the count).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from pathlib import Path

from PIL import Image

from stsanet.data.io import DataFileError, read_fixations, read_grey_image
from stsanet.data.layouts import DatasetIndex, VideoRecord

ERROR, WARNING = "error", "warning"
# Shown per kind of problem; the counts always cover all of them.
EXAMPLES_SHOWN = 5
SHORT_VIDEO = "video shorter than a clip"
EMPTY_FIXATIONS = "empty fixation map"
ALL_BLACK_MAP = "all-black saliency map"
# What training and evaluation do with each kind of warning.
HANDLING = {
    SHORT_VIDEO: "used: a window running past either end repeats the edge frame "
                 "(stsanet.data.clips.window_indices), as stsanet-predict does",
    "frames without a saliency map": "not used as labels",
    "frames without a fixation map": "they count as empty fixation maps",
    EMPTY_FIXATIONS: "training skips the batch holding it; the test stage skips the frame; "
                     "stsanet-eval leaves the frame out of NSS and the AUCs",
    ALL_BLACK_MAP: "no target: the training loss leaves the sample out; stsanet-eval leaves the "
                   "frame out of CC, SIM and KL",
}


@dataclass
class Problem:
    kind: str
    severity: str
    path: str
    detail: str = ""


@dataclass
class CheckReport:
    dataset: str
    root: Path
    videos_checked: int = 0
    frames_checked: int = 0
    problems: list[Problem] = field(default_factory=list)
    labelled_frames: dict[str, int] = field(default_factory=dict)

    def add(self, kind: str, severity: str, path, detail: str = "") -> None:
        self.problems.append(Problem(kind, severity, str(path), detail))

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == ERROR]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == WARNING]

    @property
    def usable(self) -> bool:
        return not self.errors and any(self.labelled_frames.values())

    def summary(self) -> str:
        """One line: why the root is unusable (each kind of error, its count, one example)."""
        kinds: dict[str, list[Problem]] = defaultdict(list)
        for problem in self.errors:
            kinds[problem.kind].append(problem)
        parts = [f"{kind}: {len(found)} (e.g. {found[0].path}"
                 f"{': ' + found[0].detail if found[0].detail else ''})"
                 for kind, found in kinds.items()]
        if not any(self.labelled_frames.values()):
            parts.append("no frame with a saliency map in the checked splits")
        return f"data.root={self.root} is unusable for {self.dataset}: " + "; ".join(parts)

    def format(self) -> str:
        lines = [
            f"{self.dataset} at {self.root}: {self.videos_checked} videos, "
            f"{self.frames_checked} frames checked; labelled frames per split: "
            + (", ".join(f"{k} {v}" for k, v in sorted(self.labelled_frames.items())) or "none")
        ]
        grouped: dict[tuple[str, str], list[Problem]] = defaultdict(list)
        for problem in self.problems:
            grouped[(problem.severity, problem.kind)].append(problem)
        for (severity, kind), problems in sorted(grouped.items()):
            handling = f" ({HANDLING[kind]})" if kind in HANDLING else ""
            lines.append(f"{severity.upper()}: {kind}: {len(problems)}{handling}")
            for problem in problems[:EXAMPLES_SHOWN]:
                lines.append(f"    {problem.path}{': ' + problem.detail if problem.detail else ''}")
            if len(problems) > EXAMPLES_SHOWN:
                lines.append(f"    ... and {len(problems) - EXAMPLES_SHOWN} more")
        if not any(self.labelled_frames.values()):
            lines.append("ERROR: no frame with a saliency map in the checked splits")
        lines.append("OK: the root is usable" if self.usable else "FAILED: the root is unusable")
        return "\n".join(lines)


class DataCheckError(DataFileError):
    """The dataset root is unusable; the message says why and how to see the full report."""


def _image_size(path: Path) -> tuple[int, int] | None:
    """(height, width) from the header (PNG/JPG) or the matrix (.mat); None if unreadable."""
    if path.suffix.lower() == ".mat":
        return read_fixations(path).shape
    with Image.open(path) as image:
        return image.size[1], image.size[0]


def _sampled(paths: list[Path | None], deep: bool) -> list[Path]:
    present = [p for p in paths if p is not None]
    if deep or len(present) <= 3:
        return present
    return [present[0], present[len(present) // 2], present[-1]]


def check_video(report: CheckReport, video: VideoRecord, clip_len: int, deep: bool,
                needs_labels: bool) -> None:
    report.videos_checked += 1
    if video.frames_error is not None:
        kind = "zero-length video" if "zero-length" in video.frames_error else (
            "unreadable video or frame folder")
        report.add(kind, ERROR, video.frames_path, video.frames_error.split(": ", 1)[-1])
        return
    report.frames_checked += video.num_frames
    labelled = sum(1 for m in video.maps if m is not None)
    if labelled == 0:
        if needs_labels:
            report.add("video without saliency maps", ERROR, video.frames_path,
                       f"split {video.split}; expected maps for its {video.num_frames} frames")
        return
    report.labelled_frames[video.split] = report.labelled_frames.get(video.split, 0) + labelled
    missing_maps = video.num_frames - labelled
    if missing_maps:
        report.add("frames without a saliency map", WARNING, video.frames_path,
                   f"{missing_maps} of {video.num_frames} (first: frame index "
                   f"{next(i for i, m in enumerate(video.maps) if m is None)}); not used as labels")
    missing_fixations = sum(
        1 for m, f in zip(video.maps, video.fixations) if m is not None and f is None
    )
    if missing_fixations:
        report.add("frames without a fixation map", WARNING, video.frames_path,
                   f"{missing_fixations} labelled frames; they count as empty fixation maps")
    if video.extra_maps or video.extra_fixations:
        report.add("frame-count mismatch", ERROR, video.frames_path,
                   f"{video.num_frames} frames but {video.extra_maps} maps and "
                   f"{video.extra_fixations} fixation files numbered beyond the last frame")
    if video.num_frames < clip_len:
        report.add(SHORT_VIDEO, WARNING, video.frames_path,
                   f"{video.num_frames} < {clip_len} frames")
    # Three files per video by their headers (a systematic size error shows in any of them);
    # deep: every file, read whole, which also finds all-black and empty annotations.
    for kind_name, paths, read in (("saliency map", video.maps, read_grey_image),
                                   ("fixation map", video.fixations, read_fixations)):
        for path in _sampled(paths, deep):
            try:
                image = read(path) if deep else None
                size = image.shape if deep else _image_size(path)
            except (DataFileError, OSError) as error:
                report.add(f"unreadable {kind_name}", ERROR, path, str(error).split(": ", 1)[-1])
                continue
            if size != (video.height, video.width):
                report.add("wrong image size", ERROR, path,
                           f"{size[1]}×{size[0]}, frames of {video.name} are "
                           f"{video.width}×{video.height}")
            elif image is not None and not image.any():
                report.add(ALL_BLACK_MAP if read is read_grey_image else EMPTY_FIXATIONS,
                           WARNING, path)


def check_index(index: DatasetIndex, splits=None, clip_len: int = 32,
                deep: bool = False) -> CheckReport:
    """Check the videos of ``splits`` (all when None). ``deep`` opens every annotation file;
    otherwise three per video are opened (headers only) to catch systematic size errors."""
    report = CheckReport(index.dataset, index.root)
    selected = [v for v in index.videos if splits is None or v.split in splits]
    if not selected:
        report.add("no videos in the requested splits", ERROR, index.root,
                   f"asked for {sorted(splits)}, found {index.splits()}")
    for video in selected:
        # DHF1K's test videos (701-1000) are released without annotations.
        needs_labels = not (video.split == "test" and index.dataset in ("dhf1k", "synthetic"))
        check_video(report, video, clip_len, deep, needs_labels)
    return report


def require_usable(index: DatasetIndex, splits, clip_len: int = 32) -> CheckReport:
    """Run the checks; raise :class:`DataCheckError` with the whole report if unusable."""
    report = check_index(index, splits, clip_len)
    if not report.usable:
        chosen = f" splits=[{','.join(sorted(splits))}]" if splits else ""
        raise DataCheckError(f"{report.summary()}; the full report: stsanet-check-data "
                             f"data={index.dataset} data.root={index.root}{chosen}")
    return report
