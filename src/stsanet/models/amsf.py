"""Attentional multi-scale fusion (AMSF): attentional weighting + STMS block."""

from __future__ import annotations

import torch
from torch import nn

from .channels import STSA_TIME_STEPS


class AttentionalWeighting(nn.Module):
    """Re-weight a high-level and a low-level feature (C channels each) and add them.

    A sigmoid mask from concat[high, low] gates the channel branch only: per-time-step spatial
    GAP of the masked concat -> conv 2C->C/2 -> LayerNorm(C/2 x T x 1 x 1) -> ReLU -> conv
    C/2->2C -> sigmoid gives one weight per channel and time step; the first C re-weight `high`,
    the last C `low` (both un-masked). The LayerNorm does not depend on H, W, so it is the same
    under both `norm` options.
    """

    def __init__(self, channels: int):
        super().__init__()
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
        return high * w_high + low * w_low


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
    """One top-down fusion step: weight and add high/low, then STMS to the next width."""

    def __init__(self, channels: int, out_channels: int):
        super().__init__()
        self.weighting = AttentionalWeighting(channels)
        self.stms = STMS(channels, out_channels)

    def forward(self, high: torch.Tensor, low: torch.Tensor) -> torch.Tensor:
        return self.stms(self.weighting(high, low))
