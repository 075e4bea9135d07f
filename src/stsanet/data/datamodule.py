"""Clip datasets and the LightningDataModule (SPEC sections 6.2 to 6.5 and 6.7).

A batch is a dict (docs/interfaces.md): ``clip`` float32 B×3×T×H×W in [0, 1], ``saliency``
float32 B×H×W in [0, 1], ``fixation`` float32 B×H×W in {0, 1}, ``has_fixation`` bool B,
``video`` list[str], ``frame`` int64 B (0-based labelled frame); plus ``has_saliency`` bool B
(False only for unannotated frames in full-video prediction).

Sampling depends only on (seed, epoch, item): the sampler yields ``(epoch, item)`` pairs and
the random clip of a training video is drawn from ``default_rng([seed, epoch, item])``, so a
run resumed at an epoch boundary sees the same clips, every epoch sees new ones, and workers
(persistent or not) need no shared state. Under DDP, Lightning wraps the sampler in its
``DistributedSamplerWrapper`` and forwards ``set_epoch`` to it.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from stsanet.data.check import HANDLING, require_usable
from stsanet.data.clips import label_offset, random_label, strided_labels, window_indices
from stsanet.data.frames import open_frame_source
from stsanet.data.io import read_fixations, read_saliency_map
from stsanet.data.layouts import DATASETS, LayoutError, VideoRecord
from stsanet.data.index import build_index
from stsanet.data.resize import resize_fixations, resize_frames, resize_map

log = logging.getLogger(__name__)
SAMPLINGS = ("random", "stride", "all")


# ----------------------------------------------------------------------------------------------
# Dataset and sampler


class EpochSampler(Sampler):
    """Yields ``(epoch, item)``; shuffled with ``default_rng([seed, epoch])`` when asked."""

    def __init__(self, num_items: int, shuffle: bool, seed: int = 0):
        self.num_items, self.shuffle, self.seed = num_items, shuffle, seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.num_items

    def __iter__(self):
        order = np.arange(self.num_items)
        if self.shuffle:
            order = np.random.default_rng([self.seed, self.epoch]).permutation(self.num_items)
        return iter([(self.epoch, int(i)) for i in order])


class ClipDataset(Dataset):
    """Labelled clips of a list of videos.

    ``sampling``: ``random`` = one random clip per video per epoch (official training);
    ``stride`` = clips starting every ``stride`` frames (official validation, or the stride
    training option); ``all`` = one window per frame (full-video inference, edges replicated).
    Only frames with a saliency map are labels, except in ``all`` mode.
    """

    def __init__(self, videos: list[VideoRecord], input_size=(224, 384), clip_len: int = 32,
                 supervision: str = "middle", sampling: str = "random", stride: int = 32,
                 seed: int = 0, exclusive_end: bool = True, frame_cache: int = 64):
        if sampling not in SAMPLINGS:
            raise ValueError(f"sampling must be one of {SAMPLINGS}, got {sampling!r}")
        label_offset(clip_len, supervision)  # validates supervision
        self.videos = list(videos)
        self.input_size = tuple(int(s) for s in input_size)
        self.clip_len, self.supervision, self.sampling = clip_len, supervision, sampling
        self.stride, self.seed, self.exclusive_end = stride, seed, exclusive_end
        if sampling == "random":
            self.videos = [v for v in self.videos if any(m is not None for m in v.maps)]
            self.items = [(i, None) for i in range(len(self.videos))]
        elif sampling == "stride":
            self.items = [
                (i, label) for i, v in enumerate(self.videos)
                for label in strided_labels(v.num_frames, stride, clip_len, supervision)
                if v.maps[label] is not None
            ]
        else:
            self.items = [(i, t) for i, v in enumerate(self.videos) for t in range(v.num_frames)]
        self._sources: OrderedDict = OrderedDict()
        self._frames: OrderedDict = OrderedDict()  # (video, index) -> resized 3×h×w
        self._frame_cache = frame_cache

    def __len__(self) -> int:
        return len(self.items)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_sources"], state["_frames"] = OrderedDict(), OrderedDict()  # per worker
        return state

    def random_label(self, video: VideoRecord, epoch: int, item: int) -> int:
        """The clip of (epoch, item): the same whatever the worker or the resumption."""
        return random_label(np.random.default_rng([self.seed, epoch, item]), video.num_frames,
                            self.clip_len, self.supervision, self.exclusive_end,
                            has_map=lambda t: video.maps[t] is not None)

    def _source(self, video: VideoRecord):
        key = str(video.frames_path)
        if key not in self._sources:
            self._sources[key] = open_frame_source(video.frames_path)
            while len(self._sources) > 4:
                self._sources.popitem(last=False)
        self._sources.move_to_end(key)
        return self._sources[key]

    def read_clip(self, video: VideoRecord, indices: list[int]) -> torch.Tensor:
        """3×T×h×w. In stride/all mode frames shared with recent windows are not decoded again
        (random training clips rarely overlap, so they bypass the cache)."""
        cached = {i: self._frames[(video.name, i)] for i in set(indices)
                  if (video.name, i) in self._frames}
        missing = sorted(set(indices) - set(cached))
        if missing:
            resized = resize_frames(self._source(video).read(missing), self.input_size)
            cached.update({index: resized[:, k] for k, index in enumerate(missing)})
        if self.sampling != "random" and self._frame_cache > 0:
            for index in sorted(cached):
                self._frames[(video.name, index)] = cached[index]
                self._frames.move_to_end((video.name, index))
            while len(self._frames) > max(self._frame_cache, self.clip_len):
                self._frames.popitem(last=False)
        return torch.stack([cached[i] for i in indices], dim=1)

    def __getitem__(self, key):
        epoch, item = key if isinstance(key, tuple) else (0, key)
        video_index, label = self.items[item]
        video = self.videos[video_index]
        if label is None:
            label = self.random_label(video, epoch, item)
        indices = window_indices(label, video.num_frames, self.clip_len, self.supervision)
        clip = self.read_clip(video, indices)
        if video.maps[label] is not None:
            saliency = resize_map(read_saliency_map(video.maps[label]), self.input_size)
        else:
            saliency = torch.zeros(self.input_size)
        if video.fixations[label] is not None:
            fixation = resize_fixations(read_fixations(video.fixations[label]), self.input_size)
        else:
            fixation = torch.zeros(self.input_size)
        return {
            "clip": clip,
            "saliency": saliency,
            "fixation": fixation,
            "has_fixation": bool(fixation.any()),
            "has_saliency": video.maps[label] is not None,
            "video": video.name,
            "frame": label,
        }


def _worker_init(_worker_id: int) -> None:
    # Workers decode; more than one torch thread each only fights over the cores.
    torch.set_num_threads(1)


# ----------------------------------------------------------------------------------------------
# DataModule


class SaliencyDataModule(pl.LightningDataModule):
    """Any layout of :mod:`stsanet.data.layouts`, checked at setup, as Lightning dataloaders."""

    def __init__(
        self,
        dataset: str,
        root: str | None = None,
        input_size: Sequence[int] = (224, 384),
        clip_len: int = 32,
        supervision: str = "middle",
        train_sampling: str = "random",
        train_stride: int = 32,
        val_stride: int = 32,
        train_split: str = "train",
        val_split: str = "val",
        predict_split: str | None = None,
        exclusive_end: bool = True,
        batch_size: int = 3,
        val_batch_size: int | None = None,
        num_workers: int = 4,
        pin_memory: bool = True,
        persistent_workers: bool = True,
        seed: int = 0,
        index_options: dict | None = None,
    ):
        super().__init__()
        if dataset not in DATASETS:
            raise ValueError(f"data.dataset must be one of {DATASETS}, got {dataset!r}")
        if root is None or str(root).strip() in ("", "???"):
            raise LayoutError(
                f"data.root is not set: run with data.root=/path/to/{dataset} "
                f"(the folder that holds the {dataset} release)"
            )
        if not Path(root).expanduser().is_dir():
            raise LayoutError(f"data.root={root} does not exist or is not a folder")
        if train_sampling not in ("random", "stride"):
            raise ValueError(f"data.train_sampling must be random or stride, got {train_sampling!r}")
        label_offset(clip_len, supervision)
        if len(input_size) != 2 or min(input_size) < 1:
            raise ValueError(f"data.input_size must be [height, width], got {list(input_size)}")
        self.save_hyperparameters()
        self.dataset_name, self.root = dataset, Path(root).expanduser()
        self.input_size = tuple(int(s) for s in input_size)
        self.index = None
        self.datasets: dict[str, ClipDataset] = {}

    def _splits_for(self, stage: str | None) -> list[str]:
        hp = self.hparams
        if stage == "fit":
            return [hp.train_split, hp.val_split]
        if stage in ("validate", "test"):
            return [hp.val_split]
        if stage == "predict":
            return [hp.predict_split or hp.val_split]
        return [hp.train_split, hp.val_split]

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        if self.index is None:
            self.index = build_index(self.dataset_name, self.root, **(hp.index_options or {}))
        splits = sorted(set(self._splits_for(stage)))
        report = require_usable(self.index, splits, hp.clip_len)
        for problem_kind in sorted({p.kind for p in report.warnings}):
            count = sum(1 for p in report.warnings if p.kind == problem_kind)
            log.warning("%s (%s): %s: %d, %s (run stsanet-check-data for the list)",
                        self.dataset_name, self.root, problem_kind, count,
                        HANDLING.get(problem_kind, "kept"))
        common = dict(input_size=self.input_size, clip_len=hp.clip_len,
                      supervision=hp.supervision, seed=hp.seed, exclusive_end=hp.exclusive_end)
        if stage in ("fit", None):
            self.datasets["train"] = ClipDataset(
                self.index.split(hp.train_split), sampling=hp.train_sampling,
                stride=hp.train_stride, **common)
        if stage in ("fit", "validate", "test", None):
            self.datasets["val"] = ClipDataset(
                self.index.split(hp.val_split), sampling="stride", stride=hp.val_stride, **common)
        if stage == "predict":
            self.datasets["predict"] = ClipDataset(
                self.index.split(hp.predict_split or hp.val_split), sampling="all", **common)

    def _loader(self, name: str, shuffle: bool, batch_size: int) -> DataLoader:
        hp = self.hparams
        dataset = self.datasets[name]
        workers = int(hp.num_workers)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=EpochSampler(len(dataset), shuffle=shuffle, seed=hp.seed),
            num_workers=workers,
            pin_memory=bool(hp.pin_memory) and torch.cuda.is_available(),
            persistent_workers=bool(hp.persistent_workers) and workers > 0,
            worker_init_fn=_worker_init if workers > 0 else None,
            drop_last=False,
        )

    def train_dataloader(self) -> DataLoader:
        return self._loader("train", True, self.hparams.batch_size)

    def val_dataloader(self) -> DataLoader:
        return self._loader("val", False, self.hparams.val_batch_size or self.hparams.batch_size)

    def test_dataloader(self) -> DataLoader:
        return self.val_dataloader()

    def predict_dataloader(self) -> DataLoader:
        return self._loader("predict", False,
                            self.hparams.val_batch_size or self.hparams.batch_size)
