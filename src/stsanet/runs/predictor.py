"""Saliency maps for any video: sliding window (SPEC section 7), batched, resumable.

For frame t the network sees ``window_indices(t, N)`` — frames t−15 … t+16 for the middle-frame
model, t−31 … t for the last-frame model — with the first/last frame repeated past the ends.
Each window's map is resized (bilinear) to the video's resolution and written as an 8-bit PNG
(scaled so the frame's maximum is 255), optionally also as the raw float map (``.npy``); an
overlay video (heat map over the frames) is written last. Every file is written atomically, and
frames whose outputs exist are skipped, so an interrupted run continues where it stopped.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np
import torch

from stsanet.atomic import atomic_path
from stsanet.data.clips import window_indices
from stsanet.data.frames import IMAGE_SUFFIXES, VIDEO_SUFFIXES, open_frame_source
from stsanet.data.io import write_png_atomic
from stsanet.data.resize import resize_frames, resize_maps
from stsanet.errors import InputError
from stsanet.models.inference import PRECISIONS, InferenceModel, resolve_compile
from stsanet.render.overlay import write_overlay_video

log = logging.getLogger(__name__)

DEFAULT_FPS = 25


@dataclass
class PredictOptions:
    clip_len: int = 32
    supervision: str = "middle"
    batch_windows: int = 4
    overlay: bool = True
    save_float: bool = False
    progress: bool = True
    # bf16: autocast, with the precision-critical parts kept fp32 (models/precision.py); pays
    # off on hardware with fast bf16 (GPUs, CPUs with AMX), not on AVX-512 CPUs without it
    precision: str = "fp32"
    # torch.compile (inductor, frozen weights): one compile per process and input size, paid
    # back after some windows (see the README); every batch is padded to batch_windows.
    # auto: on GPUs, and on CPU where the windows to predict reach the measured break-even
    # (stsanet.models.inference.resolve_compile)
    compile: bool | str = "auto"
    # channels-last 3D weights and clips; None: on CPU (measured faster there, make bench)
    channels_last: bool | None = None

    def __post_init__(self):
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, "
                             f"got {self.precision!r}")
        if not isinstance(self.compile, bool) and self.compile != "auto":
            raise ValueError(f"compile must be true, false or auto, got {self.compile!r}")


def _has_images(folder: Path) -> bool:
    return any(p.suffix.lower() in IMAGE_SUFFIXES for p in folder.iterdir() if p.is_file())


def find_inputs(path: str | os.PathLike) -> list[Path]:
    """The videos behind ``path``: a video file, a frame folder, or a folder of videos/folders."""
    path = Path(path)
    if path.is_file():
        return [path]
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such video file or folder")
    if _has_images(path):
        return [path]
    found = [p for p in sorted(path.iterdir())
             if (p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
             or (p.is_dir() and _has_images(p))]
    if not found:
        raise FileNotFoundError(f"{path}: no videos ({', '.join(VIDEO_SUFFIXES)}) or frame "
                                f"folders inside")
    return found


@dataclass(frozen=True)
class VideoOutputs:
    """Where one video's results go under the output root: ``<video>/maps/0001.png`` (1-based,
    the layout stsanet-eval reads), ``<video>/float/0001.npy`` and ``<video>/overlay.mp4``."""

    root: Path
    name: str

    @property
    def maps(self) -> Path:
        return self.root / self.name / "maps"

    @property
    def overlay(self) -> Path:
        return self.root / self.name / "overlay.mp4"

    def map(self, frame: int) -> Path:
        return self.maps / f"{frame + 1:04d}.png"

    def float_map(self, frame: int) -> Path:
        return self.root / self.name / "float" / f"{frame + 1:04d}.npy"


def video_name(path: Path) -> str:
    return path.stem if path.is_file() else path.name


def to_uint8(saliency: np.ndarray) -> np.ndarray:
    peak = float(saliency.max())
    scaled = saliency / peak if peak > 0 else saliency
    return np.clip(np.rint(scaled * 255.0), 0, 255).astype(np.uint8)


def _save_npy_atomic(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as temporary, open(temporary, "wb") as stream:
        np.save(stream, array)


def video_fps(path: Path) -> Fraction:
    if path.is_file():
        try:
            import av

            with av.open(str(path)) as container:
                rate = container.streams.video[0].average_rate
                if rate:
                    return Fraction(rate)
        except Exception:  # an unreadable rate only changes the overlay's playback speed
            pass
    return Fraction(DEFAULT_FPS)


class SlidingWindowPredictor:
    """Runs a clip → map network over whole videos."""

    def __init__(self, model: torch.nn.Module, input_size: tuple[int, int],
                 device: torch.device | str = "cpu", options: PredictOptions | None = None,
                 windows: int | None = None):
        """``windows``: how many windows (= frames) this predictor will run, if known; with
        ``compile=auto`` it decides whether compiling pays."""
        self.options = options or PredictOptions()
        self.input_size = tuple(int(s) for s in input_size)
        self.device = torch.device(device)
        compile = resolve_compile(self.options.compile, self.device, windows, self.input_size)
        self.model = InferenceModel(model, device, self.options.precision, compile,
                                    self.options.channels_last)

    def _complete(self, out: VideoOutputs, frame: int) -> bool:
        if not out.map(frame).is_file():
            return False
        return not self.options.save_float or out.float_map(frame).is_file()

    def _forward(self, clips: torch.Tensor) -> torch.Tensor:
        short = self.options.batch_windows - clips.shape[0]
        if self.model.compiled and short > 0:
            # one compiled shape for every batch: pad with copies of the last window
            clips = torch.cat([clips, clips[-1:].expand(short, *clips.shape[1:])])
            return self.model(clips)[:-short]
        return self.model(clips)

    @torch.no_grad()
    def predict_video(self, path: Path, output: Path, name: str | None = None,
                      frames: list[int] | None = None) -> VideoOutputs:
        """Writes the maps (+ float maps, overlay video) of one video under ``output``;
        ``frames`` (0-based) restricts prediction to those frames (no overlay then)."""
        path = Path(path)
        out = VideoOutputs(Path(output), name or video_name(path))
        source = open_frame_source(path)
        n, height, width = source.num_frames, source.height, source.width
        wanted = range(n) if frames is None else sorted(set(frames))
        todo = [t for t in wanted if not self._complete(out, t)]
        if todo:
            log.info("%s: %d of %d frames to predict", path, len(todo), n)
        progress = None
        if self.options.progress and todo:
            from tqdm import tqdm

            progress = tqdm(total=len(todo), desc=path.name, unit="frame", dynamic_ncols=True)
        cache: dict[int, torch.Tensor] = {}
        opts = self.options
        for start in range(0, len(todo), opts.batch_windows):
            targets = todo[start:start + opts.batch_windows]
            windows = [window_indices(t, n, opts.clip_len, opts.supervision) for t in targets]
            needed = sorted({i for w in windows for i in w})
            for index in [i for i in cache if i < needed[0]]:
                del cache[index]
            missing = [i for i in needed if i not in cache]
            if missing:
                resized = resize_frames(source.read(missing), self.input_size)  # 3 x N x h x w
                for index, frame in zip(missing, resized.unbind(1)):
                    cache[index] = frame
            clips = torch.stack([torch.stack([cache[i] for i in w], dim=1) for w in windows])
            maps = self._forward(clips)
            maps = resize_maps(maps, (height, width)).clamp_(0, 1).cpu().numpy()
            for t, saliency in zip(targets, maps):
                if opts.save_float:
                    _save_npy_atomic(out.float_map(t), saliency.astype(np.float32))
                write_png_atomic(out.map(t), to_uint8(saliency))
            if progress is not None:
                progress.update(len(targets))
        if progress is not None:
            progress.close()
        if opts.overlay and frames is None:
            write_overlay_video(source, out.map, out.overlay, video_fps(path))
        return out


@dataclass
class VideoOutcome:
    path: Path
    outputs: VideoOutputs | None
    error: str | None = None


def count_windows(inputs: Iterable[Path]) -> int:
    """Frames (= windows to predict) of all inputs, from their headers; an input that cannot be
    opened counts 0 here and is reported when it is predicted."""
    total = 0
    for path in inputs:
        try:
            total += open_frame_source(path).num_frames
        except Exception:  # reported by predict_inputs, by name
            continue
    return total


def predict_inputs(predictor: SlidingWindowPredictor, inputs: Iterable[Path],
                   output: Path, names: dict[Path, str] | None = None) -> list[VideoOutcome]:
    """Predicts every input (into ``output/<names[path]>``, default its stem); a video that
    cannot be read is reported by name and the others still run (anything else is a bug and
    stops the run)."""
    outcomes = []
    for path in inputs:
        try:
            outputs = predictor.predict_video(path, output, (names or {}).get(path))
            outcomes.append(VideoOutcome(path, outputs))
        except InputError as error:  # report and go on with the next video
            log.error("%s: failed (%s)", path, error)
            outcomes.append(VideoOutcome(path, None, str(error)))
    return outcomes
