"""Exact-ROC family against a brute-force pairwise Mann-Whitney AUC."""

from __future__ import annotations

import math

import numpy as np
import pytest
from metrics_helpers import brute_force_auc

from stsanet.metrics import benchmark, exact


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_against_brute_force_with_ties(seed):
    rng = np.random.default_rng(seed)
    pred = np.round(rng.random((12, 15)) * 10)  # coarse values: many ties
    fixations = rng.random((12, 15)) < 0.1
    other = rng.random((12, 15)) < 0.2
    assert exact.auc_judd(pred, fixations) == pytest.approx(brute_force_auc(pred[fixations], pred[~fixations]), abs=1e-12)
    assert exact.auc_borji(pred, fixations) == pytest.approx(brute_force_auc(pred[fixations], pred.ravel()), abs=1e-12)
    assert exact.auc_shuffled(pred, fixations, other) == pytest.approx(brute_force_auc(pred[fixations], pred[other]), abs=1e-12)


def test_hand_value_and_difference_from_benchmark():
    six = np.array([[0.9, 0.1, 0.5], [0.3, 0.7, 0.2]])
    fixations = np.array([[1, 0, 0], [1, 0, 0]], dtype=bool)
    # 0.9 beats all four negatives, 0.3 beats 0.1 and 0.2: 6 / 8
    assert exact.auc_judd(six, fixations) == pytest.approx(0.75)
    # MATLAB's AUC-Judd joins fixation thresholds by straight lines: 0.875 on the same input.
    assert benchmark.auc_judd(six, fixations, jitter=False) == pytest.approx(0.875)


def test_degenerate_inputs():
    constant = np.ones((5, 5))
    fixations = np.eye(5, dtype=bool)
    assert exact.auc_judd(constant, fixations) == 0.5  # all pairs tied
    assert math.isnan(exact.auc_judd(constant, np.zeros((5, 5))))
    assert math.isnan(exact.auc_shuffled(constant, fixations, np.zeros((5, 5))))
    assert math.isnan(exact.roc_auc([], [1.0]))
