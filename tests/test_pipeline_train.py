"""End to end on generated data: train (real config, tiny), test, predict, resume, DDP on CPU.

One module-scoped tiny run (STSANet, agnostic norm, 64 × 96, 2 epochs × 2 steps) is shared by
several assertions, to keep model constructions few.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from stsanet.data.synthetic import generate
from stsanet.lit.config import CONF_DIR
from stsanet.lit.train import train


class Killed(Exception):
    """Stands for the process being killed."""


class KillAtStep:
    """A callback that stops training abruptly when ``global_step`` reaches ``step``."""

    def __new__(cls, step: int):
        import pytorch_lightning as pl

        class _Kill(pl.Callback):
            def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
                if trainer.global_step == step:
                    raise Killed(f"killed at step {step}")

        return _Kill()


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, size="ci", seed=0)
    return root


def tiny_cfg(out_dir: Path, data_root: Path, *extra: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[
            "experiment=demo", "logger=csv", f"data.root={data_root}", "data.size=ci",
            "data.batch_size=1", "data.num_workers=0", "data.val_stride=40",
            "trainer.max_epochs=2", "trainer.log_every_n_steps=1", "trainer.check_val_every_n_epoch=1", "+trainer.limit_train_batches=2",
            "+trainer.limit_val_batches=1", "+trainer.enable_progress_bar=false",
            "~callbacks.progress", "module.fresh_optimizer_each_epoch=true", *extra])
    OmegaConf.set_struct(cfg, False)
    cfg.paths.output_dir = str(out_dir)
    cfg.paths.work_dir = str(out_dir)
    cfg.callbacks.model_checkpoint.dirpath = str(out_dir / "checkpoints")
    cfg.callbacks.val_overlays.out_dir = str(out_dir)
    for node in cfg.logger.values():
        node.save_dir = str(out_dir)
    cfg.pop("hydra", None)
    return cfg


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, synthetic_root):
    out = tmp_path_factory.mktemp("run")
    cfg = tiny_cfg(out, synthetic_root, "test=true")
    metrics = train(cfg)
    return out, cfg, metrics


def test_run_folder_has_config_checkpoints_results(tiny_run):
    out, cfg, metrics = tiny_run
    assert (out / "config_resolved.yaml").is_file()
    results = json.loads((out / "results.json").read_text())
    assert Path(results["best_checkpoint"]).is_file() and Path(results["last_checkpoint"]).is_file()
    assert (out / "val_overlays" / "epoch_001.png").is_file()
    for key in ("train/loss_epoch", "val/loss", "val/cc_fast", "test/cc", "test/nss",
                "test/auc_judd"):
        assert key in metrics, key
    assert -1.0 <= metrics["test/cc"] <= 1.0
    csv = next(out.glob("csv/version_*/metrics.csv")).read_text()
    assert "train/clips_per_s" in csv and "lr-Adam" in csv
    checkpoint = torch.load(results["last_checkpoint"], map_location="cpu", weights_only=False)
    assert checkpoint["stsanet_model_config"]["norm"] == "agnostic"
    assert checkpoint["global_step"] == 4


def test_predict_from_the_trained_checkpoint(tiny_run, synthetic_root, tmp_path):
    from stsanet.lit.predict_run import run_predict

    out, _, _ = tiny_run
    video = sorted((synthetic_root / "video").iterdir())[0]
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("predict", overrides=[f"input={video}", f"checkpoint={out}/checkpoints/last.ckpt",
                                            "batch_windows=8", "progress=false"])
    OmegaConf.set_struct(cfg, False)
    cfg.output = str(tmp_path)
    cfg.pop("hydra", None)
    [outcome] = run_predict(cfg)
    assert outcome.error is None
    assert len(list(outcome.outputs.maps.glob("*.png"))) == 40
    assert outcome.outputs.overlay.is_file()


@pytest.mark.xfail(reason="open: the uninterrupted run's last.ckpt reports global_step 2, not 4 "
                          "(with logger=none); under investigation", strict=False)
def test_killed_and_resumed_run_matches_uninterrupted(tmp_path, synthetic_root):
    """Kill after 3 of 4 steps (mid epoch 2) and resume: same final weights bit for bit."""
    every_step = ["+callbacks.every_step._target_=pytorch_lightning.callbacks.ModelCheckpoint",
                  f"+callbacks.every_step.dirpath={tmp_path / 'steps'}",
                  "+callbacks.every_step.every_n_train_steps=1",
                  "+callbacks.every_step.save_top_k=-1",
                  "+callbacks.every_step.filename='{step}'"]
    straight = tiny_cfg(tmp_path / "straight", synthetic_root, "logger=none")
    train(straight)
    expected = torch.load(tmp_path / "straight/checkpoints/last.ckpt", map_location="cpu",
                          weights_only=False)

    killed = tiny_cfg(tmp_path / "killed", synthetic_root, "logger=none", *every_step)
    killed.callbacks.kill = {"_target_": f"{__name__}.KillAtStep", "step": 3}
    with pytest.raises(Killed):
        train(killed)
    resumed = tiny_cfg(tmp_path / "resumed", synthetic_root, "logger=none")
    resumed.ckpt_path = str(tmp_path / "steps" / "step=3.ckpt")
    train(resumed)
    got = torch.load(tmp_path / "resumed/checkpoints/last.ckpt", map_location="cpu",
                     weights_only=False)
    assert got["global_step"] == expected["global_step"] == 4
    for key, value in expected["state_dict"].items():
        assert torch.equal(value, got["state_dict"][key]), key


@pytest.mark.slow
def test_ddp_on_cpu_two_processes(tmp_path, synthetic_root):
    cfg = tiny_cfg(tmp_path, synthetic_root, "trainer=ddp_cpu", "logger=csv",
                   "trainer.max_epochs=1", "~callbacks.val_overlays")
    metrics = train(cfg)
    assert "val/loss" in metrics and "val/cc_fast" in metrics
    assert (tmp_path / "checkpoints" / "last.ckpt").is_file()
