"""MATLAB-faithful metrics: hand-computed tiny maps, NaN semantics, sampling behaviour."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest

from stsanet.metrics import benchmark
from stsanet.metrics.benchmark import EPS, matlab_colon

RAMP = np.array([[1.0, 2.0], [3.0, 4.0]])
# min-max of this map: [[1, 0, .5], [.25, .75, .125]]
SIX = np.array([[0.9, 0.1, 0.5], [0.3, 0.7, 0.2]])


def fix(shape, *points):
    out = np.zeros(shape, dtype=bool)
    for r, c in points:
        out[r, c] = True
    return out


# ------------------------------------------------------------------ CC, NSS, SIM, KL
def test_cc_hand_value():
    gt = np.array([[0.0, 0.0], [1.0, 1.0]])
    # centred: a = [-1.5, -.5, .5, 1.5], b = [-.5, -.5, .5, .5]: 2 / sqrt(5 * 1)
    assert benchmark.cc(RAMP, gt) == pytest.approx(2 / math.sqrt(5), abs=1e-12)


def test_nss_hand_value_uses_sample_std():
    # z of 3 and 4 with mean 2.5 and sample std sqrt(5/3): mean (0.5 + 1.5)/2 / sqrt(5/3)
    value = benchmark.nss(RAMP, fix((2, 2), (1, 0), (1, 1)))
    assert value == pytest.approx(1 / math.sqrt(5 / 3), abs=1e-12)


def test_sim_hand_value_and_min_max_matters():
    pred = np.array([[0.0, 1.0], [2.0, 3.0]])  # -> [0, 1/6, 1/3, 1/2]
    gt = np.array([[1.0, 1.0], [0.0, 0.0]])  # -> [1/2, 1/2, 0, 0]
    assert benchmark.sim(pred, gt) == pytest.approx(1 / 6, abs=1e-12)
    assert benchmark.sim(pred + 10.0, gt) == pytest.approx(1 / 6, abs=1e-12)


def test_kl_hand_values():
    uniform = np.ones((2, 2))
    assert benchmark.kl(uniform, np.array([[1.0, 1.0], [0.0, 0.0]])) == pytest.approx(math.log(2), abs=1e-12)
    expected = math.log(EPS + 1 / (0.25 + EPS))
    assert benchmark.kl(uniform, np.array([[1.0, 0.0], [0.0, 0.0]])) == pytest.approx(expected, abs=1e-12)


def test_identical_maps():
    rng = np.random.default_rng(0)
    gt = rng.random((9, 13))
    assert benchmark.cc(gt, gt) == pytest.approx(1.0, abs=1e-12)
    assert benchmark.sim(gt, gt) == pytest.approx(1.0, abs=1e-12)
    assert abs(benchmark.kl(gt, gt)) < 1e-10


def test_nan_semantics_of_deterministic_metrics():
    constant = np.full((4, 5), 0.3)
    rng = np.random.default_rng(1)
    gt = rng.random((4, 5))
    some = fix((4, 5), (1, 1))
    assert math.isnan(benchmark.cc(constant, gt))
    assert math.isnan(benchmark.cc(gt, constant))
    assert math.isnan(benchmark.nss(constant, some))  # std 0
    assert math.isnan(benchmark.nss(gt, np.zeros((4, 5))))  # no fixations
    assert math.isnan(benchmark.sim(constant, gt))  # constant non-zero map: 0/0
    assert benchmark.sim(np.zeros((4, 5)), gt) == 0.0  # an all-zero map stays zero
    # KL of an all-zero prediction is finite (eps in both places) and large.
    assert math.isfinite(benchmark.kl(np.zeros((4, 5)), gt)) and benchmark.kl(np.zeros((4, 5)), gt) > 20
    assert benchmark.kl(gt, np.zeros((4, 5))) == 0.0


def test_prediction_of_another_size_is_resized_bicubically():
    gt = np.random.default_rng(2).random((8, 12))
    small = gt[::2, ::2]
    from stsanet.metrics.resize import imresize

    assert benchmark.cc(small, gt) == pytest.approx(benchmark.cc(imresize(small, (8, 12)), gt), abs=1e-15)


# ------------------------------------------------------------------ AUC-Judd
def test_auc_judd_hand_value():
    # S = [1, 0, .5, .25, .75, .125], fixated {1, .25}: points (0,0) (0,.5) (.5,1) (1,1)
    assert benchmark.auc_judd(SIX, fix((2, 3), (0, 0), (1, 0)), jitter=False) == pytest.approx(0.875, abs=1e-12)
    # Jitter (1e-7) only breaks ties; without ties the counts, hence the score, are equal.
    assert benchmark.auc_judd(SIX, fix((2, 3), (0, 0), (1, 0)), jitter=True, seed=3) == pytest.approx(0.875, abs=1e-12)


def test_auc_judd_nan_and_constant_map():
    assert math.isnan(benchmark.auc_judd(SIX, np.zeros((2, 3)), seed=0))
    constant = np.full((40, 40), 128.0)
    rng = np.random.default_rng(4)
    fixations = rng.random((40, 40)) < 0.05
    assert math.isnan(benchmark.auc_judd(constant, fixations, jitter=False))
    # With jitter the ranks are random: about chance.
    assert abs(benchmark.auc_judd(constant, fixations, jitter=True, seed=5) - 0.5) < 0.1


def test_auc_judd_requires_an_explicit_seed_for_jitter():
    with pytest.raises(ValueError, match="explicit seed"):
        benchmark.auc_judd(SIX, fix((2, 3), (0, 0)), jitter=True, seed=None)


# ------------------------------------------------------------------ shuffled AUC
def test_auc_shuffled_hand_value():
    # fixated {1, .25}; other locations hold {0, .5} (as many as fixations: every split equal).
    # tp: .5 above .25, 1 from .2; fp: 0 above .5, .5 from .5 down to .1, 1 at 0 -> area .75
    other = fix((2, 3), (0, 1), (0, 2))
    value = benchmark.auc_shuffled(SIX, fix((2, 3), (0, 0), (1, 0)), other, n_splits=7, seed=0)
    assert value == pytest.approx(0.75, abs=1e-12)


def test_auc_shuffled_with_own_fixations_as_other_map_is_chance():
    rng = np.random.default_rng(6)
    pred = rng.random((30, 40))
    fixations = rng.random((30, 40)) < 0.03
    assert benchmark.auc_shuffled(pred, fixations, fixations, seed=1) == pytest.approx(0.5, abs=1e-12)


def test_auc_shuffled_sampling_matches_the_expectation_over_all_subsets():
    # Pool of 5 other locations, 2 fixations: every split is one of C(5, 2) subsets, equally likely.
    pred = np.array([[0.0, 0.2, 0.4, 0.6, 0.8, 1.0, 0.55, 0.35]])
    fixations = fix((1, 8), (0, 5), (0, 2))
    other = fix((1, 8), (0, 0), (0, 1), (0, 3), (0, 6), (0, 7))
    values = pred.ravel()
    pool = np.flatnonzero(other.ravel())
    expected = np.mean([
        benchmark._grid_auc(values[fixations.ravel()], values[list(s)], 2, 0.1)
        for s in itertools.combinations(pool, 2)
    ])
    sampled = benchmark.auc_shuffled(pred, fixations, other, n_splits=4000, seed=7)
    assert sampled == pytest.approx(expected, abs=0.01)


def test_auc_shuffled_nan_cases_and_seed():
    rng = np.random.default_rng(8)
    pred = rng.random((10, 10))
    fixations = rng.random((10, 10)) < 0.1
    other = rng.random((10, 10)) < 0.2
    assert math.isnan(benchmark.auc_shuffled(pred, np.zeros((10, 10)), other))
    assert math.isnan(benchmark.auc_shuffled(pred, fixations, np.zeros((10, 10))))
    assert math.isnan(benchmark.auc_shuffled(np.ones((10, 10)), fixations, other))
    first = benchmark.auc_shuffled(pred, fixations, other, seed=11)
    assert benchmark.auc_shuffled(pred, fixations, other, seed=11) == first
    assert 0.0 <= first <= 1.0


# ------------------------------------------------------------------ AUC-Borji
def test_auc_borji_expected_value_on_a_binary_map():
    # S = 1 on the 10 fixated pixels, 0 elsewhere: per split the ROC is (0,0) (q,1) (1,1),
    # area 1 - q/2 with q the share of draws landing on a fixated pixel: E = 1 - 0.1/2.
    pred = np.zeros((10, 10))
    fixations = np.zeros((10, 10), dtype=bool)
    fixations[2, :] = True
    pred[fixations] = 1.0
    assert benchmark.auc_borji(pred, fixations, n_splits=400, seed=2) == pytest.approx(0.95, abs=0.01)


def test_auc_borji_nan_with_at_most_one_fixation():
    assert math.isnan(benchmark.auc_borji(SIX, fix((2, 3), (0, 0)), seed=0))
    assert math.isnan(benchmark.auc_borji(np.ones((2, 3)), fix((2, 3), (0, 0), (1, 1)), seed=0))
    assert 0 <= benchmark.auc_borji(SIX, fix((2, 3), (0, 0), (1, 1)), seed=0) <= 1


# ------------------------------------------------------------------ MATLAB arithmetic
def test_matlab_colon_elements():
    grid = matlab_colon(0.0, 0.1, 1.0)
    assert len(grid) == 11 and grid[-1] == 1.0 and grid[0] == 0.0
    assert grid[6] == 1.0 - 0.4 == 0.6  # filled from the end: equals the literal 0.6
    assert grid[3] == 3 * 0.1  # filled from the start: 0.30000000000000004
    assert grid[5] == 0.5  # the exact mid-point
    short = matlab_colon(0.0, 0.1, 0.3)
    assert short[-1] == 0.3 and short[2] == 0.3 - 0.1
    assert len(matlab_colon(0.0, 0.1, 0.95)) == 10
    assert matlab_colon(0.0, 0.1, 0.0).tolist() == [0.0]
    # a stop within the tolerance below a grid point snaps the last element to the stop
    assert matlab_colon(0.0, 0.1, 0.6)[-1] == 0.6


def test_trapz_is_matlab_trapz():
    assert benchmark.trapz(np.array([0.0, 0.5, 1.0]), np.array([0.0, 1.0, 1.0])) == pytest.approx(0.75)
