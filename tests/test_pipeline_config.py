"""Every config composes; bad values fail early with the key and the allowed values."""

from __future__ import annotations

import subprocess
import sys

import pytest
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

from stsanet.errors import ConfigError
from stsanet.runs.predict import check_predict_config
from stsanet.runs.train import check_train_config
from stsanet.runs.config import CONF_DIR
from stsanet.lit.schedule import official_lr

EXPERIMENTS = sorted(p.stem for p in (CONF_DIR / "experiment").glob("*.yaml"))


def compose_cfg(name: str, overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose(name, overrides=overrides, return_hydra_config=True)


def resolve(cfg):
    # ${hydra:...} needs a running app; give the paths their concrete values.
    OmegaConf.set_struct(cfg, False)
    cfg.paths.output_dir = "/tmp/stsanet-compose"
    cfg.paths.work_dir = "/tmp"
    cfg.pop("hydra", None)
    return OmegaConf.to_container(cfg, resolve=True)


@pytest.mark.parametrize("experiment", EXPERIMENTS)
def test_every_experiment_composes(experiment):
    overrides = [f"experiment={experiment}", "data.root=/tmp"]
    if experiment.startswith("finetune"):
        overrides.append("init.weights=/tmp/dhf1k.ckpt")
    cfg = resolve(compose_cfg("train", overrides))
    assert cfg["module"]["optimizer"]["_partial_"] is True
    if experiment == "paper_dhf1k" or experiment.startswith("finetune"):
        assert cfg["model"]["input_size"] == [224, 384] and cfg["data"]["batch_size"] == 3
        assert cfg["model"]["bn_momentum"] == 0.001
        assert cfg["schedule"]["name"] == "official"
    if experiment == "demo":
        assert cfg["model"]["norm"] == "agnostic" and cfg["model"]["bn_momentum"] == 0.1
        assert cfg["data"]["input_size"] == cfg["model"]["input_size"]


@pytest.mark.parametrize("group,options", [
    ("trainer", ["cpu", "gpu", "ddp", "ddp_cpu"]),
    ("logger", ["wandb", "csv", "none"]),
    ("schedule", ["official", "plateau", "constant"]),
    ("callbacks", ["default", "none"]),
    ("debug", ["fdr", "limit"]),
])
def test_every_group_option_composes(group, options):
    for option in options:
        cfg = resolve(compose_cfg("train", [f"{group}={option}"]))
        assert cfg["trainer"]["_target_"] == "pytorch_lightning.Trainer"


def test_loggers_and_callbacks_instantiate(tmp_path):
    cfg = compose_cfg("train", ["logger=wandb"])
    OmegaConf.set_struct(cfg, False)
    cfg.paths.output_dir = str(tmp_path)
    wandb = instantiate(cfg.logger.wandb)
    assert wandb._offline  # no network unless the user asks
    for node in cfg.callbacks.values():
        instantiate(node)
    instantiate(cfg.schedule.callback)


def test_predict_config_composes():
    cfg = resolve(compose_cfg("predict", ["input=a.mp4", "checkpoint=b.ckpt"]))
    # null: the checkpoint's own (stsanet.runs.predict), middle / 32 for files without them
    assert cfg["supervision"] is None and cfg["clip_len"] is None


@pytest.mark.parametrize("override,message", [
    ("model.norm=layer", "model.norm='layer' is unknown; allowed: full_shape, agnostic"),
    ("model.input_size=[60,96]", "multiples of 32"),
    ("model.input_size=[64,96]", "needs model.norm=agnostic"),
    ("trainer.max_epochs=abc", "trainer.max_epochs='abc' is not an integer"),
    ("data.batch_size=0", "data.batch_size=0 must be >= 1"),
    ("seed=abc", "seed='abc' is not an integer"),
    ("module.optimizer.lr=fast", "module.optimizer.lr='fast' is not a number"),
    ("data.supervision=first", "allowed: middle, last"),
    ("init.backbone=/nonexistent/s3d.pt", "init.backbone=/nonexistent/s3d.pt: file not found"),
])
def test_config_errors_name_the_key(override, message):
    cfg = compose_cfg("train", ["data=dhf1k", "data.root=/tmp", "model.norm=full_shape",
                                override])
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        check_train_config(cfg)


def test_missing_data_root_is_named():
    cfg = compose_cfg("train", ["data=dhf1k"])
    with pytest.raises(ConfigError, match=r"data.root is required"):
        check_train_config(cfg)
    cfg = compose_cfg("train", ["data=dhf1k", "data.root=/nonexistent/DHF1K"])
    with pytest.raises(ConfigError, match=r"data.root=/nonexistent/DHF1K"):
        check_train_config(cfg)


def test_predict_config_errors(tmp_path):
    cfg = compose_cfg("predict", [f"input={tmp_path / 'missing.mp4'}", "checkpoint=x.ckpt",
                                  f"output={tmp_path / 'out'}"])
    with pytest.raises(ConfigError, match="input=.*missing.mp4: no such video"):
        check_predict_config(cfg)


def test_cli_unknown_variant_lists_the_choices():
    result = subprocess.run([sys.executable, "-m", "stsanet.cli.train", "trainer=tpu"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode != 0
    assert "trainer/tpu" in result.stderr and "ddp_cpu" in result.stderr


def test_cli_bad_value_exits_before_work():
    result = subprocess.run([sys.executable, "-m", "stsanet.cli.train", "model.norm=bogus",
                             "hydra.run.dir=/tmp/stsanet-bad-config", "logger=none"],
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 2
    assert "model.norm='bogus' is unknown; allowed: full_shape, agnostic" in result.stderr


def test_official_schedule_values():
    assert [official_lr(e) for e in (0, 11)] == [1e-4, 1e-4]
    drops = [e for e in range(1, 80) if official_lr(e) < official_lr(e - 1)]
    assert drops == [12, 18, 27, 36, 45, 54, 63, 72]
    assert official_lr(72) == pytest.approx(1e-12) and official_lr(79) == pytest.approx(1e-12)
