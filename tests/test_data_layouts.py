import numpy as np
import pytest
import scipy.io

from stsanet.data.check import DataCheckError, check_index, require_usable
from stsanet.data.io import read_fixations, read_saliency_map
from stsanet.data.layouts import LayoutError
from stsanet.data.index import build_index
from data_helpers import distinct_frames, write_annotations, write_frame_folder, write_video

# a width decord decodes as it is (24 comes back padded to 4 channels)
H, W = 16, 32


@pytest.fixture(autouse=True)
def _private_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("STSANET_CACHE_DIR", str(tmp_path / "cache"))


def _assert_aligned(video):
    """Map k (grey value k) belongs to 0-based frame k-1."""
    for index in (0, video.num_frames - 1):
        assert round(read_saliency_map(video.maps[index])[0, 0] * 255) == index + 1
        assert read_fixations(video.fixations[index])[(index + 1) % H, 1]


def test_dhf1k_release_layout_videos_and_splits(tmp_path):
    root = tmp_path / "DHF1K"
    for number in range(1, 6):
        write_video(root / "video" / f"{number:03d}.AVI", distinct_frames(6, H, W), "mjpeg")
        if number <= 4:
            write_annotations(root / "annotation" / f"{number:04d}", 6, H, W)
    (root / "annotation" / "0002" / "fixation" / "maps").mkdir()
    scipy.io.savemat(root / "annotation" / "0002" / "fixation" / "maps" / "0001.mat",
                     {"I": np.ones((H, W))})
    index = build_index("dhf1k", root, train_videos=2, val_videos=1)
    assert [(v.name, v.split) for v in index.videos] == [
        ("0001", "train"), ("0002", "train"), ("0003", "val"), ("0004", "test"), ("0005", "test")]
    first = index.videos[0]
    assert first.frames_path == root / "video" / "001.AVI"
    assert (first.num_frames, first.height, first.width) == (6, H, W)
    _assert_aligned(first)
    assert index.videos[1].fixations[0].suffix == ".png"  # PNG preferred over .mat
    assert index.videos[4].maps == [None] * 6
    assert check_index(index).usable  # unannotated DHF1K test videos are expected


def test_dhf1k_extracted_frames_layouts(tmp_path):
    root = tmp_path / "a"
    write_frame_folder(root / "frames" / "0001" / "images", distinct_frames(5, H, W))
    write_annotations(root / "annotation" / "0001", 5, H, W)
    index = build_index("dhf1k", root)
    assert index.videos[0].frames_path == root / "frames" / "0001" / "images"
    _assert_aligned(index.videos[0])

    vinet = tmp_path / "b"
    for split, name in (("train", "0001"), ("val", "0601")):
        write_frame_folder(vinet / split / name / "images", distinct_frames(4, H, W))
        write_annotations(vinet / split / name, 4, H, W)
    index = build_index("dhf1k", vinet)
    assert [(v.name, v.split) for v in index.videos] == [("0001", "train"), ("0601", "val")]
    _assert_aligned(index.videos[1])


@pytest.mark.parametrize("dataset,video_name,pattern", [
    ("hollywood2", "actioncliptrain00001_00", "actioncliptrain00001_{:05d}.png"),
    ("ucf", "Diving-Side-001", "Diving-Side_001_{:03d}.png"),
])
def test_training_testing_layouts(tmp_path, dataset, video_name, pattern):
    for split in ("training", "testing"):
        clip = tmp_path / split / video_name
        write_frame_folder(clip / "images", distinct_frames(12, H, W), pattern=pattern)
        write_annotations(clip, 12, H, W, pattern=pattern)
    index = build_index(dataset, tmp_path)
    assert [v.split for v in index.videos] == ["train", "test"]
    video = index.videos[0]
    assert video.num_frames == 12 and video.frames_path.name == "images"
    assert video.maps[9].name == pattern.format(10)  # numeric, not lexical, order
    _assert_aligned(video)
    # shots shorter than a clip (many in Hollywood-2) are counted and the handling is stated
    text = check_index(index).format()
    assert "WARNING: video shorter than a clip: 2 (used: a window running past either end " \
           "repeats the edge frame" in text and "OK: the root is usable" in text


def test_diem_stavis_layout(tmp_path):
    write_frame_folder(tmp_path / "training" / "v1", distinct_frames(7, H, W), "img_{:05d}.jpg")
    write_frame_folder(tmp_path / "testing" / "v2", distinct_frames(3, H, W), "img_{:05d}.jpg")
    for name, count in (("v1", 7), ("v2", 3)):
        write_annotations(tmp_path / "ann" / name, count, H, W, pattern="eyeMap_{:05d}.jpg",
                          fixation_pattern="fixMap_{:05d}.mat", fixation_folder=".")
    index = build_index("diem", tmp_path)
    video = index.videos[0]
    assert (video.name, video.split, video.num_frames) == ("v1", "train", 7)
    assert video.fixations[6].name == "fixMap_00007.mat"
    assert read_fixations(video.fixations[6])[7 % H, 1]
    assert abs(read_saliency_map(video.maps[6])[0, 0] * 255 - 7) < 2  # JPEG


def test_index_cache_reused_and_invalidated(tmp_path):
    root = tmp_path / "r"
    write_frame_folder(root / "frames" / "0001" / "images", distinct_frames(4, H, W))
    write_annotations(root / "annotation" / "0001", 4, H, W)
    first = build_index("dhf1k", root)
    assert list((tmp_path / "cache").glob("index-dhf1k-*.json"))
    assert build_index("dhf1k", root).videos == first.videos
    write_annotations(root / "annotation" / "0002", 4, H, W)
    write_frame_folder(root / "frames" / "0002" / "images", distinct_frames(4, H, W))
    assert len(build_index("dhf1k", root).videos) == 2


def test_bad_roots_and_problems_are_reported(tmp_path):
    with pytest.raises(LayoutError, match="data.root is not set"):
        build_index("dhf1k", None)
    with pytest.raises(LayoutError, match="does not exist"):
        build_index("dhf1k", tmp_path / "nowhere")
    with pytest.raises(LayoutError, match=r"not a DHF1K root \(expected annotation/ or train/\)"):
        build_index("dhf1k", tmp_path)
    root = tmp_path / "bad"
    # 0001: fine but short; 0002: 40 frames, map 3 missing, extra map 41; 0003: zero-length;
    # 0004: maps of the wrong size; 0005: unreadable video
    write_video(root / "video" / "001.AVI", distinct_frames(20, H, W), "mjpeg")
    write_annotations(root / "annotation" / "0001", 20, H, W)
    write_video(root / "video" / "002.AVI", distinct_frames(40, H, W), "mjpeg")
    write_annotations(root / "annotation" / "0002", 41, H, W)
    (root / "annotation" / "0002" / "maps" / "0003.png").unlink()
    (root / "video" / "003.AVI").write_bytes(b"")
    write_annotations(root / "annotation" / "0003", 5, H, W)
    write_video(root / "video" / "004.AVI", distinct_frames(33, H, W), "mjpeg")
    write_annotations(root / "annotation" / "0004", 33, H + 2, W)
    (root / "video" / "005.AVI").write_bytes(b"RIFF" + bytes(500))
    write_annotations(root / "annotation" / "0005", 5, H, W)
    report = check_index(build_index("dhf1k", root))
    text = report.format()
    assert not report.usable and "FAILED: the root is unusable" in text
    assert "WARNING: video shorter than a clip: 1" in text and "001.AVI: 20 < 32 frames" in text
    assert "WARNING: frames without a saliency map: 1" in text and "1 of 40 (first: frame index 2)" in text
    assert "ERROR: frame-count mismatch: 1" in text and "40 frames but 1 maps and 1 fixation" in text
    assert "ERROR: zero-length video: 1" in text and "003.AVI" in text
    assert "ERROR: wrong image size: 6" in text and "32×18, frames of 0004 are 32×16" in text
    assert "ERROR: unreadable video or frame folder: 1" in text and "005.AVI" in text
    with pytest.raises(DataCheckError, match=r"is unusable for dhf1k: .*stsanet-check-data "
                                             r"data=dhf1k data.root=.*bad splits=\[train\]"):
        require_usable(build_index("dhf1k", root), ["train"])
