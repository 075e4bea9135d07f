"""The official STSANet channel plan, kept as data in one place.

Every module size of the default model comes from these tables, so variants (ablations, a
lighter model) change numbers here or pass their own tables instead of editing modules.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class MixedSpec:
    """Inception block sizes: in; branch0; branch1 mid->out; branch2 mid->out; branch3."""

    in_channels: int
    b0: int
    b1_mid: int
    b1_out: int
    b2_mid: int
    b2_out: int
    b3: int

    @property
    def out_channels(self) -> int:
        return self.b0 + self.b1_out + self.b2_out + self.b3


# S3D (kylemin variant) Mixed blocks, grouped by the backbone block they belong to.
MIXED_BLOCKS: dict[str, tuple[MixedSpec, ...]] = {
    "block2": (
        MixedSpec(192, 64, 96, 128, 16, 32, 32),  # Mixed_3b
        MixedSpec(256, 128, 128, 192, 32, 96, 64),  # Mixed_3c
    ),
    "block3": (
        MixedSpec(480, 192, 96, 208, 16, 48, 64),  # Mixed_4b
        MixedSpec(512, 160, 112, 224, 24, 64, 64),  # Mixed_4c
        MixedSpec(512, 128, 128, 256, 24, 64, 64),  # Mixed_4d
        MixedSpec(512, 112, 144, 288, 32, 64, 64),  # Mixed_4e
        MixedSpec(528, 256, 160, 320, 32, 128, 128),  # Mixed_4f
    ),
    "block4": (
        MixedSpec(832, 256, 160, 320, 32, 128, 128),  # Mixed_5b
        MixedSpec(832, 384, 192, 384, 48, 128, 128),  # Mixed_5c
    ),
}


@dataclass(frozen=True)
class BranchSpec:
    """One STSA branch (one backbone tap).

    channels: tap channels; time_stride: temporal compression factor to reach T = 4
    (1 = no compression conv); qk_dim_1 / qk_dim_2: query/key width of STSA layer I / II;
    mid_channels: output of the mid conv (= layer-II channels); bottleneck: attend on a
    1x2x2 max-pooled grid and unpool the result (branch 0 only).
    """

    channels: int
    time_stride: int
    qk_dim_1: int
    mid_channels: int
    qk_dim_2: int
    bottleneck: bool
    scale: int  # spatial stride of the tap relative to the input


# Official sizes (SPEC 3.1); branch 1 uses 224/128 instead of the paper's C/2.
BRANCHES: tuple[BranchSpec, ...] = (
    BranchSpec(192, 4, 96, 192, 96, True, 4),
    BranchSpec(480, 4, 224, 240, 128, False, 8),
    BranchSpec(832, 2, 416, 416, 208, False, 16),
    BranchSpec(1024, 1, 512, 512, 256, False, 32),
)

# Top-down decoder: deepest branch output -> this many channels before the first AMSF stage.
DECODER_TOP_CHANNELS = 416
# AMSF stages in top-down order: (channels of each input, STMS output channels).
DECODER_STAGES: tuple[tuple[int, int], ...] = ((416, 240), (240, 192), (192, 192))
READOUT_CHANNELS = (64, 32)

# Clip length and the time steps every tap is compressed to (STSA pairs time steps 1/2, 3/4).
CLIP_LENGTH = 32
STSA_TIME_STEPS = 4
# Deepest feature map is 1/32 of the input.
SIZE_MULTIPLE = 32
PAPER_INPUT_SIZE = (224, 384)
