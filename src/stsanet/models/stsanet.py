"""The assembled STSANet (Wang et al., IEEE TMM 2023), official architecture by default."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .amsf import check_fusion
from .backbone import S3DBackbone
from .channels import (BRANCHES, CLIP_LENGTH, PAPER_INPUT_SIZE, SIZE_MULTIPLE, BranchSpec)
from .decoder import TopDownDecoder
from .precision import run_fp32
from .stsa import (NORM_CHOICES, REMOVED_MID_CHOICES, SINGLE_LAYERS_CHOICES, SINGLE_QK_CHOICES,
                   STSA_VARIANTS, STSAModule, TemporalCompression)
from .unpool import UNPOOL_CHOICES

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Decoders of the paper's Table III: "amsf" (official), "unet" (plain top-down fusion: add, one
# 1x3x3 conv), "single_stream" (deepest tap only, no skips).
DECODER_CHOICES = ("amsf", "unet", "single_stream")
STSA_DEFAULTS = {"enabled": True, "variant": "full", "remove": [], "single_qk": "official",
                 "single_layers": "one", "removed_mid": "keep"}
# rm STSA_n with removed_mid=drop: the branch's compressed tap (C channels) goes to the decoder.
# Only STSA_1 (C = mid width = 192) and STSA_4 (feeds the top conv, which takes any width) can;
# STSA_2 and STSA_3 are added to a 240/416-channel decoder map, so their mid conv must stay.
MID_DROPPABLE = (1, 4)
AMSF_DEFAULTS = {"fusion": "add", "weighting": True, "multiscale": True}


def _options(name: str, given: Mapping | None, defaults: dict) -> dict:
    options = dict(defaults)
    unknown = sorted(set(given or {}) - set(defaults))
    if unknown:
        raise ValueError(f"unknown {name} option(s) {unknown}; known: {sorted(defaults)}")
    options.update(given or {})
    return options


def ablation_options(decoder: str, stsa: Mapping | None, amsf: Mapping | None):
    """Check the ablation switches (SPEC section 14) and return (stsa, amsf) option dicts.

    stsa: enabled (False: no STSA module on any branch), variant (one of STSA_VARIANTS),
    remove (paper numbering n = 1..4 of "rm STSA_n": that branch has no STSA module).
    amsf: fusion (add | concat), weighting (attentional weighting), multiscale (STMS block).
    A branch without STSA keeps its mid conv as the channel adapter the decoder needs.
    """
    if decoder not in DECODER_CHOICES:
        raise ValueError(f"decoder must be one of {list(DECODER_CHOICES)}, got {decoder!r}")
    stsa = _options("stsa", stsa, STSA_DEFAULTS)
    amsf = _options("amsf", amsf, AMSF_DEFAULTS)
    if stsa["variant"] not in STSA_VARIANTS:
        raise ValueError(f"stsa.variant must be one of {list(STSA_VARIANTS)}, "
                         f"got {stsa['variant']!r}")
    remove = [int(n) for n in (stsa["remove"] or [])]
    if any(n not in (1, 2, 3, 4) for n in remove) or len(set(remove)) != len(remove):
        raise ValueError(f"stsa.remove lists distinct STSA_n numbers from 1 to 4 "
                         f"(paper numbering), got {list(stsa['remove'])}")
    stsa.update(enabled=bool(stsa["enabled"]), remove=sorted(remove))
    for key, allowed in (("single_qk", SINGLE_QK_CHOICES), ("single_layers", SINGLE_LAYERS_CHOICES),
                         ("removed_mid", REMOVED_MID_CHOICES)):
        if stsa[key] not in allowed:
            raise ValueError(f"stsa.{key} must be one of {list(allowed)}, got {stsa[key]!r}")
    single = {k: stsa[k] for k in ("single_qk", "single_layers") if stsa[k] != STSA_DEFAULTS[k]}
    if single and stsa["variant"] != "single_similarity":
        raise ValueError(f"{', '.join(f'stsa.{k}={v}' for k, v in single.items())} only apply "
                         f"to stsa.variant=single_similarity, got {stsa['variant']!r}")
    if stsa["removed_mid"] == "drop" and (not stsa["enabled"] or not remove
                                          or set(remove) - set(MID_DROPPABLE)):
        raise ValueError(f"stsa.removed_mid=drop needs stsa.remove within {list(MID_DROPPABLE)} "
                         f"(got stsa.remove={remove}, stsa.enabled={stsa['enabled']}): without "
                         f"its mid conv STSA_2/STSA_3 would hand the decoder C channels where "
                         f"its fusion adds 240/416; use stsa.removed_mid=keep there")
    if decoder == "single_stream" and stsa["enabled"]:
        raise ValueError("decoder=single_stream has no branches to put STSA on: use "
                         "stsa.enabled=false")
    if not stsa["enabled"] and (stsa["variant"] != "full" or remove):
        switch = f"variant={stsa['variant']}" if stsa["variant"] != "full" else f"remove={remove}"
        raise ValueError(f"stsa.{switch} does nothing with stsa.enabled=false (no STSA modules): "
                         f"use stsa.enabled=true, or drop it")
    check_fusion(amsf["fusion"])
    if decoder != "amsf" and amsf != AMSF_DEFAULTS:
        changed = ", ".join(f"amsf.{k}={v}" for k, v in amsf.items() if AMSF_DEFAULTS[k] != v)
        raise ValueError(f"{changed} only apply to decoder=amsf, not decoder={decoder}: use "
                         f"decoder=amsf, or the default AMSF options")
    amsf.update(weighting=bool(amsf["weighting"]), multiscale=bool(amsf["multiscale"]))
    return stsa, amsf


class InputNormalizer(nn.Module):
    """RGB in [0, 1] -> (x - mean) / std per channel (the official ImageNet preprocessing)."""

    def __init__(self, mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD):
        super().__init__()
        # Not persistent: they are configuration, not weights, and stay out of checkpoints.
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1, 1),
                             persistent=False)
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1, 1),
                             persistent=False)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return (clip - self.mean) / self.std


def _as_size(input_size) -> tuple[int, int]:
    size = tuple(int(s) for s in input_size)
    if len(size) != 2:
        raise ValueError(f"input_size must be (height, width), got {input_size!r}")
    if size[0] <= 0 or size[1] <= 0 or size[0] % SIZE_MULTIPLE or size[1] % SIZE_MULTIPLE:
        raise ValueError(f"input_size must be positive multiples of {SIZE_MULTIPLE} "
                         f"(height, width), got {size}; the paper setting is {PAPER_INPUT_SIZE}")
    return size


class STSANet(nn.Module):
    """Video saliency network: S3D taps -> temporal compression -> STSA -> AMSF decoder.

    forward(clip): clip is B x 3 x 32 x H x W, RGB in [0, 1]; returns B x H x W in (0, 1), the
    saliency map of the 16th frame. Options (SPEC section 0):
      norm: "full_shape" (official LayerNorm; input locked to `input_size`) or "agnostic"
        (same statistics, per-channel affine; any H, W that are multiples of 32).
      unpool: "maxunpool" (official) or "export_friendly" (same numbers, no MaxUnpool op).
      bn_momentum: momentum of the backbone BatchNorms (official 0.001).
    Ablations of the paper (Tables III-V; defaults = official): `decoder` (DECODER_CHOICES),
    `stsa` {enabled, variant, remove} and `amsf` {fusion, weighting, multiscale}, see
    `ablation_options`.
    The precision policy (`precision`): under autocast the attention (in `stsa`) and the
    readout (in `decoder`) stay fp32, and the pool-sensitive region (the input normalisation,
    the backbone up to the deepest bottleneck tap, that branch's compression here, STSA layer
    I and mid conv in `stsa`) stays fp32.
    """

    def __init__(self, norm: str = "full_shape", unpool: str = "maxunpool",
                 input_size: Sequence[int] = PAPER_INPUT_SIZE, bn_momentum: float = 0.001,
                 mean: Sequence[float] = IMAGENET_MEAN, std: Sequence[float] = IMAGENET_STD,
                 branches: Sequence[BranchSpec] = BRANCHES, decoder: str = "amsf",
                 stsa: Mapping | None = None, amsf: Mapping | None = None):
        super().__init__()
        stsa, amsf = ablation_options(decoder, stsa, amsf)
        if norm not in NORM_CHOICES:
            raise ValueError(f"norm must be one of {list(NORM_CHOICES)}, got {norm!r}")
        if unpool not in UNPOOL_CHOICES:
            raise ValueError(f"unpool must be one of {sorted(UNPOOL_CHOICES)}, got {unpool!r}")
        if len(tuple(mean)) != 3 or len(tuple(std)) != 3:
            raise ValueError(f"mean and std need 3 values (RGB), got {mean!r} / {std!r}")
        self.input_size = _as_size(input_size)
        self.norm = norm
        self.config = dict(norm=norm, unpool=unpool, input_size=list(self.input_size),
                           bn_momentum=float(bn_momentum), mean=[float(m) for m in mean],
                           std=[float(s) for s in std])
        if (decoder, stsa, amsf) != ("amsf", STSA_DEFAULTS, AMSF_DEFAULTS):
            # only variants record these, so the official config stays as it was
            self.config.update(decoder=decoder, stsa=stsa, amsf=amsf)
        self.decoder_kind = decoder
        # single-stream: only the deepest tap feeds the decoder
        used = (len(branches) - 1,) if decoder == "single_stream" else range(len(branches))
        self.branch_ids = tuple(used)
        self.branch_specs = tuple(branches[i] for i in self.branch_ids)
        with_stsa = [stsa["enabled"] and (i + 1) not in stsa["remove"] for i in self.branch_ids]
        h, w = self.input_size

        self.preprocess = InputNormalizer(mean, std)
        # what feeds a bottleneck (index-using) max-pool is computed by `precision.run_fp32`
        self.pool_sensitive = tuple(b.bottleneck for b in self.branch_specs)
        exact_taps = [i + 1 for i, exact in zip(self.branch_ids, self.pool_sensitive) if exact]
        self.backbone = S3DBackbone(bn_momentum, exact_taps=max(exact_taps, default=0))
        self.compress = nn.ModuleList(
            TemporalCompression(b.channels, b.time_stride) if b.time_stride > 1 else nn.Identity()
            for b in self.branch_specs
        )
        self.stsa = nn.ModuleList(
            STSAModule(b, norm, (h // b.scale, w // b.scale), unpool,
                       variant=stsa["variant"], enabled=enabled, single_qk=stsa["single_qk"],
                       single_layers=stsa["single_layers"],
                       keep_mid=stsa["removed_mid"] == "keep")
            for b, enabled in zip(self.branch_specs, with_stsa)
        )
        deepest_mid = isinstance(self.stsa[-1].mid, nn.Identity)
        self.decoder = TopDownDecoder(
            self.branch_specs[-1].channels if deepest_mid else self.branch_specs[-1].mid_channels,
            fusion=amsf["fusion"],
            weighting=amsf["weighting"] and decoder == "amsf",
            multiscale=amsf["multiscale"] and decoder == "amsf",
            lateral=decoder != "single_stream")

    def check_input(self, clip: torch.Tensor) -> None:
        """Raise a ValueError naming the rule a clip breaks."""
        if clip.dim() != 5 or clip.shape[1] != 3:
            raise ValueError(f"STSANet expects a clip B x 3 x {CLIP_LENGTH} x H x W (RGB in [0, 1]), "
                             f"got shape {tuple(clip.shape)}")
        t, h, w = clip.shape[2:]
        if t != CLIP_LENGTH:
            raise ValueError(f"STSANet needs clips of exactly {CLIP_LENGTH} frames (every tap must "
                             f"reach 4 time steps), got T = {t}")
        if h % SIZE_MULTIPLE or w % SIZE_MULTIPLE:
            raise ValueError(f"clip height and width must be multiples of {SIZE_MULTIPLE}, "
                             f"got {h} x {w}")
        if self.norm == "full_shape" and (h, w) != self.input_size:
            raise ValueError(f"with norm='full_shape' the clip must be {self.input_size[0]} x "
                             f"{self.input_size[1]} (the size the LayerNorms were built for), got "
                             f"{h} x {w}; use norm='agnostic' for other sizes")

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self._run(clip, None)

    @torch.no_grad()
    def trace_stages(self, clip: torch.Tensor) -> dict[str, torch.Tensor]:
        """All intermediate features (taps, compressed, STSA outputs, fused maps, output)."""
        record: dict[str, torch.Tensor] = {}
        record["saliency"] = self._run(clip, record)
        return record

    def _run(self, clip: torch.Tensor, record: dict | None) -> torch.Tensor:
        self.check_input(clip)
        x = run_fp32(self.preprocess, clip) if any(self.pool_sensitive) else self.preprocess(clip)
        taps = self.backbone(x)
        taps = [taps[i] for i in self.branch_ids]
        branches = []
        for i, tap, compress, stsa, exact in zip(self.branch_ids, taps, self.compress, self.stsa,
                                                 self.pool_sensitive):
            compressed = run_fp32(compress, tap) if exact else compress(tap)
            out = stsa(compressed)
            branches.append(out)
            if record is not None:
                record[f"tap{i + 1}"] = tap
                record[f"compressed{i}"] = compressed
                record[f"stsa{i}"] = out
        return self.decoder(branches, record)
