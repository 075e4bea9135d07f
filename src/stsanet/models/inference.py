"""A network prepared for prediction: eval mode, no autograd, a precision, optionally compiled.

Training uses the network as it is; prediction, evaluation and the benchmarks get their speed
from `torch.compile` here. A compiled `InferenceModel` is a snapshot: inductor's `freezing`
turns the weights into constants of the compiled graph (folding BatchNorms, prepacking conv
weights), so it holds its own copy of the network, and a later change of the network it was
made from does not reach it: build a new one.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16")


class InferenceModel:
    """`model(clips)` -> fp32 maps, under `torch.no_grad()` and the chosen precision.

    precision: "fp32", or "bf16" (autocast; the model's own policy keeps its precision-critical
      parts fp32, see `stsanet.models.precision`). bf16 pays off where the hardware has it
      (GPUs, CPUs with AMX).
    compile: `torch.compile` with inductor and freezing. One compile serves one input shape
      (`dynamic=False`), so callers keep the batch fixed (pad the last one); inductor's on-disk
      cache lets a later process skip most of the compile.
    """

    def __init__(self, net: nn.Module, device: torch.device | str = "cpu",
                 precision: str = "fp32", compile: bool = False):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        self.device = torch.device(device)
        self.precision = precision
        self.compiled = bool(compile)
        if self.compiled:
            net = copy.deepcopy(net)
        self.net = net.eval().requires_grad_(False).to(self.device)
        self._forward = (torch.compile(self.net, dynamic=False, options={"freezing": True})
                         if self.compiled else self.net)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                             enabled=self.precision == "bf16"):
            return self._forward(clips.to(self.device)).float()
