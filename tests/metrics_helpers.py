"""Shared fixtures for the metrics tests: brute-force references and a tiny GT/prediction tree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.io
from PIL import Image


def brute_force_auc(positives, negatives) -> float:
    """Mann-Whitney AUC by comparing every positive with every negative (ties = 1/2)."""
    positives = np.asarray(positives, dtype=np.float64).ravel()
    negatives = np.asarray(negatives, dtype=np.float64).ravel()
    wins = 0.0
    for p in positives:
        wins += np.sum(p > negatives) + 0.5 * np.sum(p == negatives)
    return wins / (positives.size * negatives.size)


def write_png(path: Path, array: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.asarray(array, dtype=np.uint8)).save(path)
    return path


def blob_map(rng: np.random.Generator, height: int, width: int, points: np.ndarray) -> np.ndarray:
    """A smooth 8-bit map: Gaussians at ``points`` (row, col) plus a little noise."""
    rows, cols = np.mgrid[0:height, 0:width]
    out = np.zeros((height, width))
    for r, c in points:
        out += np.exp(-((rows - r) ** 2 + (cols - c) ** 2) / (2 * (0.12 * width) ** 2))
    out += 0.05 * rng.random((height, width))
    out = out / out.max()
    return np.round(out * 255).astype(np.uint8)


def make_folder_pair(
    root: Path,
    videos: int = 2,
    frames: int = 3,
    gt_hw: tuple[int, int] = (24, 32),
    pred_hw: tuple[int, int] = (12, 16),
    seed: int = 0,
    mat_video: int | None = 1,
) -> tuple[Path, Path]:
    """``root/gt/<video>/{maps,fixation}/<frame>.png`` and ``root/pred/<video>/<frame>.png``.

    Predictions are smaller than the ground truth (so they are resized). The video with index
    ``mat_video`` keeps its fixations as DHF1K ``fixation/maps/<frame>.mat`` (variable ``I``).
    """
    rng = np.random.default_rng(seed)
    gt_root, pred_root = root / "gt", root / "pred"
    h, w = gt_hw
    for v in range(videos):
        video = f"{v + 1:04d}"
        for f in range(frames):
            frame = f"{f + 1:04d}"
            points = np.stack([rng.integers(2, h - 2, 6), rng.integers(2, w - 2, 6)], axis=1)
            write_png(gt_root / video / "maps" / f"{frame}.png", blob_map(rng, h, w, points))
            fixation = np.zeros((h, w), np.uint8)
            fixation[points[:, 0], points[:, 1]] = 255
            if v == mat_video:
                mat = gt_root / video / "fixation" / "maps" / f"{frame}.mat"
                mat.parent.mkdir(parents=True, exist_ok=True)
                scipy.io.savemat(mat, {"I": (fixation > 0).astype(np.uint8)})
            else:
                write_png(gt_root / video / "fixation" / f"{frame}.png", fixation)
            noisy = points + rng.integers(-2, 3, points.shape)
            pred = blob_map(rng, h, w, np.clip(noisy, 0, [h - 1, w - 1]))
            small = np.asarray(Image.fromarray(pred).resize(pred_hw[::-1], Image.BILINEAR))
            write_png(pred_root / video / f"{frame}.png", small)
    return pred_root, gt_root
