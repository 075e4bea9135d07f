"""Heat maps over frames: the colour ramp, the blend, and the overlay video of a predicted
folder (shared by validation logging and stsanet-predict)."""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path

import numpy as np

from stsanet.atomic import atomic_path
from stsanet.data.io import read_grey_image

# A jet-like colour ramp: (position, r, g, b), linearly interpolated.
_RAMP = np.array([
    [0.00, 0.0, 0.0, 0.5],
    [0.15, 0.0, 0.0, 1.0],
    [0.40, 0.0, 1.0, 1.0],
    [0.60, 1.0, 1.0, 0.0],
    [0.85, 1.0, 0.0, 0.0],
    [1.00, 0.5, 0.0, 0.0],
])


def heat_colours(saliency: np.ndarray) -> np.ndarray:
    """H×W map (any range) → H×W×3 uint8 colours, min-max normalised first."""
    values = np.asarray(saliency, dtype=np.float32)
    span = float(values.max() - values.min())
    values = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    channels = [np.interp(values, _RAMP[:, 0], _RAMP[:, c]) for c in (1, 2, 3)]
    return (np.stack(channels, axis=-1) * 255.0 + 0.5).astype(np.uint8)


def overlay(frame: np.ndarray, saliency: np.ndarray, strength: float = 0.6) -> np.ndarray:
    """Blend the heat map over an RGB uint8 frame; transparent where saliency is low."""
    values = np.asarray(saliency, dtype=np.float32)
    span = float(values.max() - values.min())
    alpha = (values - values.min()) / span if span > 0 else np.zeros_like(values)
    alpha = (strength * alpha)[..., None]
    blended = (1.0 - alpha) * frame.astype(np.float32) + alpha * heat_colours(values)
    return np.clip(blended + 0.5, 0, 255).astype(np.uint8)


def write_overlay_video(source, map_png: Callable[[int], Path], target: Path, fps: Fraction,
                        chunk: int = 32) -> Path:
    """Heat maps (the PNG `map_png(t)` of each frame t) over the frames of `source` (a frame
    source), as an H.264 (or MPEG-4) video at `target`."""
    import av

    if target.is_file():
        return target
    n = source.num_frames
    # yuv420p needs even sizes: drop a last odd row/column
    height, width = source.height // 2 * 2, source.width // 2 * 2
    with atomic_path(target, suffix=".mp4") as temporary:
        with av.open(str(temporary), mode="w", format="mp4") as container:
            stream = _video_stream(container, fps)
            stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
            for start in range(0, n, chunk):
                indices = list(range(start, min(n, start + chunk)))
                for t, frame in zip(indices, source.read(indices)):
                    saliency = read_grey_image(map_png(t))
                    picture = overlay(frame, saliency)[:height, :width]
                    video_frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(picture),
                                                             format="rgb24")
                    for packet in stream.encode(video_frame):
                        container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return target


def _video_stream(container, fps: Fraction):
    for codec in ("libx264", "h264", "mpeg4"):
        try:
            return container.add_stream(codec, rate=fps)
        except Exception:  # codec not built into this FFmpeg
            continue
    raise RuntimeError("no H.264 or MPEG-4 encoder available in PyAV's FFmpeg")
