"""Done-when test of issue 12: a tiny real-data-shaped reproduce, end to end.

A DHF1K-layout set at DHF1K's frame size (640 x 360), a kylemin-format S3D file, Table VI's two
rows (middle- and last-supervised) for two seeds, through Hydra's submitit local launcher:
backbone init, training, the predict + eval scoring route, aggregation. Then the table's cells,
spreads and protocol lines are checked against the runs' own results.
"""

from __future__ import annotations

import csv
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from model_helpers import kylemin_s3d
from stsanet.data.synthetic import SyntheticSize, generate
from stsanet.cli.reproduce import main

SRC = Path(__file__).resolve().parents[1] / "src"
SEEDS = (12345, 12346)
VAL_VIDEOS, FRAMES = ("0003", "0004"), 16


@pytest.fixture(scope="module")
def reproduced(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("reproduce_e2e")
    generated = generate(tmp / "generated", size=SyntheticSize(
        videos=4, train_videos=2, frames=FRAMES, height=360, width=640, radius=30, speed=12,
        gaze_sigma=12))
    root = tmp / "DHF1K"  # the release layout: video/NNN.AVI, annotation/NNNN/{maps,fixation}
    for folder in ("video", "annotation"):
        shutil.copytree(generated / folder, root / folder)
    backbone = tmp / "S3D_kinetics400.pt"
    torch.save(kylemin_s3d().state_dict(), backbone)
    out = tmp / "out"
    command = [
        sys.executable, "-m", "stsanet.cli.reproduce", "--table", "6", "--data", "dhf1k",
        "--data-root", str(root), "--backbone", str(backbone), "--seeds", "2", "--steps", "1",
        "--launcher", "submitit_local", "--trainer", "cpu", "--out", str(out), "--",
        "model.norm=agnostic", "model.input_size=[32,32]", "callbacks=none", "logger=csv",
        "++trainer.enable_checkpointing=false", "++trainer.limit_val_batches=0",
        "data.num_workers=0", "data.index_options.train_videos=2",
        "data.index_options.val_videos=2", "++score.save_weights=false",
    ]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), os.environ.get("PYTHONPATH", "")]),
           "STSANET_ROOT": str(tmp), "STSANET_CACHE_DIR": str(tmp / "cache"),
           "OMP_NUM_THREADS": "1"}
    run = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-3000:] + run.stderr[-3000:]
    return out / "dhf1k", run.stdout


def results(base: Path, row: str, seed: int) -> dict:
    return json.loads((base / "runs" / row / f"seed{seed}" / "results.json").read_text())


def test_every_run_trained_from_the_backbone_and_was_scored_on_every_frame(reproduced):
    base, stdout = reproduced
    launched = [line for line in stdout.splitlines() if line.startswith("$ ")]
    assert len(launched) == 2 and all("hydra/launcher=submitit_local" in x for x in launched)
    frames = {}
    for row in ("ours", "last_supervised"):
        for seed in SEEDS:
            data = results(base, row, seed)
            assert data["seed"] == seed and data["steps"] == 1 and data["train_seconds"] > 0
            assert data["global_batch"] == 3 and data["world_size"] == 1
            score = data["score"]
            assert score["protocol"] == "benchmark"
            assert score["frames"] == len(VAL_VIDEOS) * FRAMES
            assert sorted(score["per_video"]) == list(VAL_VIDEOS)
            assert 0.0 <= score["scores"]["s-AUC"] <= 1.0
            log = (base / "runs" / row / f"seed{seed}" / "train.log").read_text()
            assert "backbone initialised from" in log
            with open(base / "runs" / row / f"seed{seed}" / "score" / "frames.csv") as handle:
                frames[row, seed] = sorted((r["video"], r["frame"]) for r in csv.DictReader(handle))
    # middle- and last-supervised rows are scored on the same frames
    assert len(set(map(tuple, frames.values()))) == 1


def test_table_cells_spreads_and_protocol(reproduced):
    base, _ = reproduced
    markdown = (base / "table6.md").read_text()
    assert markdown.startswith("# Table VI: supervision manner — ours on dhf1k, paper on dhf1k")
    assert "- Backbone: S3D weights from" in markdown
    assert "- Scoring protocol: every frame of every evaluation video, sliding window at the " \
           "original resolution, MATLAB-faithful metrics (s-AUC included) (split val)" in markdown
    assert "- Seeds: 12345, 12346 (2 per row); global batch: 3 clips" in markdown
    for row, label in (("ours", "middle-supervised"), ("last_supervised", "last-supervised")):
        line = next(x for x in markdown.splitlines() if x.startswith(f"| {label} |"))
        cells = [c.strip() for c in line.split("|")[2:-1]]
        values = [results(base, row, s)["score"]["scores"]["CC"] for s in SEEDS]
        expected = f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"
        assert cells[0].startswith(expected), (cells[0], expected)
        assert cells[0].endswith("(0.539)" if row == "ours" else "(0.537)")
        assert cells[4].split(" (")[0].count("±") == 1  # s-AUC has no paper value
        assert cells[7] == "2/2" and cells[8] == "1"
        if row == "last_supervised":
            assert cells[6].startswith(("+", "-")) and "[" in cells[6]  # the paired bootstrap
            assert cells[0].split(" (")[0].endswith(("≈", "*"))
        else:
            assert cells[6] == "reference"

    with open(base / "table6.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    assert [(r["row"], int(r["seed"])) for r in table] == [
        (row, seed) for row in ("ours", "last_supervised") for seed in SEEDS]
    assert all(r["status"] == "done" and r["steps"] == "1" and r["global_batch"] == "3"
               for r in table)
    assert float(table[0]["CC"]) == pytest.approx(results(base, "ours", SEEDS[0])["score"]
                                                  ["scores"]["CC"], abs=1e-4)
    assert (base / "table6.png").stat().st_size > 10_000


def test_rerun_launches_nothing(reproduced, capsys):
    base, _ = reproduced
    before = (base / "table6.csv").read_text()
    assert main(["--table", "6", "--data", "dhf1k", "--data-root", str(base.parent),
                 "--backbone", "scratch", "--seeds", "2", "--out", str(base.parent)]) == 0
    out = capsys.readouterr().out
    assert "$ " not in out and "finished runs kept: ours/seed12345, ours/seed12346" in out
    assert (base / "table6.csv").read_text() == before
