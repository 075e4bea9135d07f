"""hparams_search=lr_bn_optuna: Hydra's Optuna sweeper over the learning rate and BatchNorm
momentum of one ablation row, optimising what stsanet-train returns (optimized_metric)."""

from __future__ import annotations

from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

from stsanet.runs.config import CONF_DIR
from stsanet.runs.table import EXPERIMENTS_DIR


def test_optuna_search_composes_with_an_ablation_row():
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=[
            f"hydra.searchpath=[file://{EXPERIMENTS_DIR.resolve()}]", "hparams_search=lr_bn_optuna",
            "+ablation=unet_stsa", "experiment=demo"], return_hydra_config=True)
    assert cfg.optimized_metric == "val/loss" and cfg.ablation.row == "unet_stsa"
    sweeper = cfg.hydra.sweeper
    assert sweeper._target_.endswith("OptunaSweeper") and sweeper.direction == "minimize"
    assert set(sweeper.params) == {"module.optimizer.lr", "model.bn_momentum"}
    # the sampler and the search space build (optuna 2.10 beside the pinned hydra-core 1.3.8)
    sampler = instantiate(sweeper.sampler)
    assert type(sampler).__name__ == "TPESampler"
    from hydra.core.override_parser.overrides_parser import OverridesParser
    from hydra_plugins.hydra_optuna_sweeper._impl import create_optuna_distribution_from_override

    parser = OverridesParser.create()
    lr = create_optuna_distribution_from_override(
        parser.parse_override(f"module.optimizer.lr={sweeper.params['module.optimizer.lr']}"))
    assert (lr.low, lr.high) == (1e-5, 1e-3) and type(lr).__name__ == "LogUniformDistribution"


def test_train_config_optimises_nothing_by_default():
    cfg = OmegaConf.load(CONF_DIR / "train.yaml")
    assert cfg.optimized_metric is None and {"hparams_search": None} in list(cfg.defaults)
