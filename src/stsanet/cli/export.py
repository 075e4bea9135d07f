"""stsanet-export: STSANet as an ONNX model (and optionally TorchScript), checked against PyTorch.

    stsanet-export --output stsanet.onnx --checkpoint stsanet_dhf1k.pth
    stsanet-export --output small.onnx model.norm=agnostic model.input_size=[64,96]
    stsanet-export --output m.onnx --torchscript m.pt --batch 2

Trailing arguments are Hydra overrides of the `model` config group (as for stsanet-info). The
exported graph uses the export-friendly unpool (same numbers as MaxUnpool3d, which ONNX lacks)
and the precision policy of the model (same weights; onnxruntime fuses on its own). The
shapes are static (the adaptive pools of AMSF need them): batch --batch, H and W those of
`model.input_size`. After writing, the ONNX model
is run under onnxruntime (CPU) on a random clip and its output compared with PyTorch's; the run
fails if they differ by more than --tolerance (exit status 1). Files are written atomically and
the arguments, output places and checkpoint are checked before the model is built; bad input
ends in one line (exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stsanet.atomic import atomic_path, check_file_place
from stsanet.cli.boundary import CommandParser, UsageError, command

NAME = "stsanet-export"
DEFAULT_OPSET = 17
# the opsets of torch's TorchScript-based exporter (torch.onnx._constants: 7..20); an opset too
# old for one of the network's operators is refused with its name when exporting
OPSETS = range(7, 21)


def build_model(overrides: list[str], checkpoint: str | None):
    from hydra.utils import get_class

    from stsanet.cli.info import model_options

    target, options = model_options(overrides)
    options["unpool"] = "export_friendly"
    model = get_class(target)(**options)
    if checkpoint:
        from stsanet.models.weights import load_weights

        load_weights(model, checkpoint)
    model.eval()
    return model


def export_onnx(model, clip, path: Path, opset: int) -> None:
    import torch

    with atomic_path(path) as temporary:
        try:
            torch.onnx.export(model, (clip,), str(temporary), input_names=["clip"],
                              output_names=["saliency"], opset_version=opset, dynamo=False)
        except torch.onnx.errors.OnnxExporterError as error:
            if opset == DEFAULT_OPSET:
                raise  # the default must export: a bug
            first = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise UsageError(f"--opset {opset}: the model does not export at this opset "
                             f"({first[:200]}); use --opset {DEFAULT_OPSET}") from None


def export_torchscript(model, clip, path: Path) -> None:
    import torch

    with atomic_path(path) as temporary:
        torch.jit.save(torch.jit.trace(model, (clip,), check_trace=False), str(temporary))


def onnx_max_difference(path: Path, clip, expected) -> float:
    import numpy as np
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (out,) = session.run(["saliency"], {"clip": clip.numpy()})
    return float(np.abs(out - expected.numpy()).max())


def _positive(kind):
    def parse(text: str):
        value = kind(text)
        if not value > 0:
            raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
        return value

    parse.__name__ = kind.__name__  # argparse names the type in its messages
    return parse


@command(NAME)
def main(argv: list[str] | None = None) -> int:
    parser = CommandParser(prog=NAME, description=__doc__.splitlines()[0])
    parser.add_argument("--output", "-o", type=Path, required=True, help="the .onnx file")
    parser.add_argument("--checkpoint", help="STSANet weights (any format load_weights reads)")
    parser.add_argument("--torchscript", type=Path, help="also write a traced TorchScript file")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, choices=OPSETS,
                        metavar=f"{OPSETS[0]}..{OPSETS[-1]}")
    parser.add_argument("--batch", type=_positive(int), default=1,
                        help="batch size of the exported graph (>= 1)")
    parser.add_argument("--tolerance", type=_positive(float), default=1e-4)
    parser.add_argument("overrides", nargs="*", help="model config overrides")
    args = parser.parse_args(argv)
    check_file_place(args.output, "--output")
    if args.torchscript is not None:
        check_file_place(args.torchscript, "--torchscript")
        if args.torchscript.resolve() == args.output.resolve():
            raise UsageError("--torchscript and --output name the same file; give two paths")
    if args.checkpoint is not None:
        if not Path(args.checkpoint).is_file():
            raise UsageError(f"--checkpoint {args.checkpoint}: file not found")
        from stsanet.lit.checkpoint_info import read_checkpoint

        read_checkpoint(args.checkpoint)  # readable as data, before the model is built

    import torch

    model = build_model(args.overrides, args.checkpoint)
    # inside a context, not torch.set_grad_enabled(False): main() is also called in-process
    with torch.no_grad():
        h, w = model.input_size
        clip = torch.rand(args.batch, 3, 32, h, w, generator=torch.Generator().manual_seed(0))
        expected = model(clip)
        export_onnx(model, clip, args.output, args.opset)
        diff = onnx_max_difference(args.output, clip, expected)
        print(f"wrote {args.output} (input B x 3 x 32 x {h} x {w}); onnxruntime vs PyTorch: "
              f"max |diff| = {diff:.3g}")
        if args.torchscript:
            export_torchscript(model, clip, args.torchscript)
            scripted = torch.jit.load(str(args.torchscript))
            ts_diff = float((scripted(clip) - expected).abs().max())
            print(f"wrote {args.torchscript}; TorchScript vs PyTorch: max |diff| = {ts_diff:.3g}")
        if not diff <= args.tolerance:
            print(f"{NAME}: the ONNX output differs from PyTorch by {diff:.3g} "
                  f"> --tolerance {args.tolerance}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
