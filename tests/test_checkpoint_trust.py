"""Checkpoints are data: a file cannot make stsanet-predict import, instantiate or run anything."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from pipeline_helpers import write_video
from stsanet.lit.checkpoint_info import CheckpointError
from stsanet.lit.config import CONF_DIR
from stsanet.lit.predict_run import run_predict


class OpensSentinelWhenUnpickled:
    """A pickle payload: unpickling it calls open(sentinel, "w"), i.e. creates the file."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = sentinel

    def __reduce__(self):
        return open, (str(self.sentinel), "w")


@pytest.fixture(scope="module")
def video(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("videos") / "four.mp4"
    write_video(path, num_frames=4)
    return path


def predict_cfg(video: Path, checkpoint: Path, output: Path, *extra: str):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("predict", overrides=[f"input={video}", f"checkpoint={checkpoint}",
                                            "progress=false", "overlay=false", *extra])
    OmegaConf.set_struct(cfg, False)
    cfg.output = str(output)
    cfg.pop("hydra", None)
    return cfg


def test_pickle_payload_is_refused_and_never_runs(video, tmp_path):
    sentinel = tmp_path / "payload_ran"
    checkpoint = tmp_path / "payload.ckpt"
    torch.save({"state_dict": {"net.w": torch.zeros(1)},
                "extra": OpensSentinelWhenUnpickled(sentinel)}, checkpoint)
    with pytest.raises(CheckpointError) as error:
        run_predict(predict_cfg(video, checkpoint, tmp_path / "out"))
    message = str(error.value)
    assert str(checkpoint) in message and "weights_only=True" in message
    assert "Nothing in it was run" in message
    assert not sentinel.exists()


@pytest.mark.parametrize("target, arguments", [
    ("builtins.open", {"file": "{sentinel}", "mode": "w"}),
    ("shutil.copyfile", {"src": "{source}", "dst": "{sentinel}"}),
    ("os.system", {"command": "touch {sentinel}"}),
])
def test_stored_model_config_naming_a_callable_is_refused(video, tmp_path, target, arguments):
    sentinel = tmp_path / "callable_ran"
    source = tmp_path / "source.txt"
    source.write_text("anything")
    stored = {"_target_": target, **{key: value.format(sentinel=sentinel, source=source)
                                     for key, value in arguments.items()}}
    checkpoint = tmp_path / "target.ckpt"
    torch.save({"state_dict": {"net.w": torch.zeros(1)}, "stsanet_model_config": stored},
               checkpoint)
    with pytest.raises(CheckpointError) as error:
        run_predict(predict_cfg(video, checkpoint, tmp_path / "out"))
    message = str(error.value)
    assert str(checkpoint) in message and f"_target_={target!r} is refused" in message
    assert not sentinel.exists()


def test_unknown_stored_model_field_is_named(video, tmp_path):
    checkpoint = tmp_path / "unknown.ckpt"
    torch.save({"state_dict": {"net.w": torch.zeros(1)},
                "stsanet_model_config": {"_target_": "stsanet.models.STSANet",
                                         "norm": "agnostic", "_recursive_": False,
                                         "activation": "relu"}}, checkpoint)
    with pytest.raises(CheckpointError, match=r"unknown model field\(s\) _recursive_, activation"):
        run_predict(predict_cfg(video, checkpoint, tmp_path / "out"))


def test_bad_stored_model_value_is_named(video, tmp_path):
    checkpoint = tmp_path / "bad_value.ckpt"
    torch.save({"state_dict": {"net.w": torch.zeros(1)},
                "stsanet_model_config": {"norm": "batch"}}, checkpoint)
    with pytest.raises(CheckpointError, match="cannot build STSANet: norm must be one of"):
        run_predict(predict_cfg(video, checkpoint, tmp_path / "out"))
