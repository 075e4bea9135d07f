"""stsanet-compare and the example maps scoring keeps: which frames are kept and shown (the stated
rule), the figure's per-frame CC, and bad inputs answered in one line with exit code 2."""

from __future__ import annotations

import io
import json

import numpy as np
import pytest
from PIL import Image

from pipeline_helpers import MeanFrameNet
from stsanet.cli.compare import main
from stsanet.data.index import build_index
from stsanet.data.io import read_saliency_map, write_png_atomic
from stsanet.data.synthetic import SyntheticSize, generate
from stsanet.metrics.benchmark import cc
from stsanet.runs.examples import EXAMPLES_DIR, example_frames, frames_of_index, read_examples
from stsanet.runs import scoring
from stsanet.runs.predictor import SlidingWindowPredictor
from stsanet.runs.scoring import ScoreOptions, score_network


@pytest.fixture(scope="module")
def data(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("compare")
    root = generate(tmp / "data", size=SyntheticSize(videos=3, train_videos=1, frames=40,
                                                     height=48, width=80, radius=4))
    index = build_index("synthetic", root, use_cache=False)
    yy, xx = np.mgrid[0:48, 0:80]
    centre = np.exp(-((yy - 24) ** 2 / 200 + (xx - 40) ** 2 / 500))
    for example in frames_of_index(index, "val"):
        truth = read_saliency_map(example.saliency)
        # stsanet-predict's layout for one model, the ground truth's file names for the other
        write_png_atomic(tmp / "truth" / example.video / "maps" / f"{example.frame + 1:04d}.png",
                         (truth * 255).astype(np.uint8))
        write_png_atomic(tmp / "centre" / example.video / f"{example.frame + 1:04d}.png",
                         (centre * 255).astype(np.uint8))
    return tmp, root, index


def test_compare_shows_fixed_frames_and_the_largest_disagreement(data, capsys):
    tmp, root, index = data
    output = tmp / "figure.png"
    assert main([f"truth={tmp / 'truth'}", str(tmp / "centre"), "--data", "synthetic",
                 "--data-root", str(root), "--output", str(output)]) == 0
    shown = json.loads(output.with_suffix(".json").read_text())["frames"]
    assert len(shown) == 5 and "written:" in capsys.readouterr().out
    assert [(f["video"], f["frame"]) for f in shown[:2]] == [("0002", 1), ("0003", 40)]
    assert all(f["cc"]["truth"] == pytest.approx(1.0) for f in shown)
    # the three others: the largest CC spread between the two models over all 80 frames
    spreads = {}
    for example in frames_of_index(index, "val"):
        truth = read_saliency_map(example.saliency)
        centre = read_saliency_map(tmp / "centre" / example.video / f"{example.frame + 1:04d}.png")
        spreads[example.video, example.frame + 1] = 1.0 - cc(centre, truth)
    for key in [(f["video"], f["frame"]) for f in shown[:2]]:
        spreads.pop(key)
    top = sorted(spreads, key=lambda k: -spreads[k])[:3]
    assert [(f["video"], f["frame"]) for f in shown[2:]] == top
    with Image.open(output) as image:
        assert image.width > 700 and image.height > 400


@pytest.mark.parametrize("arguments,message", [
    (["missing=/nonexistent/preds"], "/nonexistent/preds (missing): no such prediction folder"),
    (["a={truth}", "a={centre}"], "the label 'a' is given twice"),
    (["empty={empty}"], "no frame has a predicted map in every folder"),
    (["{truth}", "--data", "dhf2k"], "--data dhf2k: unknown layout"),
    (["{truth}", "--data-root", "/nonexistent/root"], "--data-root /nonexistent/root:"),
    (["{truth}", "--output", "{file}/figure.png"], "cannot be written"),
    (["{truth}", "--split", "test"], "--split test: no such split"),
])
def test_bad_inputs_get_one_line_and_exit_code_2(data, capsys, arguments, message):
    tmp, root, _ = data
    (tmp / "empty").mkdir(exist_ok=True)
    (tmp / "a-file").write_text("x")
    names = {"truth": tmp / "truth", "centre": tmp / "centre", "empty": tmp / "empty",
             "file": tmp / "a-file"}
    arguments = [a.format(**names) for a in arguments]
    if "--data" not in arguments:
        arguments += ["--data", "synthetic"]
    if "--data-root" not in arguments:
        arguments += ["--data-root", str(root)]
    assert main(arguments) == 2
    err = capsys.readouterr().err
    assert err.startswith("stsanet-compare: ") and message in err and err.count("\n") == 1, err


def test_scoring_keeps_the_example_maps_without_keeping_the_predictions(data, monkeypatch):
    tmp, _, index = data
    videos = index.split("val")
    kept_by = {}
    made = []  # the predictors scoring builds: each runs its own (channels-last) copy of the net

    def predictor(*args, **kwargs):
        made.append(SlidingWindowPredictor(*args, **kwargs))
        return made[-1]

    monkeypatch.setattr(scoring, "SlidingWindowPredictor", predictor)
    for supervision in ("middle", "last"):
        made.clear()
        net = MeanFrameNet(input_size=(32, 32))
        out = tmp / f"scored-{supervision}"
        result = score_network(net, index, ScoreOptions(protocol="official", val_stride=8), out,
                               input_size=(32, 32), supervision=supervision)
        assert result["frames"] == 4  # two labelled frames per 40-frame validation video
        assert not (out / "predictions").exists()  # the scored maps are not kept
        kept_by[supervision] = read_examples(out / EXAMPLES_DIR)
        for example in kept_by[supervision]:
            path = out / EXAMPLES_DIR / example.video / "maps" / f"{example.frame + 1:04d}.png"
            assert Image.open(path).size == (80, 48)
        # middle: the example frames are frames it scored (copied, no extra window); last: its
        # labelled frames differ, so it predicts the same example frames, one window each
        windows = sum(sum(p.model.net.calls) for p in made)
        assert windows == {"middle": 4, "last": 4 + 4}[supervision]
    assert kept_by["middle"] == kept_by["last"]
    # of the middle-supervised labelled frames (15 and 23), those nearest a third and two thirds
    assert [(e.video, e.frame) for e in kept_by["middle"]] == [
        ("0002", 15), ("0002", 23), ("0003", 15), ("0003", 23)]
    assert [e.frame for e in example_frames(videos)[:2]] == [13, 26]  # benchmark: every frame


def test_figure_takes_frames_maps_and_fixations_of_different_sizes():
    from stsanet.render.compare import ExamplePanel, comparison_figure

    rng = np.random.default_rng(0)
    fixations = np.zeros((24, 40), bool)
    fixations[5, 7] = True
    panels = [ExamplePanel("wide", rng.integers(0, 255, (48, 80, 3), np.uint8),
                           rng.random((24, 40)), fixations, [rng.random((48, 80)), None],
                           [0.5, float("nan")]),
              ExamplePanel("square", rng.integers(0, 255, (60, 60, 3), np.uint8),
                           rng.random((60, 60)), None,
                           [rng.random((30, 30)), rng.random((60, 60))],
                           [0.1, 0.2])]
    png = comparison_figure("sizes", ["a", "b"], panels)
    with Image.open(io.BytesIO(png)) as image:
        assert image.format == "PNG" and image.width > 600
