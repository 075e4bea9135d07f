import numpy as np
import pytest

from stsanet.data.clips import label_offset, random_label, strided_labels, window_indices


def test_middle_window_matches_paper_rule_frame_by_frame():
    n = 100
    for t in range(n):  # 0-based label t <-> paper frame t+1; clip = t+1-15 ... t+1+16 clamped
        expected = [min(max(j, 1), n) - 1 for j in range(t + 1 - 15, t + 1 + 17)]
        assert window_indices(t, n, 32, "middle") == expected
    assert window_indices(0, n)[:16] == [0] * 16 and window_indices(0, n)[16] == 1
    assert window_indices(99, n)[15:] == [99] * 17


def test_last_window_frame_by_frame():
    n = 50
    for t in range(n):
        expected = [max(j, 0) for j in range(t - 31, t + 1)]
        assert window_indices(t, n, 32, "last") == expected
        assert window_indices(t, n, 32, "last")[-1] == t


def test_label_is_16th_or_32nd_clip_frame():
    assert label_offset(32, "middle") == 15 and label_offset(32, "last") == 31
    window = window_indices(40, 200, 32, "middle")
    assert window[15] == 40 and window[0] == 25 and window[-1] == 56
    with pytest.raises(ValueError, match="supervision"):
        label_offset(32, "first")


def test_short_video_pads_both_ends():
    assert window_indices(1, 5, 8, "middle") == [0, 0, 0, 1, 2, 3, 4, 4]
    assert window_indices(0, 1, 4, "last") == [0, 0, 0, 0]


def test_random_label_official_range():
    rng = np.random.default_rng(0)
    labels = {random_label(rng, 40, 32, "middle") for _ in range(2000)}
    assert labels == set(range(15, 15 + 8))  # starts 0..7: n-32 excluded (official randint)
    labels = {random_label(rng, 40, 32, "middle", exclusive_end=False) for _ in range(2000)}
    assert labels == set(range(15, 15 + 9))
    assert {random_label(rng, 40, 32, "last") for _ in range(2000)} == set(range(31, 39))
    assert random_label(rng, 10, 32, "middle") == 9  # shorter than a clip: start 0, clamped


def test_strided_labels_official_validation():
    assert strided_labels(100, 32) == [15, 47, 79]  # starts 0, 32, 64 (<= 68)
    assert strided_labels(96, 32) == [15, 47, 79]
    assert strided_labels(100, 32, supervision="last") == [31, 63, 95]
    assert strided_labels(20, 32) == [15]
    assert strided_labels(34, 1) == [15, 16, 17]
