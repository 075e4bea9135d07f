"""Wiring for stsanet-predict: config → checks → model from checkpoint → sliding-window predictor.

Everything that can be checked without the network is checked before it is built: the
values (:mod:`stsanet.runs.schema`), the input and checkpoint files, every input's frames,
and every output folder (writable, and holding nothing but this source's maps,
:mod:`stsanet.runs.provenance`)."""

from __future__ import annotations

import logging
from pathlib import Path

import torch
from hydra.utils import instantiate
from omegaconf import DictConfig

from stsanet.atomic import check_folder_place
from stsanet.data.frames import open_frame_source
from stsanet.errors import ConfigError, InputError
from stsanet.models.channels import PAPER_INPUT_SIZE
from stsanet.lit.checkpoint_info import RunInfo, build_model, read_checkpoint, stored_run_info
from stsanet.runs import provenance
from stsanet.runs.predictor import (PredictOptions, SlidingWindowPredictor, VideoOutcome,
                                    count_windows, find_inputs, predict_inputs)
from stsanet.runs.schema import PredictConfig, check

log = logging.getLogger(__name__)


def load_model(checkpoint: str | Path, model_cfg: DictConfig | None
               ) -> tuple[torch.nn.Module, RunInfo]:
    """A network with the checkpoint's weights, and what the checkpoint says about using it.

    Checkpoints written by stsanet-train carry the model settings that built them, so the same
    network is rebuilt (by STSANet itself, from validated fields) whatever ``model`` says; other
    formats (official, converted) go through ``stsanet.models.weights.load_weights`` into the
    network ``model`` describes. Files are read with ``weights_only=True`` only.
    """
    info = stored_run_info(read_checkpoint(checkpoint), checkpoint)
    return build_network(checkpoint, info, model_cfg), info


def build_network(checkpoint: str | Path, info: RunInfo, model_cfg: DictConfig | None
                  ) -> torch.nn.Module:
    """The network ``info`` (or ``model_cfg``) describes, with the checkpoint's weights."""
    from stsanet.models.weights import load_weights

    if info.model is not None:
        net = build_model(info.model, str(checkpoint))
    elif model_cfg is None:
        raise ConfigError(f"checkpoint={checkpoint}: no model settings stored in it; set "
                          f"model=... for this checkpoint")
    else:
        net = instantiate(model_cfg)
    load_weights(net, checkpoint)
    return net


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


def check_predict_config(cfg: DictConfig) -> None:
    """The values (typed, in range, the device present), the input and checkpoint present,
    the output folder writable."""
    check(cfg, PredictConfig)
    if not Path(cfg.input).exists():
        raise ConfigError(f"input={cfg.input}: no such video file or folder")
    if not Path(cfg.checkpoint).is_file():
        raise ConfigError(f"checkpoint={cfg.checkpoint}: file not found")
    check_folder_place(cfg.output, "output")


def _check_outputs(cfg: DictConfig, inputs: list[Path], settings: dict
                   ) -> tuple[dict[Path, str], list[VideoOutcome], list[tuple]]:
    """Open every input and check its output folder (before the model loads); returns the
    output name of each usable input, the outcomes of those that cannot be read, and what to
    do with each output folder (:func:`provenance.prepare_folder`, once the model loaded)."""
    output = Path(cfg.output)
    names = provenance.output_names(inputs)
    usable, failed, folders = {}, [], []
    for path in inputs:
        try:
            frames = open_frame_source(path).num_frames
        except InputError as error:
            failed.append(VideoOutcome(path, None, str(error)))
            continue
        wanted = provenance.manifest(path, frames, Path(cfg.checkpoint), settings)
        folder = output / names[path]
        decision = provenance.check_folder(folder, wanted, bool(cfg.get("overwrite", False)))
        folders.append((folder, wanted, decision))
        usable[path] = names[path]
    return usable, failed, folders


def run_predict(cfg: DictConfig, overrides: list[str] = ()) -> list[VideoOutcome]:
    """Predict every input; ``overrides`` are the command line's (to tell given from default).
    Inputs that cannot be read are returned with their error; the others are predicted."""
    check_predict_config(cfg)
    try:
        inputs = find_inputs(cfg.input)
    except FileNotFoundError as error:
        raise ConfigError(f"input={cfg.input}: {str(error).split(': ', 1)[-1]}") from None
    info = stored_run_info(read_checkpoint(cfg.checkpoint), cfg.checkpoint)
    if info.model is None and cfg.get("model") is None:
        raise ConfigError(f"checkpoint={cfg.checkpoint}: no model settings stored in it; set "
                          f"model=... for this checkpoint")
    check_model_overrides(list(overrides), info, cfg.checkpoint)
    supervision = _from_checkpoint(cfg, "supervision", info.supervision, "middle")
    clip_len = _from_checkpoint(cfg, "clip_len", info.clip_len, 32)
    model_settings = info.model if info.model is not None else cfg.model
    input_size = tuple(int(s) for s in model_settings.get("input_size") or PAPER_INPUT_SIZE)
    precision = str(cfg.get("precision", "fp32"))
    settings = {"supervision": str(supervision), "clip_len": int(clip_len),
                "input_size": list(input_size), "precision": precision}
    usable, failed, folders = _check_outputs(cfg, inputs, settings)
    if not usable:
        return failed

    net = build_network(cfg.checkpoint, info, cfg.get("model"))
    for folder, wanted, decision in folders:  # recorded before any map is written
        provenance.prepare_folder(folder, wanted, decision)
        if decision != "new":
            log.info("%s: %s", folder, "resuming (same input, checkpoint and settings)"
                     if decision == "resume" else "predicting again (overwrite=true)")
    input_size = getattr(net, "input_size", None) or input_size
    log.info("predicting with supervision=%s clip_len=%d input_size=%s (trained on %s)",
             supervision, clip_len, list(input_size), info.dataset or "unrecorded data")
    device = _device(str(cfg.device))
    options = PredictOptions(clip_len=int(clip_len), supervision=str(supervision),
                             batch_windows=int(cfg.batch_windows), overlay=bool(cfg.overlay),
                             save_float=bool(cfg.save_float), progress=bool(cfg.progress),
                             precision=precision,
                             compile=_compile(cfg.get("compile", "auto")))
    predictor = SlidingWindowPredictor(net, input_size, device, options,
                                       windows=count_windows(usable))
    outcomes = failed + predict_inputs(predictor, list(usable), Path(cfg.output), usable)
    for outcome in outcomes:
        if outcome.error is None:
            print(f"maps    {outcome.outputs.maps}")
            if outcome.outputs.overlay.is_file():
                print(f"overlay {outcome.outputs.overlay}")
    return sorted(outcomes, key=lambda o: inputs.index(o.path))
