"""KL - CC loss: equal to the official formula on normal inputs, finite on degenerate ones."""

from __future__ import annotations

import math

import pytest
import torch

from stsanet.metrics.loss import OFFICIAL_EPS, cc_per_sample, kl_cc_loss, kl_per_sample


def official_kl(s_map, gt):
    """The official batched KLD written out directly: sum-normalise both, eps twice."""
    b = s_map.size(0)
    s = s_map / s_map.view(b, -1).sum(1).view(b, 1, 1)
    g = gt / gt.view(b, -1).sum(1).view(b, 1, 1)
    s, g = s.view(b, -1), g.view(b, -1)
    return torch.sum(g * torch.log(OFFICIAL_EPS + g / (s + OFFICIAL_EPS)), 1)


def official_cc(s_map, gt):
    """The official batched CC: z-score with unbiased std, no eps."""
    b = s_map.size(0)
    s = (s_map - s_map.view(b, -1).mean(1).view(b, 1, 1)) / s_map.view(b, -1).std(1).view(b, 1, 1)
    g = (gt - gt.view(b, -1).mean(1).view(b, 1, 1)) / gt.view(b, -1).std(1).view(b, 1, 1)
    ab = (s * g).view(b, -1).sum(1)
    aa = (s * s).view(b, -1).sum(1)
    bb = (g * g).view(b, -1).sum(1)
    return ab / torch.sqrt(aa * bb)


def batch(seed, b=3, h=24, w=40):
    generator = torch.Generator().manual_seed(seed)
    pred = torch.sigmoid(torch.randn(b, h, w, generator=generator))
    target = torch.rand(b, h, w, generator=generator) ** 3
    return pred, target


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_identical_to_the_official_formula_on_normal_inputs(seed):
    pred, target = batch(seed)
    assert torch.equal(kl_per_sample(pred, target), official_kl(pred, target))
    assert torch.equal(cc_per_sample(pred, target), official_cc(pred, target))
    expected = official_kl(pred, target).mean() - official_cc(pred, target).mean()
    assert kl_cc_loss(pred, target).item() == pytest.approx(expected.item(), rel=1e-6, abs=1e-6)


def test_identical_maps_give_kl_zero_and_cc_one():
    _, target = batch(3)
    assert torch.allclose(kl_per_sample(target, target), torch.zeros(3), atol=1e-5)
    assert torch.allclose(cc_per_sample(target, target), torch.ones(3), atol=1e-6)


def test_all_zero_ground_truth_is_masked():
    pred, target = batch(4)
    with_empty = target.clone()
    with_empty[1] = 0
    keep = torch.tensor([0, 2])
    expected = kl_cc_loss(pred[keep], target[keep])
    assert kl_cc_loss(pred, with_empty).item() == pytest.approx(expected.item(), rel=1e-6)
    # a batch with no usable sample: exactly 0, finite (zero) gradients
    p = pred.clone().requires_grad_(True)
    loss = kl_cc_loss(p, torch.zeros_like(target))
    loss.backward()
    assert loss.item() == 0.0 and torch.equal(p.grad, torch.zeros_like(p))


def test_all_zero_and_constant_predictions_give_finite_loss_and_gradients():
    _, target = batch(5)
    for fill in (0.0, 0.5):
        p = torch.full_like(target, fill).requires_grad_(True)
        loss = kl_cc_loss(p, target)
        loss.backward()
        assert math.isfinite(loss.item())
        assert torch.isfinite(p.grad).all()
        assert cc_per_sample(p.detach(), target).eq(0).all()  # no correlation for a constant map
    zero = torch.zeros_like(target).requires_grad_(True)
    kl_cc_loss(zero, target).backward()
    fixated = target > 0
    assert (zero.grad[fixated] < 0).all()  # descent raises the prediction where the GT has mass


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_never_nan_gradients_on_mixed_degenerate_batches(dtype):
    generator = torch.Generator().manual_seed(6)
    pred = torch.rand(6, 8, 12, generator=generator, dtype=dtype)
    target = torch.rand(6, 8, 12, generator=generator, dtype=dtype)
    pred[0] = 0
    pred[1] = 0.7
    target[2] = 0
    target[3] = 0.2  # constant GT: KL defined, CC term 0
    pred[4, :4] = 0
    target[5] = 0
    target[5, 3, 3] = 1.0  # a single fixated pixel
    p = pred.clone().requires_grad_(True)
    loss = kl_cc_loss(p, target)
    loss.backward()
    assert torch.isfinite(loss) and torch.isfinite(p.grad).all()


def test_shape_mismatch_is_an_error():
    with pytest.raises(ValueError, match="shape"):
        kl_cc_loss(torch.rand(2, 4, 4), torch.rand(2, 4, 5))
