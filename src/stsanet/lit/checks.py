"""Configuration checks run before any work starts.

Each failure is a :class:`ConfigError` whose message names the key, the value and what is
allowed, so ``stsanet-train`` / ``stsanet-predict`` stop in one line instead of a traceback from
deep inside model construction or the first batch.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig, OmegaConf

# The allowed values live next to the code that implements them.
from stsanet.data.clips import SUPERVISIONS
from stsanet.models.stsa import NORM_CHOICES
from stsanet.models.stsanet import ablation_options
from stsanet.models.unpool import UNPOOL_CHOICES

# how the model's switches read as config groups, for the error messages
GROUP_HINT = ("model/stsa=none sets stsa.enabled=false, model/stsa=full the official STSA, "
              "model/decoder=amsf|unet|single_stream the decoder, model/amsf=full the default "
              "AMSF options")
PAPER_SIZE = (224, 384)
SIZE_MULTIPLE = 32


class ConfigError(ValueError):
    """A configuration value that cannot work, with the key and the allowed values."""


def _get(cfg: DictConfig, key: str):
    try:
        return OmegaConf.select(cfg, key, throw_on_missing=True)
    except Exception:  # MissingMandatoryValue: `???` left unset
        raise ConfigError(f"{key} is required but not set (add {key}=... to the command)") from None


def check_model(cfg: DictConfig, prefix: str = "model") -> None:
    if OmegaConf.select(cfg, prefix) is None:
        return
    norm = _get(cfg, f"{prefix}.norm")
    if norm is not None and norm not in NORM_CHOICES:
        raise ConfigError(f"{prefix}.norm={norm!r} is unknown; allowed: {', '.join(NORM_CHOICES)}")
    unpool = _get(cfg, f"{prefix}.unpool")
    if unpool is not None and unpool not in UNPOOL_CHOICES:
        raise ConfigError(f"{prefix}.unpool={unpool!r} is unknown; allowed: "
                          f"{', '.join(sorted(UNPOOL_CHOICES))}")
    size = _get(cfg, f"{prefix}.input_size")
    if size is not None:
        size = tuple(size)
        if len(size) != 2 or any(not isinstance(s, int) or s <= 0 or s % SIZE_MULTIPLE
                                 for s in size):
            raise ConfigError(f"{prefix}.input_size={list(size)} is not allowed: height and width "
                              f"must be positive multiples of {SIZE_MULTIPLE} (paper: "
                              f"{list(PAPER_SIZE)})")
        if norm == "full_shape" and size != PAPER_SIZE:
            raise ConfigError(f"{prefix}.input_size={list(size)} needs {prefix}.norm=agnostic: the "
                              f"official full-shape LayerNorm only runs at {list(PAPER_SIZE)}")
    momentum = _get(cfg, f"{prefix}.bn_momentum")
    if momentum is not None and not 0.0 < float(momentum) <= 1.0:
        raise ConfigError(f"{prefix}.bn_momentum={momentum} must be in (0, 1]")
    check_variants(cfg, prefix)


def check_variants(cfg: DictConfig, prefix: str = "model") -> None:
    """The ablation switches (model/decoder, model/stsa, model/amsf, model.stsa.remove) only in
    combinations that change the network (the model's rules, :func:`ablation_options`); a switch
    that would silently do nothing is refused."""
    decoder = OmegaConf.select(cfg, f"{prefix}.decoder")
    if decoder is None:
        return
    stsa = OmegaConf.to_container(OmegaConf.select(cfg, f"{prefix}.stsa") or {}, resolve=True)
    amsf = OmegaConf.to_container(OmegaConf.select(cfg, f"{prefix}.amsf") or {}, resolve=True)
    try:
        ablation_options(decoder, stsa, amsf)
    except ValueError as error:
        raise ConfigError(f"{prefix}.{error} ({GROUP_HINT})") from None


def check_supervision(cfg: DictConfig, key: str) -> None:
    value = OmegaConf.select(cfg, key)
    if value is not None and value not in SUPERVISIONS:
        raise ConfigError(f"{key}={value!r} is unknown; allowed: {', '.join(SUPERVISIONS)}")


def check_existing_file(cfg: DictConfig, key: str) -> None:
    value = _get(cfg, key)
    if value is not None and not Path(value).is_file():
        raise ConfigError(f"{key}={value}: file not found")


def check_train_config(cfg: DictConfig) -> None:
    check_model(cfg)
    check_supervision(cfg, "data.supervision")
    if OmegaConf.select(cfg, "data") is not None and "root" in cfg.data.keys():
        root = _get(cfg, "data.root")
        synthetic = "synthetic" in str(OmegaConf.select(cfg, "data._target_", default="")) or \
            OmegaConf.select(cfg, "data.name", default="") == "synthetic"
        if root is None or (not synthetic and not Path(root).is_dir()):
            raise ConfigError(f"data.root={root}: no such dataset folder (set data.root=<path to "
                              f"the dataset>)")
    check_existing_file(cfg, "init.backbone")
    check_existing_file(cfg, "init.weights")
    ckpt = OmegaConf.select(cfg, "ckpt_path")
    if ckpt is not None and ckpt not in ("last", "best", "hpc") and not Path(ckpt).is_file():
        raise ConfigError(f"ckpt_path={ckpt}: checkpoint not found")


def check_predict_config(cfg: DictConfig) -> None:
    if not Path(_get(cfg, "input")).exists():
        raise ConfigError(f"input={cfg.input}: no such video file or folder")
    check_existing_file(cfg, "checkpoint")
    check_supervision(cfg, "supervision")
    check_model(cfg)
    if int(cfg.batch_windows) < 1:
        raise ConfigError(f"batch_windows={cfg.batch_windows} must be at least 1")
