"""Trainer and predictor settings of issue 13: GPU precision follows the GPU, `trainer.compile`
compiles, prediction compiles on GPUs, and on CPU where the windows pay for the compile."""

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


def test_predict_compiles_on_gpus_and_on_cpu_past_the_break_even():
    from stsanet.errors import ConfigError
    from stsanet.models.inference import cpu_compile_break_even, resolve_compile
    from stsanet.runs.predict import _compile

    assert _compile("auto") == "auto" and _compile(True) is True and _compile(False) is False
    with pytest.raises(ConfigError, match="compile='sometimes'"):
        _compile("sometimes")
    paper = (224, 384)
    assert resolve_compile("auto", torch.device("cuda"), None, paper) is True
    assert resolve_compile("auto", "cpu", None, paper) is False  # windows unknown
    even = cpu_compile_break_even(paper)
    assert resolve_compile("auto", "cpu", even - 1, paper) is False
    assert resolve_compile("auto", "cpu", even, paper) is True
    assert cpu_compile_break_even((64, 96)) > even  # a small window saves less per call
    assert resolve_compile(True, "cpu", 1, paper) is True
    assert resolve_compile(False, "cuda", 10**6, paper) is False
