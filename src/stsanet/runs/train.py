"""Build everything a training run needs from a composed config, then fit and test.

Shared by ``stsanet-train`` and the tests (which compose the real config and shrink it).
"""

from __future__ import annotations

import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import pytorch_lightning as pl
import torch
from hydra.utils import instantiate
from lightning_fabric.plugins.environments import SLURMEnvironment
from omegaconf import DictConfig, OmegaConf

from stsanet.atomic import check_folder_place, write_text_atomic
from stsanet.errors import ConfigError
from stsanet.lit.checkpoints import best_checkpoint_path, last_checkpoint_path
from stsanet.lit.checkpoint_info import read_checkpoint, run_info
from stsanet.lit.preemption import CheckpointOnSignal
from stsanet.lit.progress import ProgressFile
from stsanet.lit.record import RunRecord
from stsanet.models.weights import save_weights
from stsanet.runs.schema import TrainConfig, check
from stsanet.runs.tracker import finish_runs, log_run_scores

log = logging.getLogger(__name__)


# ckpt_path values Lightning resolves itself
LIGHTNING_CKPT_NAMES = ("last", "best", "hpc", "registry")


def check_train_config(cfg: DictConfig) -> None:
    """Before anything is built: every value typed and in range (:mod:`stsanet.runs.schema`),
    and the files and folders the config names present."""
    check(cfg, TrainConfig)
    root = OmegaConf.select(cfg, "data.root")
    if root is not None:
        if OmegaConf.select(cfg, "data.dataset") == "synthetic":
            if not (Path(root).expanduser() / "synthetic.json").is_file():
                check_folder_place(root, "data.root")  # generated there on first use
        elif not Path(root).expanduser().is_dir():
            raise ConfigError(f"data.root={root}: no such dataset folder (set data.root=<the "
                              f"folder that holds the {cfg.data.dataset} release>)")
    for key in ("init.backbone", "init.weights"):
        path = OmegaConf.select(cfg, key)
        if path is not None:
            if not Path(path).is_file():
                raise ConfigError(f"{key}={path}: file not found")
            read_checkpoint(path)  # readable as data (an empty or cut copy is named now)
    ckpt = OmegaConf.select(cfg, "ckpt_path")
    if ckpt is not None and ckpt not in LIGHTNING_CKPT_NAMES:
        if not Path(ckpt).is_file():
            raise ConfigError(f"ckpt_path={ckpt}: checkpoint not found")
        state = read_checkpoint(ckpt)
        if not isinstance(state, dict) or "pytorch-lightning_version" not in state \
                or "optimizer_states" not in state:
            raise ConfigError(f"ckpt_path={ckpt} is not a full training checkpoint (a last.ckpt "
                              f"holding the optimiser and loop state); to start from its "
                              f"weights, use init.weights={ckpt}")


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
    """The Lightning trainer of `cfg.trainer`; `trainer.compile=true` compiles the network.
    In a SLURM job the ranks come from SLURM (one process per task, none spawned), and
    requeueing is submitit's alone (see :mod:`stsanet.lit.preemption`): Lightning's
    auto-requeue is switched off."""
    trainer_cfg = OmegaConf.to_container(cfg.trainer, resolve=True)
    if trainer_cfg.pop("compile", False):
        module.net.compile()  # in place: same module tree and state_dict keys
    plugins = []
    if SLURMEnvironment.detect():
        plugins.append(SLURMEnvironment(auto_requeue=False))
        strategy = trainer_cfg.get("strategy")
        if isinstance(strategy, dict) and strategy.get("start_method", "popen") != "popen":
            # srun started one process per rank: Lightning must not spawn more of its own
            # (trainer=ddp_cpu spawns them when run by hand)
            strategy["start_method"] = "popen"
    return instantiate(trainer_cfg, callbacks=callbacks, logger=loggers or False,
                       **({"plugins": plugins} if plugins else {}))


def _output_dir(cfg: DictConfig) -> Path:
    return Path(OmegaConf.select(cfg, "paths.output_dir"))


def train(cfg: DictConfig) -> dict[str, float]:
    """Fit (``cfg.train``) and test (``cfg.test``); returns the final metrics as floats."""
    out_dir = _output_dir(cfg)
    if cfg.get("ckpt_path") == "auto":
        cfg.ckpt_path = _resume_path(out_dir)
    check_train_config(cfg)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out_dir / "config_resolved.yaml", OmegaConf.to_yaml(cfg, resolve=True))

    pl.seed_everything(cfg.seed, workers=True)
    # plain lists/dicts (not ListConfig) so checkpoints load with torch.load(weights_only=True)
    datamodule = instantiate(cfg.data, _convert_="all")
    module = build_module(cfg)
    callbacks = build_callbacks(cfg)
    loggers = build_loggers(cfg)
    if not loggers:  # logger=none: nothing to report learning rates to
        callbacks = [c for c in callbacks if not isinstance(c, pl.callbacks.LearningRateMonitor)]
    record = RunRecord()  # steps, wall time and loss traces, into results.json
    # progress.json for whoever watches the run folders (the reproduce command); a preempted,
    # requeued or cancelled run saves its state where ckpt_path=auto finds it
    after = "scoring" if OmegaConf.select(cfg, "score") is not None else "finishing"
    callbacks += [record, ProgressFile(out_dir, after=after),
                  CheckpointOnSignal(_last_checkpoint(out_dir))]
    trainer = build_trainer(cfg, module, callbacks, loggers)

    metrics: dict[str, float] = {}
    started = time.perf_counter()
    if cfg.train:
        trainer.fit(module, datamodule=datamodule, ckpt_path=cfg.ckpt_path)
        metrics.update(_floats(trainer.callback_metrics))
    if cfg.test:
        best = best_checkpoint_path(trainer) if cfg.train else None
        trainer.test(module, datamodule=datamodule, ckpt_path=best)
        metrics.update(_floats(trainer.callback_metrics))

    score = None
    if OmegaConf.select(cfg, "score") is not None:
        # every rank (under DDP) predicts a share of the evaluation videos; rank 0 scores them
        score = _score(cfg, module, out_dir, best_checkpoint_path(trainer))
    if trainer.is_global_zero:
        summary = {
            "metrics": metrics,
            "best_checkpoint": best_checkpoint_path(trainer),
            "last_checkpoint": last_checkpoint_path(trainer),
            "output_dir": str(out_dir),
            "seed": int(cfg.seed),
            **record.summary(trainer),
            "world_size": int(trainer.world_size),
            "accumulate_grad_batches": int(trainer.accumulate_grad_batches),
            "global_batch": _global_batch(cfg, trainer),
            "loggers": _logger_ids(loggers),
        }
        if score is not None:
            summary["score"] = score
            log_run_scores(loggers, score, cfg)
        summary["seconds"] = round(time.perf_counter() - started, 3)
        write_text_atomic(out_dir / "results.json", json.dumps(summary, indent=2))
        log.info("results in %s", out_dir / "results.json")
        if not trainer.checkpoint_callbacks and cfg.ckpt_path == str(_last_checkpoint(out_dir)):
            # a run that keeps no checkpoints does not keep the one a signal left to resume from
            Path(cfg.ckpt_path).unlink(missing_ok=True)
    finish_runs(loggers)
    return metrics


def _last_checkpoint(out_dir: Path) -> Path:
    return out_dir / "checkpoints" / "last.ckpt"


def _resume_path(out_dir: Path) -> str | None:
    """``ckpt_path=auto``: this run's ``checkpoints/last.ckpt`` when it exists (a requeued SLURM
    job or an interrupted sweep resumes where it stopped), else a fresh start."""
    last = _last_checkpoint(out_dir)
    if last.is_file():
        log.info("resuming from %s", last)
        return str(last)
    return None


def _global_batch(cfg: DictConfig, trainer: pl.Trainer) -> int | None:
    batch = OmegaConf.select(cfg, "data.batch_size")
    if batch is None:
        return None
    return int(batch) * int(trainer.accumulate_grad_batches) * int(trainer.world_size)


def _logger_ids(loggers: list[Any]) -> dict[str, str]:
    """Where each logger put this run: the wandb run id, the CSV folder."""
    ids = {}
    for logger in loggers:
        name = type(logger).__name__.replace("Logger", "").lower()
        try:
            ids[name] = str(logger.version) if name == "wandb" else str(logger.log_dir)
        except Exception:  # a logger that cannot say; the table links the output folder
            continue
    return ids


def _score(cfg: DictConfig, module: pl.LightningModule, out_dir: Path,
           best: str | None) -> dict[str, Any] | None:
    """The benchmark score (predict + eval route, stsanet.runs.scoring) of the best checkpoint's
    weights (selected on the validation loss), or of the final weights without one. Under DDP
    every rank calls it; rank 0 gets the score, the others None."""
    from stsanet.runs.scoring import score_from_config

    if best:
        state = torch.load(best, map_location="cpu", weights_only=True)["state_dict"]
        module.load_state_dict(state)
    net = module.net
    score = score_from_config(cfg, net, out_dir / "score", device=module.device)
    if score is not None and OmegaConf.select(cfg, "score.save_weights", default=False):
        # the weights that were scored, for the fine-tuning chain (init.weights of a later run)
        save_weights(net, out_dir / "weights.pt")
        score["weights"] = str(out_dir / "weights.pt")
    return score


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
