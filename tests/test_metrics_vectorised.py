"""The vectorised benchmark metrics equal their previous formulation (tests/metrics_reference.py:
one split at a time, every metric normalising for itself) bit for bit, for the same seed."""

from __future__ import annotations

import numpy as np
import pytest

import metrics_reference as reference
from stsanet.metrics import benchmark
from stsanet.metrics.evaluate import BENCHMARK_COLUMNS, EvalSettings, score_frame


def _frame(seed: int):
    """An 8-bit prediction (with ties, a saturated top for some seeds), a continuous map, fixations
    and a count map of other frames' fixations, as the protocol scores them."""
    rng = np.random.default_rng(seed)
    h, w = (36, 64) if seed % 2 else (45, 80)
    pred = np.round(rng.random((h, w)) ** (1 + seed % 3) * 255)
    if seed % 3 == 0:
        pred[pred > 200] = 255
    gt = np.round(rng.random((h, w)) ** 3 * 255) / 255
    fixations = rng.random((h, w)) < 0.01 + 0.02 * (seed % 4)
    other = (rng.random((h, w)) < 0.03) * rng.integers(1, 3, (h, w)).astype(np.float64)
    return pred, gt, fixations, other


SEEDS = range(12)


@pytest.mark.parametrize("seed", SEEDS)
def test_sampled_aucs_equal_the_one_split_at_a_time_formulation(seed):
    pred, _, fixations, other = _frame(seed)
    for n_splits, step in ((100, 0.1), (7, 0.25)):
        assert benchmark.auc_shuffled(pred, fixations, other, n_splits, step, seed=seed) == \
            reference.auc_shuffled(pred, fixations, other, n_splits, step, seed=seed)
        assert benchmark.auc_borji(pred, fixations, n_splits, step, seed=seed) == \
            reference.auc_borji(pred, fixations, n_splits, step, seed=seed)
    assert benchmark.auc_judd(pred, fixations, seed=seed) == reference.auc_judd(pred, fixations, seed=seed)


@pytest.mark.parametrize("seed", SEEDS)
def test_a_frame_scores_as_the_seven_separate_metrics_did(seed):
    """Shared normalisations and the draws in the same order: every column equal, and the
    generator left in the same state."""
    pred, gt, fixations, other = _frame(seed)
    new_rng, old_rng = np.random.default_rng(seed), np.random.default_rng(seed)
    got = score_frame(pred, gt, fixations, other, BENCHMARK_COLUMNS, EvalSettings(), new_rng)
    expected = reference.score_frame(pred, gt, fixations, other, old_rng)
    assert got == expected
    assert new_rng.random() == old_rng.random()


def test_split_grids_that_differ_are_each_built():
    """Splits whose negatives reach different maxima sweep different MATLAB grids."""
    positives = np.array([0.3, 0.55, 0.61])
    negatives = np.array([[0.2, 0.95, 0.1], [0.2, 0.4, 0.1], [0.6, 0.6, 0.6]])
    expected = [reference.grid_auc(positives, row, 3, 0.1) for row in negatives]
    assert benchmark.grid_aucs(positives, negatives, 3, 0.1).tolist() == expected


def test_degenerate_frames_are_nan_or_equal_as_before():
    rng = np.random.default_rng(3)
    fixations = rng.random((20, 30)) < 0.05
    other = rng.random((20, 30)) < 0.05
    for pred in (np.full((20, 30), 77.0), np.zeros((20, 30))):
        for name in ("auc_judd", "auc_borji"):
            a = getattr(benchmark, name)(pred, fixations, seed=1)
            b = getattr(reference, name)(pred, fixations, seed=1)
            assert a == b or (np.isnan(a) and np.isnan(b))
        a = benchmark.auc_shuffled(pred, fixations, other, seed=1)
        assert np.isnan(a) and np.isnan(reference.auc_shuffled(pred, fixations, other, seed=1))
        gt = rng.random((20, 30))
        for name in ("cc", "sim", "kl"):
            a, b = getattr(benchmark, name)(pred, gt), getattr(reference, name)(pred, gt)
            assert a == b or (np.isnan(a) and np.isnan(b)), name
