"""The benchmark metrics as they were formulated before they were vectorised (one Python-level
split at a time, every metric normalising the prediction itself).

Kept out of ``src`` on purpose: it is the reference the vectorised ``stsanet.metrics.benchmark``
must equal bit for bit (tests/test_metrics_vectorised.py) and the baseline that
``benchmarks/bench_eval.py`` times the metrics against. The MATLAB steps are documented in
``stsanet.metrics.benchmark``; this file repeats them without the sharing and batching.
"""

from __future__ import annotations

import numpy as np

from stsanet.metrics.benchmark import EPS, as_generator, matlab_colon, trapz


def _z_score(x):
    if x.size <= 1 or x.max() == x.min():
        return np.full(x.shape, np.nan)
    return (x - x.mean()) / np.std(x, ddof=1)


def _min_max(x):
    with np.errstate(divide="ignore", invalid="ignore"):
        return (x - x.min()) / (x.max() - x.min())


def cc(pred, gt):
    a, b = _z_score(pred), _z_score(gt)
    with np.errstate(divide="ignore", invalid="ignore"):
        a = a - a.mean()
        b = b - b.mean()
        return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def nss(pred, fixations):
    fixations = np.asarray(fixations) != 0
    if not fixations.any():
        return float("nan")
    return float(np.mean(_z_score(pred)[fixations]))


def _as_distribution_mm(x):
    if not x.any():
        return x
    x = _min_max(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return x / x.sum()


def sim(pred, gt):
    p, g = _as_distribution_mm(pred), _as_distribution_mm(gt)
    if np.isnan(p).all() or np.isnan(g).all():
        return float("nan")
    return float(np.sum(np.minimum(p, g)))


def kl(pred, gt):
    if pred.any():
        pred = pred / pred.sum()
    if gt.any():
        gt = gt / gt.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum(gt * np.log(EPS + gt / (pred + EPS))))


def _normalised_scores(pred, positive):
    pred = _min_max(pred)
    if np.isnan(pred).all():
        return None
    values = pred.ravel()
    return values, values[positive.ravel()]


def auc_judd(pred, fixations, jitter=True, seed=0):
    positive = np.asarray(fixations) > 0
    if not positive.any():
        return float("nan")
    if jitter:
        pred = pred + as_generator(seed).random(pred.shape) / 10000000.0
    scores = _normalised_scores(pred, positive)
    if scores is None:
        return float("nan")
    values, at_fixations = scores
    n_fix, n_pix = at_fixations.size, values.size
    thresholds = np.sort(at_fixations)[::-1]
    above = n_pix - np.searchsorted(np.sort(values), thresholds, side="left")
    rank = np.arange(1, n_fix + 1)
    tp = np.concatenate(([0.0], rank / n_fix, [1.0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        fp = np.concatenate(([0.0], (above - rank) / (n_pix - n_fix), [1.0]))
    return trapz(fp, tp)


def grid_auc(positives, negatives, n_neg_norm, step):
    """One split of the coarse-grid ROC of AUC_shuffled.m / AUC_Borji.m."""
    top = float(np.max(np.concatenate((positives, negatives))))
    thresholds = matlab_colon(0.0, step, top)[::-1]
    tp = (positives.size - np.searchsorted(np.sort(positives), thresholds, side="left")) / positives.size
    with np.errstate(divide="ignore", invalid="ignore"):
        fp = (negatives.size - np.searchsorted(np.sort(negatives), thresholds, side="left")) / n_neg_norm
    return trapz(np.concatenate(([0.0], fp, [1.0])), np.concatenate(([0.0], tp, [1.0])))


def auc_shuffled(pred, fixations, other_map, n_splits=100, step=0.1, seed=0):
    positive = np.asarray(fixations) > 0
    if not positive.any():
        return float("nan")
    scores = _normalised_scores(pred, positive)
    if scores is None:
        return float("nan")
    values, at_fixations = scores
    pool = np.flatnonzero(np.asarray(other_map).ravel() > 0)
    n_other = min(at_fixations.size, pool.size)
    if n_other == 0:
        return float("nan")
    rng = as_generator(seed)
    aucs = np.empty(n_splits)
    for split in range(n_splits):
        chosen = pool[rng.permutation(pool.size)[:n_other]]
        aucs[split] = grid_auc(at_fixations, values[chosen], n_other, step)
    return float(np.mean(aucs))


def auc_borji(pred, fixations, n_splits=100, step=0.1, seed=0):
    positive = np.asarray(fixations) > 0
    if positive.sum() <= 1:
        return float("nan")
    scores = _normalised_scores(pred, positive)
    if scores is None:
        return float("nan")
    values, at_fixations = scores
    draws = as_generator(seed).integers(0, values.size, size=(n_splits, at_fixations.size))
    return float(np.mean([grid_auc(at_fixations, values[d], at_fixations.size, step) for d in draws]))


def score_frame(pred, gt, fixations, other_map, rng, n_splits=100, step=0.1, jitter=True):
    """All seven benchmark columns of one frame, drawing from ``rng`` in the protocol's order
    (AUC-J's jitter, then s-AUC's splits, then AUC-B's), as ``stsanet.metrics.evaluate`` does."""
    return {
        "AUC-J": auc_judd(pred, fixations, jitter=jitter, seed=rng),
        "SIM": sim(pred, gt),
        "s-AUC": auc_shuffled(pred, fixations, other_map, n_splits, step, seed=rng),
        "CC": cc(pred, gt),
        "NSS": nss(pred, fixations),
        "KL": kl(pred, gt),
        "AUC-B": auc_borji(pred, fixations, n_splits, step, seed=rng),
    }
