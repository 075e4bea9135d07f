"""Checkpoint formats: reading, loading and saving weights (key names: models/key_names.py).

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
from .channels import BRANCHES
from .key_names import (SHOW, TO_OURS, WeightsError, convert, detect_naming, first_keys,
                        kylemin_to_official, official_to_ours, ours_name_to_official,
                        ours_to_official, rename, torchvision_to_official)

OURS_FORMAT = "stsanet"
# Leading components added by wrappers: DataParallel/DDP, our LightningModule, torch.compile.
WRAPPER_PREFIXES = ("module.", "net.", "model.", "_orig_mod.")
CHECKPOINT_CONTAINERS = ("state_dict", "model_state_dict", "model")

# ---------------------------------------------------------------------------------------------
# reading files
# ---------------------------------------------------------------------------------------------

def load_failure(path: str | os.PathLike, exc: BaseException) -> str:
    """Why ``torch.load(path, weights_only=True)`` failed, and what to do about it: an empty or
    truncated copy is copied again; a file holding objects beyond tensors and plain data is
    re-saved as a plain dict of tensors (only if its origin is trusted); anything else is not a
    PyTorch checkpoint."""
    path = Path(path)
    size = path.stat().st_size if path.is_file() else 0
    lines = [re.sub(r"\x1b\[[0-9;]*m", "", line).strip() for line in str(exc).splitlines()]
    lines = [line for line in lines if line] or [type(exc).__name__]
    text = " ".join(lines)
    if size == 0:
        return f"{path}: empty file (0 bytes): the copy or download did not finish; copy it again"
    if "central directory" in text or "failed reading zip archive" in text:
        return (f"{path}: truncated or damaged ({size:,} bytes; the end of its zip archive is "
                f"missing): the copy or download did not finish; copy it again")
    if "GLOBAL" in text or "Unsupported global" in text:  # objects beyond plain data
        found = next((line for line in lines if "GLOBAL" in line), lines[0])
        return (f"{path}: refused: it cannot be read with torch.load(weights_only=True), which "
                f"allows only tensors and plain data ({found}). Nothing in it was run. If you "
                f"trust its origin, re-save its weights as a plain dict of tensors "
                f"(torch.save(model.state_dict(), path)).")
    detail = next((line for line in lines if "Unsupported operand" in line), lines[0])[:160]
    detail = f"{type(exc).__name__}: {detail}"
    return (f"{path}: cannot be read with torch.load(weights_only=True) ({detail}): not a "
            f"PyTorch checkpoint; give a .pth/.pt/.ckpt file written by torch.save")


def read_state_dict(path: str | os.PathLike) -> dict[str, torch.Tensor]:
    """Load a file with weights_only=True and return its (unwrapped, unprefixed) state_dict."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"weights file not found: {path}")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors, zip errors, disallowed globals
        raise WeightsError(load_failure(path, exc)) from None
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
                           f"names, e.g. {first_keys(list(sd))}")
    display: dict[str, str] = {}
    unknown: list[str] = []
    if naming == "official":
        sd, unknown, display = convert(sd, TO_OURS, "stsanet", strict=False)
    _check_and_load(model, sd, path, extra_unexpected=unknown, display=display,
                    display_missing=ours_name_to_official if naming == "official" else None)


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
                if not re.match(r"base[1-4]\.", key) and rename(key, TO_OURS) is not None:
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
                               f"features.0.* or base1.0.*), e.g. {first_keys(list(sd))}")
        if unknown:
            raise WeightsError(f"{path}: {len(unknown)} keys of this {naming}-named S3D file "
                               f"have no place in the backbone: {first_keys(unknown)}")
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
                parts.append(f"  {label} ({len(keys)}): {first_keys(keys)}")
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


# ---------------------------------------------------------------------------------------------
# saving
# ---------------------------------------------------------------------------------------------

def save_weights(model: nn.Module, path: str | os.PathLike) -> None:
    """Our format: {"format": "stsanet", "config": constructor options, "state_dict": ...}."""
    payload = {"format": OURS_FORMAT, "config": dict(getattr(model, "config", {})),
               "state_dict": _cpu_state_dict(model)}
    _atomic_save(payload, path)


def save_official(model: nn.Module, path: str | os.PathLike, module_prefix: bool = False) -> None:
    """The authors' naming as a raw state_dict (optionally with DataParallel's `module.`)."""
    config = getattr(model, "config", None)
    if config is not None and config.get("norm") != "full_shape":
        raise WeightsError("the authors' format holds full-shape LayerNorms; a model built with "
                           f"norm={config.get('norm')!r} cannot be saved in it (use save_weights)")
    sd = ours_to_official(_cpu_state_dict(model))
    if module_prefix:
        sd = {f"module.{k}": v for k, v in sd.items()}
    _atomic_save(sd, path)


def _cpu_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    # files load on any machine with a plain torch.load, whatever device trained the model
    return {k: v.detach().cpu() for k, v in model.state_dict().items()}


def _atomic_save(obj, path: str | os.PathLike) -> None:
    with atomic_path(path) as temporary:
        torch.save(obj, temporary)
