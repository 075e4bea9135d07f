"""Attentional multi-scale fusion (AMSF): attentional weighting + STMS block."""

from __future__ import annotations

import torch
from torch import nn

from .channels import STSA_TIME_STEPS

# How re-weighted high- and low-level features are merged: "add" (official) or "concat"
# (the paper's concat-based variant, Fig. 7: STMS then takes 2C channels).
FUSION_CHOICES = ("add", "concat")


def check_fusion(fusion: str) -> None:
    if fusion not in FUSION_CHOICES:
        raise ValueError(f"amsf.fusion must be one of {list(FUSION_CHOICES)}, got {fusion!r}")


def combine(high: torch.Tensor, low: torch.Tensor, fusion: str) -> torch.Tensor:
    return high + low if fusion == "add" else torch.cat([high, low], dim=1)


class AttentionalWeighting(nn.Module):
    """Re-weight a high-level and a low-level feature (C channels each) and add them.

    A sigmoid mask from concat[high, low] gates the channel branch only: per-time-step spatial
    GAP of the masked concat -> conv 2C->C/2 -> LayerNorm(C/2 x T x 1 x 1) -> ReLU -> conv
    C/2->2C -> sigmoid gives one weight per channel and time step; the first C re-weight `high`,
    the last C `low` (both un-masked). The LayerNorm does not depend on H, W, so it is the same
    under both `norm` options.
    """

    def __init__(self, channels: int, fusion: str = "add"):
        super().__init__()
        check_fusion(fusion)
        self.fusion = fusion
        both, hidden = 2 * channels, channels // 2
        self.mask = nn.Sequential(nn.Conv3d(both, 1, 1), nn.Sigmoid())
        self.channel = nn.Sequential(
            nn.AdaptiveAvgPool3d((STSA_TIME_STEPS, 1, 1)),
            nn.Conv3d(both, hidden, 1),
            nn.LayerNorm((hidden, STSA_TIME_STEPS, 1, 1)),
            nn.ReLU(inplace=True),
            nn.Conv3d(hidden, both, 1),
            nn.Sigmoid(),
        )

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        both = torch.cat([high, low], dim=1)
        weights = self.channel(both * self.mask(both))
        w_high, w_low = weights.chunk(2, dim=1)
        return combine(high * w_high, low * w_low, self.fusion)


class STMS(nn.Module):
    """Spatio-temporal multi-scale block: four parallel conv branches (bias, no BN), summed, ReLU."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        c, o = in_channels, out_channels
        self.branch0 = nn.Sequential(nn.Conv3d(c, o, 1))
        self.branch1 = nn.Sequential(
            nn.Conv3d(c, o, (3, 1, 1), padding=(1, 0, 0)), nn.ReLU(inplace=True),
            nn.Conv3d(o, o, (1, 3, 3), padding=(0, 1, 1)),
        )
        self.branch2 = nn.Sequential(
            nn.Conv3d(c, o, (3, 1, 1), padding=(1, 0, 0)), nn.ReLU(inplace=True),
            nn.Conv3d(o, o, (1, 5, 5), padding=(0, 2, 2)),
        )
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, 1, 1), nn.Conv3d(c, o, 1))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.branch0(x) + self.branch1(x) + self.branch2(x) + self.branch3(x)
        return self.relu(out)


class AMSFStage(nn.Module):
    """One top-down fusion step: weight and add high/low, then STMS to the next width.

    The ablations of the paper switch parts off (SPEC section 14); the defaults are official:
      fusion: "add" or "concat" (concat-based AMSF);
      weighting: attentional weighting (False: high and low are merged as they are, "w/o AW");
      multiscale: the STMS block (False: one 1x3x3 conv + ReLU to the output width, "w/o STMS");
      lateral: a low-level input exists (False: the single-stream decoder, `low` is None).
    weighting=False with multiscale=False is the plain UNet-like fusion.
    """

    def __init__(self, channels: int, out_channels: int, fusion: str = "add",
                 weighting: bool = True, multiscale: bool = True, lateral: bool = True):
        super().__init__()
        check_fusion(fusion)
        self.fusion, self.lateral = fusion, lateral
        self.weighting = AttentionalWeighting(channels, fusion) if (weighting and lateral) else None
        merged = 2 * channels if (lateral and fusion == "concat") else channels
        if multiscale:
            self.stms = STMS(merged, out_channels)
        else:
            self.conv = nn.Sequential(nn.Conv3d(merged, out_channels, (1, 3, 3), padding=(0, 1, 1)),
                                      nn.ReLU(inplace=True))

    def forward(self, high: torch.Tensor, low: torch.Tensor | None) -> torch.Tensor:
        if not self.lateral:
            merged = high
        elif self.weighting is not None:
            merged = self.weighting(high, low)
        else:
            merged = combine(high, low, self.fusion)
        return self.stms(merged) if hasattr(self, "stms") else self.conv(merged)
