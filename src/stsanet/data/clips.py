"""Clip windows: which frames feed the network for a labelled frame (SPEC sections 6.2, 6.7, 7).

All indices are 0-based. A clip of ``clip_len`` frames starting at ``s`` is labelled with its
16th frame (``s + 15``, ``supervision="middle"``, the official STSANet rule) or its last frame
(``s + 31``, ``supervision="last"``, TASED/ViNet style). Windows that run past either end of
the video repeat the first or the last frame (paper section III-E: for frame t the clip is
t-15 ... t+16 with indices < 1 replaced by 1 and > N by N).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

SUPERVISIONS = ("middle", "last")


def label_offset(clip_len: int = 32, supervision: str = "middle") -> int:
    """Position of the labelled frame inside a clip (15 for middle, 31 for last at T = 32)."""
    if supervision == "middle":
        return clip_len // 2 - 1
    if supervision == "last":
        return clip_len - 1
    raise ValueError(f"supervision must be one of {SUPERVISIONS}, got {supervision!r}")


def window_indices(
    label_index: int, num_frames: int, clip_len: int = 32, supervision: str = "middle"
) -> list[int]:
    """Frame indices of the clip whose label is frame ``label_index``, edges replicated."""
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    if not 0 <= label_index < num_frames:
        raise IndexError(f"label_index {label_index} outside 0..{num_frames - 1}")
    start = label_index - label_offset(clip_len, supervision)
    return np.clip(np.arange(start, start + clip_len), 0, num_frames - 1).tolist()


def random_label(
    rng: np.random.Generator,
    num_frames: int,
    clip_len: int = 32,
    supervision: str = "middle",
    exclusive_end: bool = True,
    has_map: Callable[[int], bool] | None = None,
) -> int:
    """Label of one random training clip.

    The official DHF1K/UCF loaders draw the start ``s`` uniformly from ``[0, n - 32)`` (the
    last possible start is never drawn; ``exclusive_end=True``), Hollywood-2 from
    ``[0, n - 32]``. A video shorter than the clip (or exactly as long, with the exclusive
    rule) gets start 0 and its window is padded by :func:`window_indices`. With ``has_map``,
    only clips whose label frame has a map are drawn (any frame with a map if none has).
    """
    offset = label_offset(clip_len, supervision)
    starts = num_frames - clip_len + (0 if exclusive_end else 1)
    labels = [min(s + offset, num_frames - 1) for s in range(max(starts, 1))]
    if has_map is not None:
        labels = ([t for t in labels if has_map(t)]
                  or [t for t in range(num_frames) if has_map(t)])
    return labels[int(rng.integers(0, len(labels)))]


def strided_labels(
    num_frames: int, stride: int, clip_len: int = 32, supervision: str = "middle"
) -> list[int]:
    """Labels of clips starting at 0, stride, 2·stride, ... while the clip fits (``s <= n - T``).

    The official validation (DHF1K stride 32) scores one labelled frame per clip. A video shorter
    than one clip yields a single padded clip starting at 0.
    """
    if stride < 1:
        raise ValueError(f"stride must be >= 1, got {stride}")
    offset = label_offset(clip_len, supervision)
    starts = range(0, max(num_frames - clip_len, 0) + 1, stride)
    return [min(start + offset, num_frames - 1) for start in starts]
