"""End to end on generated data: train (real config, tiny), test, predict, resume, DDP on CPU.

One module-scoped tiny run (STSANet, agnostic norm, 64 × 96, batch 1, 2 epochs × 2 steps,
1 validation batch) serves several assertions and is the uninterrupted reference of the
kill/resume test, which continues from its epoch-0 state. Checkpoints (~1.6 GB full, ~0.5 GB
weights only at 132 M parameters) are written only where a test needs them and deleted after.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from stsanet.data.synthetic import generate
from stsanet.runs.config import CONF_DIR
from stsanet.runs.train import train

# Final weights of a run, by name: filled by KeepFinalWeights at the end of fit.
FINAL_WEIGHTS: dict[str, dict[str, torch.Tensor]] = {}


class Killed(Exception):
    """Stands for the process being killed."""


class KillAtStep(pl.Callback):
    """Stops training abruptly (an exception) before the optimiser step ``step`` + 1."""

    def __init__(self, step: int) -> None:
        self.step = step

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            raise Killed(f"killed at step {self.step}")


class KeepFinalWeights(pl.Callback):
    def __init__(self, name: str) -> None:
        self.name = name

    def on_train_end(self, trainer, pl_module):
        FINAL_WEIGHTS[self.name] = {k: v.detach().clone() for k, v in pl_module.state_dict().items()}


class CopyAtEpochStart(pl.Callback):
    """Keeps a copy of ``source`` (last.ckpt, as left by the previous epoch) at ``epoch``'s start."""

    def __init__(self, epoch: int, source: str, copy: str) -> None:
        self.epoch, self.source, self.copy = epoch, source, copy

    def on_train_epoch_start(self, trainer, pl_module):
        if trainer.current_epoch == self.epoch:
            shutil.copyfile(self.source, self.copy)


class RankReport(pl.Callback):
    """Writes, per rank, the validation loss of its own clips and the synced value it logged."""

    def __init__(self, out_dir: str) -> None:
        self.out_dir = out_dir

    def on_validation_end(self, trainer, pl_module):
        from stsanet.metrics.loss import kl_cc_loss

        example = pl_module.last_val_example  # the rank's only validation batch
        report = {"rank": trainer.global_rank, "clips": int(example["pred"].shape[0]),
                  "local_loss": float(kl_cc_loss(example["pred"], example["saliency"])),
                  "synced_loss": float(trainer.callback_metrics["val/loss"]),
                  "synced_cc": float(trainer.callback_metrics["val/cc_fast"])}
        path = Path(self.out_dir) / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps(report))


def callback(target: type, **kwargs) -> dict:
    return {"_target_": f"{__name__}.{target.__name__}", **kwargs}


@pytest.fixture(scope="module")
def synthetic_root(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("synthetic")
    generate(root, size="ci", seed=0)
    return root


def tiny_cfg(out_dir: Path, data_root: Path, *extra: str):
    """The real training config (data=synthetic, official schedule, default callbacks), shrunk."""
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[
            "data=synthetic", f"data.root={data_root}", "data.size=ci", "data.batch_size=1",
            "data.num_workers=0", "data.val_stride=40",
            "model.norm=agnostic", "model.input_size=[64,96]", "model.bn_momentum=0.1",
            "logger=csv", "trainer=cpu", "trainer.max_epochs=2", "trainer.log_every_n_steps=1",
            "+trainer.limit_train_batches=2", "+trainer.limit_val_batches=1",
            "+trainer.limit_test_batches=1", "+trainer.enable_progress_bar=false",
            "~callbacks.progress", *extra])
    OmegaConf.set_struct(cfg, False)
    cfg.paths.output_dir = str(out_dir)
    cfg.paths.work_dir = str(out_dir)
    cfg.pop("hydra", None)
    return cfg


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory, synthetic_root):
    out = tmp_path_factory.mktemp("run")
    cfg = tiny_cfg(out, synthetic_root, "test=true")
    cfg.callbacks.keep = callback(KeepFinalWeights, name="uninterrupted")
    # the full state after epoch 0, for the kill/resume test
    cfg.callbacks.copy = callback(CopyAtEpochStart, epoch=1, source=str(out / "checkpoints/last.ckpt"),
                                  copy=str(out / "epoch0.ckpt"))
    metrics = train(cfg)
    yield out, cfg, metrics
    shutil.rmtree(out / "checkpoints", ignore_errors=True)
    (out / "epoch0.ckpt").unlink(missing_ok=True)


def test_run_folder_has_config_checkpoints_results(tiny_run):
    out, cfg, metrics = tiny_run
    assert (out / "config_resolved.yaml").is_file()
    results = json.loads((out / "results.json").read_text())
    assert (out / "val_overlays" / "epoch_001.png").is_file()
    for key in ("train/loss_epoch", "val/loss", "val/cc_fast", "test/cc", "test/nss",
                "test/auc_judd"):
        assert key in metrics, key
    assert -1.0 <= metrics["test/cc"] <= 1.0
    csv = next(out.glob("csv/version_*/metrics.csv")).read_text()
    assert "train/clips_per_s" in csv and "lr-Adam" in csv

    # last.ckpt is the full state after the final step, whether or not val/loss improved
    last = torch.load(results["last_checkpoint"], map_location="cpu", weights_only=True, mmap=True)
    assert Path(results["last_checkpoint"]).name == "last.ckpt"
    assert last["global_step"] == 4 and last["epoch"] == 1
    assert last["optimizer_states"] and last["loops"] and last["callbacks"]
    # what using the weights needs (stsanet.lit.checkpoint_info.run_info)
    stored = last["stsanet"]
    assert stored["model"]["norm"] == "agnostic"
    assert {k: stored[k] for k in ("supervision", "clip_len", "input_size", "dataset")} == \
        {"supervision": "middle", "clip_len": 32, "input_size": [64, 96], "dataset": "synthetic"}
    final = FINAL_WEIGHTS["uninterrupted"]
    assert all(torch.equal(value, last["state_dict"][key]) for key, value in final.items())
    del last
    # the best checkpoint holds the weights only (no Adam moments), and is what the test used
    best = torch.load(results["best_checkpoint"], map_location="cpu", weights_only=True, mmap=True)
    assert "optimizer_states" not in best and best["state_dict"].keys() == final.keys()
    assert best["stsanet"] == stored
    assert Path(results["best_checkpoint"]).stat().st_size < \
        Path(results["last_checkpoint"]).stat().st_size / 2
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == sorted(
        {Path(results["best_checkpoint"]).name, "last.ckpt"})


def test_predict_from_the_weights_only_best_checkpoint(tiny_run, tmp_path):
    from pipeline_helpers import write_video

    from stsanet.runs.predict import run_predict

    out, _, _ = tiny_run
    best = json.loads((out / "results.json").read_text())["best_checkpoint"]
    video = tmp_path / "four.mp4"
    write_video(video, num_frames=4)  # four windows (edges replicated): one forward pass
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("predict", overrides=[f"input={video}", f"checkpoint={best}",
                                            "batch_windows=4", "progress=false"])
    OmegaConf.set_struct(cfg, False)
    cfg.output = str(tmp_path / "predictions")
    cfg.pop("hydra", None)
    [outcome] = run_predict(cfg)
    assert outcome.error is None
    assert len(list(outcome.outputs.maps.glob("*.png"))) == 4
    assert outcome.outputs.overlay.is_file()


def test_killed_and_resumed_run_matches_uninterrupted(tiny_run, tmp_path, synthetic_root):
    """A run continued from the shared run's epoch-0 last.ckpt is killed mid epoch 2 (after
    step 3 of 4, just after an every_n_train_steps checkpoint), then resumed from that checkpoint
    with ckpt_path=: every tensor of its final state equals the uninterrupted run's."""
    out, _, _ = tiny_run
    steps = tmp_path / "steps"
    # Only the step checkpoint is written: the run's own best/last files are tested above.
    lean = ["logger=none", "~callbacks.model_checkpoint", "~callbacks.last_checkpoint",
            "~callbacks.val_overlays"]
    killed = tiny_cfg(tmp_path / "killed", synthetic_root, *lean)
    killed.ckpt_path = str(out / "epoch0.ckpt")
    killed.callbacks.every_3_steps = {
        "_target_": "pytorch_lightning.callbacks.ModelCheckpoint", "dirpath": str(steps),
        "every_n_train_steps": 3, "save_top_k": -1, "filename": "{step}"}
    killed.callbacks.kill = callback(KillAtStep, step=3)
    try:
        with pytest.raises(Killed):
            train(killed)
        assert [p.name for p in steps.iterdir()] == ["step=3.ckpt"]

        # no checkpoint callback left: keep Lightning from adding its default one
        resumed = tiny_cfg(tmp_path / "resumed", synthetic_root, *lean,
                           "+trainer.enable_checkpointing=false")
        resumed.callbacks.keep = callback(KeepFinalWeights, name="resumed")
        resumed.ckpt_path = str(steps / "step=3.ckpt")
        train(resumed)
    finally:
        shutil.rmtree(steps, ignore_errors=True)
    expected, got = FINAL_WEIGHTS["uninterrupted"], FINAL_WEIGHTS["resumed"]
    assert got.keys() == expected.keys()
    different = [key for key, value in expected.items() if not torch.equal(value, got[key])]
    assert not different, different
    assert not list(tmp_path.rglob("*.ckpt"))


@pytest.mark.slow
def test_ddp_on_cpu_two_processes_sync_metrics(tmp_path, synthetic_root):
    """Two gloo processes, one train step and one validation clip each: both ranks log the same
    val/loss, the mean over both ranks' clips (what one process validating both computes)."""
    cfg = tiny_cfg(tmp_path, synthetic_root, "trainer=ddp_cpu", "logger=none",
                   "trainer.max_epochs=1", "trainer.limit_train_batches=1",
                   "~callbacks.model_checkpoint", "~callbacks.last_checkpoint",
                   "~callbacks.val_overlays", "+trainer.enable_checkpointing=false")
    cfg.callbacks.report = callback(RankReport, out_dir=str(tmp_path))
    metrics = train(cfg)
    reports = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert sum(r["clips"] for r in reports) == 2  # the whole validation split, one clip each
    assert reports[0]["local_loss"] != pytest.approx(reports[1]["local_loss"])
    union = sum(r["local_loss"] * r["clips"] for r in reports) / 2
    for report in reports:
        assert report["synced_loss"] == pytest.approx(union, rel=1e-5, abs=1e-6)
        assert report["synced_cc"] == reports[0]["synced_cc"]
    assert metrics["val/loss"] == pytest.approx(union, rel=1e-5, abs=1e-6)
    assert not list(tmp_path.rglob("*.ckpt"))
