"""Checkpoint formats: key conversion between our module names and the authors', loading, saving.

Supported inputs (all read with `torch.load(..., weights_only=True)`):
* full STSANet weights in the authors' naming (`base1.*`, `ln_0_0.*`, `branch1_0_a_q.*`, ...),
  raw or wrapped in {"state_dict": ...}, with or without DataParallel's `module.` prefix;
* our own files (`save_weights`) and Lightning checkpoints (keys under `net.`);
* backbone-only S3D files (`load_backbone`): kylemin `base.N` (with `module.` and `fc.*`),
  torchvision `features.N` (with `classifier.*`) and the authors' `S3D_backbone.pth` (`base1..4`).
A file that does not match the model exactly raises `WeightsError` listing missing, unexpected
and mis-shaped keys; nothing is ever loaded partially.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

from ..atomic import atomic_path
from .channels import BRANCHES, DECODER_STAGES, BranchSpec

OURS_FORMAT = "stsanet"
# Leading components added by wrappers: DataParallel/DDP, our LightningModule, torch.compile.
WRAPPER_PREFIXES = ("module.", "net.", "model.", "_orig_mod.")
CHECKPOINT_CONTAINERS = ("state_dict", "model_state_dict", "model")
SHOW = 5  # keys listed per category in error messages

_QKV = ("q", "k", "v")
_SLOT = "ab"


class WeightsError(ValueError):
    """A weights file that cannot be loaded into the model as it is."""


# ---------------------------------------------------------------------------------------------
# ours <-> official: one explicit prefix table
# ---------------------------------------------------------------------------------------------

def key_prefix_table(branches: tuple[BranchSpec, ...] = BRANCHES,
                     num_stages: int = len(DECODER_STAGES)) -> list[tuple[str, str]]:
    """(our prefix, official prefix) rows, listed in the order of the official state_dict.

    Every parameter/buffer key is `prefix + rest`, and `rest` (Sequential indices, `weight`,
    `bn_s.running_mean`, ...) is the same on both sides.
    """
    rows = [(f"backbone.block{n}.", f"base{n}.") for n in range(1, 5)]
    for i in range(len(branches)):
        rows.append((f"stsa.{i}.layer1.norm.", f"ln_{i}_0."))
        rows.append((f"stsa.{i}.layer2.norm.", f"ln_{i}_1."))
    for i, b in enumerate(branches):
        if b.time_stride > 1:
            rows.append((f"compress.{i}.conv.", f"branch{i}_pre.0."))
        rows.append((f"stsa.{i}.mid.", f"branch{i}_mid."))
    rows.append(("decoder.top.", f"branch{len(branches) - 1}_beh_0."))
    for i in range(len(branches)):
        for slot in range(4):  # layer I: time steps 1..4 -> pair j = slot // 2, member a/b
            for e in _QKV:
                rows.append((f"stsa.{i}.layer1.embed.{slot}.{e}.",
                             f"branch{i}_{slot // 2}_{_SLOT[slot % 2]}_{e}."))
        for slot in range(2):  # layer II: halves 1-2 / 3-4 -> j = 2
            for e in _QKV:
                rows.append((f"stsa.{i}.layer2.embed.{slot}.{e}.", f"branch{i}_2_{_SLOT[slot]}_{e}."))
    for k in range(num_stages):
        rows.append((f"decoder.stages.{k}.weighting.mask.", f"SA_{k}."))
    for k in range(num_stages):
        rows.append((f"decoder.stages.{k}.weighting.channel.", f"CA_{k}."))
    for k in range(num_stages):
        for n in range(4):
            rows.append((f"decoder.stages.{k}.stms.branch{n}.", f"inc_{k}_{n}."))
    rows.append(("decoder.readout.spatial.", "readout_1."))
    rows.append(("decoder.readout.temporal.", "readout_2."))
    return rows


_TABLE = key_prefix_table()
_TO_OFFICIAL = {ours: (rank, off) for rank, (ours, off) in enumerate(_TABLE)}
_TO_OURS = {off: (rank, ours) for rank, (ours, off) in enumerate(_TABLE)}


def _rename(key: str, table: dict[str, tuple[int, str]]) -> tuple[int, str] | None:
    # Prefixes end with "." and none is a prefix of another, so at most one matches.
    for prefix, (rank, target) in table.items():
        if key.startswith(prefix):
            return rank, target + key[len(prefix):]
    return None


def _convert(sd: Mapping[str, torch.Tensor], table, what: str, strict: bool):
    """Rename every key; returns (renamed dict in table order, unknown keys, new -> old name)."""
    converted, unknown = [], []
    for pos, (key, value) in enumerate(sd.items()):
        hit = _rename(key, table)
        if hit is None:
            unknown.append(key)
        else:
            converted.append((hit[0], pos, hit[1], key, value))
    if unknown and strict:
        raise WeightsError(f"{len(unknown)} keys have no {what} name: {_first(unknown)}")
    converted.sort(key=lambda row: (row[0], row[1]))  # table order, then original order
    renamed = {new: value for _, _, new, _, value in converted}
    return renamed, unknown, {new: old for _, _, new, old, _ in converted}


def ours_to_official(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state_dict keys -> the authors' keys, in the authors' order (strict)."""
    return _convert(sd, _TO_OFFICIAL, "official", strict=True)[0]


def official_to_ours(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' state_dict keys (no `module.` prefix) -> our keys (strict)."""
    return _convert(sd, _TO_OURS, "stsanet", strict=True)[0]


# ---------------------------------------------------------------------------------------------
# S3D backbone namings -> official base1..4
# ---------------------------------------------------------------------------------------------

# kylemin `base` / torchvision `features` index -> (official block, index inside it);
# indices 1, 4, 7, 13 are parameter-free max-pools.
S3D_INDEX = {0: (1, 0), 2: (1, 2), 3: (1, 3), 5: (2, 0), 6: (2, 1), 8: (3, 0), 9: (3, 1),
             10: (3, 2), 11: (3, 3), 12: (3, 4), 14: (4, 0), 15: (4, 1)}
_SEP_NAMES = {("0", "0"): "conv_s", ("0", "1"): "bn_s", ("1", "0"): "conv_t", ("1", "1"): "bn_t"}
_BASIC_NAMES = {"0": "conv", "1": "bn"}


def kylemin_to_official(key: str) -> str | None:
    """`base.N.rest` -> `base{block}.{index}.rest` (same submodule names); None if not mappable."""
    m = re.fullmatch(r"base\.(\d+)\.(.+)", key)
    if not m or int(m.group(1)) not in S3D_INDEX:
        return None
    block, index = S3D_INDEX[int(m.group(1))]
    return f"base{block}.{index}.{m.group(2)}"


def torchvision_to_official(key: str) -> str | None:
    """torchvision `features.N...` -> official name; None if not mappable.

    torchvision wraps each conv+BN in a Sequential (conv at 0, BN at 1) and a separable conv as
    two of them (spatial at 0, temporal at 1); the official blocks name them conv/bn and
    conv_s/bn_s/conv_t/bn_t.
    """
    m = re.fullmatch(r"features\.(\d+)\.(.+)", key)
    if not m or int(m.group(1)) not in S3D_INDEX:
        return None
    n, rest = int(m.group(1)), m.group(2)
    block, index = S3D_INDEX[n]
    if n in (0, 3):  # separable conv
        sub = re.fullmatch(r"([01])\.([01])\.(\w+)", rest)
        name = sub and f"{_SEP_NAMES[sub.group(1), sub.group(2)]}.{sub.group(3)}"
    elif n == 2:  # basic conv
        sub = re.fullmatch(r"([01])\.(\w+)", rest)
        name = sub and f"{_BASIC_NAMES[sub.group(1)]}.{sub.group(2)}"
    else:  # Mixed block
        name = _torchvision_mixed(rest)
    return f"base{block}.{index}.{name}" if name else None


def _torchvision_mixed(rest: str) -> str | None:
    if m := re.fullmatch(r"branch0\.([01])\.(\w+)", rest):
        return f"branch0.0.{_BASIC_NAMES[m.group(1)]}.{m.group(2)}"
    if m := re.fullmatch(r"branch([12])\.0\.([01])\.(\w+)", rest):
        return f"branch{m.group(1)}.0.{_BASIC_NAMES[m.group(2)]}.{m.group(3)}"
    if m := re.fullmatch(r"branch([12])\.1\.([01])\.([01])\.(\w+)", rest):
        return f"branch{m.group(1)}.1.{_SEP_NAMES[m.group(2), m.group(3)]}.{m.group(4)}"
    if m := re.fullmatch(r"branch3\.1\.([01])\.(\w+)", rest):
        return f"branch3.1.{_BASIC_NAMES[m.group(1)]}.{m.group(2)}"
    return None


# ---------------------------------------------------------------------------------------------
# reading files
# ---------------------------------------------------------------------------------------------

def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a file with weights_only=True and return its (unwrapped, unprefixed) state_dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, disallowed globals
        raise WeightsError(
            f"{path}: cannot be read with torch.load(weights_only=True): {exc}. Re-save it as a "
            f"plain dict of tensors (torch.save(model.state_dict(), path))."
        ) from exc
    lightning = isinstance(obj, dict) and "pytorch-lightning_version" in obj
    while isinstance(obj, dict) and not _is_state_dict(obj):
        inner = next((obj[k] for k in CHECKPOINT_CONTAINERS if isinstance(obj.get(k), dict)), None)
        if inner is None:
            break
        obj = inner
    if not isinstance(obj, dict) or not obj or not _is_state_dict(obj):
        found = sorted(obj)[:SHOW] if isinstance(obj, dict) else type(obj).__name__
        raise WeightsError(f"{path}: no state_dict found (expected a dict of tensors, possibly "
                           f"under 'state_dict'); found {found}")
    sd = dict(obj)
    if lightning and any(k.startswith("net.") for k in sd):
        # Other LightningModule members (metrics, loss) may add their own entries.
        sd = {k: v for k, v in sd.items() if k.startswith("net.")}
    return strip_wrapper_prefixes(sd)


def _is_state_dict(obj: dict) -> bool:
    return all(isinstance(k, str) and isinstance(v, torch.Tensor) for k, v in obj.items())


def strip_wrapper_prefixes(sd: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Drop `module.` / `net.` / `model.` / `_orig_mod.` while every key carries it."""
    changed = True
    while changed and sd:
        changed = False
        for prefix in WRAPPER_PREFIXES:
            if all(k.startswith(prefix) for k in sd):
                sd = {k[len(prefix):]: v for k, v in sd.items()}
                changed = True
    return sd


def detect_naming(sd: Mapping[str, torch.Tensor]) -> str:
    """'ours', 'official', 'official_backbone', 'kylemin', 'torchvision' or 'unknown'."""
    first = {k.split(".", 1)[0] for k in sd}
    if first & {"backbone", "compress", "stsa", "decoder"}:
        return "ours"
    if "features" in first:
        return "torchvision"
    if "base" in first:
        return "kylemin"
    if any(re.fullmatch(r"base[1-4]", f) for f in first):
        return "official" if any(k.startswith(("ln_", "readout_")) for k in sd) else "official_backbone"
    if any(k.startswith(("ln_", "branch", "readout_")) for k in sd):
        return "official"
    return "unknown"


# ---------------------------------------------------------------------------------------------
# loading
# ---------------------------------------------------------------------------------------------

def load_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Load full STSANet weights (authors' naming, ours, Lightning checkpoint) strictly."""
    sd = read_state_dict(path)
    naming = detect_naming(sd)
    if naming in ("kylemin", "torchvision", "official_backbone"):
        raise WeightsError(f"{path}: this is a backbone-only S3D file ({naming} naming); load it "
                           f"with stsanet.models.weights.load_backbone(model, path)")
    if naming == "unknown":
        raise WeightsError(f"{path}: keys are neither STSANet (ours or the authors') nor S3D "
                           f"names, e.g. {_first(list(sd))}")
    display: dict[str, str] = {}
    unknown: list[str] = []
    if naming == "official":
        sd, unknown, display = _convert(sd, _TO_OURS, "stsanet", strict=False)
    _check_and_load(model, sd, path, extra_unexpected=unknown, display=display,
                    display_missing=ours_name_to_official if naming == "official" else None)


def ours_name_to_official(key: str) -> str:
    hit = _rename(key, _TO_OFFICIAL)
    return hit[1] if hit else key


def load_backbone(model: nn.Module, path: str | os.PathLike) -> None:
    """Load S3D weights (kylemin, torchvision or official naming) into `model.backbone` only.

    Classifier heads (kylemin `fc.*`, torchvision `classifier.*`) and, for a full STSANet file
    in the authors' naming, the non-backbone entries are skipped by name; anything else that
    does not map is an error.
    """
    sd = read_state_dict(path)
    naming = detect_naming(sd)
    if naming == "ours":
        official = {ours_name_to_official(k): v for k, v in sd.items() if k.startswith("backbone.")}
        naming_note = "ours"
    else:
        official, unknown = {}, []
        for key, value in sd.items():
            if naming == "kylemin":
                if key.startswith("fc."):
                    continue
                name = kylemin_to_official(key)
            elif naming == "torchvision":
                if key.startswith("classifier."):
                    continue
                name = torchvision_to_official(key)
            elif naming in ("official", "official_backbone"):
                if not re.match(r"base[1-4]\.", key) and _rename(key, _TO_OURS) is not None:
                    continue  # STSANet head weights in a full checkpoint
                name = key if re.match(r"base[1-4]\.", key) else None
            else:
                name = None
            if name is None:
                unknown.append(key)
            else:
                official[name] = value
        if naming == "unknown":
            raise WeightsError(f"{path}: not an S3D backbone file (expected keys like base.0.*, "
                               f"features.0.* or base1.0.*), e.g. {_first(list(sd))}")
        if unknown:
            raise WeightsError(f"{path}: {len(unknown)} keys of this {naming}-named S3D file "
                               f"have no place in the backbone: {_first(unknown)}")
        naming_note = naming
    ours = {key[len("backbone."):]: value
            for key, value in official_to_ours(official).items()}
    _check_and_load(model.backbone, ours, path, what=f"backbone ({naming_note} naming)")


def _check_and_load(module: nn.Module, sd: Mapping[str, torch.Tensor], path,
                    extra_unexpected=(), display: Mapping[str, str] | None = None,
                    display_missing=None, what: str = "model") -> None:
    expected = module.state_dict()
    display = display or {}
    show = lambda k: display.get(k, k)  # noqa: E731 - the file's own name for a key
    missing = [k for k in expected if k not in sd]
    if display_missing is not None:
        missing = [display_missing(k) for k in missing]
    unexpected = list(extra_unexpected) + [show(k) for k in sd if k not in expected]
    mis_shaped = [f"{show(k)} file {tuple(v.shape)} vs {what} {tuple(expected[k].shape)}"
                  for k, v in sd.items() if k in expected and v.shape != expected[k].shape]
    if missing or unexpected or mis_shaped:
        parts = [f"{path}: does not match the {what}{_describe(module)}: {len(missing)} missing, "
                 f"{len(unexpected)} unexpected, {len(mis_shaped)} mis-shaped keys"]
        for label, keys in (("missing", missing), ("unexpected", unexpected),
                            ("mis-shaped", mis_shaped)):
            if keys:
                parts.append(f"  {label} ({len(keys)}): {_first(keys)}")
        hint = _norm_hint(sd, module)
        if hint:
            parts.append(f"  hint: {hint}")
        raise WeightsError("\n".join(parts))
    module.load_state_dict(sd, strict=True)


def _describe(module: nn.Module) -> str:
    config = getattr(module, "config", None)
    if not config:
        return ""
    h, w = config["input_size"]
    return f" (norm={config['norm']!r}, input_size={h}x{w})"


def _norm_hint(sd: Mapping[str, torch.Tensor], module: nn.Module) -> str | None:
    """Say which model configuration a file's STSA norm shapes come from."""
    weight = sd.get("stsa.0.layer1.norm.weight")
    if weight is None or getattr(module, "config", None) is None:
        return None
    if weight.dim() == 4:
        scale = BRANCHES[0].scale
        size = (weight.shape[2] * scale, weight.shape[3] * scale)
        return (f"the file holds full-shape LayerNorms for a {size[0]}x{size[1]} input: build "
                f"STSANet(norm='full_shape', input_size={size})")
    return "the file holds per-channel norms: build STSANet(norm='agnostic')"


def _first(keys: list[str]) -> str:
    more = f", ... (+{len(keys) - SHOW} more)" if len(keys) > SHOW else ""
    return ", ".join(keys[:SHOW]) + more


# ---------------------------------------------------------------------------------------------
# saving
# ---------------------------------------------------------------------------------------------

def save_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Our format: {"format": "stsanet", "config": constructor options, "state_dict": ...}."""
    payload = {"format": OURS_FORMAT, "config": dict(getattr(model, "config", {})),
               "state_dict": model.state_dict()}
    _atomic_save(payload, path)


def save_official(model: nn.Module, path: str | os.PathLike, module_prefix: bool = False) -> None:
    """The authors' naming as a raw state_dict (optionally with DataParallel's `module.`)."""
    config = getattr(model, "config", None)
    if config is not None and config.get("norm") != "full_shape":
        raise WeightsError("the authors' format holds full-shape LayerNorms; a model built with "
                           f"norm={config.get('norm')!r} cannot be saved in it (use save_weights)")
    sd = ours_to_official(model.state_dict())
    if module_prefix:
        sd = {f"module.{k}": v for k, v in sd.items()}
    _atomic_save(sd, path)


def _atomic_save(obj, path: str | os.PathLike) -> None:
    with atomic_path(path) as temporary:
        torch.save(obj, temporary)
