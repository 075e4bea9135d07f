"""stsanet-predict's output folders know their source: a rerun continues its own maps, another
source is refused before the model loads (or replaced with overwrite=true), and two inputs that
share a stem never share a folder. The network is a small stand-in (this is about files)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf
from pipeline_helpers import MeanFrameNet, write_video

from stsanet.errors import OutputPlaceError
from stsanet.runs import predict as predict_module
from stsanet.runs.config import CONF_DIR
from stsanet.runs.predictor import SlidingWindowPredictor
from stsanet.runs.provenance import MANIFEST, output_names


@pytest.fixture
def nets(monkeypatch) -> list[MeanFrameNet]:
    """Every network run_predict builds, in order (none when it refuses before): the copy the
    predictor runs (channels-last on CPU), which records the windows it saw."""
    built = []

    def build(checkpoint, info, model_cfg):
        built.append(MeanFrameNet((64, 96)))
        return built[-1]

    def predictor(*args, **kwargs):
        made = SlidingWindowPredictor(*args, **kwargs)
        built[-1] = made.model.net
        return made

    monkeypatch.setattr(predict_module, "build_network", build)
    monkeypatch.setattr(predict_module, "SlidingWindowPredictor", predictor)
    return built


def checkpoint(path: Path) -> Path:
    torch.save({"state_dict": {"net.w": torch.zeros(1)},
                "stsanet": {"model": {"norm": "agnostic", "input_size": [64, 96]},
                            "supervision": "middle", "clip_len": 32}}, path)
    return path


def predict(source: Path, ckpt: Path, output: Path, *extra: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("predict", overrides=[f"input={source}", f"checkpoint={ckpt}",
                                            f"output={output}", "progress=false", "overlay=false",
                                            "batch_windows=8", *extra])
    OmegaConf.set_struct(cfg, False)
    cfg.pop("hydra", None)
    return predict_module.run_predict(cfg)


def maps(folder: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((folder / "maps").glob("*.png"))}


def test_a_rerun_continues_and_another_source_is_refused_or_replaced(tmp_path, nets):
    video, ckpt, out = tmp_path / "clip.mp4", checkpoint(tmp_path / "a.ckpt"), tmp_path / "out"
    write_video(video, num_frames=4)
    [outcome] = predict(video, ckpt, out)
    folder = out / "clip"
    record = json.loads((folder / MANIFEST).read_text())
    assert record["input"]["path"] == str(video.resolve()) and record["input"]["frames"] == 4
    assert record["checkpoint"]["path"] == str(ckpt.resolve())
    assert record["settings"] == {"supervision": "middle", "clip_len": 32, "input_size": [64, 96],
                                  "precision": "fp32"}
    first = maps(folder)
    assert outcome.error is None and len(first) == 4 and nets[0].calls == [4]

    predict(video, ckpt, out)  # same source: nothing to do
    assert nets[1].calls == [] and maps(folder) == first

    other = checkpoint(tmp_path / "b.ckpt")
    with pytest.raises(OutputPlaceError, match=r"holds maps of another checkpoint \(.*a.ckpt"):
        predict(video, other, out)
    assert len(nets) == 2 and maps(folder) == first  # refused before the model was built
    with pytest.raises(OutputPlaceError, match=r"other settings \(precision=fp32\)"):
        predict(video, ckpt, out, "precision=bf16")

    write_video(video, num_frames=6)  # the input changed under the same name
    with pytest.raises(OutputPlaceError, match="an earlier version of this input.*overwrite=true"):
        predict(video, ckpt, out)
    predict(video, ckpt, out, "overwrite=true")
    assert len(maps(folder)) == 6 and json.loads((folder / MANIFEST).read_text())["input"]["frames"] == 6


def test_maps_without_a_record_are_not_resumed(tmp_path, nets):
    video, ckpt, out = tmp_path / "clip.mp4", checkpoint(tmp_path / "a.ckpt"), tmp_path / "out"
    write_video(video, num_frames=4)
    predict(video, ckpt, out)
    (out / "clip" / MANIFEST).unlink()  # maps from an older version, or from elsewhere
    with pytest.raises(OutputPlaceError, match=r"files with no record of their source"):
        predict(video, ckpt, out)


def test_an_interrupted_folder_is_continued(tmp_path, nets):
    video, ckpt, out = tmp_path / "clip.mp4", checkpoint(tmp_path / "a.ckpt"), tmp_path / "out"
    write_video(video, num_frames=4)
    predict(video, ckpt, out)
    for name in ("0003.png", "0004.png"):  # as if stopped after two frames
        (out / "clip" / "maps" / name).unlink()
    predict(video, ckpt, out)
    assert nets[1].calls == [2] and len(maps(out / "clip")) == 4


def test_inputs_sharing_a_stem_get_folders_of_their_own(tmp_path, nets):
    inputs = tmp_path / "inputs"
    inputs.mkdir()
    write_video(inputs / "clip.mp4", num_frames=4)
    shutil.copy(inputs / "clip.mp4", inputs / "clip.avi")
    write_video(inputs / "other.mp4", num_frames=4)
    assert output_names(sorted(inputs.iterdir())) == {
        inputs / "clip.avi": "clip_avi", inputs / "clip.mp4": "clip_mp4",
        inputs / "other.mp4": "other"}
    outcomes = predict(inputs, checkpoint(tmp_path / "a.ckpt"), tmp_path / "out")
    assert [o.outputs.maps.parent.name for o in outcomes] == ["clip_avi", "clip_mp4", "other"]
    for name in ("clip_avi", "clip_mp4"):
        record = json.loads((tmp_path / "out" / name / MANIFEST).read_text())
        assert record["input"]["path"].endswith(name.replace("_", "."))
