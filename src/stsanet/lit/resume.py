"""Exact mid-epoch resumption for single-process training.

Lightning restores weights, optimiser and loop counters from a checkpoint, but a plain
DataLoader restarts the epoch from its first batch with whatever random state the process has.
:class:`ExactResume` makes each epoch's data a function of (seed, epoch) alone and, on resume,
skips the batches the interrupted run had already trained on, so that a killed and resumed run
ends with the same weights as an uninterrupted one.

Under DDP Lightning swaps in a ``DistributedSampler`` (seeded by epoch), which needs the plain
DataLoader, so the wrapper is only applied to single-process runs.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch


def epoch_seed(seed: int, epoch: int) -> int:
    return (seed * 1_000_003 + epoch * 7_919) % (2**32)


class ResumableLoader:
    """Wraps a DataLoader: reseeds the global RNGs per epoch, skips already-trained batches."""

    def __init__(self, loader: Any, seed: int, trainer: pl.Trainer) -> None:
        self.loader = loader
        self.seed = seed
        self.trainer = trainer
        self._resume: dict[str, int] | None = None

    def __len__(self) -> int:
        return len(self.loader)

    def __getattr__(self, name: str) -> Any:
        # batch_size, dataset, sampler, ... of the wrapped loader
        return getattr(self.loader, name)

    def __iter__(self) -> Iterator[Any]:
        epoch = self.trainer.current_epoch
        # A run resumed mid-epoch makes its iterator before Lightning sets the sampler's epoch
        # (FitLoop.setup_data, then on_advance_start): set it here, or the resumed epoch would
        # replay the clips of epoch 0.
        sampler = getattr(self.loader, "sampler", None)
        if hasattr(sampler, "set_epoch"):
            sampler.set_epoch(epoch)
        seed = epoch_seed(self.seed, epoch)
        torch.manual_seed(seed)
        np.random.seed(seed)
        random.seed(seed)
        skip = 0
        if self._resume is not None and self._resume["epoch"] == epoch:
            skip = self._resume["batches_done"]
        self._resume = None
        iterator = iter(self.loader)
        for _ in range(skip):
            next(iterator, None)
        return iterator

    def state_dict(self) -> dict[str, int]:
        progress = self.trainer.fit_loop.epoch_loop.batch_progress.current
        # Saved from on_train_batch_end: the batch being finished counts as processed.
        return {"epoch": self.trainer.current_epoch, "batches_done": int(progress.processed)}

    def load_state_dict(self, state: dict[str, int]) -> None:
        self._resume = {"epoch": int(state["epoch"]), "batches_done": int(state["batches_done"])}


class ExactResume(pl.Callback):
    """Installs :class:`ResumableLoader` around the DataModule's training loader."""

    def __init__(self, seed: int) -> None:
        self.seed = seed

    def setup(self, trainer: pl.Trainer, pl_module: pl.LightningModule, stage: str) -> None:
        datamodule = trainer.datamodule
        if stage != "fit" or datamodule is None or trainer.world_size > 1:
            return
        make_loader = datamodule.train_dataloader
        if getattr(make_loader, "_stsanet_resumable", False):
            return

        def train_dataloader() -> ResumableLoader:
            return ResumableLoader(make_loader(), self.seed, trainer)

        train_dataloader._stsanet_resumable = True  # type: ignore[attr-defined]
        datamodule.train_dataloader = train_dataloader
