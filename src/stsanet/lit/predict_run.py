"""Wiring for stsanet-predict: config → model from checkpoint → sliding-window predictor."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from stsanet.lit.checkpoint_info import build_model, read_checkpoint, stored_model_fields
from stsanet.lit.checks import ConfigError, check_predict_config
from stsanet.predict import PredictOptions, SlidingWindowPredictor, find_inputs, predict_inputs

log = logging.getLogger(__name__)


def load_model(checkpoint: str | Path, model_cfg: DictConfig | None) -> torch.nn.Module:
    """A network with the checkpoint's weights.

    Checkpoints written by stsanet-train carry the model settings that built them, so the same
    network is rebuilt (by STSANet itself, from validated fields) whatever ``model`` says; other
    formats (official, converted) go through ``stsanet.models.weights.load_weights`` into the
    network ``model`` describes. Files are read with ``weights_only=True`` only.
    """
    from stsanet.models.weights import load_weights

    fields = stored_model_fields(read_checkpoint(checkpoint), checkpoint)
    if fields is not None:
        net = build_model(fields, str(checkpoint))
    elif model_cfg is None:
        raise ConfigError(f"checkpoint={checkpoint}: no model settings stored in it; set "
                          f"model=... for this checkpoint")
    else:
        net = instantiate(model_cfg)
    load_weights(net, checkpoint)
    return net


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def run_predict(cfg: DictConfig):
    check_predict_config(cfg)
    net = load_model(cfg.checkpoint, cfg.get("model"))
    input_size = getattr(net, "input_size", None) or tuple(cfg.model.input_size)
    options = PredictOptions(clip_len=int(cfg.clip_len), supervision=str(cfg.supervision),
                             batch_windows=int(cfg.batch_windows), overlay=bool(cfg.overlay),
                             save_float=bool(cfg.save_float), progress=bool(cfg.progress),
                             precision=str(cfg.get("precision", "fp32")))
    predictor = SlidingWindowPredictor(net, input_size, _device(str(cfg.device)), options)
    output = Path(cfg.output)
    outcomes = predict_inputs(predictor, find_inputs(cfg.input), output)
    for outcome in outcomes:
        if outcome.error:
            print(f"FAILED  {outcome.path}: {outcome.error}")
        else:
            print(f"maps    {outcome.outputs.maps}")
            if outcome.outputs.overlay.is_file():
                print(f"overlay {outcome.outputs.overlay}")
    return outcomes
