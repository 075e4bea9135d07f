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


def _score_on_rank(rank: int, world: int, init_file: str, root: str, out: str) -> None:
    """One DDP rank (gloo): score the synthetic val split, record which videos it predicted."""
    import json
    from pathlib import Path

    import torch
    import torch.distributed as dist

    from stsanet.runs.predictor import SlidingWindowPredictor

    torch.set_num_threads(1)
    predicted = []
    original = SlidingWindowPredictor.predict_video

    def recording(self, path, output, name=None, frames=None):
        predicted.append(name)
        return original(self, path, output, name=name, frames=frames)

    SlidingWindowPredictor.predict_video = recording
    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        index = build_index("synthetic", root, use_cache=False)
        result = score_network(small_model(input_size=(32, 32)), index,
                               ScoreOptions(workers=1, compile=False), out, input_size=(32, 32))
        report = {"predicted": predicted, "result": result}
        (Path(out) / f"rank{rank}.json").write_text(json.dumps(report))
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_two_ddp_ranks_share_the_prediction_and_score_as_one(tmp_path):
    """Two gloo ranks on CPU: each predicts one of the two evaluation videos, rank 0 scores every
    frame, and the scores equal a one-process run's."""
    import json

    import torch
    import torch.multiprocessing as mp

    root = generate(tmp_path / "data", size=SyntheticSize(videos=3, train_videos=1, frames=8,
                                                          height=48, width=80, radius=4))
    index = build_index("synthetic", root, use_cache=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as each rank: oneDNN's sums depend on the thread count
    try:
        alone = score_network(small_model(input_size=(32, 32)), index,
                              ScoreOptions(workers=1, compile=False), tmp_path / "alone",
                              input_size=(32, 32))
    finally:
        torch.set_num_threads(threads)
    out = tmp_path / "ddp"
    out.mkdir()
    mp.spawn(_score_on_rank, args=(2, str(tmp_path / "rendezvous"), str(root), str(out)),
             nprocs=2, join=True)
    ranks = [json.loads((out / f"rank{r}.json").read_text()) for r in (0, 1)]
    assert sorted(ranks[0]["predicted"] + ranks[1]["predicted"]) == ["0002", "0003"]
    assert len(ranks[0]["predicted"]) == len(ranks[1]["predicted"]) == 1
    assert ranks[1]["result"] is None and ranks[0]["result"]["frames"] == alone["frames"] == 16
    assert ranks[0]["result"]["scores"] == alone["scores"]
    assert ranks[0]["result"]["per_video"] == alone["per_video"]
