"""Top-down decoder: deepest branch -> three AMSF stages -> readout to one saliency map."""

from __future__ import annotations

import torch
from torch import nn

from .amsf import AMSFStage
from .channels import DECODER_STAGES, DECODER_TOP_CHANNELS, READOUT_CHANNELS
from .precision import fp32, full_precision


def upsample_2x(x: torch.Tensor) -> torch.Tensor:
    """x2 spatial trilinear upsampling (T unchanged), PyTorch defaults (align_corners=False)."""
    return nn.functional.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="trilinear")


class Readout(nn.Module):
    """1x3x3 conv + ReLU, x2 up to the input size, then collapse T 4 -> 2 -> 1 and a sigmoid.

    fp32 under autocast: a bf16 sigmoid output has steps of 0.004 near 0.5 (see `precision`).
    """

    def __init__(self, in_channels: int, channels: tuple[int, int] = READOUT_CHANNELS):
        super().__init__()
        c1, c2 = channels
        self.spatial = nn.Sequential(nn.Conv3d(in_channels, c1, (1, 3, 3), padding=(0, 1, 1)),
                                     nn.ReLU(inplace=True))
        self.temporal = nn.Sequential(
            nn.Conv3d(c1, c2, (2, 3, 3), (2, 1, 1), (0, 1, 1)), nn.ReLU(inplace=True),
            nn.Conv3d(c2, c2, (2, 1, 1), (2, 1, 1), bias=False), nn.ReLU(inplace=True),
            nn.Conv3d(c2, 1, (1, 3, 3), padding=(0, 1, 1)), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with full_precision(x):
            out = self.temporal(upsample_2x(self.spatial(fp32(x))))  # B x 1 x 1 x H x W
        return out.flatten(1, 2).squeeze(1)


class TopDownDecoder(nn.Module):
    """branch 3 -> conv to 416 -> up -> AMSF with branch 2 -> up -> ... with branch 0 -> readout.

    `stages[k]` fuses the running high-level map with branch 2 - k; every stage output is
    upsampled x2 before the next. `fusion`, `weighting`, `multiscale` and `lateral` are the
    ablation switches of every stage (see AMSFStage); with lateral=False only the deepest
    branch is used (the single-stream baseline: the same convs and upsamplings, no skips).
    """

    def __init__(self, deepest_channels: int, top_channels: int = DECODER_TOP_CHANNELS,
                 stages: tuple[tuple[int, int], ...] = DECODER_STAGES, fusion: str = "add",
                 weighting: bool = True, multiscale: bool = True, lateral: bool = True):
        super().__init__()
        self.lateral = lateral
        self.top = nn.Sequential(nn.Conv3d(deepest_channels, top_channels, (1, 3, 3),
                                           padding=(0, 1, 1)), nn.ReLU(inplace=True))
        self.stages = nn.ModuleList(AMSFStage(c, o, fusion, weighting, multiscale, lateral)
                                    for c, o in stages)
        self.readout = Readout(stages[-1][1])

    def forward(self, branches: list[torch.Tensor], record: dict | None = None) -> torch.Tensor:
        x = upsample_2x(self.top(branches[-1]))
        for k, stage in enumerate(self.stages):
            low = branches[len(branches) - 2 - k] if self.lateral else None
            x = upsample_2x(stage(x, low))
            if record is not None:
                record[f"fused{k}"] = x
        return self.readout(x)
