"""Encoding RGB frames into a video file with PyAV (synthetic data, tests, benchmarks)."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from stsanet.atomic import atomic_path

# FFmpeg's FF_QP2LAMBDA: a fixed quantiser q is asked for as global_quality = q * 118.
_QP2LAMBDA = 118


def write_video(path: str | os.PathLike, frames: np.ndarray, codec: str = "mjpeg", fps: int = 25,
                options: dict | None = None, fixed_quantiser: int | None = None) -> Path:
    """Write ``frames`` (N × H × W × 3 uint8 RGB) to ``path``; the container follows its suffix.

    ``options`` are encoder options (e.g. ``{"bf": "2"}`` for B-frames, which make H.264 AVIs
    seek wrongly in decord); ``fixed_quantiser`` sets a constant quantiser (2 ≈ ffmpeg -q:v 2).
    """
    import av

    path = Path(path)
    # the temporary name keeps the suffix so PyAV picks the same container as for ``path``
    with atomic_path(path, suffix=path.suffix) as temporary:
        with av.open(str(temporary), "w") as container:
            stream = container.add_stream(codec, rate=fps)
            stream.height, stream.width = frames.shape[1:3]
            stream.pix_fmt = "yuvj420p" if codec == "mjpeg" else "yuv420p"
            if options:
                stream.options = dict(options)
            if fixed_quantiser is not None:
                stream.codec_context.qscale = True
                stream.codec_context.global_quality = fixed_quantiser * _QP2LAMBDA
            for frame in frames:
                for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                    container.mux(packet)
            for packet in stream.encode():
                container.mux(packet)
    return path
