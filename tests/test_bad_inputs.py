"""The table of bad inputs: every command, given something wrong, ends with one line on stderr
naming the input and the fix, a known exit status, and nothing half-written.

Each case runs the command's entry point in this process (``main(argv)``, as the console script
does, SystemExit caught, stderr captured) in a folder of its own; after it, that folder may hold
only what the case expects (Hydra's job record is allowed) and no temporary file, and the
shared inputs are unchanged. A few cases run as real processes: one per console script (the
real exit-status path) and Ctrl-C / SIGTERM in the middle of a generation.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import pytest
import torch
from hydra.core.global_hydra import GlobalHydra
from metrics_helpers import write_png
from pipeline_helpers import write_video

from stsanet.cli import (check_data, compare, evaluate, export, info, make_synthetic, predict,
                         reproduce, train)
from stsanet.data.synthetic import SyntheticSize, generate
from stsanet.data.video_writer import write_video as encode_video

BIN = Path(sys.executable).parent
NO_GPU = not torch.cuda.is_available()
MAIN = {"stsanet-train": train.main, "stsanet-predict": predict.main,
        "stsanet-eval": evaluate.main, "stsanet-check-data": check_data.main,
        "stsanet-make-synthetic": make_synthetic.main, "stsanet-export": export.main,
        "stsanet-info": info.main, "stsanet-compare": compare.main, "reproduce": reproduce.main}


# ---------------------------------------------------------------------------------------------
# the shared inputs (built once; every case checks they are left as they were)
# ---------------------------------------------------------------------------------------------

def _unwritable(base: Path) -> Path | None:
    """A folder nothing can be created in: a read-only one for a normal user; root writes
    anywhere, but not in /sys."""
    if os.geteuid() != 0:
        folder = base / "read-only"
        folder.mkdir()
        folder.chmod(0o555)
        return folder
    probe = Path("/sys/stsanet-write-probe")
    try:
        probe.mkdir()
    except OSError:
        return Path("/sys")
    probe.rmdir()
    return None


def _fake_checkpoint(path: Path, **run_info) -> Path:
    """A checkpoint as stsanet-train writes one (run info and model settings), without weights:
    the cases it serves stop before the network is built."""
    info_entry = {"model": {"norm": "agnostic", "input_size": [64, 96]}, "supervision": "middle",
                  "clip_len": 32, "dataset": "synthetic", **run_info}
    torch.save({"state_dict": {"net.w": torch.zeros(1)}, "stsanet": info_entry}, path)
    return path


@pytest.fixture(scope="module")
def world(tmp_path_factory) -> dict:
    base = tmp_path_factory.mktemp("world")
    w = {"base": base}
    # a tiny dataset in the DHF1K layout (2 videos of 8 frames, 64 x 96)
    w["dataset"] = generate(base / "dataset", SyntheticSize(videos=2, train_videos=1, frames=8,
                                                            height=64, width=96), seed=0)
    w["video"] = base / "four.mp4"
    write_video(w["video"], num_frames=4)
    w["tiny_video"] = base / "tiny.mp4"  # 1 x 1 pixels
    encode_video(w["tiny_video"], np.full((4, 1, 1, 3), 90, np.uint8), "mpeg4", 10)
    (base / "empty.mp4").write_bytes(b"")
    (base / "empty-folder").mkdir()
    w["checkpoint"] = _fake_checkpoint(base / "run.ckpt")
    w["last_checkpoint"] = _fake_checkpoint(base / "last-supervised.ckpt", supervision="last")
    torch.save({"fc.weight": torch.randn(4, 4), "fc.bias": torch.randn(4)}, base / "random.pt")
    (base / "zero.pt").write_bytes(b"")
    torch.save({"state_dict": {"net.w": torch.zeros(1000)}}, base / "whole.pt")
    data = (base / "whole.pt").read_bytes()
    (base / "cut.pt").write_bytes(data[: len(data) // 2])
    (base / "notes.txt").write_text("not weights\n")
    (base / "a-file").write_text("a file where a folder belongs\n")
    w["unwritable"] = _unwritable(base)
    # ground truth / predictions folder pair (eval): 2 videos x 2 frames, 24 x 32
    rng = np.random.default_rng(0)
    for video in ("0005", "0006"):
        for frame in ("0001", "0002"):
            gt = base / "gt" / video
            write_png(gt / "maps" / f"{frame}.png", rng.integers(1, 256, (24, 32)))
            fix = np.zeros((24, 32), np.uint8)
            fix[rng.integers(0, 24, 5), rng.integers(0, 32, 5)] = 255
            write_png(gt / "fixation" / f"{frame}.png", fix)
            write_png(base / "preds" / video / f"{frame}.png", rng.integers(0, 256, (24, 32)))
            write_png(base / "preds-unpadded" / str(int(video)) / f"{frame}.png",
                      rng.integers(0, 256, (24, 32)))
            write_png(base / "preds-wide" / video / f"{frame}.png", rng.integers(0, 256, (24, 64)))
    (base / "preds-corrupt" / "0005").mkdir(parents=True)
    for video in ("0005", "0006"):
        for frame in ("0001", "0002"):
            target = base / "preds-corrupt" / video / f"{frame}.png"
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes((base / "preds" / video / f"{frame}.png").read_bytes())
    (base / "preds-corrupt" / "0005" / "0002.png").write_bytes(b"garbage")
    # ground truth that cannot score: an all-black map (0006/0002), an empty fixation map
    # (0005/0002)
    for name in ("gt-black", "gt-empty"):
        for video in ("0005", "0006"):
            for sub in ("maps", "fixation"):
                for frame in ("0001", "0002"):
                    source = base / "gt" / video / sub / f"{frame}.png"
                    target = base / name / video / sub / f"{frame}.png"
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(source.read_bytes())
    write_png(base / "gt-black" / "0006" / "maps" / "0002.png", np.zeros((24, 32)))
    write_png(base / "gt-empty" / "0005" / "fixation" / "0002.png", np.zeros((24, 32)))
    # a dataset root whose annotations cannot score: one all-black map, one empty fixation map
    w["dataset_black"] = generate(base / "dataset-black", SyntheticSize(
        videos=2, train_videos=1, frames=8, height=64, width=96), seed=0)
    write_png(w["dataset_black"] / "annotation" / "0001" / "maps" / "0003.png", np.zeros((64, 96)))
    write_png(w["dataset_black"] / "annotation" / "0002" / "fixation" / "0004.png",
              np.zeros((64, 96)))
    # annotation folders named after other videos than the ones there
    shutil.copytree(w["dataset"], base / "mismatched")
    for old, new in (("0001", "0009"), ("0002", "0010")):
        (base / "mismatched" / "annotation" / old).rename(base / "mismatched" / "annotation" / new)
    # an interrupted synthetic generation (the partial marker, some files)
    (base / "interrupted").mkdir()
    (base / "interrupted" / "synthetic.partial.json").write_text(json.dumps({"size": "ci", "seed": 3}))
    (base / "other").mkdir()
    (base / "other" / "notes.md").write_text("someone's folder\n")
    w["snapshot"] = _snapshot(base)
    return w


def _snapshot(folder: Path) -> dict[str, tuple[int, int]]:
    return {str(p.relative_to(folder)): (p.stat().st_size, p.stat().st_mtime_ns)
            for p in sorted(folder.rglob("*")) if p.is_file()}


# ---------------------------------------------------------------------------------------------
# the cases
# ---------------------------------------------------------------------------------------------

@dataclass
class Case:
    id: str
    command: str
    argv: args
    code: int
    says: tuple[str, ...]  # in the one line (world paths as {name})
    # files the case may leave in its folder (glob patterns), besides Hydra's record
    leaves: tuple[str, ...] = ()
    skip: str | None = None
    lines: int = 1  # lines on stderr naming the command


def W(text: str) -> Callable[[dict, Path], str]:
    return lambda w, here: text.format(**{k: v for k, v in w.items() if isinstance(v, Path)},
                                       here=here)


class args:
    """The arguments of a case, with {world paths} and {here} (the case's folder)."""

    def __init__(self, *parts: str):
        self.parts = parts

    def __call__(self, w: dict, here: Path) -> list[str]:
        return [W(p)(w, here) for p in self.parts]


def hydra_run(*parts: str) -> args:
    """Hydra apps write their job record into the case's folder."""
    return args(*parts, "hydra.run.dir={here}/hydra")


def _train(*parts: str) -> args:
    return hydra_run("logger=none", "data.root={dataset}", "data.num_workers=0",
                     "experiment=demo", "++trainer.max_steps=1", *parts)


def _predict(*parts: str) -> args:
    return hydra_run("progress=false", "output={here}/out", *parts)


def _eval(*parts: str) -> args:
    return hydra_run("progress=false", "output={here}/out", "n_splits=5", *parts)


READ_ONLY = "no folder here refuses writes to this user (root, /sys writable)"
GPU = "a CUDA GPU is visible"
RESULTS = ("out/results.*", "out/frames.csv")

CASES = [
    # ---- stsanet-train: values typed and in range, files present, before anything is built
    Case("train-max-epochs-abc", "stsanet-train", _train("trainer.max_epochs=abc"), 2,
         ("trainer.max_epochs='abc' is not an integer",)),
    Case("train-batch-0", "stsanet-train", _train("data.batch_size=0"), 2,
         ("data.batch_size=0 must be >= 1",)),
    Case("train-batch-negative", "stsanet-train", _train("data.batch_size=-1"), 2,
         ("data.batch_size=-1 must be >= 1",)),
    Case("train-seed-abc", "stsanet-train", _train("seed=abc"), 2, ("seed='abc' is not an integer",)),
    Case("train-lr-text", "stsanet-train", _train("module.optimizer.lr=fast"), 2,
         ("module.optimizer.lr='fast' is not a number",)),
    Case("train-lr-negative", "stsanet-train", _train("module.optimizer.lr=-0.1"), 2,
         ("module.optimizer.lr=-0.1 must be > 0",)),
    Case("train-workers-negative", "stsanet-train", _train("data.num_workers=-1"), 2,
         ("data.num_workers=-1 must be >= 0",)),
    Case("train-norm-unknown", "stsanet-train", _train("model.norm=layer"), 2,
         ("model.norm='layer' is unknown; allowed: full_shape, agnostic",)),
    Case("train-size-not-32", "stsanet-train", _train("model.input_size=[60,96]"), 2,
         ("model.input_size=[60, 96]", "multiples of 32")),
    Case("train-full-shape-size", "stsanet-train", _train("model.norm=full_shape"), 2,
         ("needs model.norm=agnostic",)),
    Case("train-supervision", "stsanet-train", _train("data.supervision=first"), 2,
         ("data.supervision='first' is unknown; allowed: middle, last",)),
    Case("train-clip-len", "stsanet-train", _train("data.clip_len=16"), 2,
         ("data.clip_len=16 is unknown; allowed: 32",)),
    Case("train-data-size-differs", "stsanet-train", _train("data.input_size=[32,32]"), 2,
         ("data.input_size=[32, 32] differs from model.input_size=[64, 96]",)),
    Case("train-max-time-words", "stsanet-train", _train("+trainer.max_time=10min"), 2,
         ("trainer.max_time='10min'", "DD:HH:MM:SS")),
    Case("train-precision", "stsanet-train", _train("trainer.precision=fp16"), 2,
         ("trainer.precision='fp16' is unknown; allowed: 64, 32, 16, bf16, 64-true",)),
    Case("train-devices-0", "stsanet-train", _train("trainer.devices=0"), 2,
         ("trainer.devices=0",)),
    Case("train-gpu-without-one", "stsanet-train", _train("trainer=gpu"), 2,
         ("trainer.accelerator=gpu: no CUDA GPU is visible here", "trainer=cpu"),
         skip=None if NO_GPU else GPU),
    Case("train-unknown-group-option", "stsanet-train", _train("trainer=tpu"), 2,
         ("Could not find 'trainer/tpu'", "ddp_cpu")),
    Case("train-unknown-key", "stsanet-train", _train("trainer.speed=9"), 2,
         ("trainer.speed",)),
    Case("train-override-syntax", "stsanet-train", _train("trainer.max_epochs=[1"), 2,
         ("override 'trainer.max_epochs=[1' does not parse",)),
    Case("train-root-missing", "stsanet-train",
         hydra_run("logger=none", "data=dhf1k", "data.root={base}/no-such-dataset"), 2,
         ("data.root=", "no-such-dataset: no such dataset folder",)),
    Case("train-root-unset", "stsanet-train", hydra_run("logger=none", "data=dhf1k"), 2,
         ("data.root is required but not set (add data.root=... to the command)",)),
    Case("train-synthetic-root-is-a-file", "stsanet-train",
         hydra_run("logger=none", "experiment=demo", "data.root={base}/a-file"), 2,
         ("data.root=", "a-file is a file, where a folder is expected",)),
    Case("train-finetune-without-weights", "stsanet-train",
         hydra_run("logger=none", "experiment=finetune_ucf", "data.root={base}", "trainer=cpu"), 2,
         ("init.weights is required but not set",)),
    Case("train-weights-missing", "stsanet-train", _train("init.weights={base}/nope.pt"), 2,
         ("init.weights=", "nope.pt: file not found")),
    Case("train-weights-text", "stsanet-train", _train("init.weights={base}/notes.txt"), 2,
         ("notes.txt: cannot be read", "not a PyTorch checkpoint")),
    Case("train-backbone-empty", "stsanet-train", _train("init.backbone={base}/zero.pt"), 2,
         ("zero.pt: empty file (0 bytes)", "copy it again")),
    Case("train-weights-not-stsanet", "stsanet-train", _train("init.weights={base}/random.pt"), 2,
         ("random.pt: keys are neither STSANet",), leaves=("hydra/config_resolved.yaml",)),
    Case("train-annotations-do-not-match", "stsanet-train",
         hydra_run("logger=none", "experiment=demo", "data=dhf1k", "data.root={base}/mismatched",
                   "data.index_options.train_videos=1", "data.index_options.val_videos=1",
                   "data.num_workers=0", "++trainer.max_steps=1"), 2,
         ("mismatched is unusable for dhf1k: no videos in the requested splits",
          "found {{'test': 4}}", "the full report: stsanet-check-data data=dhf1k data.root="),
         leaves=("hydra/config_resolved.yaml",)),
    Case("train-resume-missing", "stsanet-train", _train("ckpt_path={base}/gone.ckpt"), 2,
         ("ckpt_path=", "gone.ckpt: checkpoint not found")),
    Case("train-resume-from-weights", "stsanet-train", _train("ckpt_path={base}/whole.pt"), 2,
         ("is not a full training checkpoint", "init.weights=")),

    # ---- stsanet-predict: settings, files, and every output folder before the model loads
    Case("predict-nothing-given", "stsanet-predict", _predict(), 2,
         ("input is required but not set",)),
    Case("predict-input-missing", "stsanet-predict",
         _predict("input={base}/nope.mp4", "checkpoint={checkpoint}"), 2,
         ("input=", "nope.mp4: no such video file or folder")),
    Case("predict-checkpoint-missing", "stsanet-predict",
         _predict("input={video}", "checkpoint={base}/nope.ckpt"), 2,
         ("checkpoint=", "nope.ckpt: file not found")),
    Case("predict-checkpoint-empty", "stsanet-predict",
         _predict("input={video}", "checkpoint={base}/zero.pt"), 2,
         ("zero.pt: empty file (0 bytes): the copy or download did not finish",)),
    Case("predict-checkpoint-truncated", "stsanet-predict",
         _predict("input={video}", "checkpoint={base}/cut.pt"), 2,
         ("cut.pt: truncated or damaged",)),
    Case("predict-checkpoint-text", "stsanet-predict",
         _predict("input={video}", "checkpoint={base}/notes.txt"), 2,
         ("notes.txt: cannot be read", "not a PyTorch checkpoint")),
    Case("predict-checkpoint-random-tensors", "stsanet-predict",
         _predict("input={video}", "checkpoint={base}/random.pt", "model.norm=agnostic",
                  "model.input_size=[64,96]"), 2,
         ("random.pt: keys are neither STSANet",)),
    Case("predict-device-cuda", "stsanet-predict",
         _predict("input={video}", "checkpoint={checkpoint}", "device=cuda"), 2,
         ("device='cuda': no CUDA GPU is visible here", "device=cpu"),
         skip=None if NO_GPU else GPU),
    Case("predict-batch-0", "stsanet-predict",
         _predict("input={video}", "checkpoint={checkpoint}", "batch_windows=0"), 2,
         ("batch_windows=0 must be >= 1",)),
    Case("predict-precision", "stsanet-predict",
         _predict("input={video}", "checkpoint={checkpoint}", "precision=fp16"), 2,
         ("precision='fp16' is unknown; allowed: fp32, bf16",)),
    Case("predict-compile", "stsanet-predict",
         _predict("input={video}", "checkpoint={checkpoint}", "compile=sometimes"), 2,
         ("compile='sometimes' is unknown; allowed: true, false, auto",)),
    Case("predict-clip-len", "stsanet-predict",
         _predict("input={video}", "checkpoint={checkpoint}", "clip_len=16"), 2,
         ("clip_len=16 is unknown; allowed: 32",)),
    Case("predict-contradicts-checkpoint", "stsanet-predict",
         _predict("input={video}", "checkpoint={last_checkpoint}", "supervision=middle"), 2,
         ("supervision=middle contradicts checkpoint=", "drop supervision=")),
    Case("predict-model-override", "stsanet-predict",
         _predict("input={video}", "checkpoint={checkpoint}", "model.input_size=[128,192]",
                  "model.norm=agnostic"), 2,
         ("carries its model settings", "drop the model.")),
    Case("predict-output-is-a-file", "stsanet-predict",
         hydra_run("input={video}", "checkpoint={checkpoint}", "output={base}/a-file"), 2,
         ("output=", "a-file is a file, where a folder is expected",)),
    Case("predict-output-unwritable", "stsanet-predict",
         hydra_run("input={video}", "checkpoint={checkpoint}", "output={unwritable}/maps"), 2,
         ("output=", "cannot write in",)),
    Case("predict-input-empty-folder", "stsanet-predict",
         _predict("input={base}/empty-folder", "checkpoint={checkpoint}"), 2,
         ("input=", "no videos",)),
    Case("predict-video-1x1", "stsanet-predict",
         _predict("input={tiny_video}", "checkpoint={checkpoint}"), 2,
         ("tiny.mp4: a 1×1 video decodes to frames of shape", "scale the video up")),
    Case("predict-video-empty", "stsanet-predict",
         _predict("input={base}/empty.mp4", "checkpoint={checkpoint}"), 2,
         ("empty.mp4: zero-length video file",)),

    # ---- stsanet-eval
    Case("eval-nothing-given", "stsanet-eval", _eval(), 2, ("pred_root is required but not set",)),
    Case("eval-pred-root-missing", "stsanet-eval", _eval("pred_root={base}/nope", "gt_root={base}/gt"),
         2, ("pred_root=", "nope: no such folder")),
    Case("eval-gt-root-missing", "stsanet-eval", _eval("pred_root={base}/preds", "gt_root={base}/nope"),
         2, ("gt_root=", "nope: no such folder")),
    Case("eval-no-ground-truth", "stsanet-eval", _eval("pred_root={base}/preds"), 2,
         ("no ground truth given: pass gt_root=",)),
    Case("eval-family", "stsanet-eval",
         _eval("pred_root={base}/preds", "gt_root={base}/gt", "family=fast"), 2,
         ("family='fast' is unknown; allowed: benchmark, exact",)),
    Case("eval-metrics-mixed", "stsanet-eval",
         _eval("pred_root={base}/preds", "gt_root={base}/gt", "metrics=[CC,'AUC-J (exact)']"), 2,
         ("metrics=['CC', 'AUC-J (exact)']", "never mixed")),
    Case("eval-n-splits-0", "stsanet-eval",
         _eval("pred_root={base}/preds", "gt_root={base}/gt", "n_splits=0"), 2,
         ("n_splits=0 must be >= 1",)),
    Case("eval-step-0", "stsanet-eval",
         _eval("pred_root={base}/preds", "gt_root={base}/gt", "step=0"), 2, ("step=0 must be > 0",)),
    Case("eval-first-frames-0", "stsanet-eval",
         _eval("pred_root={base}/preds", "gt_root={base}/gt", "first_frames=0"), 2,
         ("first_frames=0 must be >= 1",)),
    Case("eval-output-is-a-file", "stsanet-eval",
         hydra_run("pred_root={base}/preds", "gt_root={base}/gt", "output={base}/a-file"), 2,
         ("output=", "a-file is a file")),
    Case("eval-folders-named-5-not-0005", "stsanet-eval",
         _eval("pred_root={base}/preds-unpadded", "gt_root={base}/gt"), 2,
         ("no prediction for any of the 4 frames", "found folders 5, 6",
          "named exactly as the videos (0005, not 5)")),
    Case("eval-unknown-video", "stsanet-eval",
         _eval("pred_root={base}/preds", "gt_root={base}/gt", "videos=[clip9]"), 2,
         ("videos=['clip9'] are not among the scored videos",)),
    Case("eval-all-black-map", "stsanet-eval", _eval("pred_root={base}/preds", "gt_root={base}/gt-black"),
         0, ("1 frame: all-black ground-truth map", "0006/maps/0002.png", "left out of SIM, CC, KL",
             "strict=true"), leaves=RESULTS),
    Case("eval-all-black-map-strict", "stsanet-eval",
         _eval("pred_root={base}/preds", "gt_root={base}/gt-black", "strict=true"), 1,
         ("1 frame could not be scored", "all-black ground-truth map (strict=true)"),
         leaves=RESULTS),
    Case("eval-empty-fixations", "stsanet-eval", _eval("pred_root={base}/preds", "gt_root={base}/gt-empty"),
         0, ("1 frame: empty fixation map", "0005/fixation/0002.png", "left out of AUC-J, s-AUC, NSS, AUC-B"),
         leaves=RESULTS),
    Case("eval-aspect-ratio", "stsanet-eval", _eval("pred_root={base}/preds-wide", "gt_root={base}/gt"),
         0, ("warning: 4 frames: aspect ratio differs", "prediction 64x24, ground truth 32x24"),
         leaves=RESULTS),
    Case("eval-aspect-ratio-strict", "stsanet-eval",
         _eval("pred_root={base}/preds-wide", "gt_root={base}/gt", "strict=true"), 2,
         ("no frame could be scored: 4 failed", "aspect ratio differs"), leaves=RESULTS),
    Case("eval-corrupt-prediction", "stsanet-eval",
         _eval("pred_root={base}/preds-corrupt", "gt_root={base}/gt"), 1,
         ("1 frame could not be scored", "0005/0002.png: cannot read prediction"), leaves=RESULTS),

    # ---- stsanet-check-data
    Case("check-data-root-unset", "stsanet-check-data", args("data=dhf1k"), 2,
         ("data.root is required but not set",)),
    Case("check-data-root-missing", "stsanet-check-data", args("data=dhf1k", "data.root={base}/nope"), 2,
         ("nope: data.root does not exist or is not a folder",)),
    Case("check-data-not-a-root", "stsanet-check-data", args("data=dhf1k", "data.root={base}/empty-folder"),
         2, ("empty-folder: not a DHF1K root",)),
    Case("check-data-deep-not-bool", "stsanet-check-data",
         args("data=dhf1k", "data.root={dataset}", "deep=maybe"), 2, ("deep='maybe' is not true or false",)),
    Case("check-data-splits-not-list", "stsanet-check-data",
         args("data=dhf1k", "data.root={dataset}", "splits=train"), 2, ("splits='train' is not a list",)),
    Case("check-data-annotations-do-not-match", "stsanet-check-data",
         args("data=dhf1k", "data.root={base}/mismatched", "data.index_options.train_videos=1",
              "data.index_options.val_videos=1"), 1,
         ("ERROR: unreadable video or frame folder: 2", "video/009.AVI: no such video file",
          "FAILED: the root is unusable"), lines=0),
    Case("check-data-unknown-dataset", "stsanet-check-data", args("data=imagenet"), 2,
         ("Could not find 'data/imagenet'", "hollywood2")),
    Case("check-data-interrupted-synthetic", "stsanet-check-data",
         args("data=synthetic", "data.root={base}/interrupted", "data.size=ci", "data.generate_seed=3"), 2,
         ("holds no finished synthetic dataset", "stsanet-make-synthetic root=", "size=ci seed=3")),
    Case("check-data-deep-black-and-empty", "stsanet-check-data",
         args("data=dhf1k", "data.root={dataset_black}", "deep=true",
              "data.index_options.train_videos=1", "data.index_options.val_videos=1"), 0,
         ("all-black saliency map: 1", "0001/maps/0003.png", "empty fixation map: 1",
          "0002/fixation/0004.png"), lines=0),

    # ---- stsanet-make-synthetic
    Case("make-synthetic-root-unset", "stsanet-make-synthetic", args(), 2, ("root is required but not set",)),
    Case("make-synthetic-size", "stsanet-make-synthetic", args("root={here}/s", "size=huge"), 2,
         ("size='huge' is unknown; allowed: ci, demo",)),
    Case("make-synthetic-seed-negative", "stsanet-make-synthetic", args("root={here}/s", "seed=-1"), 2,
         ("seed=-1 must be >= 0",)),
    Case("make-synthetic-seed-text", "stsanet-make-synthetic", args("root={here}/s", "seed=abc"), 2,
         ("seed='abc' is not an integer",)),
    Case("make-synthetic-overwrite-not-bool", "stsanet-make-synthetic",
         args("root={here}/s", "overwrite=maybe"), 2, ("overwrite='maybe' is not true or false",)),
    Case("make-synthetic-root-is-a-file", "stsanet-make-synthetic", args("root={base}/a-file"), 2,
         ("root=", "a-file is a file, where a folder is expected")),
    Case("make-synthetic-root-unwritable", "stsanet-make-synthetic", args("root={unwritable}/s"), 2,
         ("root=", "cannot write in")),
    Case("make-synthetic-foreign-folder", "stsanet-make-synthetic", args("root={base}/other"), 2,
         ("other is not empty; pass overwrite=true",)),
    Case("make-synthetic-other-seed", "stsanet-make-synthetic",
         args("root={base}/interrupted", "seed=5"), 2,
         ("holds an interrupted synthetic dataset with seed 3 and size ci", "overwrite=true")),

    # ---- stsanet-export: arguments, output places and checkpoint before the model is built
    Case("export-no-output", "stsanet-export", args(), 2,
         ("the following arguments are required: --output/-o", "stsanet-export --help")),
    Case("export-batch-0", "stsanet-export", args("-o", "{here}/m.onnx", "--batch", "0"), 2,
         ("argument --batch: must be > 0, got 0",)),
    Case("export-batch-text", "stsanet-export", args("-o", "{here}/m.onnx", "--batch", "two"), 2,
         ("argument --batch: invalid int value: 'two'",)),
    Case("export-opset", "stsanet-export", args("-o", "{here}/m.onnx", "--opset", "99"), 2,
         ("argument --opset: invalid choice: 99",)),
    Case("export-tolerance-0", "stsanet-export", args("-o", "{here}/m.onnx", "--tolerance", "0"), 2,
         ("argument --tolerance: must be > 0",)),
    Case("export-output-is-a-folder", "stsanet-export", args("-o", "{base}/empty-folder"), 2,
         ("--output=", "empty-folder is a folder, where a file is expected")),
    Case("export-output-unwritable", "stsanet-export", args("-o", "{unwritable}/m.onnx"), 2,
         ("--output=", "cannot write in")),
    Case("export-output-under-a-file", "stsanet-export", args("-o", "{base}/a-file/m.onnx"), 2,
         ("--output=", "has a file in its path")),
    Case("export-same-file-twice", "stsanet-export",
         args("-o", "{here}/m.onnx", "--torchscript", "{here}/m.onnx"), 2,
         ("--torchscript and --output name the same file",)),
    Case("export-checkpoint-missing", "stsanet-export",
         args("-o", "{here}/m.onnx", "--checkpoint", "{base}/nope.pth"), 2,
         ("--checkpoint", "nope.pth: file not found")),
    Case("export-checkpoint-truncated", "stsanet-export",
         args("-o", "{here}/m.onnx", "--checkpoint", "{base}/cut.pt"), 2,
         ("cut.pt: truncated or damaged",)),
    Case("export-bad-model-value", "stsanet-export", args("-o", "{here}/m.onnx", "model.norm=layer"), 2,
         ("model.norm='layer' is unknown; allowed: full_shape, agnostic",)),
    Case("export-unknown-flag", "stsanet-export", args("-o", "{here}/m.onnx", "--fast"), 2,
         ("unrecognized arguments: --fast",)),

    # ---- stsanet-info
    Case("info-norm", "stsanet-info", args("model.norm=layer"), 2,
         ("model.norm='layer' is unknown; allowed: full_shape, agnostic",)),
    Case("info-size", "stsanet-info", args("model.input_size=[100,96]"), 2, ("multiples of 32",)),
    Case("info-size-not-a-list", "stsanet-info", args("model.input_size=64"), 2,
         ("model.input_size=64 is not a list",)),
    Case("info-momentum", "stsanet-info", args("model.bn_momentum=2"), 2,
         ("model.bn_momentum=2 must be <= 1",)),
    Case("info-decoder", "stsanet-info", args("model.decoder=amsfx"), 2,
         ("model.decoder='amsfx' is unknown; allowed: amsf, unet, single_stream",)),
    Case("info-variant-does-nothing", "stsanet-info", args("model/stsa=none", "model.stsa.remove=[1]"),
         2, ("model.stsa.remove=[1] does nothing with stsa.enabled=false",)),
    Case("info-unknown-model", "stsanet-info", args("model=resnet"), 2, ("Could not find 'model/resnet'",)),
    Case("info-unknown-key", "stsanet-info", args("model.depth=3"), 2, ("model.depth",)),
    Case("info-unknown-flag", "stsanet-info", args("--yaml"), 2, ("unrecognized arguments: --yaml",)),

    # ---- python -m stsanet.cli.reproduce
    Case("reproduce-no-table", "reproduce", args(), 2, ("the following arguments are required: --table",)),
    Case("reproduce-table-9", "reproduce", args("--table", "9"), 2, ("argument --table: invalid choice: 9",)),
    Case("reproduce-seeds-0", "reproduce", args("--table", "3", "--seeds", "0", "--out", "{here}/r"), 2,
         ("argument --seeds: must be >= 1, got 0",)),
    Case("reproduce-steps-negative", "reproduce", args("--table", "3", "--steps", "-5"), 2,
         ("argument --steps: must be >= 1",)),
    Case("reproduce-devices-negative", "reproduce", args("--table", "3", "--devices", "-1"), 2,
         ("argument --devices/--gpus-per-node: must be >= 0",)),
    Case("reproduce-tasks-with-gpus", "reproduce",
         args("--table", "3", "--gpus-per-node", "2", "--tasks", "3", "--out", "{here}/r"), 2,
         ("--tasks 3: GPU jobs run one task per GPU",)),
    Case("reproduce-sbatch-flag", "reproduce", args("--table", "3", "--sbatch", "=1"), 2,
         ("--sbatch =1: give KEY=VALUE",)),
    Case("reproduce-launcher", "reproduce", args("--table", "3", "--launcher", "pbs"), 2,
         ("argument --launcher: invalid choice: 'pbs'",)),
    Case("reproduce-no-data-root", "reproduce", args("--table", "3", "--data", "dhf1k"), 2,
         ("--data dhf1k needs --data-root",)),
    Case("reproduce-unknown-data", "reproduce",
         args("--table", "3", "--data", "imagenet", "--data-root", "{base}"), 2,
         ("--data must be synthetic or one of dhf1k, hollywood2, ucf, diem",)),
    Case("reproduce-no-backbone", "reproduce", args("--table", "3", "--data", "dhf1k", "--data-root", "{base}"),
         2, ("--backbone /path/S3D_kinetics400.pt",)),
    Case("reproduce-data-root-missing", "reproduce",
         args("--table", "3", "--data", "dhf1k", "--data-root", "{base}/nope", "--backbone", "scratch",
              "--out", "{here}/r"), 2, ("--data-root", "nope: no such folder",), leaves=("r/**",)),
    Case("reproduce-backbone-not-weights", "reproduce",
         args("--table", "3", "--data", "dhf1k", "--data-root", "{base}", "--backbone", "{base}/notes.txt",
              "--out", "{here}/r"), 2, ("--backbone", "notes.txt", "Formats that load"), leaves=("r/**",)),
    Case("reproduce-out-is-a-file", "reproduce", args("--table", "3", "--out", "{base}/a-file"), 2,
         ("--out=", "a-file is a file")),
    Case("reproduce-videos-file-missing", "reproduce",
         args("--table", "3", "--videos-file", "{base}/nope.txt", "--out", "{here}/r"), 2,
         ("--videos-file", "nope.txt: cannot be read"), leaves=("r/**",)),

    # ---- stsanet-compare (the ground truth's own maps stand in for a model's predictions)
    Case("compare-no-models", "stsanet-compare", args("--data", "synthetic", "--data-root", "{dataset}"),
         2, ("the following arguments are required: LABEL=FOLDER",)),
    Case("compare-unknown-layout", "stsanet-compare",
         args("--data", "imagenet", "--data-root", "{dataset}", "gt={dataset}/annotation"), 2,
         ("--data imagenet: unknown layout; choose one of dhf1k",)),
    Case("compare-data-root-missing", "stsanet-compare",
         args("--data", "synthetic", "--data-root", "{base}/nope", "gt={dataset}/annotation"), 2,
         ("--data-root", "nope", "does not exist")),
    Case("compare-folder-missing", "stsanet-compare",
         args("--data", "synthetic", "--data-root", "{dataset}", "ours={base}/preds-nope"), 2,
         ("preds-nope (ours): no such prediction folder",)),
    Case("compare-split", "stsanet-compare",
         args("--data", "synthetic", "--data-root", "{dataset}", "--split", "test", "gt={dataset}/annotation"),
         2, ("--split test: no such split", "available: train, val")),
    Case("compare-no-maps", "stsanet-compare",
         args("--data", "synthetic", "--data-root", "{dataset}", "--output", "{here}/fig.png", "x={dataset}"),
         2, ("no frame has a predicted map in every folder",)),
    Case("compare-output-is-a-folder", "stsanet-compare",
         args("--data", "synthetic", "--data-root", "{dataset}", "--output", "{here}", "gt={dataset}/annotation"),
         2, ("--output", "cannot be written (Is a directory)")),
    Case("compare-disagree-negative", "stsanet-compare",
         args("--data", "synthetic", "--data-root", "{dataset}", "--disagree", "-1", "gt={dataset}/annotation"),
         2, ("--disagree must be >= 0",)),
]


def _new_files(here: Path, allowed: tuple[str, ...]) -> list[str]:
    """Files under the case's folder other than Hydra's job record and what the case allows."""
    found = []
    for path in here.rglob("*"):
        if path.is_dir():
            continue
        relative = path.relative_to(here)
        if relative.parts[0] == "hydra" and (".hydra" in relative.parts or path.suffix == ".log"):
            continue
        if any(relative.match(pattern) for pattern in allowed) and not path.name.startswith("."):
            continue
        found.append(str(relative))
    return found


def run_in_process(command: str, argv: list[str], capsys) -> tuple[int, str, str]:
    GlobalHydra.instance().clear()
    capsys.readouterr()
    try:
        code = MAIN[command](argv)
    except SystemExit as exit_:
        code = exit_.code
    out, err = capsys.readouterr()
    return (0 if code is None else int(code)), out, err


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_bad_input(case: Case, world, tmp_path, capsys, monkeypatch):
    if case.skip:
        pytest.skip(case.skip)
    if any("{unwritable}" in p for p in case.argv.parts) and world["unwritable"] is None:
        pytest.skip(READ_ONLY)
    argv = case.argv(world, tmp_path)
    monkeypatch.chdir(tmp_path)  # check-data and make-synthetic run in the current folder
    monkeypatch.setenv("STSANET_ROOT", str(tmp_path / "root"))
    code, out, err = run_in_process(case.command, argv, capsys)
    ours = [line for line in err.splitlines() if line.startswith(f"{case.command}: ")]
    assert "Traceback" not in err + out, err
    assert code == case.code, (code, err)
    assert len(ours) == case.lines, err
    text = ours[0] if case.lines == 1 else err + out
    for words in case.says:
        assert W(words)(world, tmp_path) in text, text
    if case.lines and case.code == 2:  # a refusal is the only thing on stderr
        assert err.strip().splitlines() == ours, err
    assert _new_files(tmp_path, case.leaves) == []
    assert _snapshot(world["base"]) == world["snapshot"]


# ---------------------------------------------------------------------------------------------
# the real processes: each console script's exit status, and interrupts
# ---------------------------------------------------------------------------------------------

SCRIPTS = [
    ("stsanet-train", ["logger=none", "trainer.max_epochs=abc", "hydra.run.dir={here}/hydra"],
     "trainer.max_epochs='abc' is not an integer"),
    ("stsanet-predict", ["input={base}/nope.mp4", "checkpoint={checkpoint}",
                         "hydra.run.dir={here}/hydra"], "nope.mp4: no such video file or folder"),
    ("stsanet-eval", ["pred_root={base}/preds-unpadded", "gt_root={base}/gt", "output={here}/out",
                      "hydra.run.dir={here}/hydra"], "(0005, not 5)"),
    ("stsanet-check-data", ["data=dhf1k"], "data.root is required but not set"),
    ("stsanet-make-synthetic", ["root={base}/a-file"], "a-file is a file"),
    ("stsanet-export", ["-o", "{here}/m.onnx", "--batch", "0"], "argument --batch: must be > 0"),
    ("stsanet-info", ["model.norm=layer"], "model.norm='layer' is unknown"),
    ("stsanet-compare", ["--data", "imagenet", "--data-root", "{base}", "x={base}"], "unknown layout"),
    ("reproduce", ["--table", "9"], "argument --table: invalid choice: 9"),
]


@pytest.mark.parametrize("script, argv, says", SCRIPTS, ids=[s[0] for s in SCRIPTS])
def test_console_script_exit_status(script, argv, says, world, tmp_path):
    program = [sys.executable, "-m", "stsanet.cli.reproduce"] if script == "reproduce" else \
        [str(BIN / script)]
    run = subprocess.run(program + args(*argv)(world, tmp_path), cwd=tmp_path, capture_output=True,
                         text=True, timeout=300, env=dict(os.environ, PYTHONWARNINGS="ignore"))
    assert run.returncode == 2, run.stderr
    lines = run.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"{script}: ") and says in lines[0], run.stderr
    assert _new_files(tmp_path, ()) == []


def _hidden_files(root: Path) -> list[str]:
    """Temporary files of atomic writes (``.<name>.<random>.tmp`` and the like)."""
    return [str(p) for p in root.rglob(".*")]


@pytest.fixture
def ctrl_c_delivered():
    """Ctrl-C reaches this process and its children. A shell that starts pytest in the
    background (``cmd &`` without job control, nohup) ignores SIGINT, and an ignored signal is
    inherited and, rightly, stays ignored by the commands: these tests are about one that
    arrives. Returns the preexec_fn that gives a child the default disposition."""
    if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
        signal.signal(signal.SIGINT, signal.default_int_handler)
        yield lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)
        signal.signal(signal.SIGINT, signal.SIG_IGN)
    else:
        yield None


@pytest.mark.parametrize("signum, status, said", [(signal.SIGINT, 130, "Ctrl-C"),
                                                  (signal.SIGTERM, 143, "SIGTERM")],
                         ids=["ctrl-c", "sigterm"])
def test_interrupted_generation_is_completed_by_the_command_check_data_gives(
        signum, status, said, tmp_path, capsys, monkeypatch, ctrl_c_delivered):
    root = tmp_path / "synthetic"
    process = subprocess.Popen([str(BIN / "stsanet-make-synthetic"), f"root={root}", "size=ci"],
                               cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, preexec_fn=ctrl_c_delivered)
    deadline = time.monotonic() + 300
    while not (root / "video" / "001.AVI").exists() and process.poll() is None:
        assert time.monotonic() < deadline, "generation did not start"
        time.sleep(0.02)
    process.send_signal(signum)
    _, err = process.communicate(timeout=120)
    assert process.returncode == status, err
    assert err.strip().splitlines() == [
        f"stsanet-make-synthetic: interrupted ({said}); finished outputs are kept and no partial "
        f"file is left; run the same command again to continue"]
    assert _hidden_files(root) == []
    assert not (root / "synthetic.json").exists() and (root / "synthetic.partial.json").exists()

    monkeypatch.chdir(tmp_path)
    check = ["data=synthetic", f"data.root={root}", "data.size=ci", "data.generate_seed=0"]
    code, _, err = run_in_process("stsanet-check-data", check, capsys)
    assert code == 2 and "stsanet-make-synthetic root=" in err, err
    advice = err.split("complete it with: ", 1)[1].split()
    assert advice[0] == "stsanet-make-synthetic"
    code, _, err = run_in_process(advice[0], advice[1:], capsys)
    assert code == 0, err
    code, out, err = run_in_process("stsanet-check-data", check, capsys)
    assert code == 0 and "OK: the root is usable" in out, out + err
    assert not (root / "synthetic.partial.json").exists()
    if signum == signal.SIGINT:  # completed = generated in one go, byte for byte
        reference = generate(tmp_path / "reference", "ci", 0)
        files = sorted(p.relative_to(root) for p in root.rglob("*") if p.is_file())
        assert files == sorted(p.relative_to(reference) for p in reference.rglob("*") if p.is_file())
        assert all((root / f).read_bytes() == (reference / f).read_bytes() for f in files)


# ---------------------------------------------------------------------------------------------
# the boundary itself: a bug keeps its traceback; a library that exits on Ctrl-C is an interrupt
# ---------------------------------------------------------------------------------------------

def test_a_bug_keeps_its_traceback_and_asks_for_a_report(tmp_path, capsys, monkeypatch):
    import stsanet.runs.evaluate

    def broken(cfg):
        raise RuntimeError("an index went past the end")

    monkeypatch.setattr(stsanet.runs.evaluate, "run_eval", broken)
    code, _, err = run_in_process("stsanet-eval", ["pred_root=p", "gt_root=g", "progress=false",
                                                   f"hydra.run.dir={tmp_path}/hydra"], capsys)
    assert code == 70
    assert "Traceback" in err and "RuntimeError: an index went past the end" in err
    assert err.strip().splitlines()[-1].startswith(
        "stsanet-eval: unexpected RuntimeError: this is a bug in stsanet, not in your input")


def test_a_new_command_is_one_decorator(capsys):
    from stsanet.cli.boundary import command
    from stsanet.errors import InputError

    @command("stsanet-compare")
    def main(argv):
        if argv:
            raise InputError(f"{argv[0]}: not a results file; give results.json of stsanet-eval")
        return 0

    assert main([]) == 0
    assert main(["x.csv"]) == 2
    assert capsys.readouterr().err == \
        "stsanet-compare: x.csv: not a results file; give results.json of stsanet-eval\n"


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_a_library_that_exits_after_ctrl_c_is_reported_as_interrupted(signum, status, capsys,
                                                                       ctrl_c_delivered):
    """Lightning's trainer catches KeyboardInterrupt, shuts down and calls sys.exit(1); the
    boundary knows the signal came and reports it as the interrupt it was."""
    from stsanet.cli.boundary import command

    @command("stsanet-train")
    def main(argv):
        try:
            os.kill(os.getpid(), signum)
            time.sleep(5)
        except KeyboardInterrupt:
            sys.exit(1)
        return 0

    before = signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)
    assert main([]) == status
    assert capsys.readouterr().err.startswith("stsanet-train: interrupted (")
    assert (signal.getsignal(signal.SIGTERM), signal.getsignal(signal.SIGINT)) == before


def test_an_ignored_ctrl_c_stays_ignored():
    """Started with SIGINT ignored (nohup, a background job), a command does not start
    answering it."""
    from stsanet.cli.boundary import command

    before = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        @command("stsanet-train")
        def main(argv):
            return 0 if signal.getsignal(signal.SIGINT) is signal.SIG_IGN else 1

        assert main([]) == 0
        assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
    finally:
        signal.signal(signal.SIGINT, before)
