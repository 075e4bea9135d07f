"""Resizing with torch ops, one rule per kind of input: frames (antialiased bilinear on uint8,
as the official PIL pipeline), saliency maps (plain bilinear, as cv2), fixations (rounded
coordinates, SPEC 6.5). Training, validation and prediction all resize through here."""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F


def resize_frames(frames: np.ndarray, size: Sequence[int]) -> torch.Tensor:
    """uint8 N×H×W×3 -> float32 3×N×h×w in [0, 1], antialiased bilinear.

    The resize runs on uint8 in channels-last layout, torch's vectorised antialias kernel
    (about 25× faster than on float on CPU) whose output, rounded to 8 bits like PIL's
    ``Image.resize``, matches the official PIL ``Resize`` -> ``ToTensor`` pipeline.
    """
    clip = torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2)
    if tuple(clip.shape[-2:]) != tuple(size):
        clip = F.interpolate(clip, size=tuple(size), mode="bilinear", align_corners=False,
                             antialias=True)
    return clip.permute(1, 0, 2, 3).float().div_(255.0)


def resize_maps(maps: torch.Tensor, size: Sequence[int]) -> torch.Tensor:
    """B×h×w -> B×H×W, plain bilinear with half-pixel centres (cv2 INTER_LINEAR, as the official
    code resizes maps both ways: ground truth to the model size, predictions to the video's)."""
    if tuple(maps.shape[-2:]) == tuple(size):
        return maps
    return F.interpolate(maps[:, None], size=tuple(size), mode="bilinear",
                         align_corners=False)[:, 0]


def resize_map(saliency: np.ndarray, size: Sequence[int]) -> torch.Tensor:
    """One float H×W map in [0, 1] -> h×w in [0, 1] (:func:`resize_maps`)."""
    tensor = torch.from_numpy(np.ascontiguousarray(saliency, dtype=np.float32))
    return resize_maps(tensor[None], size)[0].clamp_(0.0, 1.0)


def resize_fixations(fixations: np.ndarray, size: Sequence[int]) -> torch.Tensor:
    """bool H×W -> float32 h×w in {0, 1}: each fixated pixel (r, c) sets
    (round(r·h/H), round(c·w/W)), clamped (SPEC 6.5; halves round up)."""
    height, width = fixations.shape
    out = torch.zeros(tuple(size), dtype=torch.float32)
    rows, cols = np.nonzero(fixations)
    if rows.size:
        r = np.minimum(np.floor(rows * size[0] / height + 0.5).astype(np.int64), size[0] - 1)
        c = np.minimum(np.floor(cols * size[1] / width + 0.5).astype(np.int64), size[1] - 1)
        out[torch.from_numpy(r), torch.from_numpy(c)] = 1.0
    return out
