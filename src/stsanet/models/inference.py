"""A network prepared for prediction: eval mode, no autograd, a precision, a memory format,
optionally compiled.

Training uses the network as it is; prediction, evaluation and the benchmarks get their speed
here, through public means only: channels-last 3D convolution weights and clips (on CPU the
convolutions, pools and everything following their layout run faster there), and
`torch.compile` (inductor with `freezing`: BatchNorms folded into the convolutions, weights
prepacked). When it changes the layout or compiles, an `InferenceModel` holds its own copy of
the network (a snapshot: a later change of the network it was made from does not reach it;
build a new one), so the caller's network, its checkpoints and other `InferenceModel`s of it
are untouched.
"""

from __future__ import annotations

import copy

import torch
from torch import nn

PRECISIONS = ("fp32", "bf16")

# compile=auto on CPU: compiling pays when the windows to predict save more than the compile
# costs. Measured by `make bench` (benchmarks/bench_speed.py; 2 shared cores, Intel Xeon with
# AVX-512 and AMX, 1 thread; 32 x 224 x 384, channels-last both ways, compile from a cold
# cache): at 4 windows per call, the predictor's default, the compiled model saved 14 % of an
# eager window and paid for its compile (227 s) after 245 windows; at 1 window per call, 2 %
# and 590 windows. A compile costs about the same at any input size while a window's saving
# grows with its pixels, so the break-even scales with 1 / pixels. (With inductor's on-disk
# cache warm a compile took 12 s: auto stays on the safe side.)
CPU_COMPILE_BREAK_EVEN_WINDOWS = 250
CPU_COMPILE_BREAK_EVEN_PIXELS = 224 * 384


def cpu_compile_break_even(input_size) -> int:
    """Windows after which a compiled model has paid for its compile on CPU."""
    pixels = input_size[0] * input_size[1]
    return max(1, round(CPU_COMPILE_BREAK_EVEN_WINDOWS * CPU_COMPILE_BREAK_EVEN_PIXELS / pixels))


def resolve_compile(compile: bool | str, device: torch.device | str, windows: int | None,
                    input_size) -> bool:
    """``compile=auto``: on GPUs always (inductor's kernels pay after a few windows there); on
    CPU when ``windows`` (the windows this model will run, None: unknown) reach the measured
    break-even (:func:`cpu_compile_break_even`)."""
    if isinstance(compile, bool):
        return compile
    if compile != "auto":
        raise ValueError(f"compile must be true, false or auto, got {compile!r}")
    if torch.device(device).type == "cuda":
        return True
    return windows is not None and windows >= cpu_compile_break_even(input_size)


def to_channels_last(net: nn.Module) -> nn.Module:
    """Channels-last 3D weights for every 3-D convolution (`Module.to(memory_format=...)`,
    per convolution: other modules hold 4-D parameters that format does not apply to)."""
    for module in net.modules():
        if isinstance(module, nn.Conv3d):
            module.to(memory_format=torch.channels_last_3d)
    return net


class InferenceModel:
    """`model(clips)` -> fp32 maps, under `torch.no_grad()` and the chosen precision.

    precision: "fp32", or "bf16" (autocast; the model's own policy keeps its precision-critical
      parts fp32, see `stsanet.models.precision`). bf16 pays off where the hardware has it
      (GPUs, CPUs with AMX).
    channels_last: channels-last 3D convolution weights and clips; None: on CPU, where it was
      measured faster (make bench: 1.2x at the paper size, maps within eager's own spread).
    compile: `torch.compile` with inductor and freezing. One compile serves one input shape
      (`dynamic=False`), so callers keep the batch fixed (pad the last one); inductor's on-disk
      cache lets a later process skip most of the compile.
    """

    def __init__(self, net: nn.Module, device: torch.device | str = "cpu",
                 precision: str = "fp32", compile: bool = False,
                 channels_last: bool | None = None):
        if precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {list(PRECISIONS)}, got {precision!r}")
        self.device = torch.device(device)
        self.precision = precision
        self.compiled = bool(compile)
        self.channels_last = self.device.type == "cpu" if channels_last is None else channels_last
        if self.compiled or self.channels_last:
            net = copy.deepcopy(net)
        self.net = net.eval().requires_grad_(False).to(self.device)
        if self.channels_last:
            to_channels_last(self.net)
        self._forward = (torch.compile(self.net, dynamic=False, options={"freezing": True})
                         if self.compiled else self.net)

    def __call__(self, clips: torch.Tensor) -> torch.Tensor:
        clips = clips.to(self.device)
        if self.channels_last:
            clips = clips.contiguous(memory_format=torch.channels_last_3d)
        with torch.no_grad(), torch.autocast(self.device.type, dtype=torch.bfloat16,
                                             enabled=self.precision == "bf16"):
            return self._forward(clips).float()
