"""Logging callbacks: validation overlays (to the run folder and wandb) and throughput."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytorch_lightning as pl
import torch

from stsanet.data.io import write_png_atomic
from stsanet.data.resize import resize_maps
from stsanet.render.overlay import overlay


def validation_panel(clip: torch.Tensor, saliency: torch.Tensor, pred: torch.Tensor,
                     frame_in_clip: int) -> np.ndarray:
    """One row: labelled frame | ground-truth overlay | prediction overlay (uint8 H×3W×3)."""
    frame = (clip[:, frame_in_clip].permute(1, 2, 0).clamp(0, 1).numpy() * 255 + 0.5)
    frame = frame.astype(np.uint8)
    size = frame.shape[:2]

    def fit(map_: torch.Tensor) -> np.ndarray:
        return resize_maps(map_[None].float(), size)[0].numpy()

    return np.concatenate([frame, overlay(frame, fit(saliency)), overlay(frame, fit(pred))], axis=1)


class ValidationOverlays(pl.Callback):
    """After each validation: a few (frame, ground truth, prediction) panels, as a PNG in the run
    folder and as images in wandb when a WandbLogger is attached."""

    def __init__(self, num_images: int = 4, supervision: str = "middle", clip_len: int = 32,
                 out_dir: str | None = None) -> None:
        self.num_images = num_images
        self.frame_in_clip = clip_len // 2 - 1 if supervision == "middle" else clip_len - 1
        self.out_dir = out_dir

    def on_validation_epoch_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        example = getattr(pl_module, "last_val_example", None)
        if example is None or trainer.sanity_checking or not trainer.is_global_zero:
            return
        count = min(self.num_images, example["pred"].shape[0])
        panels = [validation_panel(example["clip"][i], example["saliency"][i], example["pred"][i],
                                   self.frame_in_clip) for i in range(count)]
        out_dir = Path(self.out_dir or trainer.default_root_dir) / "val_overlays"
        write_png_atomic(out_dir / f"epoch_{trainer.current_epoch:03d}.png",
                         np.concatenate(panels, axis=0))
        for logger in trainer.loggers:
            if isinstance(logger, pl.loggers.WandbLogger):
                logger.log_image("val/overlays", images=panels,
                                 caption=["frame | ground truth | prediction"] * count,
                                 step=trainer.global_step)


class Throughput(pl.Callback):
    """Logs training clips per second (wall clock between consecutive batch ends)."""

    def __init__(self) -> None:
        self._last: float | None = None

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._last = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        now = time.perf_counter()
        if self._last is not None and now > self._last:
            clips = batch["clip"].shape[0] * trainer.world_size
            pl_module.log("train/clips_per_s", clips / (now - self._last), on_step=True,
                          on_epoch=False, rank_zero_only=True, batch_size=1)
        self._last = now


def _clock(seconds: float) -> str:
    minutes, seconds = divmod(int(round(seconds)), 60)
    return f"{minutes // 60}:{minutes % 60:02d}:{seconds:02d}" if minutes >= 60 else \
        f"{minutes}:{seconds:02d}"


class StepProgress(pl.Callback):
    """One line every ``every_n_steps`` optimiser steps of a run bounded by ``max_steps``: the
    step, the loss, seconds per step and the time left (from the mean step time so far,
    validation included). Replaces the per-epoch progress bar where the steps are the unit."""

    def __init__(self, every_n_steps: int = 10) -> None:
        self.every_n_steps = every_n_steps
        self._start: float | None = None
        self._first_step = 0

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._start, self._first_step = time.perf_counter(), trainer.global_step

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        step, total = trainer.global_step, trainer.max_steps
        if not trainer.is_global_zero or self._start is None or step == self._first_step or \
                (step % self.every_n_steps and step != total):
            return
        elapsed = time.perf_counter() - self._start
        per_step = elapsed / (step - self._first_step)
        loss = trainer.callback_metrics.get("train/loss_step", trainer.callback_metrics.get(
            "train/loss"))
        shown = f", loss {float(loss):.3f}" if loss is not None else ""
        left = f", ETA {_clock(per_step * (total - step))}" if total and total > 0 else ""
        of = f"/{total} ({100 * step / total:.0f}%)" if total and total > 0 else ""
        print(f"step {step}{of}{shown}, {per_step:.2f} s/step, elapsed {_clock(elapsed)}{left}",
              flush=True)
