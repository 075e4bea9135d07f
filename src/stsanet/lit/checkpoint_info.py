"""What a checkpoint says about the model it holds, read as data.

A checkpoint from a colleague or a model page is untrusted input. It is read with
``torch.load(weights_only=True)`` (tensors and plain containers only, no pickled objects), and
its stored model description is a set of STSANet settings: known field names with plain values,
passed to the project's own builder :class:`stsanet.models.STSANet`. Nothing named in a file is
imported, instantiated or called.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stsanet.data.clips import SUPERVISIONS
from stsanet.errors import ConfigError
from stsanet.models.weights import OURS_FORMAT, load_failure

# The checkpoint entry stsanet-train writes (SaliencyModule.on_save_checkpoint): what using the
# weights needs, see run_info().
RUN_INFO_KEY = "stsanet"
# Written by stsanet-train (SaliencyModule.on_save_checkpoint) before this key existed: the Hydra
# model node, `_target_` included.
LEGACY_MODEL_KEY = "stsanet_model_config"
# The only builder a stored description may name (as a label; it is never imported from there).
BUILDER_NAMES = ("stsanet.models.STSANet", "stsanet.models.stsanet.STSANet")
# STSANet constructor settings a file may set; anything else is refused by name.
MODEL_FIELDS = ("norm", "unpool", "input_size", "bn_momentum", "mean", "std", "decoder", "stsa",
                "amsf")


class CheckpointError(ConfigError):
    """A checkpoint that is refused: unreadable as data, or describing something not allowed."""


@dataclass(frozen=True)
class RunInfo:
    """What a checkpoint says about using its weights (None: not recorded)."""

    model: dict | None = None
    supervision: str | None = None
    clip_len: int | None = None
    input_size: tuple[int, int] | None = None
    dataset: str | None = None


def run_info(net: torch.nn.Module, data_cfg: Mapping | None) -> dict:
    """The checkpoint entry for a training run: the network's own constructor settings
    (``STSANet.config``) and the data settings that fix which frame a window predicts."""
    data = dict(data_cfg or {})
    config = getattr(net, "config", None)
    input_size = getattr(net, "input_size", None) or data.get("input_size")
    return {
        "model": dict(config) if config is not None else None,
        "supervision": str(data.get("supervision", "middle")),
        "clip_len": int(data.get("clip_len", 32)),
        "input_size": [int(s) for s in input_size] if input_size is not None else None,
        "dataset": str(data["dataset"]) if data.get("dataset") is not None else None,
    }


def read_checkpoint(path: str | os.PathLike) -> Any:
    """The file's contents, loaded as data only (memory-mapped: tensors are read on use)."""
    path = Path(path)
    try:
        return torch.load(path, map_location="cpu", weights_only=True, mmap=True)
    except RuntimeError:  # not a zip-format file: mmap needs one (old torch.save format)
        pass
    except Exception as exc:
        raise _refused(path, exc) from None
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:
        raise _refused(path, exc) from None


def _refused(path: Path, exc: Exception) -> CheckpointError:
    return CheckpointError(load_failure(path, exc))


def stored_run_info(state: Any, path: str | os.PathLike) -> RunInfo:
    """What a checkpoint carries about its use, validated (all None for files that carry none:
    official weights, plain state_dicts)."""
    if not isinstance(state, Mapping):
        return RunInfo()
    if RUN_INFO_KEY in state:
        stored = state[RUN_INFO_KEY]
        where = f"{path}: {RUN_INFO_KEY}"
        if not isinstance(stored, Mapping):
            raise CheckpointError(f"{where}: expected a mapping, got {type(stored).__name__}")
        unknown = sorted(str(k) for k in stored if k not in RunInfo.__dataclass_fields__)
        if unknown:
            raise CheckpointError(f"{where}: unknown field(s) {', '.join(unknown)}; allowed: "
                                  f"{', '.join(RunInfo.__dataclass_fields__)}")
        model = stored.get("model")
        supervision = stored.get("supervision")
        if supervision is not None and supervision not in SUPERVISIONS:
            raise CheckpointError(f"{where}.supervision={supervision!r} is unknown; allowed: "
                                  f"{', '.join(SUPERVISIONS)}")
        clip_len = stored.get("clip_len")
        if clip_len is not None and (not isinstance(clip_len, int) or clip_len < 1):
            raise CheckpointError(f"{where}.clip_len={clip_len!r} is not a positive integer")
        size = stored.get("input_size")
        if size is not None and (not isinstance(size, (list, tuple)) or len(size) != 2
                                 or not all(isinstance(s, int) and s > 0 for s in size)):
            raise CheckpointError(f"{where}.input_size={size!r} is not [height, width]")
        dataset = stored.get("dataset")
        if dataset is not None and not isinstance(dataset, str):
            raise CheckpointError(f"{where}.dataset={dataset!r} is not a name")
        return RunInfo(model=_as_fields(model, f"{where}.model") if model is not None else None,
                       supervision=supervision, clip_len=clip_len,
                       input_size=tuple(size) if size is not None else None, dataset=dataset)
    if LEGACY_MODEL_KEY in state:
        return RunInfo(model=_as_fields(state[LEGACY_MODEL_KEY], f"{path}: {LEGACY_MODEL_KEY}"))
    if state.get("format") == OURS_FORMAT and "config" in state:  # save_weights files
        return RunInfo(model=_as_fields(state["config"], f"{path}: config"))
    return RunInfo()


def _as_fields(stored: Any, where: str) -> dict:
    if not isinstance(stored, Mapping):
        raise CheckpointError(f"{where}: expected a mapping of STSANet settings, got "
                              f"{type(stored).__name__}")
    fields = dict(stored)
    target = fields.pop("_target_", None)
    if target is not None and target not in BUILDER_NAMES:
        raise CheckpointError(
            f"{where}: _target_={target!r} is refused: a checkpoint's model description is data; "
            f"the network is always built by stsanet.models.STSANet from the settings "
            f"{', '.join(MODEL_FIELDS)}, and nothing a file names is imported or called")
    unknown = sorted(str(k) for k in fields if k not in MODEL_FIELDS)
    if unknown:
        raise CheckpointError(f"{where}: unknown model field(s) {', '.join(unknown)}; allowed: "
                              f"{', '.join(MODEL_FIELDS)}")
    for key, value in fields.items():
        _check_plain(value, f"{where}.{key}")
    return fields


def _check_plain(value: Any, where: str) -> None:
    if isinstance(value, Mapping):
        for key, item in value.items():
            if not isinstance(key, str) or key.startswith("_"):
                raise CheckpointError(f"{where}: field {key!r} is not an STSANet setting")
            _check_plain(item, f"{where}.{key}")
    elif isinstance(value, (list, tuple)):
        for item in value:
            _check_plain(item, where)
    elif value is not None and not isinstance(value, (str, int, float, bool)):
        raise CheckpointError(f"{where}: {type(value).__name__} is not a plain setting value")


def build_model(fields: Mapping, where: str) -> torch.nn.Module:
    """STSANet from validated settings; a value it rejects is an error naming the file."""
    from stsanet.models import STSANet

    try:
        return STSANet(**fields)
    except (TypeError, ValueError) as exc:
        raise CheckpointError(f"{where}: stored model settings cannot build STSANet: {exc}") from None
