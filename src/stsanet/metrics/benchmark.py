"""Saliency metrics with the semantics of the MIT/DHF1K MATLAB benchmark code.

These are the numbers to report (DHF1K benchmark columns: AUC-J, SIM, s-AUC, CC, NSS; plus
KL and AUC-B). Every function follows the MATLAB reference (cvzoya/saliency
``code_forMetrics``) step by step, including its corner cases:

* ``std`` is the sample standard deviation (N - 1); ``EPS`` is MATLAB's ``eps``;
* a prediction whose size differs from the ground truth is first resized with MATLAB's
  bicubic :func:`~stsanet.metrics.resize.imresize`;
* NaN is returned exactly where MATLAB returns NaN (constant maps for CC/NSS/SIM/AUCs, no
  fixations for NSS/AUCs, one fixated pixel or fewer for AUC-Borji); SIM of an all-zero map
  is 0 (it stays a zero map);
* AUC-Judd adds uniform jitter / 1e7 (ties broken, as MATLAB) and uses the rank of each
  threshold for its false positives; s-AUC and AUC-Borji sweep MATLAB's ``0:step:max`` grid
  (built with MATLAB's colon arithmetic, which matters when a value equals a grid point)
  over ``n_splits`` random draws.

The sampled metrics take an explicit ``seed`` (an int or a ``numpy.random.Generator``);
MATLAB's own unseeded global stream cannot be reproduced, so they agree with MATLAB within
sampling noise, and exactly for the same draws.
"""

from __future__ import annotations

import numpy as np

from stsanet.metrics.resize import imresize

EPS = 2.220446049250313e-16  # MATLAB eps (2^-52); the papers round it to 2.2204e-16


def as_generator(seed) -> np.random.Generator:
    """A numpy Generator from an int seed (or the Generator itself)."""
    if isinstance(seed, np.random.Generator):
        return seed
    if seed is None:
        raise ValueError("sampled benchmark metrics need an explicit seed (int or Generator)")
    return np.random.default_rng(seed)


def _as_map(array) -> np.ndarray:
    out = np.asarray(array, dtype=np.float64)
    if out.ndim != 2:
        raise ValueError(f"expected a 2-D map, got shape {out.shape}")
    return out


def _to_shape(saliency_map: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    saliency_map = _as_map(saliency_map)
    if saliency_map.shape != tuple(shape):
        saliency_map = imresize(saliency_map, shape)
    return saliency_map


def _z_score(x: np.ndarray) -> np.ndarray:
    """``(x - mean) / std`` with MATLAB's sample std; all NaN for a constant map (0/0).

    The constant case is decided exactly (max == min), as MATLAB's arithmetic is exact for
    the integer-valued 8-bit maps of the protocol; for non-integer constants the rounding of
    the mean would otherwise turn 0/0 into a meaningless ±inf or ~1e-17.
    """
    if x.size <= 1 or x.max() == x.min():
        return np.full(x.shape, np.nan)
    return (x - x.mean()) / np.std(x, ddof=1)


def _min_max(x: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return (x - x.min()) / (x.max() - x.min())


def matlab_colon(start: float, step: float, stop: float) -> np.ndarray:
    """MATLAB's ``start:step:stop`` for a positive step, element for element.

    MATLAB does not accumulate ``start + k*step``: it fixes the number of intervals with a
    tolerance, snaps the last element to ``stop`` when within that tolerance, fills the
    first half forwards and the second half backwards from the end, and puts the exact
    mid-point in the middle. ``0:0.1:1`` therefore holds ``1 - 0.4`` (== 0.6), not ``6*0.1``.
    """
    if not (np.isfinite(start) and np.isfinite(step) and np.isfinite(stop)):
        return np.array([np.nan])
    if step <= 0 or stop < start:
        return np.zeros(0)
    tol = 2.0 * EPS * max(abs(start), abs(stop))
    n = int(np.round((stop - start) / step))
    if start + n * step - stop > tol:
        n -= 1
    last = start + n * step
    if last - stop > -tol:
        last = stop
    out = np.empty(n + 1)
    k = np.arange(n // 2 + 1)
    out[k] = start + k * step
    out[n - k] = last - k * step
    if n % 2 == 0:
        out[n // 2] = (start + last) / 2.0
    return out


def trapz(x: np.ndarray, y: np.ndarray) -> float:
    """MATLAB ``trapz(x, y)``: ``diff(x)' * (y(1:end-1) + y(2:end)) / 2``."""
    return float(np.dot(np.diff(x), y[:-1] + y[1:]) / 2.0)


def cc(saliency_map, gt_map) -> float:
    """Pearson correlation (CC.m): NaN if either map is constant."""
    gt = _as_map(gt_map)
    pred = _to_shape(saliency_map, gt.shape)
    a = _z_score(pred)
    b = _z_score(gt)
    with np.errstate(divide="ignore", invalid="ignore"):
        # corr2
        a = a - a.mean()
        b = b - b.mean()
        return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def nss(saliency_map, fixation_map) -> float:
    """Mean z-scored prediction over fixated pixels (NSS.m); NaN without fixations."""
    fixations = np.asarray(fixation_map) != 0
    pred = _to_shape(saliency_map, fixations.shape)
    if not fixations.any():
        return float("nan")
    return float(np.mean(_z_score(pred)[fixations]))


def _as_distribution_mm(x: np.ndarray) -> np.ndarray:
    if not x.any():  # an all-zero map stays all zero
        return x
    x = _min_max(x)
    with np.errstate(divide="ignore", invalid="ignore"):
        return x / x.sum()


def sim(saliency_map, gt_map) -> float:
    """Histogram intersection after min-max and sum normalisation (similarity.m).

    An all-zero map stays zero (score 0); a constant non-zero map is NaN.
    """
    gt = _as_map(gt_map)
    pred = _to_shape(saliency_map, gt.shape)
    p = _as_distribution_mm(pred)
    g = _as_distribution_mm(gt)
    if np.isnan(p).all() or np.isnan(g).all():
        return float("nan")
    return float(np.sum(np.minimum(p, g)))


def kl(saliency_map, gt_map) -> float:
    """KL(GT || prediction) with MATLAB eps in both places (KLdiv.m)."""
    gt = _as_map(gt_map)
    pred = _to_shape(saliency_map, gt.shape)
    if pred.any():
        pred = pred / pred.sum()
    if gt.any():
        gt = gt / gt.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        return float(np.sum(gt * np.log(EPS + gt / (pred + EPS))))


def _prepare_for_auc(saliency_map, fixation_map):
    """Shared prologue of the AUC files: the prediction at the fixation map's size."""
    fixations = np.asarray(fixation_map)
    if fixations.ndim != 2:
        raise ValueError(f"expected a 2-D fixation map, got shape {fixations.shape}")
    pred = _to_shape(saliency_map, fixations.shape)
    return pred, fixations


def auc_judd(saliency_map, fixation_map, jitter: bool = True, seed=0) -> float:
    """AUC-Judd (AUC_Judd.m): thresholds at the fixated values, rank-based false positives."""
    pred, fixations = _prepare_for_auc(saliency_map, fixation_map)
    positive = fixations > 0
    if not positive.any():
        return float("nan")
    if jitter:
        pred = pred + as_generator(seed).random(pred.shape) / 10000000.0
    scores = _normalised_scores(pred, positive)
    if scores is None:
        return float("nan")
    values, at_fixations = scores
    n_fix = at_fixations.size
    n_pix = values.size
    thresholds = np.sort(at_fixations)[::-1]
    ascending = np.sort(values)
    above = n_pix - np.searchsorted(ascending, thresholds, side="left")  # #{S >= t}
    rank = np.arange(1, n_fix + 1)
    tp = np.concatenate(([0.0], rank / n_fix, [1.0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        fp = np.concatenate(([0.0], (above - rank) / (n_pix - n_fix), [1.0]))
    return trapz(fp, tp)


def _normalised_scores(pred: np.ndarray, positive: np.ndarray):
    """Min-max normalised map (flattened) and its values at fixated pixels, as the AUC_*.m files
    prepare them; None when the map is constant (all NaN after normalisation: MATLAB's NaN)."""
    pred = _min_max(pred)
    if np.isnan(pred).all():
        return None
    values = pred.ravel()
    return values, values[positive.ravel()]


def _grid_auc(positives: np.ndarray, negatives: np.ndarray, n_neg_norm: int, step: float) -> float:
    """One split of the coarse-grid ROC shared by AUC_shuffled.m and AUC_Borji.m."""
    top = float(np.max(np.concatenate((positives, negatives))))
    thresholds = matlab_colon(0.0, step, top)[::-1]
    pos_sorted = np.sort(positives)
    neg_sorted = np.sort(negatives)
    tp = (positives.size - np.searchsorted(pos_sorted, thresholds, side="left")) / positives.size
    with np.errstate(divide="ignore", invalid="ignore"):
        fp = (negatives.size - np.searchsorted(neg_sorted, thresholds, side="left")) / n_neg_norm
    tp = np.concatenate(([0.0], tp, [1.0]))
    fp = np.concatenate(([0.0], fp, [1.0]))
    return trapz(fp, tp)


def auc_shuffled(
    saliency_map, fixation_map, other_map, n_splits: int = 100, step: float = 0.1, seed=0
) -> float:
    """Shuffled AUC (AUC_shuffled.m): negatives drawn from the fixations of other frames.

    ``other_map`` is used as a set of locations (``other_map > 0``), as in MATLAB. Each split
    takes ``min(N_fix, N_other)`` of them without replacement. NaN with no fixations, a
    constant prediction or an empty ``other_map``.
    """
    pred, fixations = _prepare_for_auc(saliency_map, fixation_map)
    other = np.asarray(other_map)
    if other.shape != fixations.shape:
        raise ValueError(f"other_map shape {other.shape} != fixation map shape {fixations.shape}")
    positive = fixations > 0
    if not positive.any():
        return float("nan")
    scores = _normalised_scores(pred, positive)
    if scores is None:
        return float("nan")
    values, at_fixations = scores
    pool = np.flatnonzero(other.ravel() > 0)
    n_other = min(at_fixations.size, pool.size)
    if n_other == 0:
        return float("nan")  # MATLAB: fp = 0/0 in every split
    rng = as_generator(seed)
    aucs = np.empty(n_splits)
    for split in range(n_splits):
        chosen = pool[rng.permutation(pool.size)[:n_other]]
        aucs[split] = _grid_auc(at_fixations, values[chosen], n_other, step)
    return float(np.mean(aucs))


def auc_borji(saliency_map, fixation_map, n_splits: int = 100, step: float = 0.1, seed=0) -> float:
    """AUC-Borji (AUC_Borji.m): negatives drawn uniformly with replacement from all pixels.

    NaN when at most one pixel is fixated (the reference is stricter here than the others).
    """
    pred, fixations = _prepare_for_auc(saliency_map, fixation_map)
    positive = fixations > 0
    if positive.sum() <= 1:
        return float("nan")
    scores = _normalised_scores(pred, positive)
    if scores is None:
        return float("nan")
    values, at_fixations = scores
    rng = as_generator(seed)
    draws = rng.integers(0, values.size, size=(n_splits, at_fixations.size))
    aucs = np.array(
        [_grid_auc(at_fixations, values[draws[s]], at_fixations.size, step) for s in range(n_splits)]
    )
    return float(np.mean(aucs))


__all__ = [
    "EPS",
    "auc_borji",
    "auc_judd",
    "auc_shuffled",
    "cc",
    "kl",
    "matlab_colon",
    "nss",
    "sim",
    "trapz",
]
