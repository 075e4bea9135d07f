"""Fixtures shared by the pipeline tests: tiny videos and a small clip → map network.

``MeanFrameNet`` exists only to exercise the predictor's windowing, batching and resumption
quickly; the end-to-end tests use the real STSANet.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from stsanet.data.clips import window_indices
from stsanet.data.resize import resize_frames, resize_maps
from stsanet.data.video_writer import write_video as encode_video


def write_video(path: Path, num_frames: int, height: int = 48, width: int = 64,
                fps: int = 10) -> np.ndarray:
    """A moving bright square on a dark background, encoded losslessly-ish (high bitrate)."""
    frames = np.zeros((num_frames, height, width, 3), np.uint8)
    for t in range(num_frames):
        frames[t, :, :] = (20, 30, 40)
        x = (4 + 3 * t) % (width - 12)
        frames[t, 10:22, x:x + 12] = (250, 240, 230)
    encode_video(path, frames, "mpeg4", fps, options={"b": "4000000"})
    return frames


class MeanFrameNet(torch.nn.Module):
    """Map = sigmoid of a frame's brightness, weighted by position in the clip; records the
    windows it saw so tests can check which frames fed which output."""

    def __init__(self, input_size=(32, 64)):
        super().__init__()
        self.input_size = tuple(input_size)
        self.scale = torch.nn.Parameter(torch.tensor(4.0))
        self.calls: list[int] = []

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        self.calls.append(clip.shape[0])
        brightness = clip.mean(dim=1)  # B × T × H × W
        return torch.sigmoid(self.scale * (brightness.mean(dim=1) - 0.3))


def expected_map(net, source, t: int, supervision: str, size) -> np.ndarray:
    """The map `net` gives for frame t's window, resized as the predictor does: the reference
    the predictor's output is checked against."""
    frames = source.read(window_indices(t, source.num_frames, 32, supervision))
    with torch.no_grad():
        out = net(resize_frames(frames, size)[None])
    return resize_maps(out, (source.height, source.width))[0].clamp(0, 1).numpy()
