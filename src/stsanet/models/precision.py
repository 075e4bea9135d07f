"""The precision policy: what stays fp32 under autocast, and what stays exact when compiled.

Under `torch.autocast` (bf16 or fp16: `stsanet-predict precision=bf16`, Lightning's
`bf16-mixed` / `16-mixed`, a compiled model under autocast) most of the network may run in
reduced precision, but three parts may not:

* the pool-sensitive region, upstream of a bottleneck max-pool (SPEC 3.4): the pool's indices
  place the attention output of each 2 x 2 window, and where a window is (nearly) tied, as
  the all-zero windows after a ReLU are, the last bit of its input decides the place. The
  input normalisation and the backbone up to the deepest bottleneck tap, that branch's temporal
  compression, STSA layer I and mid conv run in `run_exact`: fp32, and outside compiled graphs,
  so they compute the eager model's bits (compiled, a 1e-8 difference there gave a CC of 0.96
  against the eager map on a randomized model; plain bf16 autocast 0.68);
* the attention: queries, keys, their unscaled products and the softmax (the logits reach
  values whose bf16 rounding moves the softmax visibly, and overflow fp16);
* the readout, whose sigmoid output in bf16 has steps of 0.004 near 0.5.

Outside autocast and compilation these regions change nothing. Only public means are used
(autocast regions, casts, `torch.compiler.disable`), so eager, `torch.compile`, Lightning's
mixed precision and ONNX export all obey it.
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


@torch.compiler.disable
def run_exact(function: Callable[..., torch.Tensor], x: torch.Tensor, *args) -> torch.Tensor:
    """`function(x, *args)` as the eager model computes it: fp32 under autocast, and eager
    inside a compiled model (a graph break), for the pool-sensitive region."""
    with full_precision(x):
        return function(fp32(x), *args)
