"""The types and ranges of every command's configuration, checked before anything is built.

The YAML files under ``conf/`` hold the defaults; these pydantic models say what each value
may be (a type, a range, a set of choices, and the rules that tie values together) so that a
wrong value stops the command in one line naming the key and what is allowed, instead of
failing deep inside Lightning or the model after work started. A key the YAML leaves out is
not checked (the code's own default applies); keys the schema does not know (Hydra's, a
library's less common options) pass through to the library, which checks them itself.

The allowed values are imported from the modules that implement them.

    check(cfg, TrainConfig)           # raises ConfigError("data.batch_size=0 must be >= 1")
"""


import re
from typing import Annotated, Any, Literal, get_args

from omegaconf import DictConfig, ListConfig, OmegaConf
from omegaconf.errors import MissingMandatoryValue, OmegaConfBaseException
from pydantic import (AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field,
                      ValidationError, model_validator)

from stsanet.data.clips import SUPERVISIONS
from stsanet.data.datamodule import SAMPLINGS
from stsanet.data.layouts import DATASETS
from stsanet.data.synthetic import SIZES
from stsanet.errors import ConfigError
from stsanet.metrics.evaluate import FAMILIES, EvalSettings
from stsanet.models.amsf import FUSION_CHOICES
from stsanet.models.channels import CLIP_LENGTH, PAPER_INPUT_SIZE, SIZE_MULTIPLE
from stsanet.models.inference import PRECISIONS
from stsanet.models.stsa import (NORM_CHOICES, REMOVED_MID_CHOICES, SINGLE_LAYERS_CHOICES,
                                 SINGLE_QK_CHOICES, STSA_VARIANTS)
from stsanet.models.stsanet import DECODER_CHOICES, ablation_options
from stsanet.models.unpool import UNPOOL_CHOICES
from stsanet.runs.scoring import PROTOCOLS

# How the model's switches read as config groups, for the messages about their combinations.
GROUP_HINT = ("model/stsa=none sets stsa.enabled=false, model/stsa=full the official STSA, "
              "model/decoder=amsf|unet|single_stream the decoder, model/amsf=full the default "
              "AMSF options")
# Lightning's precision settings (Trainer(precision=...)); its transformer-engine ones need a
# package the project does not install
TRAINER_PRECISIONS = (64, 32, 16, "64", "32", "16", "bf16", "64-true", "32-true", "16-true",
                      "bf16-true", "16-mixed", "bf16-mixed")
ACCELERATORS = ("cpu", "gpu", "cuda", "mps", "tpu", "auto")
# "all" is the predict split's sampling, not a training choice
TRAIN_SAMPLINGS = tuple(s for s in SAMPLINGS if s != "all")


class Rule(ValueError):
    """A rule over several values; ``{p}`` in the message stands for the section's key path."""

    def render(self, key: str) -> str:
        return str(self).replace("{p}", f"{key}." if key else "")


def choice(values) -> Any:
    return Literal[tuple(values)]


def _text(value: Any) -> Any:
    # names and paths given on the command line may read as numbers (split=0601, root=2024)
    return str(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else value


def _input_size(size: list[int]) -> list[int]:
    if any(s <= 0 or s % SIZE_MULTIPLE for s in size):
        raise ValueError(f"height and width must be positive multiples of {SIZE_MULTIPLE} "
                         f"(paper: {list(PAPER_INPUT_SIZE)})")
    return size


def _device(value: Any) -> Any:
    """auto | cpu | cuda | cuda:N, and the GPU must be there."""
    if not isinstance(value, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", value):
        raise ValueError("allowed: auto, cpu, cuda, cuda:N")
    if value.startswith("cuda"):
        _require_gpus(int(value.split(":")[1]) + 1 if ":" in value else 1, "device=cpu")
    return value


def _require_gpus(count: int, instead: str) -> None:
    import torch

    if not torch.cuda.is_available():
        raise ValueError(f"no CUDA GPU is visible here (torch.cuda.is_available() is False); "
                         f"use {instead}")
    if count > torch.cuda.device_count():
        raise ValueError(f"only {torch.cuda.device_count()} CUDA GPU(s) are visible here")


def _devices(value: Any) -> Any:
    ok = (isinstance(value, int) and not isinstance(value, bool) and (value >= 1 or value == -1)) \
        or (isinstance(value, str) and re.fullmatch(r"auto|-1|\d+|\d+(,\s*\d+)*,?", value.strip())) \
        or (isinstance(value, list) and value and all(isinstance(v, int) and v >= 0 for v in value))
    if not ok:
        raise ValueError("allowed: a number of devices (>= 1), -1 or auto (all), or a list of "
                         "device indices such as [0,1]")
    return value


def _batches(value: Any) -> Any:
    """Lightning's limit_*_batches: a count (int >= 0) or a fraction (float in [0, 1])."""
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0 or (
            isinstance(value, float) and value > 1):
        raise ValueError("allowed: a number of batches (int >= 0) or a fraction in [0.0, 1.0]")
    return value


def _fast_dev_run(value: Any) -> Any:
    if not isinstance(value, bool) and not (isinstance(value, int) and value >= 0):
        raise ValueError("allowed: true, false or a number of batches (>= 0)")
    return value


def _names_or_file(value: Any) -> Any:
    if value is None or isinstance(value, str) or (
            isinstance(value, list) and all(isinstance(v, (str, int)) for v in value)):
        return value
    raise ValueError("allowed: a list of video names [a,b,...] or a text file naming one per line")


def _max_time(value: Any) -> Any:
    if isinstance(value, str) and not re.fullmatch(r"\d+:\d{2}:\d{2}:\d{2}", value):
        raise ValueError("allowed: DD:HH:MM:SS, e.g. 00:00:10:00 for ten minutes")
    return value


Text = Annotated[str, BeforeValidator(_text)]
Count = Annotated[int, Field(ge=1)]
NonNegative = Annotated[int, Field(ge=0)]
Seed = Annotated[int, Field(ge=0, le=2**32 - 1)]
PositiveFloat = Annotated[float, Field(gt=0)]
Fraction = Annotated[float, Field(gt=0, le=1)]
InputSize = Annotated[list[int], Field(min_length=2, max_length=2), AfterValidator(_input_size)]
Device = Annotated[Any, AfterValidator(_device)]


class Section(BaseModel):
    # Values come typed from YAML and Hydra's override parser, so no coercion ("3" is not 3).
    # A field absent from the config is not checked (None defaults are never validated).
    model_config = ConfigDict(extra="allow", strict=True)


# ---------------------------------------------------------------------------------------------
# model
# ---------------------------------------------------------------------------------------------

class StsaConfig(Section):
    enabled: bool = None
    variant: choice(STSA_VARIANTS) = None
    remove: list[Annotated[int, Field(ge=1, le=4)]] = None
    single_qk: choice(SINGLE_QK_CHOICES) = None
    single_layers: choice(SINGLE_LAYERS_CHOICES) = None
    removed_mid: choice(REMOVED_MID_CHOICES) = None


class AmsfConfig(Section):
    fusion: choice(FUSION_CHOICES) = None
    weighting: bool = None
    multiscale: bool = None


class ModelConfig(Section):
    norm: choice(NORM_CHOICES) = None
    unpool: choice(sorted(UNPOOL_CHOICES)) = None
    input_size: InputSize = None
    bn_momentum: Fraction = None
    mean: Annotated[list[float], Field(min_length=3, max_length=3)] = None
    std: Annotated[list[PositiveFloat], Field(min_length=3, max_length=3)] = None
    decoder: choice(DECODER_CHOICES) = None
    stsa: StsaConfig = None
    amsf: AmsfConfig = None

    @model_validator(mode="after")
    def _rules(self):
        if self.norm == "full_shape" and self.input_size is not None \
                and tuple(self.input_size) != PAPER_INPUT_SIZE:
            raise Rule(f"{{p}}input_size={self.input_size} needs {{p}}norm=agnostic: the official "
                       f"full-shape LayerNorm only runs at {list(PAPER_INPUT_SIZE)}")
        if self.decoder is not None:
            try:
                ablation_options(self.decoder, _plain(self.stsa), _plain(self.amsf))
            except ValueError as error:
                raise Rule(f"{{p}}{error} ({GROUP_HINT})") from None
        return self


def _plain(section: Section | None) -> dict | None:
    return None if section is None else section.model_dump(exclude_none=True)


# ---------------------------------------------------------------------------------------------
# data, training
# ---------------------------------------------------------------------------------------------

class DataConfig(Section):
    dataset: choice(DATASETS) = None
    root: Text = None
    input_size: InputSize = None
    clip_len: choice([CLIP_LENGTH]) = None
    supervision: choice(SUPERVISIONS) = None
    train_sampling: choice(TRAIN_SAMPLINGS) = None
    train_stride: Count = None
    val_stride: Count = None
    train_split: Text = None
    val_split: Text = None
    predict_split: Text | None = None
    exclusive_end: bool = None
    batch_size: Count = None
    val_batch_size: Count | None = None
    num_workers: NonNegative = None
    pin_memory: bool = None
    persistent_workers: bool = None
    seed: Seed = None
    index_options: dict[str, Any] | None = None
    size: choice(sorted(SIZES)) = None  # synthetic
    generate_seed: Seed = None  # synthetic


class TrainerConfig(Section):
    accelerator: choice(ACCELERATORS) = None
    devices: Annotated[Any, AfterValidator(_devices)] = None
    num_nodes: Count = None
    precision: choice(TRAINER_PRECISIONS) = None
    max_epochs: Annotated[int, Field(ge=-1)] | None = None
    min_epochs: NonNegative | None = None
    max_steps: Annotated[int, Field(ge=-1)] = None
    min_steps: NonNegative | None = None
    max_time: Annotated[Any, AfterValidator(_max_time)] | None = None
    check_val_every_n_epoch: Count | None = None
    log_every_n_steps: Count = None
    limit_train_batches: Annotated[Any, AfterValidator(_batches)] | None = None
    limit_val_batches: Annotated[Any, AfterValidator(_batches)] | None = None
    limit_test_batches: Annotated[Any, AfterValidator(_batches)] | None = None
    accumulate_grad_batches: Count = None
    num_sanity_val_steps: Annotated[int, Field(ge=-1)] = None
    deterministic: Literal[True, False, "warn"] | None = None
    compile: bool = None
    fast_dev_run: Annotated[Any, AfterValidator(_fast_dev_run)] = None
    sync_batchnorm: bool = None
    gradient_clip_val: Annotated[float, Field(ge=0)] | None = None
    enable_checkpointing: bool = None
    enable_progress_bar: bool = None

    @model_validator(mode="after")
    def _gpus_exist(self):
        if self.accelerator in ("gpu", "cuda"):
            count = self.devices if isinstance(self.devices, int) and self.devices > 0 else 1
            try:
                _require_gpus(count, "trainer=cpu (or trainer=ddp_cpu)")
            except ValueError as error:
                raise Rule(f"{{p}}accelerator={self.accelerator}: {error}") from None
        return self


class OptimizerConfig(Section):
    lr: PositiveFloat = None
    betas: Annotated[list[Annotated[float, Field(ge=0, lt=1)]],
                     Field(min_length=2, max_length=2)] = None
    eps: PositiveFloat = None
    weight_decay: Annotated[float, Field(ge=0)] = None
    fused: bool | None = None


class ModuleConfig(Section):
    optimizer: OptimizerConfig = None
    fresh_optimizer_each_epoch: bool = None


class ScheduleCallbackConfig(Section):
    first_drop: Count = None
    every: Count = None
    factor: Fraction = None
    reload_best: bool = None


class ScheduleConfig(Section):
    callback: ScheduleCallbackConfig | None = None
    monitor: Text = None


class InitConfig(Section):
    backbone: Text | None = None
    weights: Text | None = None
    weights_required: bool = None

    @model_validator(mode="after")
    def _weights_given(self):
        if self.weights_required and self.weights is None:
            raise Rule("{p}weights is required but not set: this experiment fine-tunes, so add "
                       "{p}weights=<the checkpoint to start from> to the command")
        return self


class ScoreConfig(Section):
    """The benchmark scoring after training (reproduce: ``+score.*``)."""

    protocol: choice(PROTOCOLS) = None
    first_frames: Count | None = None
    videos: list[Text] | None = None
    save_weights: bool = None


class TrainConfig(Section):
    seed: Seed = None
    train: bool = None
    test: bool = None
    ckpt_path: Text | None = None
    optimized_metric: Text | None = None
    tags: list[Text] = None
    init: InitConfig = None
    module: ModuleConfig = None
    model: ModelConfig = None  # before data: data.input_size follows model.input_size
    data: DataConfig = None
    trainer: TrainerConfig = None
    schedule: ScheduleConfig = None
    score: ScoreConfig | None = None

    @model_validator(mode="after")
    def _data_matches_model(self):
        data = self.data.input_size if self.data is not None else None
        model = self.model.input_size if self.model is not None else None
        if data is not None and model is not None and list(data) != list(model):
            raise Rule(f"data.input_size={data} differs from model.input_size={model}: the clips "
                       f"must have the model's size; set model.input_size (data.input_size "
                       f"follows it) and drop the data.input_size override")
        return self


# ---------------------------------------------------------------------------------------------
# the other commands
# ---------------------------------------------------------------------------------------------

class PredictConfig(Section):
    input: Text = None
    checkpoint: Text = None
    output: Text = None
    supervision: choice(SUPERVISIONS) | None = None
    clip_len: choice([CLIP_LENGTH]) | None = None
    batch_windows: Count = None
    precision: choice(PRECISIONS) = None
    compile: Literal[True, False, "auto"] = None
    overlay: bool = None
    save_float: bool = None
    progress: bool = None
    overwrite: bool = None
    device: Device = None
    model: ModelConfig | None = None


class EvalConfig(Section):
    pred_root: Text = None
    gt_root: Text | None = None
    split: Text = None
    output: Text = None
    resume: bool = None
    family: choice(FAMILIES) = None
    metrics: list[Text] | None = None
    seed: Seed = None
    n_other_frames: Count = None
    n_splits: Count = None
    step: Fraction = None
    jitter: bool = None
    first_frames: Count | None = None
    videos: Annotated[Any, AfterValidator(_names_or_file)] = None
    max_frames: Count | None = None
    progress: bool = None
    strict: bool = None
    workers: Count | None = None
    data: DataConfig | None = None

    @model_validator(mode="after")
    def _metrics_in_family(self):
        if self.family is not None and self.metrics is not None:
            try:
                EvalSettings(family=self.family, metrics=tuple(self.metrics)).columns()
            except ValueError as error:
                raise Rule(f"{{p}}metrics={self.metrics}: {error}") from None
        return self


class CheckDataConfig(Section):
    data: DataConfig = None
    splits: list[Text] | None = None
    deep: bool = None


class MakeSyntheticConfig(Section):
    root: Text = None
    size: choice(sorted(SIZES)) = None
    seed: Seed = None
    overwrite: bool = None


# ---------------------------------------------------------------------------------------------
# checking a composed config
# ---------------------------------------------------------------------------------------------

def check(cfg: DictConfig, schema: type[Section], prefix: str = "") -> None:
    """Raise :class:`ConfigError` for a required value (``???``) left unset, or the first value
    of ``cfg`` (keys under ``prefix``) that ``schema`` refuses; its message names the key and
    what is allowed (and how many other values are wrong)."""
    values = _values(cfg, schema, prefix)
    try:
        schema.model_validate(values)
    except ValidationError as error:
        problems = list(dict.fromkeys(describe(e, prefix) for e in error.errors()))
        more = f" (and {len(problems) - 1} more problem{'s' if len(problems) > 2 else ''}: " \
               f"{'; '.join(problems[1:3])})" if len(problems) > 1 else ""
        raise ConfigError(problems[0] + more) from None


def _section(annotation: Any) -> type[Section] | None:
    """The Section class of a field's annotation (``X`` or ``X | None``), if any."""
    for candidate in (annotation, *get_args(annotation)):
        if isinstance(candidate, type) and issubclass(candidate, Section):
            return candidate
    return None


def _values(node: DictConfig, schema: type[Section], prefix: str) -> dict:
    """The values ``schema`` types, as plain data; only those are resolved (the others may
    hold interpolations that only a running Hydra app can resolve)."""
    out = {}
    for name, field in schema.model_fields.items():
        key = field.alias or name
        if key not in node.keys():  # `in` is false for a `???` value
            continue
        full = f"{prefix}.{key}" if prefix else key
        try:
            value = node[key]
            section = _section(field.annotation)
            if section is not None and isinstance(value, DictConfig):
                out[key] = _values(value, section, full)
            elif isinstance(value, (DictConfig, ListConfig)):
                out[key] = OmegaConf.to_container(value, resolve=True, throw_on_missing=True)
            else:
                out[key] = value
        except MissingMandatoryValue as error:
            where = getattr(error, "full_key", None) or key
            where = f"{prefix}.{where}" if prefix and not where.startswith(prefix) else where
            raise ConfigError(f"{where} is required but not set (add {where}=... to the "
                              f"command)") from None
        except OmegaConfBaseException as error:
            message = str(getattr(error, "msg", error)).strip().splitlines()[0]
            raise ConfigError(f"{full}: cannot be resolved ({message})") from None
    return out


def _show(value: Any) -> str:
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "null"
    return str(value)


_TYPES = {
    "int_type": "is not an integer", "int_parsing": "is not an integer",
    "int_from_float": "is not a whole number", "float_type": "is not a number",
    "float_parsing": "is not a number", "bool_type": "is not true or false",
    "bool_parsing": "is not true or false", "string_type": "is not a text value",
    "list_type": "is not a list (write it as [a,b,...])",
    "dict_type": "is not a group of settings", "model_type": "is not a group of settings",
    "model_attributes_type": "is not a group of settings",
}
_BOUNDS = {"greater_than_equal": ">=", "greater_than": ">", "less_than_equal": "<=",
           "less_than": "<"}


def describe(error: dict, prefix: str = "") -> str:
    """One pydantic error as 'key=value <what is wrong and allowed>'."""
    # list elements as key[i] (model.stsa.remove[0]), sections as dotted keys
    key = ".".join([prefix] if prefix else [])
    for part in error["loc"]:
        key += f"[{part}]" if isinstance(part, int) else (f".{part}" if key else str(part))
    value, kind, ctx = error.get("input"), error["type"], error.get("ctx") or {}
    shown = f"{key}={_show(value)}"
    if kind == "value_error":
        cause = ctx.get("error")
        if isinstance(cause, Rule):
            return cause.render(key)
        return f"{shown}: {cause}"
    if kind == "literal_error":
        names = (part.strip().strip("'") for part in re.split(r",\s*|\s+or\s+", ctx["expected"]))
        allowed = ", ".join(dict.fromkeys({"True": "true", "False": "false"}.get(n, n)
                                          for n in names))
        return f"{shown} is unknown; allowed: {allowed}"
    if kind in _TYPES:
        return f"{shown} {_TYPES[kind]}"
    if kind in _BOUNDS:
        bound = next(iter(ctx.values()))
        return f"{shown} must be {_BOUNDS[kind]} {bound}"
    if kind in ("too_short", "too_long"):
        size = ctx.get("min_length") if kind == "too_short" else ctx.get("max_length")
        return f"{shown} must have {size} values"
    if kind == "multiple_of":
        return f"{shown} must be a multiple of {ctx.get('multiple_of')}"
    return f"{shown}: {error['msg']}"
