"""The page of a table (table<N>.html), its comparison figure and loss curves, from run folders
written by hand as a scored run leaves them (results.json, score/examples/ with the kept maps),
checked as HTML and in a real headless browser."""

from __future__ import annotations

import json
import re
import statistics
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import browser_helpers
from browser_helpers import open_page
from stsanet.data.index import build_index
from stsanet.data.io import read_saliency_map, write_png_atomic
from stsanet.data.synthetic import SyntheticSize, generate
from stsanet.runs.examples import EXAMPLES_DIR, example_frames, keep_examples
from stsanet.runs.table import METRICS, aggregate, paper_rows

SEEDS = [1, 2]
# row -> how far its maps are shifted from the ground truth (px): the rows' CC differ
SHIFTS = {"ours": 0, "amsf_concat": 3, "amsf_no_aw": 8}


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("report")
    root = generate(tmp / "data", size=SyntheticSize(videos=4, train_videos=1, frames=12,
                                                     height=48, width=80, radius=4))
    videos = build_index("synthetic", root, use_cache=False).split("val")
    runs = tmp / "out" / "runs"
    for row, shift in SHIFTS.items():
        for seed in SEEDS:
            run = runs / row / f"seed{seed}"
            # the maps scoring predicted: the ground truth shifted, so CC falls with the shift
            predictions = run / "score" / "predictions"
            for example in example_frames(videos):
                truth = read_saliency_map(example.saliency)
                moved = np.roll(truth, shift + seed - 1, axis=1)
                write_png_atomic(predictions / example.video / "maps" /
                                 f"{example.frame + 1:04d}.png", (moved * 255).astype(np.uint8))
            keep_examples(None, videos, predictions, run / "score" / EXAMPLES_DIR)
            per_video = {v.name: {c: 0.5 - 0.02 * shift + 0.001 * i for c in METRICS.values()}
                         for i, v in enumerate(videos)}
            scores = {c: statistics.fmean(s[c] for s in per_video.values())
                      for c in METRICS.values()}
            (run / "results.json").write_text(json.dumps({
                "seed": seed, "steps": 8, "train_seconds": 60.0, "global_batch": 4,
                "train_loss_trace": [[s, 2.0 - 0.1 * s - 0.01 * shift] for s in range(8)],
                "val_loss_trace": [[4, 1.7], [8, 1.4 + 0.01 * shift]],
                "loggers": {"wandb": f"{row}{seed}"},
                "score": {"protocol": "official", "description": "official sampling (split val)",
                          "scores": scores, "per_video": per_video}}))
    rows = paper_rows(5, "synthetic")
    paths = aggregate(5, rows, SEEDS, runs, tmp / "out", "AMSF module", ["a note"])
    return tmp, rows, paths


def test_scored_runs_keep_the_example_frames_maps(table):
    tmp, _, _ = table
    kept = tmp / "out" / "runs" / "ours" / "seed1" / "score" / EXAMPLES_DIR
    listed = json.loads((kept / "examples.json").read_text())
    # 3 validation videos x a third and two thirds of their 12 frames
    assert [(f["video"], f["frame"]) for f in listed["frames"]] == [
        (v, t) for v in ("0002", "0003", "0004") for t in (4, 7)]
    assert sorted(p.name for p in (kept / "0002" / "maps").iterdir()) == ["0005.png", "0008.png"]


def test_page_has_every_row_the_figures_and_no_script(table):
    tmp, rows, paths = table
    assert {"md", "csv", "png", "json", "loss", "examples", "html"} <= set(paths)
    page = paths["html"].read_text()
    assert page.startswith("<!DOCTYPE html>") and "<title>Table V: AMSF module</title>" in page
    assert "<script" not in page and not re.search(r"(src|href)=\"https?:", page)
    assert "<li>a note</li>" in page and "Scoring protocol: official sampling" in page
    for row in rows:
        assert f"<tr><td>{row.label}</td>" in page
    # the cells with the paper's values and the bootstrap's marks, and links to the run folders
    ours = re.search(r"<tr><td>Ours</td>(.*?)</tr>", page).group(1)
    assert "(0.539)" in ours and "reference" in ours and 'href="runs/ours/seed1"' in ours
    assert "<tr><td>Concat-Based</td><td>0.441 ± 0.000 * (0.532)</td>" in page
    assert page.count('src="data:image/png;base64,') == 3  # chart, comparison, loss curves
    assert "not run" in page  # amsf_no_stms has no run folder
    aggregate = json.loads(paths["json"].read_text())
    ours = next(r for r in aggregate["rows"] if r["row"] == "ours")
    assert ours["metrics"]["CC"]["mean"] == pytest.approx(0.501) and ours["runs"] == 2
    assert ours["metrics"]["CC"]["paper"] == 0.539
    assert aggregate["cells"]["rows"][-1][0] == "Ours"


def test_comparison_figure_shows_where_rows_disagree(table):
    tmp, _, paths = table
    shown = json.loads(paths["examples"].with_suffix(".json").read_text())
    frames = shown["frames"]
    assert [f["why"].split(":")[0] for f in frames[:2]] == ["fixed", "fixed"]
    assert (frames[0]["video"], frames[0]["frame"]) == ("0002", 5)
    assert (frames[1]["video"], frames[1]["frame"]) == ("0004", 8)
    assert len(frames) == 5 and all("disagree" in f["why"] for f in frames[2:])
    # the unshifted row matches the ground truth; the shifted ones fall behind
    for frame in frames:
        assert frame["cc"]["Ours"] == pytest.approx(1.0, abs=1e-6)
        assert frame["cc"]["Concat-Based"] > frame["cc"]["w/o AW"]
    spreads = [max(f["cc"].values()) - min(f["cc"].values()) for f in frames[2:]]
    assert spreads == sorted(spreads, reverse=True)
    with Image.open(paths["examples"]) as image:
        assert image.width > 800 and image.height > 300


def test_page_renders_in_a_headless_browser(table):
    tmp, rows, paths = table
    screenshot = tmp / "table5_page.png"
    dom = open_page(paths["html"], tmp / "browser", screenshot)
    for row in rows:
        assert re.search(rf"<tr><td>{re.escape(row.label)}</td>", dom), row.label
    decoded = re.findall(r'data-decoded="(yes|no)"', dom)
    assert decoded == ["yes"] * 3, decoded
    with Image.open(screenshot) as image:
        assert image.size == (1400, 2400)
        pixels = np.asarray(image.convert("L"))
    assert pixels.std() > 10  # something was drawn, not a blank page


def test_browser_check_skips_without_chromium_unless_required(monkeypatch):
    monkeypatch.setattr(browser_helpers.shutil, "which", lambda name: None)
    monkeypatch.setattr(browser_helpers, "CHROMIUM", "/nonexistent/chromium")
    monkeypatch.delenv("STSANET_REQUIRE_CHROMIUM", raising=False)
    with pytest.raises(pytest.skip.Exception, match="Chromium is not installed"):
        browser_helpers.chromium()
    monkeypatch.setenv("STSANET_REQUIRE_CHROMIUM", "1")
    with pytest.raises(pytest.fail.Exception, match="STSANET_REQUIRE_CHROMIUM=1 requires it"):
        browser_helpers.chromium()


def test_table_run_says_so_when_wandb_refuses(table, monkeypatch, capsys):
    import wandb

    from stsanet.runs.tracker import log_table_run, wandb_settings

    _, _, paths = table
    assert wandb_settings([]) == {"project": "stsanet", "offline": True}  # the logger config
    online = ["logger.wandb.offline=false", "logger.wandb.project=mine"]
    assert wandb_settings(online) == {"project": "mine", "offline": False}

    def refuse(**settings):
        assert settings["mode"] == "online" and settings["group"] == "table5-synthetic"
        raise wandb.errors.UsageError("api_key not configured (no-tty)")

    monkeypatch.setattr(wandb, "init", refuse)
    assert log_table_run(paths, "table5-synthetic", "table5", online, ["table5"]) is None
    assert capsys.readouterr().err == ("reproduce: the table was not logged to wandb (api_key "
                                       "not configured (no-tty)); its files are written\n")
