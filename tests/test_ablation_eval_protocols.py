"""Table II's DIEM test protocols as evaluation options: first 300 frames (i), a video subset
(ii), everything (iii)."""

from __future__ import annotations

from pathlib import Path

import pytest
from omegaconf import OmegaConf

from stsanet.runs.evaluate import EvalConfigError, frame_number, select_protocol, video_list
from stsanet.metrics.eval_inputs import FrameItem


def items(videos=("v1", "v2"), frames=400, pattern="eyeMap_{:05d}"):
    return [FrameItem(video=v, frame=pattern.format(f) if "{" in pattern else pattern,
                      prediction=Path("p"),
                      saliency_map=Path("s"), fixations=Path("f"))
            for v in videos for f in range(1, frames + 1)]


def test_frame_numbers_of_the_dataset_layouts():
    assert [frame_number(s) for s in ("0001", "img_00300", "eyeMap_00012", "frame")] == [
        1, 300, 12, None]


def test_three_protocols():
    every = items()
    assert select_protocol(every) == every  # (iii)
    first = select_protocol(every, first_frames=300)  # (i)
    assert len(first) == 600 and max(frame_number(i.frame) for i in first) == 300
    subset = select_protocol(every, videos=["v2"])  # (ii)
    assert {i.video for i in subset} == {"v2"} and len(subset) == 400
    assert len(select_protocol(every, videos=["v1"], first_frames=10)) == 10


@pytest.mark.parametrize("options,message", [
    (dict(videos=["v9"]), "v9"),
])
def test_bad_protocol_options_are_named(options, message):
    with pytest.raises(EvalConfigError, match=message):
        select_protocol(items(), **options)
    with pytest.raises(EvalConfigError, match="no frame number"):
        select_protocol(items(pattern="frame"), first_frames=3)


def test_video_subset_from_a_user_given_list_file(tmp_path):
    listed = tmp_path / "diem17.txt"
    listed.write_text("# the paper's 17 DIEM test videos\nv2\n\n  v3  # trailing comment\n")
    assert video_list(str(listed)) == ["v2", "v3"]
    assert video_list(["v1"]) == ["v1"] and video_list(None) is None
    subset = select_protocol(items(("v1", "v2", "v3"), frames=5), videos=video_list(str(listed)))
    assert {i.video for i in subset} == {"v2", "v3"}
    with pytest.raises(EvalConfigError, match=r"videos=.*missing.txt: cannot read the video list"):
        video_list(str(tmp_path / "missing.txt"))
    (tmp_path / "empty.txt").write_text("# nothing\n")
    with pytest.raises(EvalConfigError, match="lists no video names"):
        video_list(str(tmp_path / "empty.txt"))


def test_eval_config_has_the_options():
    from stsanet.runs.config import CONF_DIR

    cfg = OmegaConf.load(CONF_DIR / "eval.yaml")
    assert cfg.first_frames is None and cfg.videos is None
