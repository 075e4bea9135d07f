"""Build everything a training run needs from a composed config, then fit and test.

Shared by ``stsanet-train`` and the tests (which compose the real config and shrink it).
"""

from __future__ import annotations

import json
import logging
import math
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from stsanet.lit.checkpoints import best_checkpoint_path, last_checkpoint_path
from stsanet.lit.checkpoint_info import run_info
from stsanet.lit.checks import check_train_config

log = logging.getLogger(__name__)


def build_callbacks(cfg: DictConfig) -> list[pl.Callback]:
    callbacks = []
    for node in (cfg.get("callbacks") or {}).values():
        if node is not None and "_target_" in node:
            callbacks.append(instantiate(node))
    schedule_callback = OmegaConf.select(cfg, "schedule.callback")
    if schedule_callback is not None:
        callbacks.append(instantiate(schedule_callback))
    return callbacks


def build_loggers(cfg: DictConfig) -> list[Any]:
    return [instantiate(node) for node in (cfg.get("logger") or {}).values()
            if node is not None and "_target_" in node]


def build_module(cfg: DictConfig) -> pl.LightningModule:
    net = instantiate(cfg.model, _convert_="all")
    if cfg.init.backbone:
        from stsanet.models.weights import load_backbone

        load_backbone(net, cfg.init.backbone)
        log.info("backbone initialised from %s", cfg.init.backbone)
    if cfg.init.weights:
        from stsanet.models.weights import load_weights

        load_weights(net, cfg.init.weights)
        log.info("weights initialised from %s", cfg.init.weights)
    module = instantiate(cfg.module, net=net, _convert_="all")
    # Set after instantiation: a dict kwarg would go through Hydra's instantiation too.
    module.run_info = run_info(net, cfg.get("data"))
    return module


def build_trainer(cfg: DictConfig, module: pl.LightningModule, callbacks: list[pl.Callback],
                  loggers: list[Any]) -> pl.Trainer:
    """The Lightning trainer of `cfg.trainer`; `trainer.compile=true` compiles the network."""
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    if trainer_cfg.pop("compile", False):
        module.net.compile()  # in place: same module tree and state_dict keys
    return instantiate(trainer_cfg, callbacks=callbacks, logger=loggers or False)


def _output_dir(cfg: DictConfig) -> Path:
    return Path(OmegaConf.select(cfg, "paths.output_dir"))


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit (``cfg.train``) and test (``cfg.test``); returns the final metrics as floats."""
    check_train_config(cfg)
    out_dir = _output_dir(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "config_resolved.yaml").write_text(OmegaConf.to_yaml(cfg, resolve=True))

    pl.seed_everything(cfg.seed, workers=True)
    # plain lists/dicts (not ListConfig) so checkpoints load with torch.load(weights_only=True)
    datamodule = instantiate(cfg.data, _convert_="all")
    module = build_module(cfg)
    callbacks = build_callbacks(cfg)
    loggers = build_loggers(cfg)
    if not loggers:  # logger=none: nothing to report learning rates to
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.LearningRateMonitor)]
    trainer = build_trainer(cfg, module, callbacks, loggers)

    metrics: dict[str, float] = {}
    if cfg.train:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        metrics.update(_floats(trainer.callback_metrics))
    if cfg.test:
        best = best_checkpoint_path(trainer) if cfg.train else None
        trainer.test(module, datamodule=datamodule, ckpt_path=best)
        metrics.update(_floats(trainer.callback_metrics))

    if trainer.is_global_zero:
        summary = {
            "metrics": metrics,
            "best_checkpoint": best_checkpoint_path(trainer),
            "last_checkpoint": last_checkpoint_path(trainer),
            "output_dir": str(out_dir),
        }
        temporary = out_dir / ".results.json.tmp"
        temporary.write_text(json.dumps(summary, indent=2))
        temporary.replace(out_dir / "results.json")
        log.info("results in %s", out_dir / "results.json")
    return metrics


def _floats(values: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in values.items():
        try:
            number = float(value)
        except (TypeError, ValueError):
            continue
        if math.isfinite(number):
            out[key] = number
    return out
