"""Wiring for stsanet-predict: config → model from checkpoint → sliding-window predictor."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from stsanet.lit.checkpoint_info import RunInfo, build_model, read_checkpoint, stored_run_info
from stsanet.lit.checks import ConfigError, check_predict_config
from stsanet.runs.predictor import (PredictOptions, SlidingWindowPredictor, count_windows,
                                    find_inputs, predict_inputs)

log = logging.getLogger(__name__)


def load_model(checkpoint: str | Path, model_cfg: DictConfig | None
               ) -> tuple[torch.nn.Module, RunInfo]:
    """A network with the checkpoint's weights, and what the checkpoint says about using it.

    Checkpoints written by stsanet-train carry the model settings that built them, so the same
    network is rebuilt (by STSANet itself, from validated fields) whatever ``model`` says; other
    formats (official, converted) go through ``stsanet.models.weights.load_weights`` into the
    network ``model`` describes. Files are read with ``weights_only=True`` only.
    """
    from stsanet.models.weights import load_weights

    info = stored_run_info(read_checkpoint(checkpoint), checkpoint)
    if info.model is not None:
        net = build_model(info.model, str(checkpoint))
    elif model_cfg is None:
        raise ConfigError(f"checkpoint={checkpoint}: no model settings stored in it; set "
                          f"model=... for this checkpoint")
    else:
        net = instantiate(model_cfg)
    load_weights(net, checkpoint)
    return net, info


def _from_checkpoint(cfg: DictConfig, key: str, stored, default):
    """The checkpoint's value of a setting; an explicit different one is refused by name."""
    given = cfg.get(key)
    if given is not None and stored is not None and given != stored:
        raise ConfigError(f"{key}={given} contradicts checkpoint={cfg.checkpoint}, which was "
                          f"trained with {key}={stored}; drop {key}= to use the checkpoint's")
    return given if given is not None else stored if stored is not None else default


def check_model_overrides(overrides: list[str], info: RunInfo, checkpoint) -> None:
    """Command-line model settings cannot change a network whose settings the checkpoint holds."""
    if info.model is None:
        return
    for override in overrides:
        key = override.split("=", 1)[0].lstrip("+~")
        if key == "model" or key.startswith(("model.", "model/")):
            raise ConfigError(f"{override}: checkpoint={checkpoint} carries its model settings "
                              f"({', '.join(f'{k}={v}' for k, v in info.model.items())}) and the "
                              f"network is built from them; drop the {key} override")


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def _compile(value) -> bool | str:
    """compile=auto is decided by the predictor from the windows to predict (README, Speed)."""
    if value == "auto" or isinstance(value, bool):
        return value
    raise ConfigError(f"compile={value!r} is unknown; allowed: auto, true, false")


def run_predict(cfg: DictConfig, overrides: list[str] = ()):
    """Predict every input; ``overrides`` are the command line's (to tell given from default)."""
    check_predict_config(cfg)
    net, info = load_model(cfg.checkpoint, cfg.get("model"))
    check_model_overrides(list(overrides), info, cfg.checkpoint)
    supervision = _from_checkpoint(cfg, "supervision", info.supervision, "middle")
    clip_len = _from_checkpoint(cfg, "clip_len", info.clip_len, 32)
    input_size = getattr(net, "input_size", None) or tuple(cfg.model.input_size)
    log.info("predicting with supervision=%s clip_len=%d input_size=%s (trained on %s)",
             supervision, clip_len, list(input_size), info.dataset or "unrecorded data")
    device = _device(str(cfg.device))
    options = PredictOptions(clip_len=int(clip_len), supervision=str(supervision),
                             batch_windows=int(cfg.batch_windows), overlay=bool(cfg.overlay),
                             save_float=bool(cfg.save_float), progress=bool(cfg.progress),
                             precision=str(cfg.get("precision", "fp32")),
                             compile=_compile(cfg.get("compile", "auto")))
    inputs = find_inputs(cfg.input)
    predictor = SlidingWindowPredictor(net, input_size, device, options,
                                       windows=count_windows(inputs))
    output = Path(cfg.output)
    outcomes = predict_inputs(predictor, inputs, output)
    for outcome in outcomes:
        if outcome.error:
            print(f"FAILED  {outcome.path}: {outcome.error}")
        else:
            print(f"maps    {outcome.outputs.maps}")
            if outcome.outputs.overlay.is_file():
                print(f"overlay {outcome.outputs.overlay}")
    return outcomes
