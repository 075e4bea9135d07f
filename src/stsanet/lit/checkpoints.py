"""Finding the run's two checkpoint files among the trainer's ``ModelCheckpoint`` callbacks.

``conf/callbacks/default.yaml`` configures one callback that keeps the best weights (it
monitors the validation loss, weights only) and one without a monitor that rewrites
``last.ckpt`` with the full training state every epoch. Looking them up by role rather than by
position keeps ``trainer.checkpoint_callback`` (simply the first one) out of the picture.
"""

from __future__ import annotations

import pytorch_lightning as pl
from pytorch_lightning.callbacks import ModelCheckpoint


def best_checkpoint_callback(trainer: pl.Trainer) -> ModelCheckpoint | None:
    """The first checkpoint callback that selects on a metric."""
    return next((c for c in trainer.checkpoint_callbacks
                 if isinstance(c, ModelCheckpoint) and c.monitor is not None), None)


def best_checkpoint_path(trainer: pl.Trainer) -> str | None:
    callback = best_checkpoint_callback(trainer)
    return (callback.best_model_path or None) if callback is not None else None


def last_checkpoint_path(trainer: pl.Trainer) -> str | None:
    """``last.ckpt``: written by a monitor-less callback (its kept file), or by ``save_last``."""
    for callback in trainer.checkpoint_callbacks:
        if not isinstance(callback, ModelCheckpoint):
            continue
        if callback.last_model_path:
            return callback.last_model_path
        if callback.monitor is None and callback.best_model_path:
            return callback.best_model_path
    return None
