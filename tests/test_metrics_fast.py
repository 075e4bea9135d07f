"""Fast torch metrics: agree with the benchmark definitions, skip NaN samples, merge like DDP."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from stsanet.metrics import benchmark
from stsanet.metrics.fast import SaliencyMetrics, batch_cc, batch_kl, batch_nss, batch_sim


def sample_batch(seed, b=4, h=18, w=30):
    generator = torch.Generator().manual_seed(seed)
    pred = torch.rand(b, h, w, generator=generator)
    saliency = torch.rand(b, h, w, generator=generator) ** 2
    fixation = (torch.rand(b, h, w, generator=generator) > 0.9).float()
    return pred, saliency, fixation


def test_batch_functions_match_the_benchmark_definitions():
    pred, saliency, fixation = sample_batch(0)
    for i in range(pred.shape[0]):
        p, s, f = (x[i].double().numpy() for x in (pred, saliency, fixation))
        assert batch_cc(pred, saliency)[i].item() == pytest.approx(benchmark.cc(p, s), abs=1e-5)
        assert batch_nss(pred, fixation)[i].item() == pytest.approx(benchmark.nss(p, f), abs=1e-5)
        assert batch_sim(pred, saliency)[i].item() == pytest.approx(benchmark.sim(p, s), abs=1e-5)
        assert batch_kl(pred, saliency)[i].item() == pytest.approx(benchmark.kl(p, s), abs=1e-4)


def test_means_skip_nan_samples_and_count_them():
    pred, saliency, fixation = sample_batch(1)
    pred[0] = 0.5  # constant: CC and NSS are NaN, SIM NaN (constant non-zero)
    fixation[1] = 0  # no fixations: NSS NaN
    metric = SaliencyMetrics(prefix="val/fast_")
    metric.update(pred, saliency, fixation)
    scores = metric.compute()
    assert set(scores) == {"val/fast_cc", "val/fast_nss", "val/fast_sim", "val/fast_kl"}
    expected_cc = batch_cc(pred[1:], saliency[1:]).mean().item()
    assert scores["val/fast_cc"].item() == pytest.approx(expected_cc, abs=1e-6)
    expected_nss = batch_nss(pred[2:], fixation[2:]).mean().item()
    assert scores["val/fast_nss"].item() == pytest.approx(expected_nss, abs=1e-6)
    assert metric.nan_counts() == {"val/fast_cc_nan": 1, "val/fast_nss_nan": 2, "val/fast_sim_nan": 1, "val/fast_kl_nan": 0}
    assert all(math.isfinite(v.item()) for v in scores.values())


def test_merging_two_ranks_equals_one_process():
    pred, saliency, fixation = sample_batch(2, b=6)
    pred[4] = 0.25  # a NaN sample on the second "rank"
    single = SaliencyMetrics()
    single.update(pred, saliency, fixation)
    rank0, rank1 = SaliencyMetrics(), SaliencyMetrics()
    rank0.update(pred[:2], saliency[:2], fixation[:2])
    rank1.update(pred[2:], saliency[2:], fixation[2:])
    rank0.merge_state(rank1)  # the sum reduction a DDP sync applies to every state
    merged, expected = rank0.compute(), single.compute()
    for key in expected:
        assert merged[key].item() == pytest.approx(expected[key].item(), abs=1e-6)
    assert rank0.nan_counts() == single.nan_counts()
    # every state is reduced by summation
    assert all(fx is not None for fx in single._reductions.values())


def test_empty_metric_and_shape_errors():
    metric = SaliencyMetrics()
    with pytest.warns(UserWarning, match="before the ``update``"):
        assert all(math.isnan(v.item()) for v in metric.compute().values())
    with pytest.raises(ValueError, match="one shape"):
        metric.update(torch.rand(1, 4, 4), torch.rand(1, 4, 5), torch.rand(1, 4, 4))


def test_zero_map_sim_is_zero_like_matlab():
    _, saliency, _ = sample_batch(3, b=1)
    assert batch_sim(torch.zeros_like(saliency), saliency).item() == 0.0
    assert batch_sim(torch.zeros_like(saliency), saliency).item() == benchmark.sim(np.zeros((18, 30)), saliency[0].numpy())
