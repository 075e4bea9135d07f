"""1 x 2 x 2 max-pool with indices and its inverse, in two interchangeable formulations."""

from __future__ import annotations

import torch
from torch import nn

POOL_KERNEL = (1, 2, 2)


class ExportFriendlyMaxUnpool(nn.Module):
    """Same numbers as `nn.MaxUnpool3d((1, 2, 2))` without the MaxUnpool op (blocks ONNX export).

    Every pooled value is repeated over its 2 x 2 window, then kept only at the position the
    pool's index points to: the index grid is compared with the flat position of each output
    element, so ties in the pooled input resolve exactly as max-pool chose them.
    """

    def forward(self, x: torch.Tensor, indices: torch.Tensor, output_size) -> torch.Tensor:
        b, c, t, h, w = x.shape
        out_h, out_w = int(output_size[-2]), int(output_size[-1])
        if (out_h, out_w) != (2 * h, 2 * w):
            raise ValueError(
                f"export-friendly unpool needs an output exactly twice the pooled size, got "
                f"{h}x{w} -> {out_h}x{out_w}; use even H and W (multiples of 32 at the input)"
            )
        up = _repeat_2x2(x)
        up_indices = _repeat_2x2(indices)
        positions = torch.arange(t * out_h * out_w, device=x.device).view(1, 1, t, out_h, out_w)
        return torch.where(up_indices == positions, up, torch.zeros((), dtype=x.dtype, device=x.device))


def _repeat_2x2(x: torch.Tensor) -> torch.Tensor:
    b, c, t, h, w = x.shape
    return x[:, :, :, :, None, :, None].expand(b, c, t, h, 2, w, 2).reshape(b, c, t, 2 * h, 2 * w)


class MaxUnpool(nn.Module):
    """The official formulation (`nn.MaxUnpool3d`), with the same call signature."""

    def __init__(self):
        super().__init__()
        self.unpool = nn.MaxUnpool3d(POOL_KERNEL, POOL_KERNEL)

    def forward(self, x: torch.Tensor, indices: torch.Tensor, output_size) -> torch.Tensor:
        return self.unpool(x, indices, output_size=output_size)


UNPOOL_CHOICES = {"maxunpool": MaxUnpool, "export_friendly": ExportFriendlyMaxUnpool}


def make_unpool(kind: str) -> nn.Module:
    if kind not in UNPOOL_CHOICES:
        raise ValueError(f"unpool must be one of {sorted(UNPOOL_CHOICES)}, got {kind!r}")
    return UNPOOL_CHOICES[kind]()
