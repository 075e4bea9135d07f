"""Exact-ROC AUCs for research (no jitter, no sampling, no threshold grid).

Each AUC here is the Mann-Whitney statistic P(S_pos > S_neg) + P(S_pos = S_neg) / 2 over all
positive/negative pairs, computed from average ranks. They are deterministic and differ
systematically from the benchmark family (:mod:`stsanet.metrics.benchmark`): the MATLAB
s-AUC and AUC-Borji use an 11-point threshold grid and random negatives, AUC-Judd uses
jitter and rank-based false positives. Never put numbers of the two families in one table.

Differences from the benchmark semantics, by design: a constant prediction scores 0.5 (all
pairs tied) instead of NaN. NaN only when there are no positives or no negatives.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import rankdata

from stsanet.metrics.resize import imresize


def roc_auc(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Area under the exact ROC curve of positives vs negatives (ties count one half)."""
    positives = np.asarray(positives, dtype=np.float64).ravel()
    negatives = np.asarray(negatives, dtype=np.float64).ravel()
    n_pos, n_neg = positives.size, negatives.size
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(np.concatenate((positives, negatives)), method="average")
    rank_sum = ranks[:n_pos].sum()
    return float((rank_sum - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def _prediction_and_fixations(saliency_map, fixation_map):
    fixations = np.asarray(fixation_map) > 0
    pred = np.asarray(saliency_map, dtype=np.float64)
    if pred.ndim != 2 or fixations.ndim != 2:
        raise ValueError(f"expected 2-D maps, got {pred.shape} and {fixations.shape}")
    if pred.shape != fixations.shape:
        pred = imresize(pred, fixations.shape)
    return pred, fixations


def auc_judd(saliency_map, fixation_map) -> float:
    """Fixated pixels vs all non-fixated pixels."""
    pred, fixations = _prediction_and_fixations(saliency_map, fixation_map)
    return roc_auc(pred[fixations], pred[~fixations])


def auc_borji(saliency_map, fixation_map) -> float:
    """Fixated pixels vs every pixel of the map (the limit of AUC-Borji's uniform draws)."""
    pred, fixations = _prediction_and_fixations(saliency_map, fixation_map)
    return roc_auc(pred[fixations], pred.ravel())


def auc_shuffled(saliency_map, fixation_map, other_map) -> float:
    """Fixated pixels vs every location fixated in ``other_map`` (each location once)."""
    pred, fixations = _prediction_and_fixations(saliency_map, fixation_map)
    other = np.asarray(other_map) > 0
    if other.shape != fixations.shape:
        raise ValueError(f"other_map shape {other.shape} != fixation map shape {fixations.shape}")
    return roc_auc(pred[fixations], pred[other])


__all__ = ["auc_borji", "auc_judd", "auc_shuffled", "roc_auc"]
