"""A small generated dataset in the DHF1K release layout whose saliency needs time to solve.

Each video shows several identical discs on a static textured background. At any moment one
disc moves (bouncing off the borders) while the others stand still; every so often the moving
disc stops and another one starts. Simulated observers look at the moving disc (each switching
after its own short lag) with Gaussian gaze noise, and now and then at a centre-biased point.
A single frame therefore cannot tell which disc is salient: the best frame-only map spreads
its mass over all discs; a model must see motion. Ground-truth maps are the fixations blurred
with a Gaussian whose FWHM is DHF1K's 30 px at 640 px width, scaled to the frame width,
summed and divided by the maximum (METRICS.md section 1.1).

Layout (as DHF1K): ``video/NNN.AVI`` (MJPEG, which decord reads with exact random access),
``annotation/NNNN/maps/NNNN.png``, ``annotation/NNNN/fixation/NNNN.png``, and
``synthetic.json`` (seed, size, split sizes). Videos 1..train are train, the rest val.
Everything is a function of the seed.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from stsanet.atomic import check_folder_place, write_text_atomic
from stsanet.data.datamodule import SaliencyDataModule
from stsanet.data.io import write_png_atomic
from stsanet.data.video_writer import write_video
from stsanet.errors import OutputPlaceError

DHF1K_FWHM_PX, DHF1K_WIDTH = 30.0, 640
# synthetic.json marks a complete dataset; the partial file one whose generation was cut short
META_FILE, PARTIAL_FILE = "synthetic.json", "synthetic.partial.json"


@dataclass(frozen=True)
class SyntheticSize:
    videos: int
    train_videos: int
    frames: int
    height: int = 96
    width: int = 160
    objects: int = 3
    observers: int = 8
    radius: float = 6.0
    speed: float = 2.5  # pixels per frame of the moving disc
    switch_min: int = 14  # frames between changes of the moving disc
    switch_max: int = 26
    lag_max: int = 4  # observers notice the new mover 1..lag_max frames late
    centre_prob: float = 0.12  # chance that an observer looks at a centre-biased point
    gaze_sigma: float = 2.5
    fps: int = 25


SIZES = {
    "ci": SyntheticSize(videos=6, train_videos=4, frames=40),
    "demo": SyntheticSize(videos=32, train_videos=24, frames=64),
}


# Random layouts tried before a crowded size is reported instead of looping forever.
PLACEMENT_ATTEMPTS = 10_000


@dataclass
class Scene:
    """Ground truth of one generated video (positions are (row, col) floats per frame)."""

    positions: np.ndarray  # frames × objects × 2
    mover: np.ndarray  # frames: index of the moving disc
    fixations: list[np.ndarray]  # per frame: K × 2 integer (row, col)


def gaussian_sigma(width: int) -> float:
    """Blur of the ground-truth maps: DHF1K's FWHM of 30 px at 640 px, scaled to ``width``."""
    return DHF1K_FWHM_PX * width / DHF1K_WIDTH / (2.0 * np.sqrt(2.0 * np.log(2.0)))


def simulate(size: SyntheticSize, seed: int, video: int) -> Scene:
    rng = np.random.default_rng([seed, video])
    h, w, k, r = size.height, size.width, size.objects, size.radius
    margin = r + 2
    # Static discs spread apart so that they never merge in a frame.
    for _ in range(PLACEMENT_ATTEMPTS):
        start = np.stack([rng.uniform(margin, h - margin, k), rng.uniform(margin, w - margin, k)], 1)
        gaps = np.linalg.norm(start[:, None] - start[None], axis=-1) + np.eye(k) * 1e3
        if gaps.min() > 4 * r:
            break
    else:
        raise ValueError(
            f"synthetic size {h}x{w} cannot hold {k} discs of radius {r} at least {4 * r} px apart "
            f"(tried {PLACEMENT_ATTEMPTS} layouts): use fewer or smaller objects, or larger frames"
        )
    positions = np.zeros((size.frames, k, 2))
    mover = np.zeros(size.frames, dtype=np.int64)
    current, velocity, next_switch = int(rng.integers(k)), None, 0
    place = start.copy()
    for t in range(size.frames):
        if t == next_switch:
            if t > 0:
                current = int((current + rng.integers(1, k)) % k)  # always a different disc
            angle = rng.uniform(0, 2 * np.pi)
            velocity = size.speed * np.array([np.sin(angle), np.cos(angle)])
            next_switch = t + int(rng.integers(size.switch_min, size.switch_max + 1))
        if t > 0:
            place[current] += velocity
            for axis, limit in ((0, h), (1, w)):
                if not margin <= place[current, axis] <= limit - margin:
                    velocity[axis] = -velocity[axis]
                    place[current, axis] = np.clip(place[current, axis], margin, limit - margin)
        positions[t], mover[t] = place, current
    lags = rng.integers(1, size.lag_max + 1, size.observers)
    fixations = []
    for t in range(size.frames):
        points = []
        for observer in range(size.observers):
            if rng.random() < size.centre_prob:
                point = np.array([h / 2, w / 2]) + rng.normal(0, 1, 2) * (h * 0.2, w * 0.2)
            else:
                seen = max(t - int(lags[observer]), 0)
                # The observer follows the disc that was moving when they last updated,
                # at its current position.
                point = positions[t, mover[seen]] + rng.normal(0, size.gaze_sigma, 2)
            row, col = int(round(point[0])), int(round(point[1]))
            if 0 <= row < h and 0 <= col < w:  # only in-image fixations, as in the releases
                points.append((row, col))
        fixations.append(np.array(points, dtype=np.int64).reshape(-1, 2))
    return Scene(positions, mover, fixations)


def blurred_map(points: np.ndarray, height: int, width: int, sigma: float) -> np.ndarray:
    """Sum of isotropic Gaussians at ``points`` (K × 2, row/col), divided by its maximum."""
    rows, cols = np.arange(height)[:, None], np.arange(width)[None, :]
    total = np.zeros((height, width))
    for row, col in points:
        total += np.exp(-((rows - row) ** 2 + (cols - col) ** 2) / (2 * sigma**2))
    return total / total.max() if total.max() > 0 else total


def _background(rng: np.random.Generator, height: int, width: int) -> np.ndarray:
    """A dim low-frequency texture so the frames are not flat."""
    coarse = rng.uniform(0, 1, (height // 16 + 2, width // 16 + 2, 3))
    rows = np.linspace(0, coarse.shape[0] - 1.001, height)
    cols = np.linspace(0, coarse.shape[1] - 1.001, width)
    r0, c0 = rows.astype(int), cols.astype(int)
    fr, fc = (rows - r0)[:, None, None], (cols - c0)[None, :, None]
    top = coarse[r0][:, c0] * (1 - fc) + coarse[r0][:, c0 + 1] * fc
    bottom = coarse[r0 + 1][:, c0] * (1 - fc) + coarse[r0 + 1][:, c0 + 1] * fc
    return 40 + 70 * (top * (1 - fr) + bottom * fr)


def render(scene: Scene, size: SyntheticSize, seed: int, video: int) -> np.ndarray:
    rng = np.random.default_rng([seed, video, 1])
    background = _background(rng, size.height, size.width)
    colour = np.array([230.0, 200.0, 60.0])  # the same for every disc: they look alike
    rows, cols = np.mgrid[0:size.height, 0:size.width]
    frames = np.empty((size.frames, size.height, size.width, 3), np.uint8)
    for t in range(size.frames):
        frame = background.copy()
        for row, col in scene.positions[t]:
            distance = np.sqrt((rows - row) ** 2 + (cols - col) ** 2)
            alpha = np.clip(size.radius + 0.5 - distance, 0, 1)[..., None]  # antialiased edge
            frame = frame * (1 - alpha) + colour * alpha
        frames[t] = np.clip(frame, 0, 255).round().astype(np.uint8)
    return frames


def _read_meta(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text()) if path.is_file() else None
    except (OSError, ValueError):
        return None


def _clear(root: Path) -> None:
    """Remove what the generator writes (nothing else under ``root``)."""
    for name in ("video", "annotation"):
        if (root / name).is_dir():
            shutil.rmtree(root / name)
    for name in (META_FILE, PARTIAL_FILE):
        (root / name).unlink(missing_ok=True)


def generate(root: str | os.PathLike, size: str | SyntheticSize = "ci", seed: int = 0,
             overwrite: bool = False) -> Path:
    """Write the dataset under ``root``; returns ``root``. An existing dataset with the same
    seed and size is kept (generation is deterministic) and an interrupted one is completed
    (every file was written atomically, so a file that exists is finished); a different one,
    or a non-empty folder that holds none, needs ``overwrite`` (which removes what an earlier
    generation wrote, never other files, then writes this one)."""
    root = Path(root).expanduser()
    spec = SIZES[size] if isinstance(size, str) else size
    if isinstance(size, str) and size not in SIZES:
        raise ValueError(f"size must be one of {sorted(SIZES)}, got {size!r}")
    meta = {"generator": "stsanet.data.synthetic", "seed": int(seed),
            "size": size if isinstance(size, str) else "custom", "spec": asdict(spec),
            "train_videos": spec.train_videos, "val_videos": spec.videos - spec.train_videos}
    meta_file, partial_file = root / META_FILE, root / PARTIAL_FILE
    complete, partial = _read_meta(meta_file), _read_meta(partial_file)
    if complete == meta:
        return root
    check_folder_place(root, "root")
    existing = complete or partial
    if existing is not None and existing != meta or existing is None and root.is_dir() \
            and any(root.iterdir()):
        if not overwrite:
            state = "a synthetic dataset" if complete else "an interrupted synthetic dataset"
            what = (f"holds {state} with seed {existing.get('seed')} and size "
                    f"{existing.get('size')}" if existing else "is not empty")
            raise OutputPlaceError(f"root={root} {what}; pass overwrite=true to replace it, or "
                                   f"choose another root")
        if existing is not None:  # only an earlier generation's files are removed
            _clear(root)
    write_text_atomic(partial_file, json.dumps(meta, indent=2))
    sigma = gaussian_sigma(spec.width)
    for video in range(1, spec.videos + 1):
        video_file = root / "video" / f"{video:03d}.AVI"
        annotation = root / "annotation" / f"{video:04d}"
        labels = [(annotation / kind / f"{t + 1:04d}.png", kind)
                  for t in range(spec.frames) for kind in ("maps", "fixation")]
        if video_file.is_file() and all(path.is_file() for path, _ in labels):
            continue  # finished before an interruption
        scene = simulate(spec, seed, video)
        if not video_file.is_file():
            # MJPEG at a fixed quantiser of 2 (near lossless) keeps the discs crisp and seeks
            # exactly
            write_video(video_file, render(scene, spec, seed, video), "mjpeg", spec.fps,
                        fixed_quantiser=2)
        for t, points in enumerate(scene.fixations):
            maps, fixation = (annotation / kind / f"{t + 1:04d}.png" for kind in ("maps", "fixation"))
            if not maps.is_file():
                saliency = blurred_map(points, spec.height, spec.width, sigma)
                write_png_atomic(maps, np.round(saliency * 255).astype(np.uint8))
            if not fixation.is_file():
                image = np.zeros((spec.height, spec.width), np.uint8)
                image[points[:, 0], points[:, 1]] = 255
                write_png_atomic(fixation, image)
    # Written last: its presence marks a complete dataset.
    write_text_atomic(meta_file, json.dumps(meta, indent=2))
    partial_file.unlink(missing_ok=True)
    return root


class SyntheticDataModule(SaliencyDataModule):
    """The DataModule over a synthetic root, generated there on first use (``prepare_data``
    runs on one process per node; ``setup`` generates too when called on its own)."""

    def __init__(self, root: str, size: str = "demo", generate_seed: int = 0,
                 dataset: str = "synthetic", **kwargs):
        if size not in SIZES:
            raise ValueError(f"data.size must be one of {sorted(SIZES)}, got {size!r}")
        if root is not None and str(root).strip() not in ("", "???"):
            Path(root).expanduser().mkdir(parents=True, exist_ok=True)
        super().__init__(dataset="synthetic", root=root, **kwargs)
        self.size, self.generate_seed = size, int(generate_seed)

    def prepare_data(self) -> None:
        generate(self.root, self.size, self.generate_seed)

    def setup(self, stage: str | None = None) -> None:
        if not (self.root / "synthetic.json").is_file():
            self.prepare_data()
        super().setup(stage)
