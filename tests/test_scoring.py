"""stsanet.runs.scoring: a network scored through the predict route and the eval route, with the
benchmark protocol (every frame), the official sampling, and Table II's DIEM options."""

from __future__ import annotations

import csv

import pytest

from model_helpers import small_model
from stsanet.data.index import build_index
from stsanet.data.synthetic import SyntheticSize, generate
from stsanet.runs.evaluate import EvalConfigError
from stsanet.runs.scoring import ScoreOptions, score_network

FRAMES = 32


@pytest.fixture(scope="module")
def setup(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("scoring")
    root = generate(tmp / "data", size=SyntheticSize(videos=2, train_videos=1, frames=FRAMES,
                                                     height=48, width=80, radius=4))
    index = build_index("synthetic", root, use_cache=False)
    return tmp, index, small_model(input_size=(32, 32))


def frames_of(out) -> list[tuple[str, str]]:
    with open(out / "frames.csv", newline="") as handle:
        return [(r["video"], r["frame"]) for r in csv.DictReader(handle)]


def score(setup, name, supervision="middle", **options):
    tmp, index, net = setup
    options.setdefault("keep_predictions", True)
    return score_network(net, index, ScoreOptions(**options), tmp / name, input_size=(32, 32),
                         supervision=supervision), tmp / name


def test_benchmark_protocol_scores_every_frame_at_original_size(setup):
    result, out = score(setup, "middle")
    assert result["protocol"] == "benchmark" and result["frames"] == FRAMES
    assert list(result["per_video"]) == ["0002"]
    assert set(result["scores"]) >= {"CC", "NSS", "SIM", "AUC-J", "s-AUC", "KL"}
    assert frames_of(out) == [("0002", f"{k:04d}") for k in range(1, FRAMES + 1)]
    from PIL import Image

    with Image.open(out / "predictions" / "0002" / "maps" / "0001.png") as image:
        assert image.size == (80, 48)  # the video's own resolution
    assert "every frame of every evaluation video" in result["description"]


def test_official_sampling_scores_the_labelled_frames(setup):
    middle, out = score(setup, "official", protocol="official", val_stride=32)
    assert frames_of(out) == [("0002", "0016")]  # one clip; the middle (16th) frame is labelled
    assert sorted(p.name for p in (out / "predictions" / "0002" / "maps").iterdir()) == [
        "0016.png"]  # only the labelled frames are predicted
    last, out_last = score(setup, "official_last", "last", protocol="official", val_stride=32)
    assert frames_of(out_last) == [("0002", "0032")]  # last supervision labels another frame
    assert "stride 32" in middle["description"]


def test_table2_protocols_first_frames_and_subset(setup):
    first, out = score(setup, "first", first_frames=3)
    assert first["frames"] == 3 and frames_of(out)[-1] == ("0002", "0003")
    subset, out = score(setup, "subset", videos=["0002"], first_frames=2, keep_predictions=False)
    assert list(subset["per_video"]) == ["0002"] and subset["frames"] == 2
    assert not (out / "predictions").exists()  # dropped after scoring unless kept
    assert "1-video subset" in subset["description"] and "first 2 frames" in subset["description"]
    with pytest.raises(EvalConfigError, match="0009"):
        score(setup, "bad", videos=["0009"])
    with pytest.raises(EvalConfigError, match="score.protocol"):
        ScoreOptions(protocol="fast")
