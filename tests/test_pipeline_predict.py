"""The sliding-window predictor: windows, batching, outputs, resumption, bad inputs."""

from __future__ import annotations

from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from pipeline_helpers import MeanFrameNet, expected_map, write_video
from stsanet.data.frames import open_frame_source
from stsanet.runs.predictor import (PredictOptions, SlidingWindowPredictor, find_inputs,
                             predict_inputs, to_uint8)

N_FRAMES = 40


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("videos") / "moving.mp4"
    write_video(path, N_FRAMES)
    return path


@pytest.mark.parametrize("supervision", ["middle", "last"])
def test_windows_edges_and_outputs(video, tmp_path, supervision):
    net = MeanFrameNet()
    options = PredictOptions(supervision=supervision, batch_windows=6, save_float=True,
                             progress=False)
    predictor = SlidingWindowPredictor(net, (32, 64), "cpu", options)
    out = predictor.predict_video(video, tmp_path)
    source = open_frame_source(video)
    assert out.maps == tmp_path / "moving" / "maps"
    maps = sorted(out.maps.glob("*.png"))
    assert [m.name for m in maps] == [f"{i:04d}.png" for i in range(1, N_FRAMES + 1)]
    calls = predictor.model.net.calls  # the predictor's copy of the network (channels-last on CPU)
    assert max(calls) <= 6 and sum(calls) == N_FRAMES
    for t in (0, 1, N_FRAMES // 2, N_FRAMES - 1):
        want = expected_map(net, source, t, supervision, (32, 64))
        got = np.load(tmp_path / "moving" / "float" / f"{t + 1:04d}.npy")
        assert got.shape == (source.height, source.width)
        np.testing.assert_allclose(got, want, atol=1e-5)
        png = np.asarray(Image.open(out.map(t)))
        assert png.dtype == np.uint8 and png.shape == got.shape and png.max() == 255
        np.testing.assert_array_equal(png, to_uint8(want))
    with av.open(str(tmp_path / "moving" / "overlay.mp4")) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == N_FRAMES
    assert not list(tmp_path.rglob("*.tmp")) and not list(tmp_path.rglob(".*"))


def test_resumption_recomputes_only_missing_frames(video, tmp_path):
    options = PredictOptions(batch_windows=8, progress=False, overlay=False)
    first = MeanFrameNet()
    out = SlidingWindowPredictor(first, (32, 64), "cpu", options).predict_video(video, tmp_path)
    before = {p.name: p.read_bytes() for p in out.maps.glob("*.png")}
    for t in (3, 17, 39):
        out.map(t).unlink()
    second = MeanFrameNet()
    predictor = SlidingWindowPredictor(second, (32, 64), "cpu", options)
    predictor.predict_video(video, tmp_path)
    assert predictor.model.net.calls == [3]
    after = {p.name: p.read_bytes() for p in out.maps.glob("*.png")}
    assert after == before


def test_frame_folder_and_bad_video_in_a_folder(video, tmp_path):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    (inputs / "good.mp4").write_bytes(video.read_bytes())
    (inputs / "broken.mp4").write_bytes(b"\x00\x01 not a video" * 100)
    frames_dir = inputs / "frames"
    frames_dir.mkdir()
    for i, frame in enumerate(open_frame_source(video).read(range(5))):
        Image.fromarray(frame).save(frames_dir / f"{i + 1:04d}.png")
    found = find_inputs(inputs)
    assert [p.name for p in found] == ["broken.mp4", "frames", "good.mp4"]
    predictor = SlidingWindowPredictor(MeanFrameNet(), (32, 64), "cpu",
                                       PredictOptions(progress=False))
    outcomes = {o.path.name: o for o in predict_inputs(predictor, found, tmp_path / "out")}
    assert "broken.mp4" in outcomes["broken.mp4"].error
    assert outcomes["broken.mp4"].outputs is None
    assert len(list((tmp_path / "out/good/maps").glob("*.png"))) == N_FRAMES
    assert len(list((tmp_path / "out/frames/maps").glob("*.png"))) == 5
    assert (tmp_path / "out/good/overlay.mp4").is_file()


def test_missing_input_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing-here"):
        find_inputs(tmp_path / "nothing-here")


def test_bf16_precision_runs_the_model_under_autocast_and_checks_its_option(video, tmp_path):
    from stsanet.models import STSANet

    torch.manual_seed(0)
    net = STSANet(norm="agnostic", input_size=(32, 64)).eval()
    frames = [0, 20]
    maps = {}
    for precision in ("fp32", "bf16"):
        options = PredictOptions(batch_windows=2, overlay=False, save_float=True, progress=False,
                                 precision=precision)
        out = SlidingWindowPredictor(net, (32, 64), "cpu", options).predict_video(
            video, tmp_path / precision, frames=frames)
        maps[precision] = np.stack([np.load(out.float_map(t)) for t in frames])
    # bf16 convs move the map a little, never much (default init gives a smooth map)
    assert not np.array_equal(maps["bf16"], maps["fp32"])
    np.testing.assert_allclose(maps["bf16"], maps["fp32"], atol=2e-2)
    with pytest.raises(ValueError, match="precision must be one of"):
        PredictOptions(precision="fp16")
