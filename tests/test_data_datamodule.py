import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stsanet.data.check import DataCheckError
from stsanet.data.datamodule import ClipDataset, EpochSampler, SaliencyDataModule
from stsanet.data.resize import resize_fixations, resize_frames, resize_map
from stsanet.data.layouts import LayoutError
from stsanet.data.index import build_index
from data_helpers import distinct_frames, write_annotations, write_video

H, W = 24, 40
SIZE = (32, 64)


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STSANET_CACHE_DIR", str(tmp_path / "cache"))


@pytest.fixture
def dhf1k_root(tmp_path):
    root = tmp_path / "DHF1K"
    for number, frames in ((1, 40), (2, 20), (3, 36)):
        write_video(root / "video" / f"{number:03d}.AVI", distinct_frames(frames, H, W, seed=number),
                    "libx264", options={"bf": "2", "g": "12"})  # seeks wrongly in decord: exact path used
        write_annotations(root / "annotation" / f"{number:04d}", frames, H, W)
    return root


def _datamodule(root, **kwargs):
    options = dict(dataset="dhf1k", root=str(root), input_size=SIZE, clip_len=8, batch_size=2,
                   num_workers=0, val_stride=8, index_options={"train_videos": 2, "val_videos": 1})
    options.update(kwargs)
    return SaliencyDataModule(**options)


def test_batch_layout_and_label_alignment(dhf1k_root):
    dm = _datamodule(dhf1k_root)
    dm.setup("fit")
    batch = next(iter(dm.train_dataloader()))
    assert set(batch) >= {"clip", "saliency", "fixation", "has_fixation", "video", "frame"}
    assert batch["clip"].shape == (2, 3, 8, *SIZE) and batch["clip"].dtype == torch.float32
    assert batch["saliency"].shape == (2, *SIZE) and batch["fixation"].shape == (2, *SIZE)
    assert batch["has_fixation"].dtype == torch.bool and batch["frame"].dtype == torch.int64
    assert 0 <= batch["clip"].min() and batch["clip"].max() <= 1
    for b in range(2):
        video = next(v for v in dm.index.videos if v.name == batch["video"][b])
        label = int(batch["frame"][b])
        # the map of frame index t has grey value t+1 (1-based file numbers)
        assert torch.allclose(batch["saliency"][b], torch.full(SIZE, (label + 1) / 255))
        frames = distinct_frames(video.num_frames, H, W, seed=int(video.name))
        window = [min(max(i, 0), video.num_frames - 1) for i in range(label - 3, label + 5)]
        expected = resize_frames(frames[window], SIZE)
        # x264 is lossy: the decoded clip is close to the source frames, and the labelled
        # frame sits at position 3 (the 4th of 8, "middle")
        assert (batch["clip"][b] - expected).abs().mean() < 0.03
        diffs = [(batch["clip"][b][:, 3] - resize_frames(frames[[j]], SIZE)[:, 0]).abs().mean()
                 for j in range(video.num_frames)]
        assert int(np.argmin(diffs)) == label


def test_last_supervision_and_strided_validation(dhf1k_root):
    dm = _datamodule(dhf1k_root, supervision="last")
    dm.setup("fit")
    val = dm.datasets["val"]
    assert [label for _, label in val.items] == [7, 15, 23, 31]  # 36 frames, starts 0, 8, 16, 24, ...
    item = val[(0, 1)]
    assert item["frame"] == 15
    assert torch.allclose(item["saliency"], torch.full(SIZE, 16 / 255))


def test_random_clips_depend_only_on_seed_epoch_item(dhf1k_root):
    index = build_index("dhf1k", dhf1k_root, train_videos=2, val_videos=1)
    make = lambda seed: ClipDataset(index.split("train"), SIZE, clip_len=8, seed=seed)
    a, b = make(0), make(0)
    labels = lambda ds, epoch: [ds.random_label(ds.videos[i], epoch, i) for i in range(2)]
    assert labels(a, 3) == labels(b, 3)
    assert len({tuple(labels(a, e)) for e in range(8)}) > 1  # new clips each epoch
    assert torch.equal(a[(5, 0)]["clip"], b[(5, 0)]["clip"])
    for i in range(2):  # official range: start in [0, n - T)
        drawn = {a.random_label(a.videos[i], e, i) for e in range(300)}
        n = a.videos[i].num_frames
        assert drawn == set(range(3, 3 + n - 8))
    sampler = EpochSampler(10, shuffle=True, seed=1)
    sampler.set_epoch(2)
    first = list(sampler)
    sampler.set_epoch(3)
    assert sorted(first) == [(2, i) for i in range(10)] and [i for _, i in list(sampler)] != [i for _, i in first]


def test_full_video_windows_pad_edges_and_reuse_frames(dhf1k_root):
    index = build_index("dhf1k", dhf1k_root, train_videos=2, val_videos=1)
    video = index.split("train")[1]  # 20 frames
    ds = ClipDataset([video], SIZE, clip_len=8, sampling="all")
    assert len(ds) == 20
    first, last = ds[0], ds[19]
    for position in range(4):  # frames -3..0 are all frame 0
        assert torch.equal(first["clip"][:, position], first["clip"][:, 3])
    for position in range(3, 8):  # frames 19..23 are all frame 19
        assert torch.equal(last["clip"][:, position], last["clip"][:, 3])
    middle = ds[10]
    assert torch.equal(middle["clip"][:, 3], ds[9]["clip"][:, 4])


def test_short_video_padded_with_warning(dhf1k_root, caplog):
    dm = _datamodule(dhf1k_root, clip_len=32)
    with caplog.at_level("WARNING"):
        dm.setup("fit")
    assert "video shorter than a clip: 1, used: a window running past either end repeats the " \
           "edge frame" in caplog.text
    batch = dm.datasets["train"][(0, 1)]  # 20-frame video, padded
    assert batch["clip"].shape[1] == 32


def test_resize_rules():
    frames = np.random.default_rng(0).integers(0, 256, (2, 48, 80, 3), dtype=np.uint8)
    out = resize_frames(frames, (24, 40))
    reference = F.interpolate(torch.from_numpy(frames).permute(0, 3, 1, 2).float() / 255,
                              size=(24, 40), mode="bilinear", antialias=True)
    # uint8 antialiased resize (PIL-like rounding to 8 bits) vs the float computation
    assert out.shape == (3, 2, 24, 40) and out.dtype == torch.float32
    assert (out.permute(1, 0, 2, 3) - reference).abs().max() <= 1.01 / 255
    from PIL import Image
    pil = np.asarray(Image.fromarray(frames[0]).resize((40, 24), Image.BILINEAR))
    assert np.abs(out[:, 0].permute(1, 2, 0).numpy() * 255 - pil).max() <= 1.01
    saliency = np.linspace(0, 1, 48 * 80, dtype=np.float32).reshape(48, 80)
    assert torch.allclose(resize_map(saliency, (24, 40)),
                          F.interpolate(torch.from_numpy(saliency)[None, None], size=(24, 40),
                                        mode="bilinear")[0, 0])
    fixations = np.zeros((360, 640), bool)
    fixations[[0, 100, 359], [0, 320, 639]] = True
    mapped = resize_fixations(fixations, (224, 384))
    assert mapped.sum() == 3 and mapped[0, 0] and mapped[62, 192] and mapped[223, 383]
    assert resize_fixations(np.zeros((10, 10), bool), (4, 4)).sum() == 0


def test_empty_fixations_flagged(dhf1k_root):
    from stsanet.data.io import write_png_atomic
    write_png_atomic(dhf1k_root / "annotation" / "0003" / "fixation" / "0004.png",
                     np.zeros((H, W), np.uint8))
    dm = _datamodule(dhf1k_root)
    dm.setup("validate")
    flags = {item["frame"]: item["has_fixation"] for item in dm.datasets["val"]}
    assert flags[3] is False and flags[11] is True


def test_missing_root_and_unusable_root_fail_fast(tmp_path, dhf1k_root):
    with pytest.raises(LayoutError, match="data.root is not set"):
        SaliencyDataModule(dataset="dhf1k", root="???")
    with pytest.raises(LayoutError, match=r"data.root=.*nowhere does not exist"):
        SaliencyDataModule(dataset="dhf1k", root=str(tmp_path / "nowhere"))
    (dhf1k_root / "video" / "002.AVI").write_bytes(b"")
    dm = _datamodule(dhf1k_root)
    with pytest.raises(DataCheckError, match=r"zero-length video: 1 \(e.g. .*002\.AVI.*the full "
                                             r"report: stsanet-check-data data=dhf1k"):
        dm.setup("fit")


def test_dataloader_with_worker(dhf1k_root):
    dm = _datamodule(dhf1k_root, num_workers=1, persistent_workers=True)
    dm.setup("fit")
    loader = dm.train_dataloader()
    loader.sampler.set_epoch(1)
    frames_epoch1 = [int(f) for batch in loader for f in batch["frame"]]
    loader.sampler.set_epoch(1)
    assert [int(f) for batch in loader for f in batch["frame"]] == frames_epoch1
