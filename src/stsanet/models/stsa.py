"""Spatio-temporal self-attention (STSA): temporal compression, STSA layers and modules."""

from __future__ import annotations

import torch
from torch import nn

from .attention import dot_product_attention
from .channels import STSA_TIME_STEPS, BranchSpec
from .precision import fp32, full_precision, run_fp32
from .unpool import POOL_KERNEL, make_unpool

NORM_CHOICES = ("full_shape", "agnostic")
# The STSA structures of the paper's Table IV (SPEC section 14); "full" is the official module.
STSA_VARIANTS = ("full", "no_temporal_relations", "single_similarity", "no_layer1", "no_layer2")
# Readings of the paper where it is ambiguous (experiments/ablation/*.yaml say which they use):
# single similarity matrix: query/key width "official" (the official layer-I width, 224 on the
# 480-channel branch) or "half" (the paper's C/2, 240 there); "one" joint layer replacing both
# STSA layers or one in place of "both" of them. rm STSA_n: "keep" the branch's mid conv (the
# channel adapter the decoder needs) or "drop" it too.
SINGLE_QK_CHOICES = ("official", "half")
SINGLE_LAYERS_CHOICES = ("one", "both")
REMOVED_MID_CHOICES = ("keep", "drop")


def make_feature_norm(norm: str, channels: int, spatial: tuple[int, int]) -> nn.Module:
    """Normalisation over the whole C x T x H x W feature of each sample.

    full_shape: the official LayerNorm with element-wise affine of the full feature shape (ties
    the model to one input size). agnostic: the same statistics with a per-channel affine,
    so any input size works.
    """
    if norm == "full_shape":
        return nn.LayerNorm((channels, STSA_TIME_STEPS, *spatial))
    if norm == "agnostic":
        return nn.GroupNorm(1, channels)
    raise ValueError(f"norm must be one of {list(NORM_CHOICES)}, got {norm!r}")


class TemporalCompression(nn.Module):
    """Conv (k x 1 x 1, stride k, with bias) + ReLU bringing a tap to 4 time steps; no BN."""

    def __init__(self, channels: int, time_stride: int):
        super().__init__()
        self.conv = nn.Conv3d(channels, channels, (time_stride, 1, 1), (time_stride, 1, 1))
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


def conv_relu(in_channels: int, out_channels: int, kernel, padding) -> list[nn.Module]:
    return [nn.Conv3d(in_channels, out_channels, kernel, padding=padding), nn.ReLU(inplace=True)]


class SlotEmbedding(nn.Module):
    """Query, key and value embeddings of one time slot (each slot has its own weights).

    Queries and keys are computed in fp32 under autocast too: their products are the unscaled
    attention logits (see `precision`).
    """

    def __init__(self, channels: int, qk_dim: int):
        super().__init__()
        self.q = nn.Sequential(*conv_relu(channels, qk_dim, 1, 0),
                               *conv_relu(qk_dim, qk_dim, (1, 3, 3), (0, 1, 1)))
        self.k = nn.Sequential(*conv_relu(channels, qk_dim, 1, 0),
                               *conv_relu(qk_dim, qk_dim, (1, 3, 3), (0, 1, 1)))
        self.v = nn.Sequential(*conv_relu(channels, channels, (1, 3, 1), (0, 1, 0)),
                               *conv_relu(channels, channels, (1, 1, 3), (0, 0, 1)))

    def query(self, x: torch.Tensor) -> torch.Tensor:
        with full_precision(x):
            return self.q(fp32(x))

    def key(self, x: torch.Tensor) -> torch.Tensor:
        with full_precision(x):
            return self.k(fp32(x))


def attend(queries_from: SlotEmbedding, keys_from: SlotEmbedding, q_input: torch.Tensor,
           kv_input: torch.Tensor) -> torch.Tensor:
    return dot_product_attention(queries_from.query(q_input), keys_from.key(kv_input),
                                 keys_from.v(kv_input))


class STSALayer(nn.Module):
    """One STSA layer: split T into 2*pairs slots, cross-attend within each slot pair.

    In pair (a, b) the output replacing slot a uses queries from b and keys/values from a, and
    vice versa. Layer I of the paper has pairs=2 (slots are single time steps 1/2, 3/4), layer
    II has pairs=1 (slots are halves 1-2 / 3-4, attended jointly). The concatenated result is
    normalised over the whole feature and added to the input. With `bottleneck` the slots are
    1x2x2 max-pooled first and the attention result is unpooled (zeros elsewhere) before the norm.
    """

    def __init__(self, channels: int, qk_dim: int, pairs: int, norm: nn.Module,
                 bottleneck: bool = False, unpool: str = "maxunpool"):
        super().__init__()
        self.pairs = pairs
        self.embed = nn.ModuleList(SlotEmbedding(channels, qk_dim) for _ in range(2 * pairs))
        self.norm = norm
        self.bottleneck = bottleneck
        if bottleneck:
            self.pool = nn.MaxPool3d(POOL_KERNEL, POOL_KERNEL, return_indices=True)
            self.unpool = make_unpool(unpool)

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        slots = x.chunk(2 * self.pairs, dim=2)
        out = []
        for p in range(self.pairs):
            a, b = slots[2 * p], slots[2 * p + 1]
            emb_a, emb_b = self.embed[2 * p], self.embed[2 * p + 1]
            out.append(attend(emb_b, emb_a, b, a))
            out.append(attend(emb_a, emb_b, a, b))
        return torch.cat(out, dim=2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.bottleneck:
            pooled, indices = self.pool(x)
            attended = self.unpool(self.attend(pooled), indices, x.shape)
        else:
            attended = self.attend(x)
        return x + self.norm(attended)


class PerStepSTSALayer(STSALayer):
    """"w/o temporal relations" (paper Fig. 6a): every time step attends only to itself.

    Same embeddings as STSALayer (one q/k/v set per slot); each slot's q, k and v come from the
    slot itself and the attention runs separately per time step, so only spatial relations
    are captured.
    """

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        out = []
        for slot, emb in zip(x.chunk(2 * self.pairs, dim=2), self.embed):
            q, k, v = emb.query(slot), emb.key(slot), emb.v(slot)
            out.extend(dot_product_attention(q[:, :, t:t + 1], k[:, :, t:t + 1], v[:, :, t:t + 1])
                       for t in range(slot.shape[2]))
        return torch.cat(out, dim=2)


class JointSTSALayer(STSALayer):
    """"Single similarity matrix" (paper Fig. 6b): one q/k/v embedding of the whole
    C x 4 x H x W feature and one 4HW x 4HW attention, replacing both paired layers."""

    def __init__(self, channels: int, qk_dim: int, norm: nn.Module, bottleneck: bool = False,
                 unpool: str = "maxunpool"):
        super().__init__(channels, qk_dim, 0, norm, bottleneck, unpool)
        self.embed = nn.ModuleList([SlotEmbedding(channels, qk_dim)])

    def attend(self, x: torch.Tensor) -> torch.Tensor:
        return attend(self.embed[0], self.embed[0], x, x)


class STSAModule(nn.Module):
    """STSA layer I -> mid conv (1x3x3 + ReLU) -> STSA layer II, for one branch.

    `variant` (STSA_VARIANTS) selects the paper's Table IV structures; enabled=False is a branch
    without STSA ("rm STSA_n", UNet-like): only the mid conv stays, as the channel adapter the
    decoder needs, so exactly the attention layers' parameters go. On a bottleneck branch,
    layer I and the mid conv feed max-pools whose indices are used, so they run in
    `precision.run_fp32`.
    """

    def __init__(self, spec: BranchSpec, norm: str, spatial: tuple[int, int],
                 unpool: str = "maxunpool", variant: str = "full", enabled: bool = True,
                 single_qk: str = "official", single_layers: str = "one",
                 keep_mid: bool = True):
        super().__init__()
        if variant not in STSA_VARIANTS:
            raise ValueError(f"stsa variant must be one of {list(STSA_VARIANTS)}, got {variant!r}")
        layer = PerStepSTSALayer if variant == "no_temporal_relations" else STSALayer
        norm1 = make_feature_norm(norm, spec.channels, spatial)
        joint_qk_1, joint_qk_2 = ((spec.channels // 2, spec.mid_channels // 2)
                                  if single_qk == "half" else (spec.qk_dim_1, spec.qk_dim_2))
        if not enabled or variant == "no_layer1":
            self.layer1 = None
        elif variant == "single_similarity":
            self.layer1 = JointSTSALayer(spec.channels, joint_qk_1, norm1, spec.bottleneck,
                                         unpool)
        else:
            self.layer1 = layer(spec.channels, spec.qk_dim_1, 2, norm1, spec.bottleneck, unpool)
        # without STSA and keep_mid=False the branch's compressed tap goes to the decoder as is
        self.mid = (nn.Sequential(*conv_relu(spec.channels, spec.mid_channels, (1, 3, 3),
                                             (0, 1, 1)))
                    if enabled or keep_mid else nn.Identity())
        self.pool_sensitive = spec.bottleneck
        if variant == "single_similarity" and single_layers == "both" and enabled:
            self.layer2 = JointSTSALayer(spec.mid_channels, joint_qk_2,
                                         make_feature_norm(norm, spec.mid_channels, spatial),
                                         spec.bottleneck, unpool)
        elif not enabled or variant in ("no_layer2", "single_similarity"):
            self.layer2 = None
        else:
            self.layer2 = layer(spec.mid_channels, spec.qk_dim_2, 1,
                                make_feature_norm(norm, spec.mid_channels, spatial),
                                spec.bottleneck, unpool)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = run_fp32(self._first_half, x) if self.pool_sensitive else self._first_half(x)
        return x if self.layer2 is None else self.layer2(x)

    def _first_half(self, x: torch.Tensor) -> torch.Tensor:
        if self.layer1 is not None:
            x = self.layer1(x)
        return self.mid(x)
