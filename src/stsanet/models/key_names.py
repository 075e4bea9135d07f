"""Key names of STSANet weights: ours <-> the authors' (one explicit prefix table), and the S3D
backbone namings (kylemin, torchvision) -> the authors' base1..4. Pure renaming; reading,
loading and saving files is :mod:`stsanet.models.weights`."""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from ..errors import InputError
from .channels import BRANCHES, DECODER_STAGES, BranchSpec

SHOW = 5  # keys listed per category in error messages
_QKV = ("q", "k", "v")
_SLOT = "ab"


class WeightsError(InputError):
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
TO_OFFICIAL = {ours: (rank, off) for rank, (ours, off) in enumerate(_TABLE)}
TO_OURS = {off: (rank, ours) for rank, (ours, off) in enumerate(_TABLE)}


def rename(key: str, table: dict[str, tuple[int, str]]) -> tuple[int, str] | None:
    # Prefixes end with "." and none is a prefix of another, so at most one matches.
    for prefix, (rank, target) in table.items():
        if key.startswith(prefix):
            return rank, target + key[len(prefix):]
    return None


def convert(sd: Mapping[str, torch.Tensor], table, what: str, strict: bool):
    """Rename every key; returns (renamed dict in table order, unknown keys, new -> old name)."""
    converted, unknown = [], []
    for pos, (key, value) in enumerate(sd.items()):
        hit = rename(key, table)
        if hit is None:
            unknown.append(key)
        else:
            converted.append((hit[0], pos, hit[1], key, value))
    if unknown and strict:
        raise WeightsError(f"{len(unknown)} keys have no {what} name: {first_keys(unknown)}")
    converted.sort(key=lambda row: (row[0], row[1]))  # table order, then original order
    renamed = {new: value for _, _, new, _, value in converted}
    return renamed, unknown, {new: old for _, _, new, old, _ in converted}


def ours_to_official(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Our state_dict keys -> the authors' keys, in the authors' order (strict)."""
    return convert(sd, TO_OFFICIAL, "official", strict=True)[0]


def official_to_ours(sd: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The authors' state_dict keys (no `module.` prefix) -> our keys (strict)."""
    return convert(sd, TO_OURS, "stsanet", strict=True)[0]


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


def ours_name_to_official(key: str) -> str:
    hit = rename(key, TO_OFFICIAL)
    return hit[1] if hit else key


def first_keys(keys: list[str]) -> str:
    more = f", ... (+{len(keys) - SHOW} more)" if len(keys) > SHOW else ""
    return ", ".join(keys[:SHOW]) + more
