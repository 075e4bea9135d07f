"""S3D backbone (kylemin variant, no feature gating) cut into the four blocks STSANet taps."""

from __future__ import annotations

import torch
from torch import nn

from .channels import MIXED_BLOCKS, MixedSpec
from .precision import run_fp32

BN_EPS = 1e-3
# the modules from one tap to the next
STAGES = (("block1",), ("pool2", "block2"), ("pool3", "block3"), ("pool4", "block4"))


class BasicConv3d(nn.Module):
    """Bias-free conv -> BatchNorm -> ReLU."""

    def __init__(self, in_channels, out_channels, kernel_size=1, stride=1, padding=0,
                 bn_momentum=0.001):
        super().__init__()
        self.conv = nn.Conv3d(in_channels, out_channels, kernel_size, stride, padding, bias=False)
        self.bn = nn.BatchNorm3d(out_channels, eps=BN_EPS, momentum=bn_momentum)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.bn(self.conv(x)))


class SepConv3d(nn.Module):
    """Separable k x k x k conv: spatial 1 x k x k then temporal k x 1 x 1, each with BN + ReLU."""

    def __init__(self, in_channels, out_channels, kernel_size, stride=1, padding=0,
                 bn_momentum=0.001):
        super().__init__()
        k, s, p = kernel_size, stride, padding
        self.conv_s = nn.Conv3d(in_channels, out_channels, (1, k, k), (1, s, s), (0, p, p),
                                bias=False)
        self.bn_s = nn.BatchNorm3d(out_channels, eps=BN_EPS, momentum=bn_momentum)
        self.relu_s = nn.ReLU(inplace=True)
        self.conv_t = nn.Conv3d(out_channels, out_channels, (k, 1, 1), (s, 1, 1), (p, 0, 0),
                                bias=False)
        self.bn_t = nn.BatchNorm3d(out_channels, eps=BN_EPS, momentum=bn_momentum)
        self.relu_t = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.relu_s(self.bn_s(self.conv_s(x)))
        return self.relu_t(self.bn_t(self.conv_t(x)))


class Mixed(nn.Module):
    """Inception block with separable 3x3x3 convs; branch outputs concatenated on channels."""

    def __init__(self, spec: MixedSpec, bn_momentum=0.001):
        super().__init__()
        c, m = spec.in_channels, bn_momentum
        self.branch0 = nn.Sequential(BasicConv3d(c, spec.b0, bn_momentum=m))
        self.branch1 = nn.Sequential(
            BasicConv3d(c, spec.b1_mid, bn_momentum=m),
            SepConv3d(spec.b1_mid, spec.b1_out, 3, 1, 1, bn_momentum=m),
        )
        self.branch2 = nn.Sequential(
            BasicConv3d(c, spec.b2_mid, bn_momentum=m),
            SepConv3d(spec.b2_mid, spec.b2_out, 3, 1, 1, bn_momentum=m),
        )
        self.branch3 = nn.Sequential(
            nn.MaxPool3d(3, 1, 1),
            BasicConv3d(c, spec.b3, bn_momentum=m),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


class S3DBackbone(nn.Module):
    """S3D trunk in four blocks; `forward` returns the four taps (the paper's Conv_Block_1..4).

    For a 3 x 32 x 224 x 384 clip the taps are 192x16x56x96, 480x16x28x48, 832x8x14x24 and
    1024x4x7x12. Sequential indices inside each block match kylemin's `base` / the official
    `base1..4` so weight conversion is a prefix rename. The first `exact_taps` taps feed
    max-pools whose indices are used and are computed by `precision.run_fp32`.
    """

    out_channels = (192, 480, 832, 1024)

    def __init__(self, bn_momentum: float = 0.001, exact_taps: int = 0):
        super().__init__()
        self.exact_taps = exact_taps
        m = bn_momentum
        self.block1 = nn.Sequential(
            SepConv3d(3, 64, 7, 2, 3, bn_momentum=m),
            nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
            BasicConv3d(64, 64, bn_momentum=m),
            SepConv3d(64, 192, 3, 1, 1, bn_momentum=m),
        )
        self.pool2 = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
        self.block2 = nn.Sequential(*(Mixed(s, m) for s in MIXED_BLOCKS["block2"]))
        self.pool3 = nn.MaxPool3d(3, 2, 1)
        self.block3 = nn.Sequential(*(Mixed(s, m) for s in MIXED_BLOCKS["block3"]))
        self.pool4 = nn.MaxPool3d(2, 2, 0)
        self.block4 = nn.Sequential(*(Mixed(s, m) for s in MIXED_BLOCKS["block4"]))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        taps = []
        for index in range(len(STAGES)):
            x = run_fp32(self._stage, x, index) if index < self.exact_taps else self._stage(x, index)
            taps.append(x)
        return taps

    def _stage(self, x: torch.Tensor, index: int) -> torch.Tensor:
        for name in STAGES[index]:
            x = getattr(self, name)(x)
        return x
