import decord
import numpy as np
import pytest

from stsanet.data.frames import (
    SEEK_VERDICTS,
    ImageFolderSource,
    VideoFileSource,
    open_frame_source,
    probe_seek_mode,
)
from stsanet.data.io import DataFileError
from data_helpers import decode_sequential_pyav, distinct_frames, write_frame_folder, write_video

SCATTERED = [50, 3, 99, 17, 64, 64, 0, 88, 31, 5, 119, 42]


def _random_access_is_wrong(path, reference):
    reader = decord.VideoReader(str(path))
    return any(not np.array_equal(reader.get_batch([i]).asnumpy()[0], reference[i]) for i in SCATTERED)


@pytest.mark.parametrize(
    "name,codec,options",
    [
        ("h264_bframes.avi", "libx264", {"g": "24", "bf": "3"}),
        ("mpeg4_bframes.avi", "mpeg4", {"g": "24", "bf": "2"}),
    ],
)
def test_inexact_avi_reads_equal_sequential_decode(tmp_path, name, codec, options):
    path = write_video(tmp_path / name, distinct_frames(120), codec, options=options)
    reference = decode_sequential_pyav(path)
    assert len(reference) == 120
    # The file really is one decord's random access gets wrong ...
    assert _random_access_is_wrong(path, reference)
    # ... so the probe picks an exact strategy, and every read pattern matches a sequential decode.
    assert probe_seek_mode(path) in ("keyframe", "sequential")
    source = open_frame_source(path)
    assert (source.num_frames, source.height, source.width) == (120, 48, 80)
    for index in SCATTERED:
        np.testing.assert_array_equal(source.read([index])[0], reference[index])
    clip = [max(0, min(119, i)) for i in range(90, 122)] + [0, 0]
    np.testing.assert_array_equal(source.read(clip), reference[clip])
    np.testing.assert_array_equal(source.read(SCATTERED), reference[SCATTERED])


@pytest.mark.parametrize(
    "name,codec,options",
    [("mjpeg.avi", "mjpeg", None), ("h264.mp4", "libx264", {"g": "24"}), ("mpeg4_intra_p.avi", "mpeg4", {"g": "24"})],
)
def test_exact_containers_use_random_access(tmp_path, name, codec, options):
    path = write_video(tmp_path / name, distinct_frames(120), codec, options=options)
    reference = decode_sequential_pyav(path)
    assert probe_seek_mode(path) == "random"
    source = open_frame_source(path)
    np.testing.assert_array_equal(source.read(SCATTERED), reference[SCATTERED])


def test_forced_sequential_mode_matches(tmp_path):
    path = write_video(tmp_path / "v.avi", distinct_frames(60), "libx264", options={"bf": "2"})
    reference = decode_sequential_pyav(path)
    source = VideoFileSource(path, seek_mode="sequential")
    for indices in ([10, 11, 12], [5], [59, 0, 30], [30, 31]):
        np.testing.assert_array_equal(source.read(indices), reference[indices])


def test_verdict_persisted_in_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("STSANET_CACHE_DIR", str(tmp_path / "cache"))
    path = write_video(tmp_path / "v.avi", distinct_frames(40), "mjpeg")
    assert probe_seek_mode(path) == "random"
    SEEK_VERDICTS._memory.clear()
    assert SEEK_VERDICTS.get(path) == "random"
    assert (tmp_path / "cache" / "seek_verdicts.json").is_file()


def test_image_folder_sorted_numerically(tmp_path):
    frames = distinct_frames(12)
    folder = write_frame_folder(tmp_path / "images", frames, pattern="img_{}.png")
    (folder / "notes.txt").write_text("not a frame")
    source = open_frame_source(folder)
    assert isinstance(source, ImageFolderSource)
    assert [p.name for p in source.files][8:11] == ["img_9.png", "img_10.png", "img_11.png"]
    np.testing.assert_array_equal(source.read([11, 0, 9, 9]), frames[[11, 0, 9, 9]])
    with pytest.raises(IndexError, match="outside 0..11"):
        source.read([12])


def test_bad_inputs_name_the_file(tmp_path):
    with pytest.raises(DataFileError, match=r"missing\.avi: no such video file or frame folder"):
        open_frame_source(tmp_path / "missing.avi")
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(DataFileError, match=r"empty\.avi: zero-length video file"):
        open_frame_source(tmp_path / "empty.avi")
    (tmp_path / "junk.avi").write_bytes(b"RIFF" + bytes(2000))
    with pytest.raises(DataFileError, match=r"junk\.avi: unreadable video"):
        open_frame_source(tmp_path / "junk.avi")
    (tmp_path / "frames").mkdir()
    with pytest.raises(DataFileError, match=r"frames: no image frames"):
        open_frame_source(tmp_path / "frames")
    write_frame_folder(tmp_path / "mixed", distinct_frames(2))
    write_frame_folder(tmp_path / "mixed", distinct_frames(1, 20, 20), pattern="{:04d}.png", first=3)
    with pytest.raises(DataFileError, match=r"0003\.png: frame is 20×20"):
        open_frame_source(tmp_path / "mixed").read([0, 2])
