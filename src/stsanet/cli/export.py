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
fails if they differ by more than --tolerance. Files are written atomically.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stsanet.atomic import atomic_path


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
        torch.onnx.export(model, (clip,), str(temporary), input_names=["clip"],
                          output_names=["saliency"], opset_version=opset, dynamo=False)


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


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="stsanet-export", description=__doc__.splitlines()[0])
    parser.add_argument("--output", "-o", type=Path, required=True, help="the .onnx file")
    parser.add_argument("--checkpoint", help="STSANet weights (any format load_weights reads)")
    parser.add_argument("--torchscript", type=Path, help="also write a traced TorchScript file")
    parser.add_argument("--opset", type=int, default=17)
    parser.add_argument("--batch", type=int, default=1, help="batch size of the exported graph")
    parser.add_argument("--tolerance", type=float, default=1e-4)
    parser.add_argument("overrides", nargs="*", help="model config overrides")
    args = parser.parse_args(argv)

    import torch

    try:
        model = build_model(args.overrides, args.checkpoint)
    except Exception as error:  # config and weight errors carry their own explanation
        print(f"stsanet-export: {error}", file=sys.stderr)
        sys.exit(2)
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
            print(f"stsanet-export: the ONNX output differs from PyTorch by {diff:.3g} "
                  f"> --tolerance {args.tolerance}", file=sys.stderr)
            sys.exit(1)


if __name__ == "__main__":
    main()
