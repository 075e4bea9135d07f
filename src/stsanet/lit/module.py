"""The training logic around STSANet: KL − CC loss, batch skipping, metrics, optimiser wiring.

The network itself comes in as ``net`` (built by Hydra from ``stsanet/conf/model``); this module only
decides what a step does with it, following the official train script (SPEC section 6).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torchmetrics import MeanMetric, SumMetric

from stsanet.data.resize import resize_maps
from stsanet.lit.checkpoint_info import RUN_INFO_KEY
from stsanet.metrics import benchmark
from stsanet.metrics.fast import SaliencyMetrics
from stsanet.metrics.loss import kl_cc_loss

# Benchmark metrics computed per test sample (MATLAB-faithful, numpy). The shuffled AUC needs
# fixations of other frames and belongs to the folder-level evaluation (stsanet-eval).
TEST_METRICS = ("cc", "nss", "sim", "kl", "auc_judd")


class SaliencyModule(pl.LightningModule):
    """Trains and evaluates a saliency network that maps ``B×3×32×H×W`` clips to ``B×H×W`` maps.

    Args:
        net: the network (``stsanet.models.STSANet`` or a variant).
        optimizer: a partial optimiser (``_partial_: true`` in Hydra), bound to the parameters here.
        lr_scheduler: optional partial LR scheduler (the plateau schedule); the official schedule
            is a callback instead (:class:`stsanet.lit.schedule.OfficialSchedule`).
        scheduler_monitor: metric the plateau scheduler watches.
        fresh_optimizer_each_epoch: reset the optimiser state (Adam moments, step counts) at every
            epoch start, as the official script creates a new Adam each epoch.
        run_info: what using the weights needs (model settings, supervised frame, clip length,
            input size, dataset; :func:`stsanet.lit.checkpoint_info.run_info`), stored in every
            checkpoint so that ``stsanet-predict`` rebuilds and runs the network as trained.
    """

    def __init__(
        self,
        net: torch.nn.Module,
        optimizer: Callable[..., torch.optim.Optimizer],
        lr_scheduler: Callable[..., Any] | None = None,
        scheduler_monitor: str = "train/loss_epoch",
        fresh_optimizer_each_epoch: bool = True,
        run_info: dict | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["net", "optimizer", "lr_scheduler", "run_info"],
                                  logger=False)
        self.net = net
        self.optimizer_factory = optimizer
        self.lr_scheduler_factory = lr_scheduler
        self.run_info = run_info

        self.train_loss = MeanMetric()
        self.skipped_batches = SumMetric()
        self.val_loss = MeanMetric()
        self.val_metrics = SaliencyMetrics()
        self.test_loss = MeanMetric()
        self.test_metrics = torch.nn.ModuleDict({name: MeanMetric() for name in TEST_METRICS})
        # Last validation batch kept for the overlay callback (frame, ground truth, prediction).
        self.last_val_example: dict[str, torch.Tensor] | None = None

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.net(clip)

    # ------------------------------------------------------------------ training
    def _any_rank_lacks_fixations(self, batch: dict) -> bool:
        # The official script skips the whole batch when any sample has an empty fixation map.
        # Under DDP the batch is the union over ranks, and all ranks must skip together or the
        # gradient all-reduce would wait forever for the ranks that skipped.
        local = not bool(torch.as_tensor(batch["has_fixation"]).all())
        return bool(self.trainer.strategy.reduce_boolean_decision(local, all=False))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor | None:
        if self._any_rank_lacks_fixations(batch):
            self.skipped_batches.update(1.0)
            self.log("train/skipped_batches", self.skipped_batches, on_step=False, on_epoch=True)
            return None
        # channels-last 3D: the backbone's convs, BatchNorms and pools (and every layer whose
        # input follows their layout) run faster forward and backward there (benchmarks/)
        pred = self.net(batch["clip"].contiguous(memory_format=torch.channels_last_3d))
        loss = kl_cc_loss(pred, resize_maps(batch["saliency"], pred.shape[-2:]))
        self.train_loss.update(loss.detach())
        batch_size = pred.shape[0]
        self.log("train/loss", loss.detach(), on_step=True, on_epoch=False, prog_bar=True,
                 batch_size=batch_size)
        self.log("train/loss_epoch", self.train_loss, on_step=False, on_epoch=True,
                 batch_size=batch_size)
        self.log("train/skipped_batches", self.skipped_batches, on_step=False, on_epoch=True)
        return loss

    def on_train_epoch_start(self) -> None:
        # Not called when Lightning resumes in the middle of an epoch, so a resumed run keeps
        # the optimiser state it had when it stopped.
        if self.hparams.fresh_optimizer_each_epoch:
            for optimizer in self.trainer.optimizers:
                optimizer.state.clear()

    # ---------------------------------------------------------------- validation
    def validation_step(self, batch: dict, batch_idx: int) -> None:
        pred = self.net(batch["clip"])
        target = batch["saliency"]
        pred_full = resize_maps(pred, target.shape[-2:])
        keep = torch.as_tensor(batch["has_fixation"], device=pred.device).bool()
        self.val_loss.update(kl_cc_loss(pred_full, target), weight=pred.shape[0])
        if keep.any():
            self.val_metrics.update(pred_full[keep], target[keep], batch["fixation"][keep])
        if batch_idx == 0:
            self.last_val_example = {
                "clip": batch["clip"].detach().cpu(),
                "saliency": target.detach().cpu(),
                "pred": pred_full.detach().cpu(),
            }
        self.log("val/loss", self.val_loss, on_step=False, on_epoch=True, prog_bar=True,
                 batch_size=pred.shape[0], sync_dist=False)

    def on_validation_epoch_end(self) -> None:
        if self.val_metrics.update_count == 0:
            return
        scores = self.val_metrics.compute()
        # Fast torch metrics, for monitoring and model selection; benchmark numbers come from
        # the test stage or stsanet-eval.
        self.log_dict({f"val/{name}_fast": value for name, value in scores.items()})
        self.val_metrics.reset()

    # ---------------------------------------------------------------------- test
    def test_step(self, batch: dict, batch_idx: int) -> None:
        pred = resize_maps(self.net(batch["clip"]), batch["saliency"].shape[-2:])
        self.test_loss.update(kl_cc_loss(pred, batch["saliency"]), weight=pred.shape[0])
        self.log("test/loss", self.test_loss, on_step=False, on_epoch=True,
                 batch_size=pred.shape[0])
        preds = pred.detach().cpu().double().numpy()
        maps = batch["saliency"].detach().cpu().double().numpy()
        fixations = batch["fixation"].detach().cpu().numpy() > 0.5
        for i in range(preds.shape[0]):
            if not fixations[i].any():
                continue
            for name in TEST_METRICS:
                function = getattr(benchmark, name)
                second = fixations[i] if name in ("nss", "auc_judd") else maps[i]
                value = float(function(preds[i], second))
                if np.isfinite(value):
                    self.test_metrics[name].update(value)
        for name in TEST_METRICS:
            self.log(f"test/{name}", self.test_metrics[name], on_step=False, on_epoch=True)

    # ----------------------------------------------------------------- optimiser
    def configure_optimizers(self) -> Any:
        optimizer = self.optimizer_factory(params=self.parameters())
        if self.lr_scheduler_factory is None:
            return optimizer
        scheduler = self.lr_scheduler_factory(optimizer=optimizer)
        return {
            "optimizer": optimizer,
            "lr_scheduler": {"scheduler": scheduler, "monitor": self.hparams.scheduler_monitor,
                             "interval": "epoch", "frequency": 1},
        }

    def on_save_checkpoint(self, checkpoint: dict) -> None:
        if self.run_info is not None:
            checkpoint[RUN_INFO_KEY] = dict(self.run_info)
