"""Model statistics for Table I: parameters, size, conv/attention MACs, stage shapes.

MACs are counted with torch's flop counter on the meta device, so no real paper-size
forward (seconds of CPU, GBs of memory) is needed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch.utils.flop_counter import FlopCounterMode

from .channels import CLIP_LENGTH
from .stsanet import STSANet


@dataclass
class ModelProfile:
    config: dict
    parameters: int
    size_mb: float
    state_dict_entries: int
    conv_gmac: float
    attention_gmac: float
    other_gflop: float
    groups: dict[str, int] = field(default_factory=dict)
    shapes: dict[str, tuple[int, ...]] = field(default_factory=dict)


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


# Parameter groups like SPEC section 10, by our module names (robust to ablation variants).
GROUPS = (
    ("backbone (S3D)", r"backbone\."),
    ("temporal compression", r"compress\."),
    ("STSA embeddings", r"stsa\.\d+\.layer\d\.embed\."),
    ("STSA mid convs", r"stsa\.\d+\.mid\."),
    ("STSA norms", r"stsa\.\d+\.layer\d\.norm\."),
    ("decoder top conv", r"decoder\.top\."),
    ("AMSF stages", r"decoder\.stages\."),
    ("readout", r"decoder\.readout\."),
)


def parameter_groups(model: torch.nn.Module) -> dict[str, int]:
    groups = {name: 0 for name, _ in GROUPS}
    for key, p in model.named_parameters():
        name = next((n for n, pattern in GROUPS if re.match(pattern, key)), "other")
        groups[name] = groups.get(name, 0) + p.numel()
    return groups


def profile(batch: int = 1, build=STSANet, **options) -> ModelProfile:
    """Build `build(**options)` (STSANet or a variant) on the meta device and count one forward.

    Nothing is computed: the meta device only propagates shapes, and the flop counter sums
    convolution and attention-matmul MACs (batch-matmul FLOPs / 2).
    """
    requested_unpool = options.get("unpool", "maxunpool")
    # Same MACs either way; the export-friendly unpool has meta kernels for every op.
    options = {**options, "unpool": "export_friendly"}
    with torch.device("meta"):
        model = build(**options).eval()
        clip = torch.empty(batch, 3, CLIP_LENGTH, *model.input_size)
    counter = FlopCounterMode(display=False)
    with counter:
        stages = model.trace_stages(clip)
    flops = {str(op): n for op, n in counter.get_flop_counts()["Global"].items()}
    conv = flops.pop("aten.convolution", 0)
    # Plain batch matmuls, or fused attention kernels where a formulation uses them.
    attention = sum(flops.pop(op) for op in list(flops)
                    if op == "aten.bmm" or "scaled_dot_product" in op)
    params = _count(model)
    return ModelProfile(
        config={**getattr(model, "config", options), "unpool": requested_unpool},
        parameters=params,
        size_mb=params * 4 / 1e6,
        state_dict_entries=len(model.state_dict()),
        conv_gmac=conv / 2e9,
        attention_gmac=attention / 2e9,
        other_gflop=sum(flops.values()) / 1e9,
        groups=parameter_groups(model),
        shapes={k: tuple(v.shape) for k, v in stages.items()},
    )
