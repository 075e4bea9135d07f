"""The precision policy: what stays fp32 under autocast.

Under `torch.autocast` (bf16 or fp16: `stsanet-predict precision=bf16`, Lightning's
`bf16-mixed` / `16-mixed`, a compiled model under autocast) most of the network may run in
reduced precision, but three parts may not:

* the pool-sensitive region, upstream of a bottleneck max-pool (SPEC 3.4): the pool's indices
  place the attention output of each 2 x 2 window, and where a window is nearly tied the last
  bits of its input decide the place. The input normalisation and the backbone up to the
  deepest bottleneck tap, that branch's temporal compression, STSA layer I and mid conv run in
  `run_fp32` (plain bf16 autocast there gave a CC of 0.68 against fp32 on a degenerate model);
* the attention: queries, keys, their unscaled products and the softmax (the logits reach
  values whose bf16 rounding moves the softmax visibly, and overflow fp16);
* the readout, whose sigmoid output in bf16 has steps of 0.004 near 0.5.

Outside autocast these regions change nothing. They are autocast regions and casts only (public
means, no graph break), so eager, `torch.compile` (the islands are inside the compiled graph),
Lightning's mixed precision and ONNX export all obey it. A compiled fp32 model is not bit-equal
to eager (fused kernels round differently); on default-init and random weights its maps agree
with eager's within eager's own spread, and where a model's pool inputs are nearly constant
eager disagrees with itself as much (batch 1 vs 2, channels-last vs contiguous: `make bench`
prints both beside the compiled route's CC).
"""

from __future__ import annotations

from collections.abc import Callable

import torch


def _device_type(x: torch.Tensor) -> str:
    # the meta device (shape and FLOP counts) has no autocast; its regions are no-ops
    return x.device.type if torch.amp.is_autocast_available(x.device.type) else "cpu"


def full_precision(x: torch.Tensor):
    """A region where autocast is off for `x`'s device (cast the inputs with `fp32`)."""
    return torch.autocast(_device_type(x), enabled=False)


def fp32(x: torch.Tensor) -> torch.Tensor:
    return x.float() if x.is_floating_point() else x


def run_fp32(function: Callable[..., torch.Tensor], x: torch.Tensor, *args) -> torch.Tensor:
    """`function(x, *args)` in fp32 under autocast, for the pool-sensitive region (inside a
    compiled graph like the rest)."""
    with full_precision(x):
        return function(fp32(x), *args)
