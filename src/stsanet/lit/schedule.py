"""The official learning-rate schedule (SPEC section 6.6) as a Lightning callback.

Epochs 0–11 run at ``base_lr``; at epoch 12 the rate drops ×0.1, then again at every multiple
of 9 after that (18, 27, …, 72), and at every drop the best-validation weights so far are
reloaded before training goes on. The plateau schedule (the paper text's "divide by 10 when the
training loss saturates") is a torch ``ReduceLROnPlateau`` configured in ``conf/schedule``.
"""

from __future__ import annotations

from pathlib import Path

import pytorch_lightning as pl
import torch
from pytorch_lightning.utilities import rank_zero_info

from stsanet.lit.checkpoints import best_checkpoint_path


def official_lr(epoch: int, base_lr: float = 1e-4, first_drop: int = 12, every: int = 9,
                factor: float = 0.1) -> float:
    """The learning rate of 0-based ``epoch`` under the official schedule."""
    if epoch < first_drop:
        return base_lr
    later_drops = epoch // every - first_drop // every
    return base_lr * factor ** (1 + later_drops)


class OfficialSchedule(pl.Callback):
    """Sets the epoch's learning rate and reloads the best checkpoint at each drop.

    The best checkpoint is the one the trainer's monitoring ``ModelCheckpoint`` (validation loss,
    weights only) has kept; before any exists (a drop in the first epoch) nothing is reloaded.
    """

    def __init__(self, base_lr: float = 1e-4, first_drop: int = 12, every: int = 9,
                 factor: float = 0.1, reload_best: bool = True) -> None:
        self.base_lr = base_lr
        self.first_drop = first_drop
        self.every = every
        self.factor = factor
        self.reload_best = reload_best

    def lr(self, epoch: int) -> float:
        return official_lr(epoch, self.base_lr, self.first_drop, self.every, self.factor)

    def on_train_epoch_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        epoch = trainer.current_epoch
        lr = self.lr(epoch)
        if epoch > 0 and lr < self.lr(epoch - 1) and self.reload_best:
            self._reload_best(trainer, pl_module)
        for optimizer in trainer.optimizers:
            for group in optimizer.param_groups:
                group["lr"] = lr

    @staticmethod
    def _reload_best(trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        best = best_checkpoint_path(trainer)
        if not best or not Path(best).is_file():
            rank_zero_info("OfficialSchedule: learning-rate drop, but no best checkpoint yet")
            return
        # A weights-only checkpoint (conf/callbacks/default.yaml) still holds the full state_dict;
        # our own checkpoints hold tensors and plain data only.
        state = torch.load(best, map_location=pl_module.device, weights_only=True)
        pl_module.load_state_dict(state["state_dict"])
        rank_zero_info(f"OfficialSchedule: learning-rate drop, reloaded {best}")
