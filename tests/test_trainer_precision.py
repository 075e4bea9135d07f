"""Trainer and predictor settings of issue 13: GPU precision follows the GPU, `trainer.compile`
compiles, prediction compiles on GPUs by default."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from model_helpers import small_model
from stsanet.runs.config import CONF_DIR, mixed_precision


def _compose(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=overrides)


@pytest.mark.parametrize("bf16, expected", [(True, "bf16-mixed"), (False, "16-mixed")])
@pytest.mark.parametrize("trainer", ["gpu", "ddp"])
def test_gpu_trainers_use_bf16_where_the_gpu_has_it(monkeypatch, trainer, bf16, expected):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *args, **kwargs: bf16)
    assert mixed_precision() == expected
    assert _compose([f"trainer={trainer}"]).trainer.precision == expected


def test_cpu_trainers_stay_fp32_and_uncompiled():
    for trainer in ("cpu", "ddp_cpu"):
        cfg = _compose([f"trainer={trainer}"]).trainer
        assert (str(cfg.precision), cfg.compile) == ("32", False)


@pytest.mark.parametrize("compile", [False, True])
def test_trainer_compile_compiles_the_network_in_place(compile):
    from stsanet.lit.module import SaliencyModule
    from stsanet.runs.train import build_trainer

    cfg = _compose(["trainer=cpu", f"trainer.compile={str(compile).lower()}", "logger=none"])
    OmegaConf.set_struct(cfg, False)
    cfg.trainer.default_root_dir = None
    net = small_model()
    keys = list(net.state_dict())
    module = SaliencyModule(net, optimizer=torch.optim.Adam)
    trainer = build_trainer(cfg, module, callbacks=[], loggers=[])
    assert trainer.max_epochs == cfg.trainer.max_epochs
    # nn.Module.compile: the module tree and checkpoint keys stay as they were
    assert list(module.net.state_dict()) == keys
    assert (module.net._compiled_call_impl is not None) == compile


def test_predict_compiles_on_gpus_by_default_and_takes_explicit_choices():
    from stsanet.errors import ConfigError
    from stsanet.runs.predict import _compile

    assert _compile("auto", torch.device("cuda")) is True
    assert _compile("auto", torch.device("cpu")) is False
    assert _compile(True, torch.device("cpu")) is True and _compile(False, torch.device("cuda")) is False
    with pytest.raises(ConfigError, match="compile='sometimes'"):
        _compile("sometimes", torch.device("cpu"))
