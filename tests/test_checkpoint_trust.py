"""Checkpoints are data: a file cannot make stsanet-predict import, instantiate or run anything;
and a checkpoint carries what using it needs (supervised frame, clip length, model settings)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from omegaconf import OmegaConf

from model_helpers import SMALL, small_model
from pipeline_helpers import expected_map, write_video
from stsanet.data.frames import open_frame_source
from stsanet.lit.checkpoint_info import CheckpointError, run_info
from stsanet.errors import ConfigError
from stsanet.runs.config import CONF_DIR
from stsanet.runs.predict import run_predict
from stsanet.models import STSANet


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


# --------------------------------------------------------------- what a checkpoint carries
def tiny_checkpoint(path: Path, supervision: str) -> STSANet:
    """A checkpoint as stsanet-train writes it (weights under net., run info), tiny model."""
    net = small_model(seed=3)
    info = run_info(net, {"supervision": supervision, "clip_len": 32, "dataset": "synthetic"})
    torch.save({"state_dict": {f"net.{k}": v for k, v in net.state_dict().items()},
                "stsanet": info}, path)
    return net


def test_last_supervised_checkpoint_predicts_the_windows_last_frame(video, tmp_path):
    checkpoint = tmp_path / "last.ckpt"
    net = tiny_checkpoint(checkpoint, "last")
    # one window per forward pass, as the reference below runs them (batching moves the last bits)
    [outcome] = run_predict(predict_cfg(video, checkpoint, tmp_path / "out", "save_float=true",
                                        "batch_windows=1"))
    assert outcome.error is None
    source = open_frame_source(video)
    differs_from_middle = False
    for t in range(source.num_frames):
        got = np.load(tmp_path / "out" / "four" / "float" / f"{t + 1:04d}.npy")
        np.testing.assert_allclose(got, expected_map(net, source, t, "last", SMALL), atol=1e-5)
        middle = expected_map(net, source, t, "middle", SMALL)
        differs_from_middle |= not np.allclose(got, middle, atol=1e-3)
    assert differs_from_middle  # the two windows give different maps: the test can tell them apart


def test_override_contradicting_the_checkpoint_is_refused_by_name(video, tmp_path):
    checkpoint = tmp_path / "last.ckpt"
    tiny_checkpoint(checkpoint, "last")
    with pytest.raises(ConfigError, match="supervision=middle contradicts checkpoint=.*trained "
                                          "with supervision=last; drop supervision="):
        run_predict(predict_cfg(video, checkpoint, tmp_path / "out", "supervision=middle"))
    with pytest.raises(ConfigError, match=r"model.input_size=\[224,384\]: checkpoint=.* carries "
                                          r"its model settings .*drop the model.input_size"):
        run_predict(predict_cfg(video, checkpoint, tmp_path / "out"),
                    overrides=["model.input_size=[224,384]"])
    # agreeing with the checkpoint is fine
    [outcome] = run_predict(predict_cfg(video, checkpoint, tmp_path / "out", "supervision=last"))
    assert outcome.error is None
