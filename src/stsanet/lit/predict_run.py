"""Wiring for stsanet-predict: config → model from checkpoint → sliding-window predictor."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from stsanet.lit.checks import check_predict_config
from stsanet.predict import PredictOptions, SlidingWindowPredictor, find_inputs, predict_inputs

log = logging.getLogger(__name__)


def load_model(checkpoint: str | Path, model_cfg: DictConfig | None) -> torch.nn.Module:
    """A network with the checkpoint's weights.

    Checkpoints written by stsanet-train carry the model config that built them, so the same
    network is rebuilt whatever ``model`` says; other formats (official, converted) go through
    ``stsanet.models.weights.load_weights`` into the network ``model`` describes.
    """
    state = torch.load(checkpoint, map_location="cpu", weights_only=False)
    if isinstance(state, dict) and "state_dict" in state and "stsanet_model_config" in state:
        net = instantiate(OmegaConf.create(state["stsanet_model_config"]))
        weights = {k[len("net."):]: v for k, v in state["state_dict"].items()
                   if k.startswith("net.")}
        net.load_state_dict(weights, strict=True)
        return net
    if model_cfg is None:
        raise ValueError(f"{checkpoint}: no model config stored; set model=... for this checkpoint")
    from stsanet.models.weights import load_weights

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
                             precision=str(cfg.get("precision", "fp32")),
                             compile=bool(cfg.get("compile", False)))
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
