"""Frame sources: video files decoded with decord, and folders of numbered images.

Both give ``read(indices) -> uint8 [N, H, W, 3]`` RGB for 0-based frame indices.

decord's random access is only exact where the container carries reliable timestamps. In an
AVI holding a codec with B-frames (H.264, MPEG-4 ASP with ``bf > 0``) ``get_batch`` returns
frames from the wrong place, and even seeking to a listed keyframe can land elsewhere. So each
video is probed once (per process; optionally persisted in a JSON cache): a few scattered
random reads, then keyframe-seek-and-decode reads, are compared with a plain sequential
decode of the file's opening frames. The first strategy that matches is used:

* ``random``: decord ``get_batch`` (fast path; MP4/MKV, intra-only codecs, AVI without B-frames);
* ``keyframe``: seek to the nearest keyframe at or before the first wanted frame, decode forward;
* ``sequential``: decode forward from the current position, restarting from frame 0 when asked
  for an earlier frame (always exact; slowest).
"""

from __future__ import annotations

import bisect
import json
import os
import re
import threading
from pathlib import Path
from typing import Protocol, Sequence

import numpy as np
from PIL import Image

from stsanet.atomic import write_text_atomic
from stsanet.data.io import DataFileError

IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
# containers decord opens (a frame folder is the other kind of video)
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg", ".flv",
                  ".wmv", ".3gp", ".ts")
SEEK_MODES = ("random", "keyframe", "sequential")
# Frames decoded sequentially as the reference when probing; covers several GOPs of the usual
# encoder settings (keyframe every 12-250 frames) while costing ~0.1 s at 640 × 360.
PROBE_PREFIX_FRAMES = 160
PROBE_READS = 10


class FrameSource(Protocol):
    path: Path
    num_frames: int
    height: int
    width: int

    def read(self, indices: Sequence[int]) -> np.ndarray: ...


def _check_indices(indices: Sequence[int], num_frames: int, path: Path) -> np.ndarray:
    wanted = np.asarray(list(indices), dtype=np.int64).reshape(-1)
    if wanted.size and (wanted.min() < 0 or wanted.max() >= num_frames):
        raise IndexError(
            f"{path}: frame indices {wanted.min()}..{wanted.max()} outside 0..{num_frames - 1}"
        )
    return wanted


def frame_number(path: Path) -> int | None:
    """The last group of digits in a file stem (``img_00012`` -> 12, ``0001`` -> 1)."""
    numbers = re.findall(r"\d+", path.stem)
    return int(numbers[-1]) if numbers else None


def list_image_frames(folder: Path) -> list[Path]:
    """Image files of a folder sorted by their frame number (so 10 comes after 9)."""
    files = [p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()]
    unnumbered = [p.name for p in files if frame_number(p) is None]
    if unnumbered:
        raise DataFileError(
            f"{folder}: frame files without a number in their name: {unnumbered[:3]}"
        )
    return sorted(files, key=lambda p: (frame_number(p), p.name))


class ImageFolderSource:
    """Numbered image files, one per frame (``0001.png``, ``img_00001.jpg``, ...)."""

    def __init__(self, folder: str | os.PathLike):
        self.path = Path(folder)
        self.files = list_image_frames(self.path)
        if not self.files:
            raise DataFileError(f"{self.path}: no image frames ({', '.join(IMAGE_SUFFIXES)})")
        self.num_frames = len(self.files)
        with Image.open(self.files[0]) as first:
            self.width, self.height = first.size

    def read(self, indices: Sequence[int]) -> np.ndarray:
        wanted = _check_indices(indices, self.num_frames, self.path)
        unique, inverse = np.unique(wanted, return_inverse=True)
        frames = []
        for index in unique:
            file = self.files[int(index)]
            try:
                with Image.open(file) as image:
                    frame = np.asarray(image.convert("RGB"))
            except Exception as error:
                raise DataFileError(f"{file}: cannot read frame ({error})") from None
            if frame.shape[:2] != (self.height, self.width):
                raise DataFileError(
                    f"{file}: frame is {frame.shape[1]}×{frame.shape[0]}, the first frame of "
                    f"{self.path} is {self.width}×{self.height}; all frames must share one size"
                )
            frames.append(frame)
        if not frames:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        return np.stack(frames)[inverse.reshape(-1)]


# ----------------------------------------------------------------------------------------------
# Video files


def _open_decord(path: Path, num_threads: int = 1):
    import decord

    if not path.is_file():
        raise DataFileError(f"{path}: video file not found")
    if path.stat().st_size == 0:
        raise DataFileError(f"{path}: zero-length video file")
    try:
        reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=num_threads)
    except Exception as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else type(error)
        raise DataFileError(f"{path}: unreadable video ({first_line})") from None
    if len(reader) == 0:
        raise DataFileError(f"{path}: video has no frames")
    return reader


class _SeekVerdicts:
    """Probe results keyed by file identity, in memory and optionally in a JSON file."""

    def __init__(self):
        self._memory: dict[str, str] = {}
        self._lock = threading.Lock()

    @staticmethod
    def key(path: Path) -> str:
        stat = path.stat()
        return f"{path.resolve()}|{stat.st_size}|{stat.st_mtime_ns}"

    @staticmethod
    def cache_file() -> Path | None:
        folder = os.environ.get("STSANET_CACHE_DIR")
        return Path(folder) / "seek_verdicts.json" if folder else None

    def get(self, path: Path) -> str | None:
        key = self.key(path)
        with self._lock:
            if key in self._memory:
                return self._memory[key]
        file = self.cache_file()
        if file is not None and file.is_file():
            try:
                stored = json.loads(file.read_text())
            except (OSError, ValueError):
                return None
            if stored.get(key) in SEEK_MODES:
                with self._lock:
                    self._memory[key] = stored[key]
                return stored[key]
        return None

    def put(self, path: Path, mode: str) -> None:
        key = self.key(path)
        with self._lock:
            self._memory[key] = mode
        file = self.cache_file()
        if file is None:
            return
        try:
            stored = json.loads(file.read_text()) if file.is_file() else {}
            stored[key] = mode
            write_text_atomic(file, json.dumps(stored))
        except (OSError, ValueError):
            pass  # the cache only saves time; a failure to write it must not stop reading


SEEK_VERDICTS = _SeekVerdicts()


def probe_seek_mode(path: str | os.PathLike) -> str:
    """Which read strategy returns exactly the frames of a sequential decode (see module doc)."""
    path = Path(path)
    cached = SEEK_VERDICTS.get(path)
    if cached is not None:
        return cached
    reference_reader = _open_decord(path)
    prefix = min(len(reference_reader), PROBE_PREFIX_FRAMES)
    reference = [reference_reader.next().asnumpy() for _ in range(prefix)]
    del reference_reader
    if prefix <= 1:
        mode = "random"
    else:
        # Scattered order with backward jumps: the pattern that exposes wrong seeks.
        rng = np.random.default_rng(prefix)
        targets = [prefix - 1, prefix // 2, 1] + [
            int(t) for t in rng.integers(0, prefix, PROBE_READS)
        ]
        mode = "sequential"
        for candidate in ("random", "keyframe"):
            source = VideoFileSource(path, seek_mode=candidate)
            try:
                exact = all(
                    np.array_equal(source.read([t])[0], reference[t]) for t in targets
                ) and np.array_equal(
                    source.read(range(prefix // 3, prefix // 3 + 8)),
                    np.stack(reference[prefix // 3: prefix // 3 + 8]),
                )
            except Exception:
                exact = False
            if exact:
                mode = candidate
                break
    SEEK_VERDICTS.put(path, mode)
    return mode


class VideoFileSource:
    """A video file read with decord, using the exact strategy found by :func:`probe_seek_mode`."""

    def __init__(self, path: str | os.PathLike, seek_mode: str | None = None, num_threads: int = 1):
        self.path = Path(path)
        self._num_threads = num_threads
        self._reader = _open_decord(self.path, num_threads)
        self.num_frames = len(self._reader)
        first = self._reader[0].shape
        self.height, self.width = first[:2]
        if len(first) != 3 or first[2] != 3:
            # decord pads the rows of very small frames and returns them as extra channels
            raise DataFileError(
                f"{self.path}: a {self.width}×{self.height} video decodes to frames of shape "
                f"{tuple(first)}, not {self.width}×{self.height}×3 RGB; frames this small are "
                f"not supported: scale the video up (e.g. ffmpeg -i in.mp4 -vf scale=64:-2 "
                f"out.mp4)")
        self._reader.seek(0)
        self._position = 0  # next frame index `next()` returns (sequential and keyframe modes)
        if seek_mode is not None and seek_mode not in SEEK_MODES:
            raise ValueError(f"seek_mode must be one of {SEEK_MODES}, got {seek_mode!r}")
        self._seek_mode = seek_mode
        self._keyframes: list[int] | None = None

    @property
    def seek_mode(self) -> str:
        if self._seek_mode is None:
            self._seek_mode = probe_seek_mode(self.path)
        return self._seek_mode

    def _restart(self, index: int) -> None:
        if index == 0:
            # A fresh reader is the one start position that is always exact.
            self._reader = _open_decord(self.path, self._num_threads)
        else:
            self._reader.seek(index)
        self._position = index

    def _decode_forward(self, sorted_unique: np.ndarray) -> list[np.ndarray]:
        first = int(sorted_unique[0])
        if self.seek_mode == "keyframe":
            if self._keyframes is None:
                self._keyframes = sorted(int(k) for k in self._reader.get_key_indices()) or [0]
            start = self._keyframes[max(0, bisect.bisect_right(self._keyframes, first) - 1)]
            if not (start <= self._position <= first):
                self._restart(start)
        elif self._position > first:
            self._restart(0)
        frames = []
        wanted = iter(int(i) for i in sorted_unique)
        target = next(wanted)
        while True:
            try:
                frame = self._reader.next()
            except StopIteration:
                raise DataFileError(
                    f"{self.path}: decoding stopped at frame {self._position} of "
                    f"{self.num_frames}; the file is truncated or its frame count is wrong"
                ) from None
            self._position += 1
            if self._position - 1 == target:
                frames.append(frame.asnumpy())
                target = next(wanted, None)
                if target is None:
                    return frames

    def read(self, indices: Sequence[int]) -> np.ndarray:
        wanted = _check_indices(indices, self.num_frames, self.path)
        if wanted.size == 0:
            return np.zeros((0, self.height, self.width, 3), np.uint8)
        unique, inverse = np.unique(wanted, return_inverse=True)
        try:
            if self.seek_mode == "random":
                frames = self._reader.get_batch(unique.tolist()).asnumpy()
                self._position = -1  # get_batch leaves the stream somewhere; forget it
            else:
                if self._position < 0:
                    self._restart(0)
                frames = np.stack(self._decode_forward(unique))
        except DataFileError:
            raise
        except Exception as error:
            raise DataFileError(f"{self.path}: decoding failed ({error})") from None
        return frames[inverse.reshape(-1)]


def open_frame_source(path: str | os.PathLike, seek_mode: str | None = None) -> FrameSource:
    """A video file (decord) or a folder of numbered images, by what ``path`` is."""
    path = Path(path)
    if path.is_dir():
        return ImageFolderSource(path)
    if path.is_file():
        return VideoFileSource(path, seek_mode=seek_mode)
    raise DataFileError(f"{path}: no such video file or frame folder")
