"""The evaluation protocol and stsanet-eval, end to end on small generated folder pairs."""

from __future__ import annotations

import csv
import json
import math
import os
import random
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from metrics_helpers import make_folder_pair, write_png

from stsanet.data.io import read_fixations
from stsanet.metrics import benchmark
from stsanet.metrics.evaluate import BENCHMARK_COLUMNS, EvalSettings, evaluate_items
from stsanet.metrics.eval_inputs import (Fixations, folder_pair_items, other_fixation_map,
                                         quantize_to_uint8, read_prediction)
from stsanet.metrics.eval_results import write_results
from stsanet.metrics.resize import imresize

FAST = EvalSettings(n_splits=20)
REPO = Path(__file__).resolve().parents[1]


def test_folder_pair_items_reads_png_and_mat_fixations(tmp_path):
    pred_root, gt_root = make_folder_pair(tmp_path)
    items = folder_pair_items(pred_root, gt_root)
    assert [i.key for i in items] == [f"{v}/{f}" for v in ("0001", "0002") for f in ("0001", "0002", "0003")]
    assert items[0].fixations.suffix == ".png" and items[3].fixations.suffix == ".mat"
    assert read_fixations(items[3].fixations).shape == (24, 32)


def test_scores_follow_the_protocol(tmp_path):
    pred_root, gt_root = make_folder_pair(tmp_path)
    items = folder_pair_items(pred_root, gt_root)
    results = evaluate_items(items, FAST, progress=False)
    assert results.errors == [] and len(results.frames) == 6
    # deterministic metrics: 8-bit values (not /255), MATLAB bicubic to GT size, GT / 255
    for item, row in zip(items, results.frames):
        pred = imresize(read_prediction(item.prediction), (24, 32))
        assert read_prediction(item.prediction).max() > 1  # 0..255 scale, as the MATLAB driver
        gt = np.asarray(__import__("PIL.Image", fromlist=["Image"]).open(item.saliency_map), dtype=np.float64) / 255
        fixations = read_fixations(item.fixations)
        assert row["CC"] == pytest.approx(benchmark.cc(pred, gt), abs=1e-12)
        assert row["NSS"] == pytest.approx(benchmark.nss(pred, fixations), abs=1e-12)
        assert row["SIM"] == pytest.approx(benchmark.sim(pred, gt), abs=1e-12)
        assert row["KL"] == pytest.approx(benchmark.kl(pred, gt), abs=1e-9)
        assert 0.5 < row["AUC-J"] <= 1 and 0 <= row["s-AUC"] <= 1 and 0 <= row["AUC-B"] <= 1
    summary = results.summary()
    assert summary["CC"] == pytest.approx(np.mean([r["CC"] for r in results.frames]))
    per_video = results.per_video()
    assert set(per_video) == {"0001", "0002"} and per_video["0001"]["frames"] == 3


def test_frame_scores_do_not_depend_on_order_or_subset(tmp_path):
    pred_root, gt_root = make_folder_pair(tmp_path)
    items = folder_pair_items(pred_root, gt_root)
    first = {r["frame"] + r["video"]: r for r in evaluate_items(items, FAST, progress=False).frames}
    shuffled = list(items)
    random.Random(0).shuffle(shuffled)
    second = {r["frame"] + r["video"]: r for r in evaluate_items(shuffled, FAST, progress=False).frames}
    for key, row in first.items():
        for column in ("AUC-J", "s-AUC", "AUC-B", "CC"):
            assert second[key][column] == row[column]
    other_seed = evaluate_items(items, EvalSettings(n_splits=20, seed=1), progress=False)
    assert any(a["AUC-B"] != b["AUC-B"] for a, b in zip(other_seed.frames, first.values()))


def test_bad_files_are_reported_by_name_and_the_rest_is_scored(tmp_path):
    pred_root, gt_root = make_folder_pair(tmp_path)
    (pred_root / "0001" / "0002.png").unlink()  # missing prediction
    (pred_root / "0002" / "0001.png").write_bytes(b"not a png")  # unreadable prediction
    write_png(gt_root / "0002" / "maps" / "0003.png", np.zeros((10, 10), np.uint8))  # size mismatch
    (gt_root / "0001" / "fixation" / "0003.png").write_bytes(b"\x89PNG broken")  # unreadable GT
    messages = []
    results = evaluate_items(folder_pair_items(pred_root, gt_root), FAST, progress=False, report=messages.append)
    kinds = {(e["video"], e["frame"]): e for e in results.errors}
    assert set(kinds) == {("0001", "0002"), ("0002", "0001"), ("0002", "0003"), ("0001", "0003")}
    assert kinds[("0001", "0002")]["kind"] == "missing prediction"
    assert str(pred_root / "0001" / "0002.png") in kinds[("0001", "0002")]["message"]
    assert kinds[("0002", "0001")]["kind"] == "unreadable prediction"
    assert kinds[("0002", "0003")]["kind"] == "size mismatch" and "10x10" in kinds[("0002", "0003")]["message"]
    assert kinds[("0001", "0003")]["kind"] == "unreadable ground truth"
    assert len(results.frames) == 2 and len(messages) == 4
    counts = results.counts()
    assert counts["items"] == 6 and counts["failed_frames"] == 4 and counts["scored_frames"] == 2


def test_nan_frames_are_dropped_and_counted(tmp_path):
    pred_root, gt_root = make_folder_pair(tmp_path, videos=1, mat_video=None)
    write_png(pred_root / "0001" / "0001.png", np.full((12, 16), 77, np.uint8))  # constant prediction
    write_png(gt_root / "0001" / "fixation" / "0002.png", np.zeros((24, 32), np.uint8))  # no fixations
    results = evaluate_items(folder_pair_items(pred_root, gt_root), FAST, progress=False)
    per_metric = results.counts()["per_metric"]
    assert per_metric["CC"] == {"frames": 2, "nan": 1}
    # the frame without fixations is not scored on NSS (named in the results), not a NaN
    assert per_metric["NSS"] == {"frames": 1, "nan": 1}
    assert results.summary()["NSS"] == pytest.approx(results.frames[2]["NSS"])
    [empty] = results.notes()["empty fixation map"]
    assert empty["frame"] == "0002" and empty["path"].endswith("0001/fixation/0002.png")
    assert "NSS" in results.excluded_from("empty fixation map")


def test_other_map_is_the_union_of_rescaled_fixations():
    small = Fixations((2, 2), np.array([0, 1]), np.array([1, 1]))
    same = Fixations((4, 4), np.array([0, 0]), np.array([0, 0]))
    counts = other_fixation_map((4, 4), [small, same])
    # (1,2) and (2,2) in 1-based coordinates double to (2,4) and (4,4); (1,1) counted twice
    expected = np.zeros((4, 4))
    expected[1, 3] = expected[3, 3] = 1
    expected[0, 0] = 2
    np.testing.assert_array_equal(counts, expected)


def test_exact_family_and_metric_subsets(tmp_path):
    pred_root, gt_root = make_folder_pair(tmp_path, videos=1)
    items = folder_pair_items(pred_root, gt_root)
    results = evaluate_items(items, EvalSettings(family="exact", metrics=("AUC-J (exact)", "CC")), progress=False)
    assert results.columns == ["AUC-J (exact)", "CC"]
    with pytest.raises(ValueError, match="never mixed"):
        EvalSettings(family="exact", metrics=("AUC-J",)).columns()


def test_resume_from_checkpoint_skips_scored_frames(tmp_path):
    pred_root, gt_root = make_folder_pair(tmp_path, videos=1)
    items = folder_pair_items(pred_root, gt_root)
    checkpoint = tmp_path / "out" / "frames.partial.jsonl"
    evaluate_items(items[:2], FAST, progress=False, checkpoint=checkpoint)
    lines = checkpoint.read_text().splitlines()
    assert len(lines) == 3  # header + two frames
    row = json.loads(lines[1])
    row["CC"] = 0.123  # a marker: a resumed run must keep, not recompute, this frame
    checkpoint.write_text("\n".join([lines[0], json.dumps(row), lines[2], '{"video": "cut'] ) + "\n")
    resumed = evaluate_items(items, FAST, progress=False, checkpoint=checkpoint)
    assert resumed.frames[0]["CC"] == 0.123 and len(resumed.frames) == 3
    fresh = evaluate_items(items, EvalSettings(n_splits=21), progress=False, checkpoint=checkpoint)
    assert fresh.frames[0]["CC"] != 0.123  # other settings: the checkpoint is not reused


def test_write_results_files(tmp_path):
    pred_root, gt_root = make_folder_pair(tmp_path)
    (pred_root / "0002" / "0002.png").unlink()
    results = evaluate_items(folder_pair_items(pred_root, gt_root), FAST, progress=False)
    paths = write_results(results, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["seed"] == 0 and data["family"] == "benchmark" and data["columns"] == list(BENCHMARK_COLUMNS)
    assert set(data["per_video"]) == {"0001", "0002"} and data["counts"]["failed_frames"] == 1
    assert data["settings"]["n_splits"] == 20 and data["errors"][0]["kind"] == "missing prediction"
    rows = list(csv.reader(paths["csv"].open()))
    assert rows[0][:7] == ["scope", "frames", "AUC-J", "SIM", "s-AUC", "CC", "NSS"]
    assert [r[0] for r in rows[1:]] == ["ALL", "0001", "0002"]
    markdown = paths["markdown"].read_text()
    assert "| AUC-J | SIM | s-AUC | CC | NSS | KL | AUC-B | frames |" in markdown
    assert str(pred_root / "0002" / "0002.png") in markdown
    assert len(list(csv.reader(paths["frames"].open()))) == 6  # header + 5 scored frames
    assert not list((tmp_path / "out").glob("*.tmp"))


def test_quantize_to_uint8():
    assert quantize_to_uint8(np.array([0.0, 0.5, 1.0, 1.2])).tolist() == [0, 128, 255, 255]


def _run_cli(tmp_path, *overrides):
    env = dict(os.environ, STSANET_ROOT=str(tmp_path / "runs"), PYTHONWARNINGS="ignore")
    return subprocess.run(
        [sys.executable, "-m", "stsanet.cli.evaluate", *overrides, "progress=false"],
        cwd=REPO, env=env, capture_output=True, text=True, timeout=300,
    )


def test_cli_folder_pair_end_to_end(tmp_path):
    pred_root, gt_root = make_folder_pair(tmp_path)
    (pred_root / "0001" / "0003.png").unlink()
    (pred_root / "0002" / "0002.png").write_bytes(b"garbage")
    out = tmp_path / "results"
    run = _run_cli(tmp_path, f"pred_root={pred_root}", f"gt_root={gt_root}", f"output={out}", "n_splits=10")
    assert run.returncode == 1, run.stderr  # results written, some frames failed
    log = run.stdout + run.stderr
    assert str(pred_root / "0001" / "0003.png") in log and str(pred_root / "0002" / "0002.png") in log
    assert "4 frames scored, 2 failed" in run.stdout
    data = json.loads((out / "results.json").read_text())
    assert data["counts"]["scored_frames"] == 4 and data["settings"]["n_splits"] == 10
    assert all(math.isfinite(data["scores"][c]) for c in BENCHMARK_COLUMNS)
    assert (out / "results.md").is_file() and (out / "results.csv").is_file()
    assert not (out / "frames.partial.jsonl").exists()
    bad = _run_cli(tmp_path, f"pred_root={pred_root}", f"output={out}")
    assert bad.returncode == 2 and "gt_root" in bad.stderr


def test_cli_dataset_mode_on_the_synthetic_layout(tmp_path):
    from stsanet.data.synthetic import SyntheticSize, generate
    from stsanet.data.index import build_index

    root = generate(tmp_path / "synthetic", size=SyntheticSize(videos=3, train_videos=2, frames=6, height=64, width=96))
    index = build_index("synthetic", root, use_cache=False)
    pred_root = tmp_path / "preds"
    rng = np.random.default_rng(0)
    for video in index.split("val"):
        for t in range(video.num_frames):  # the layout stsanet-predict writes
            write_png(pred_root / video.name / "maps" / f"{t + 1:04d}.png", rng.integers(0, 256, (64, 96)))
    out = tmp_path / "results"
    run = _run_cli(tmp_path, f"pred_root={pred_root}", "data=synthetic", f"data.root={root}",
                   "split=val", f"output={out}", "n_splits=5", "metrics=[CC,NSS,s-AUC]")
    assert run.returncode == 0, run.stderr
    data = json.loads((out / "results.json").read_text())
    assert data["counts"]["scored_frames"] == 6 and data["columns"] == ["s-AUC", "CC", "NSS"]


def test_ground_truth_that_cannot_score_is_named_and_left_out(tmp_path):
    """An all-black map would score SIM 0 and the best KL: it is left out of CC/SIM/KL, named in
    the results; strict makes it an error of the frame; a stretched prediction is a warning."""
    pred_root, gt_root = make_folder_pair(tmp_path, videos=1, mat_video=None)
    black = write_png(gt_root / "0001" / "maps" / "0002.png", np.zeros((24, 32), np.uint8))
    items = folder_pair_items(pred_root, gt_root)
    results = evaluate_items(items, FAST, progress=False)
    black_row = results.frames[1]
    assert not {"CC", "SIM", "KL"} & set(black_row) and "NSS" in black_row
    assert results.counts()["per_metric"]["SIM"] == {"frames": 2, "nan": 0}
    [note] = results.notes()["all-black ground-truth map"]
    assert note["path"] == str(black) and results.excluded_from(note["kind"]) == ["SIM", "CC", "KL"]
    # predictions are 12 x 16 for 24 x 32 ground truth: the same aspect ratio, no warning
    assert set(results.notes()) == {"all-black ground-truth map"}
    paths = write_results(results, tmp_path / "out")
    data = json.loads(paths["json"].read_text())
    assert data["notes"]["all-black ground-truth map"]["frames"][0]["frame"] == "0002"
    assert str(black) in paths["markdown"].read_text()

    strict = evaluate_items(items, EvalSettings(n_splits=20, strict=True), progress=False)
    assert [e["kind"] for e in strict.errors] == ["all-black ground-truth map"]
    assert len(strict.frames) == 2

    write_png(pred_root / "0001" / "0003.png", np.full((12, 30), 80, np.uint8))  # 16:9-ish
    stretched = evaluate_items(items, FAST, progress=False).notes()["aspect ratio differs from the ground truth"]
    assert stretched[0]["frame"] == "0003" and "prediction 30x12, ground truth 32x24" in stretched[0]["detail"]


def test_any_number_of_workers_writes_the_same_files(tmp_path):
    """40 frames (more than stay in-process): one worker process vs two; a bad prediction in the
    middle, and a run resumed from another worker count's checkpoint."""
    from stsanet.metrics.evaluate import IN_PROCESS_FRAMES

    pred_root, gt_root = make_folder_pair(tmp_path, videos=4, frames=10)
    assert 40 > IN_PROCESS_FRAMES
    (pred_root / "0002" / "0003.png").write_bytes(b"garbage")
    items = folder_pair_items(pred_root, gt_root)
    files = {}
    for workers in (1, 2):
        results = evaluate_items(items, FAST, progress=False, workers=workers, report=lambda _: None)
        paths = write_results(results, tmp_path / f"workers{workers}")
        files[workers] = {name: path.read_bytes() for name, path in paths.items()}
    assert files[1] == files[2]
    assert len(results.frames) == 39 and results.errors[0]["frame"] == "0003"

    checkpoint = tmp_path / "resumed" / "frames.partial.jsonl"
    evaluate_items(items, FAST, progress=False, workers=1, checkpoint=checkpoint,
                   report=lambda _: None)
    lines = checkpoint.read_text().splitlines()
    checkpoint.write_text("\n".join(lines[:16]) + "\n")  # interrupted after 15 frames
    resumed = evaluate_items(items, FAST, progress=False, workers=2, checkpoint=checkpoint,
                             report=lambda _: None)
    paths = write_results(resumed, tmp_path / "resumed")
    assert {name: path.read_bytes() for name, path in paths.items()} == files[1]


def test_workers_setting_is_checked_by_name():
    from stsanet.runs.evaluate import EvalConfigError, workers_from_config

    assert workers_from_config(None) is None and workers_from_config(3) == 3
    for bad in (0, -1, "two", True, 1.5):
        with pytest.raises(EvalConfigError, match="workers="):
            workers_from_config(bad)
