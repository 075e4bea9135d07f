import json

import numpy as np
import pytest

from stsanet.data.check import check_index
from stsanet.data.frames import open_frame_source, probe_seek_mode
from stsanet.data.io import read_fixations, read_saliency_map
from stsanet.data.index import build_index
from stsanet.errors import OutputPlaceError
from stsanet.data.synthetic import SIZES, SyntheticSize, SyntheticDataModule, blurred_map, gaussian_sigma, generate, render, simulate


@pytest.fixture(scope="module")
def ci_root(tmp_path_factory):
    return generate(tmp_path_factory.mktemp("syn") / "ci", "ci", seed=0)


def _cc(a, b):
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / np.sqrt((a * a).sum() * (b * b).sum()))


def test_layout_splits_and_exact_video(ci_root, monkeypatch, tmp_path):
    monkeypatch.setenv("STSANET_CACHE_DIR", str(tmp_path / "cache"))
    spec = SIZES["ci"]
    index = build_index("synthetic", ci_root)
    assert index.splits() == {"train": spec.train_videos, "val": spec.videos - spec.train_videos}
    assert index.videos[0].frames_path == ci_root / "video" / "001.AVI"
    assert all(v.num_frames == spec.frames and None not in v.maps for v in index.videos)
    assert check_index(index, deep=True).usable
    assert probe_seek_mode(ci_root / "video" / "001.AVI") == "random"
    decoded = open_frame_source(ci_root / "video" / "002.AVI").read([7])[0].astype(int)
    source = render(simulate(spec, 0, 2), spec, 0, 2)[7]
    assert np.abs(decoded - source).mean() < 4  # near-lossless MJPEG


def test_deterministic_from_seed(ci_root, tmp_path):
    again = simulate(SIZES["ci"], 0, 3)
    fixations = read_fixations(ci_root / "annotation" / "0003" / "fixation" / "0010.png")
    assert sorted(map(tuple, np.argwhere(fixations))) == sorted(set(map(tuple, again.fixations[9])))
    other = simulate(SIZES["ci"], 1, 3)
    assert not np.allclose(other.positions, again.positions)
    assert generate(ci_root, "ci", seed=0) == ci_root  # same dataset: kept
    with pytest.raises(OutputPlaceError, match="seed 0"):
        generate(ci_root, "ci", seed=1)
    assert json.loads((ci_root / "synthetic.json").read_text())["train_videos"] == 4


def test_overwrite_replaces_an_earlier_generation_and_nothing_else(tmp_path):
    small = dict(train_videos=1, frames=4, height=64, width=96)
    root = generate(tmp_path / "s", SyntheticSize(videos=3, **small), seed=0)
    (root / "notes.txt").write_text("mine")
    with pytest.raises(OutputPlaceError, match="overwrite=true"):
        generate(root, SyntheticSize(videos=2, **small), seed=1)
    generate(root, SyntheticSize(videos=2, **small), seed=1, overwrite=True)
    assert sorted(p.name for p in (root / "video").iterdir()) == ["001.AVI", "002.AVI"]
    assert json.loads((root / "synthetic.json").read_text())["seed"] == 1
    assert (root / "notes.txt").read_text() == "mine"


def test_saliency_needs_time(ci_root):
    """A single frame cannot tell the mover from its look-alikes: the best frame-only map
    (all discs equally salient) and a centre bias score clearly below a map that knows which
    disc moves."""
    spec = SIZES["ci"]
    sigma = gaussian_sigma(spec.width)
    rows, cols = np.mgrid[0:spec.height, 0:spec.width]
    centre = np.exp(-((rows - spec.height / 2) ** 2 / (2 * (0.2 * spec.height) ** 2)
                      + (cols - spec.width / 2) ** 2 / (2 * (0.2 * spec.width) ** 2)))
    scores = {"mover": [], "static": [], "centre": []}
    for video in range(1, spec.videos + 1):
        scene = simulate(spec, 0, video)
        for t in range(0, spec.frames, 3):
            gt = read_saliency_map(ci_root / "annotation" / f"{video:04d}" / "maps" / f"{t + 1:04d}.png")
            discs = np.round(scene.positions[t]).astype(int)
            scores["mover"].append(_cc(blurred_map(discs[[scene.mover[t]]], spec.height, spec.width, sigma), gt))
            scores["static"].append(_cc(blurred_map(discs, spec.height, spec.width, sigma), gt))
            scores["centre"].append(_cc(centre, gt))
    mean = {k: float(np.mean(v)) for k, v in scores.items()}
    assert mean["mover"] > 0.75
    assert mean["static"] < mean["mover"] - 0.2
    assert mean["centre"] < 0.2
    # the discs look alike: every disc has the same pixels in the rendered frame
    frame = render(simulate(spec, 0, 1), spec, 0, 1)[0]
    assert len({tuple(frame[int(r), int(c)]) for r, c in np.round(simulate(spec, 0, 1).positions[0])}) == 1


def test_map_blur_matches_dhf1k_fwhm():
    assert abs(gaussian_sigma(640) - 12.74) < 0.01
    single = blurred_map(np.array([[20, 30]]), 41, 61, gaussian_sigma(640))
    half = np.where(single[20] >= 0.5)[0]
    assert single.max() == 1.0 and abs((half[-1] - half[0] + 1) - 30) <= 1


def test_datamodule_generates_on_first_use(tmp_path, monkeypatch):
    monkeypatch.setenv("STSANET_CACHE_DIR", str(tmp_path / "cache"))
    dm = SyntheticDataModule(root=str(tmp_path / "auto"), size="ci", input_size=(64, 96),
                             clip_len=32, batch_size=2, num_workers=0, val_stride=16)
    dm.setup("fit")
    assert (tmp_path / "auto" / "synthetic.json").is_file()
    batch = next(iter(dm.val_dataloader()))
    assert batch["clip"].shape == (2, 3, 32, 64, 96) and bool(batch["has_fixation"].all())


def test_crowded_size_is_an_error_not_a_hang():
    crowded = SIZES["ci"].__class__(videos=1, train_videos=1, frames=4, height=32, width=48, radius=6.0)
    with pytest.raises(ValueError, match="cannot hold 3 discs"):
        simulate(crowded, seed=0, video=0)
