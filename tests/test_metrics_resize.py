"""MATLAB bicubic imresize: hand-computed weights and values, antialiasing, borders."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from stsanet.metrics.resize import cubic_kernel, imresize, resize_weights


def test_cubic_kernel_values():
    x = np.array([0.0, 0.25, 0.75, 1.0, 1.25, 1.75, 2.0, 2.5])
    # (1.5|x|^3 - 2.5|x|^2 + 1) inside 1, (-0.5|x|^3 + 2.5|x|^2 - 4|x| + 2) in (1, 2]
    expected = [1.0, 0.8671875, 0.2265625, 0.0, -0.0703125, -0.0234375, 0.0, 0.0]
    np.testing.assert_allclose(cubic_kernel(x), expected, atol=1e-15)


def test_upscaling_by_two_hand_values():
    # Output pixel 1 sits at input 0.75: taps at -1, 0, 1, 2 weigh -0.0234375, 0.2265625,
    # 0.8671875, -0.0703125; mirroring folds -1 -> 2 and 0 -> 1.
    expected = np.array([[1.09375, -0.09375], [0.796875, 0.203125], [0.203125, 0.796875], [-0.09375, 1.09375]])
    np.testing.assert_allclose(resize_weights(2, 4), expected, atol=1e-15)
    np.testing.assert_allclose(imresize(np.array([[0.0, 1.0]]), (1, 4)), [[-0.09375, 0.203125, 0.796875, 1.09375]], atol=1e-15)


def test_shrinking_by_two_uses_the_stretched_antialiasing_kernel():
    # scale 1/2: kernel 0.5 * cubic(x / 2), 8 taps; output 1 sits at input 1.5
    np.testing.assert_allclose(
        resize_weights(4, 2), [[0.546875, 0.3984375, 0.1015625, -0.046875], [-0.046875, 0.1015625, 0.3984375, 0.546875]],
        atol=1e-15,
    )
    column = np.array([[1.0], [2.0], [3.0], [4.0]])
    np.testing.assert_allclose(imresize(column, (2, 1)), [[1.4609375], [3.5390625]], atol=1e-15)
    # without antialiasing: cubic at 1.5, taps 0..3 weigh -1/16, 9/16, 9/16, -1/16 and the
    # mirrored tap 0 reads pixel 1: -1/16 + 9/16 + 18/16 - 3/16 = 1.4375 (not the linear 1.5)
    np.testing.assert_allclose(imresize(column, (2, 1), antialiasing=False), [[1.4375], [3.5625]], atol=1e-15)


def test_identity_constant_and_uint8():
    rng = np.random.default_rng(0)
    image = rng.random((7, 9))
    np.testing.assert_array_equal(imresize(image, (7, 9)), image)
    np.testing.assert_allclose(imresize(np.full((7, 9), 0.3), (20, 5)), 0.3, atol=1e-14)
    as_uint8 = imresize(np.array([[0, 255]], dtype=np.uint8), (1, 4))
    assert as_uint8.dtype == np.uint8 and as_uint8.tolist() == [[0, 52, 203, 255]]  # rounded, saturated


def test_separable_and_differs_from_torch_bicubic():
    rng = np.random.default_rng(1)
    image = rng.random((10, 14))
    out = imresize(image, (25, 6))
    expected = resize_weights(10, 25) @ image @ resize_weights(14, 6).T
    np.testing.assert_allclose(out, expected, atol=1e-12)
    ours = imresize(image, (20, 28))
    theirs = F.interpolate(torch.from_numpy(image)[None, None], size=(20, 28), mode="bicubic", align_corners=False)[0, 0].numpy()
    assert np.abs(ours - theirs).max() > 1e-3  # a = -0.5 vs torch's -0.75, mirrored borders


def test_bad_shapes():
    with pytest.raises(ValueError):
        imresize(np.zeros((2, 2, 3)), (4, 4))
    with pytest.raises(ValueError):
        resize_weights(0, 3)
