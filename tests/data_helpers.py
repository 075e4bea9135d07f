"""Small real files for the data tests: videos through PyAV, numbered frames, map PNGs."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np

from stsanet.data.io import write_png_atomic
from stsanet.data.video_writer import write_video  # noqa: F401 (re-exported for the tests)


def distinct_frames(count: int, height: int = 48, width: int = 80, seed: int = 0) -> np.ndarray:
    """Frames that differ clearly from each other (a moving square on shifting ramps)."""
    yy, xx = np.mgrid[0:height, 0:width]
    frames = np.zeros((count, height, width, 3), np.uint8)
    for i in range(count):
        frames[i, ..., 0] = (xx * 3 + i * 7 + seed) % 256
        frames[i, ..., 1] = (yy * 5 + i * 13) % 256
        cy, cx = (i * 3) % height, (i * 5) % width
        frames[i, max(0, cy - 6): cy + 6, max(0, cx - 6): cx + 6, 2] = 255
    return frames


def decode_sequential_pyav(path: Path) -> np.ndarray:
    """Every frame in presentation order, decoded front to back (the ground truth)."""
    with av.open(str(path)) as container:
        return np.stack([f.to_ndarray(format="rgb24") for f in container.decode(video=0)])


def write_frame_folder(folder: Path, frames: np.ndarray, pattern: str = "{:04d}.png", first=1):
    folder.mkdir(parents=True, exist_ok=True)
    for i, frame in enumerate(frames):
        write_png_atomic(folder / pattern.format(i + first), frame)
    return folder


def grey(height: int, width: int, value: int) -> np.ndarray:
    return np.full((height, width), value, np.uint8)


def fixation_image(height: int, width: int, points) -> np.ndarray:
    image = np.zeros((height, width), np.uint8)
    for r, c in points:
        image[r, c] = 255
    return image


def write_annotations(folder: Path, count: int, height: int, width: int, pattern="{:04d}.png",
                      fixation_pattern=None, fixation_folder="fixation", map_folder="maps"):
    """Maps (grey value = frame number) and one-point fixations for `count` frames, 1-based."""
    fixation_pattern = fixation_pattern or pattern
    for k in range(1, count + 1):
        write_png_atomic(folder / map_folder / pattern.format(k), grey(height, width, k))
        name = fixation_pattern.format(k)
        target = folder / fixation_folder / name
        if name.endswith(".mat"):
            import scipy.io

            target.parent.mkdir(parents=True, exist_ok=True)
            scipy.io.savemat(target, {"eyeMap": fixation_image(height, width, [(k % height, 1)])})
        else:
            write_png_atomic(target, fixation_image(height, width, [(k % height, 1)]))
