"""stsanet-export: the ONNX model (export-friendly unpool) matches PyTorch under onnxruntime."""

import numpy as np
import onnxruntime as ort
import torch

from model_helpers import SMALL, clip
from stsanet.cli.export import main
from stsanet.models import STSANet
from stsanet.models.weights import save_weights

OVERRIDES = ["model.norm=agnostic", f"model.input_size=[{SMALL[0]},{SMALL[1]}]"]


def test_onnx_and_torchscript_match_pytorch_with_given_weights(tmp_path, capsys):
    # Seeded default weights. (With adversarially random BatchNorm statistics a last-bit
    # difference of onnxruntime's convs can move a branch-0 max-pool argmax, and MaxUnpool then
    # relocates a whole value: the official architecture is discontinuous there.)
    torch.manual_seed(0)
    model = STSANet(norm="agnostic", input_size=SMALL).eval()
    weights = tmp_path / "w.pth"
    save_weights(model, weights)
    onnx_path, ts_path = tmp_path / "out" / "m.onnx", tmp_path / "m.pt"
    main(["-o", str(onnx_path), "--checkpoint", str(weights), "--torchscript", str(ts_path),
          *OVERRIDES])
    assert "max |diff|" in capsys.readouterr().out
    # an independent check: the exported file against the PyTorch model on another clip
    x = clip(seed=9)
    with torch.no_grad():
        expected = model(x).numpy()
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    (out,) = session.run(None, {"clip": x.numpy()})
    assert out.shape == expected.shape
    assert np.abs(out - expected).max() <= 1e-4
    assert torch.allclose(torch.jit.load(str(ts_path))(x), torch.from_numpy(expected), atol=1e-5)
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_bad_checkpoint_is_a_clear_error(tmp_path, capsys):
    missing = tmp_path / "nope.pth"
    assert main(["-o", str(tmp_path / "m.onnx"), "--checkpoint", str(missing), *OVERRIDES]) == 2
    assert "nope.pth" in capsys.readouterr().err
    assert not (tmp_path / "m.onnx").exists()
