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

from functools import cached_property

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


class PreparedMap:
    """A map at its scoring size with the normalisations several metrics share, each computed
    once: CC and NSS z-score the prediction, SIM, s-AUC and AUC-Borji min-max it. The values
    are exactly those each metric's MATLAB file computes for itself (same operations, same
    order); only the repetition goes. Pass one to several metrics of one frame."""

    def __init__(self, values) -> None:
        self.values = _as_map(values)
        self.shape = self.values.shape

    @cached_property
    def low(self) -> np.float64:
        return self.values.min()

    @cached_property
    def high(self) -> np.float64:
        return self.values.max()

    @cached_property
    def constant(self) -> bool:
        """Decided exactly (max == min): MATLAB's arithmetic is exact for the integer-valued
        8-bit maps of the protocol, and for non-integer constants the rounding of the mean would
        otherwise turn 0/0 into a meaningless ±inf or ~1e-17."""
        return self.values.size <= 1 or self.high == self.low

    @cached_property
    def z_score(self) -> np.ndarray:
        """``(x - mean) / std`` with MATLAB's sample std (N - 1); all NaN for a constant map."""
        if self.constant:
            return np.full(self.shape, np.nan)
        centred = self.values - self.values.mean()
        # np.std(x, ddof=1), from the centred map we need anyway
        std = np.sqrt(np.sum(centred * centred) / (self.values.size - 1))
        centred /= std
        return centred

    @cached_property
    def min_max(self) -> np.ndarray:
        """``(x - min) / (max - min)``; all NaN for a constant map (0/0)."""
        out = self.values - self.low
        with np.errstate(divide="ignore", invalid="ignore"):
            out /= self.high - self.low
        return out

    @cached_property
    def any(self) -> bool:
        return bool(self.values.any())


def _prepared(saliency_map, shape: tuple[int, ...] | None = None) -> PreparedMap:
    """``saliency_map`` as a PreparedMap at ``shape`` (resized as MATLAB when it differs)."""
    if isinstance(saliency_map, PreparedMap):
        if shape is None or saliency_map.shape == tuple(shape):
            return saliency_map
        saliency_map = saliency_map.values
    return PreparedMap(saliency_map if shape is None else _to_shape(saliency_map, shape))


def _all_nan(prepared: PreparedMap, normalised: np.ndarray) -> bool:
    """Whether a min-max normalised map is all NaN: exactly when the map is constant, for finite
    maps (the protocol's); other maps are checked element by element."""
    if np.isfinite(prepared.high) and np.isfinite(prepared.low):
        return prepared.constant
    return bool(np.isnan(normalised).all())


def _colon_ends(start: float, step: float, stop):
    """The number of intervals and the last element of MATLAB's ``start:step:stop`` (``stop``
    may be an array): the count is fixed with a tolerance, and the last element snaps to
    ``stop`` when within it."""
    stop = np.asarray(stop, dtype=np.float64)
    tol = 2.0 * EPS * np.maximum(abs(start), np.abs(stop))
    n = np.round((stop - start) / step).astype(np.int64)
    n -= start + n * step - stop > tol
    last = start + n * step
    return n, np.where(last - stop > -tol, stop, last)


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
    n, last = _colon_ends(start, step, stop)
    return _colon_fill(start, step, int(n), float(last))


def _colon_fill(start: float, step: float, n: int, last: float) -> np.ndarray:
    out = np.empty(n + 1)
    k = np.arange(n // 2 + 1)
    out[k] = start + k * step
    out[n - k] = last - k * step
    if n % 2 == 0:
        out[n // 2] = (start + last) / 2.0
    return out


def _grids(step: float, tops: np.ndarray):
    """``(grid, rows)`` for the distinct grids ``0:step:top`` over ``tops``: a grid is fixed by
    its interval count and last element, so splits whose maxima differ mostly share one."""
    if not (np.isfinite(step) and step > 0) or not np.isfinite(tops).all() or (tops < 0).any():
        for top in np.unique(tops):
            yield matlab_colon(0.0, step, float(top)), np.flatnonzero(tops == top)
        return
    counts, lasts = _colon_ends(0.0, step, tops)
    groups: dict[tuple[int, float], list[int]] = {}
    for row, key in enumerate(zip(counts.tolist(), lasts.tolist())):
        groups.setdefault(key, []).append(row)
    for (n, last), rows in groups.items():
        yield _colon_fill(0.0, step, n, last), np.array(rows)


def trapz(x: np.ndarray, y: np.ndarray) -> float:
    """MATLAB ``trapz(x, y)``: ``diff(x)' * (y(1:end-1) + y(2:end)) / 2``."""
    return float(np.dot(np.diff(x), y[:-1] + y[1:]) / 2.0)


def cc(saliency_map, gt_map) -> float:
    """Pearson correlation (CC.m): NaN if either map is constant."""
    gt = _prepared(gt_map)
    pred = _prepared(saliency_map, gt.shape)
    a = pred.z_score
    b = gt.z_score
    with np.errstate(divide="ignore", invalid="ignore"):
        # corr2
        a = a - a.mean()
        b = b - b.mean()
        return float(np.sum(a * b) / np.sqrt(np.sum(a * a) * np.sum(b * b)))


def _fixated(fixation_map) -> np.ndarray:
    """Linear indices of the fixated pixels (``fixation_map != 0``), in MATLAB's find order
    up to the row-major ravel the maps share."""
    return np.flatnonzero(np.asarray(fixation_map))


def nss(saliency_map, fixation_map) -> float:
    """Mean z-scored prediction over fixated pixels (NSS.m); NaN without fixations."""
    fixation_map = np.asarray(fixation_map)
    pred = _prepared(saliency_map, fixation_map.shape)
    fixated = _fixated(fixation_map)
    if not fixated.size:
        return float("nan")
    return float(np.mean(pred.z_score.ravel()[fixated]))


def _as_distribution_mm(x: PreparedMap) -> np.ndarray | None:
    """min-max, then divided by its sum; the map itself when all zero (it stays zero); None
    when the result is all NaN (a constant non-zero map)."""
    if not x.any:
        return x.values
    normalised = x.min_max
    if _all_nan(x, normalised):
        return None
    with np.errstate(divide="ignore", invalid="ignore"):
        return normalised / normalised.sum()


def sim(saliency_map, gt_map) -> float:
    """Histogram intersection after min-max and sum normalisation (similarity.m).

    An all-zero map stays zero (score 0); a constant non-zero map is NaN.
    """
    gt = _prepared(gt_map)
    pred = _prepared(saliency_map, gt.shape)
    p = _as_distribution_mm(pred)
    g = _as_distribution_mm(gt)
    if p is None or g is None:
        return float("nan")
    return float(np.sum(np.minimum(p, g)))


def kl(saliency_map, gt_map) -> float:
    """KL(GT || prediction) with MATLAB eps in both places (KLdiv.m)."""
    gt_prepared = _prepared(gt_map)
    pred_prepared = _prepared(saliency_map, gt_prepared.shape)
    pred, gt = pred_prepared.values, gt_prepared.values
    if pred_prepared.any:
        pred = pred / pred.sum()
    if gt_prepared.any:
        gt = gt / gt.sum()
    with np.errstate(divide="ignore", invalid="ignore"):
        # gt * log(eps + gt / (pred + eps)), one buffer
        out = pred + EPS
        np.divide(gt, out, out=out)
        out += EPS
        np.log(out, out=out)
        out *= gt
        return float(np.sum(out))


def _prepare_for_auc(saliency_map, fixation_map):
    """Shared prologue of the AUC files: the prediction at the fixation map's size and the
    fixated pixels (linear indices of ``fixation_map > 0``)."""
    fixations = np.asarray(fixation_map)
    if fixations.ndim != 2:
        raise ValueError(f"expected a 2-D fixation map, got shape {fixations.shape}")
    pred = _prepared(saliency_map, fixations.shape)
    return pred, np.flatnonzero(fixations > 0)


def auc_judd(saliency_map, fixation_map, jitter: bool = True, seed=0) -> float:
    """AUC-Judd (AUC_Judd.m): thresholds at the fixated values, rank-based false positives."""
    pred, fixated = _prepare_for_auc(saliency_map, fixation_map)
    if not fixated.size:
        return float("nan")
    if jitter:
        jittered = as_generator(seed).random(pred.shape)
        jittered /= 10000000.0
        jittered += pred.values
        pred = PreparedMap(jittered)
    values = pred.min_max.ravel()
    if _all_nan(pred, values):
        return float("nan")
    at_fixations = values[fixated]
    n_fix = at_fixations.size
    n_pix = values.size
    thresholds = np.sort(at_fixations)[::-1]
    # #{S >= t} for every threshold t; every t is >= the lowest, so only the values above it
    # need sorting (the counts are the same)
    candidates = np.sort(values[values >= thresholds[-1]])
    above = candidates.size - np.searchsorted(candidates, thresholds, side="left")
    rank = np.arange(1, n_fix + 1)
    tp = np.concatenate(([0.0], rank / n_fix, [1.0]))
    with np.errstate(divide="ignore", invalid="ignore"):
        fp = np.concatenate(([0.0], (above - rank) / (n_pix - n_fix), [1.0]))
    return trapz(fp, tp)


def _normalised_scores(pred: PreparedMap, fixated: np.ndarray):
    """Min-max normalised map (flattened) and its values at fixated pixels, as the AUC_*.m files
    prepare them; None when the map is constant (all NaN after normalisation: MATLAB's NaN)."""
    values = pred.min_max.ravel()
    if _all_nan(pred, values):
        return None
    return values, values[fixated]


def grid_aucs(positives: np.ndarray, negatives: np.ndarray, n_neg_norm: int, step: float) -> np.ndarray:
    """The coarse-grid ROC areas of AUC_shuffled.m and AUC_Borji.m, one per split.

    ``negatives`` holds one split per row. Per split MATLAB sweeps ``0:step:max`` (the max over
    the positives and that split's negatives) from the top and counts the positives and
    negatives at or above each threshold; here the positives are sorted once, each distinct
    grid is built once, and every split's negatives are counted with one search and one
    histogram. The areas are MATLAB's ``trapz`` of each split's curve, as one split computes it.
    """
    n_pos = positives.size
    pos_sorted = np.sort(positives)
    tops = np.maximum(negatives.max(axis=1), pos_sorted[-1])
    aucs = np.empty(negatives.shape[0])
    for grid, rows in _grids(step, tops):  # ascending grids
        thresholds = grid[::-1]
        tp = (n_pos - np.searchsorted(pos_sorted, thresholds, side="left")) / n_pos
        # a negative v is at or above the grid points below searchsorted(grid, v, "right")
        bins = np.searchsorted(grid, negatives[rows], side="right")
        width = grid.size + 1
        bins += width * np.arange(rows.size)[:, None]
        hist = np.bincount(bins.ravel(), minlength=width * rows.size).reshape(rows.size, width)
        at_or_above = np.cumsum(hist[:, ::-1], axis=1)[:, ::-1]  # [:, j]: #{bin >= j}
        with np.errstate(divide="ignore", invalid="ignore"):
            fp = at_or_above[:, :0:-1] / n_neg_norm  # #{v >= threshold}, thresholds descending
        x = np.zeros((rows.size, grid.size + 2))
        x[:, 1:-1] = fp
        x[:, -1] = 1.0
        y = np.concatenate(([0.0], tp, [1.0]))
        dx = np.diff(x, axis=1)
        dy = y[:-1] + y[1:]
        # np.dot per split, as trapz: a batched product could sum in another order
        aucs[rows] = [np.dot(d, dy) / 2.0 for d in dx]
    return aucs


def _grid_auc(positives: np.ndarray, negatives: np.ndarray, n_neg_norm: int, step: float) -> float:
    """One split of :func:`grid_aucs`."""
    return float(grid_aucs(positives, np.asarray(negatives)[None], n_neg_norm, step)[0])


def auc_shuffled(
    saliency_map, fixation_map, other_map, n_splits: int = 100, step: float = 0.1, seed=0
) -> float:
    """Shuffled AUC (AUC_shuffled.m): negatives drawn from the fixations of other frames.

    ``other_map`` is used as a set of locations (``other_map > 0``), as in MATLAB. Each split
    takes ``min(N_fix, N_other)`` of them without replacement. NaN with no fixations, a
    constant prediction or an empty ``other_map``.
    """
    pred, fixated = _prepare_for_auc(saliency_map, fixation_map)
    other = np.asarray(other_map)
    if other.shape != pred.shape:
        raise ValueError(f"other_map shape {other.shape} != fixation map shape {pred.shape}")
    if not fixated.size:
        return float("nan")
    scores = _normalised_scores(pred, fixated)
    if scores is None:
        return float("nan")
    values, at_fixations = scores
    pool = np.flatnonzero(other.ravel() > 0)
    n_other = min(at_fixations.size, pool.size)
    if n_other == 0:
        return float("nan")  # MATLAB: fp = 0/0 in every split
    # one permutation of the pool per split, drawn in the order of one draw per split
    orders = as_generator(seed).permuted(np.tile(np.arange(pool.size), (n_splits, 1)), axis=1)
    negatives = values[pool[orders[:, :n_other]]]
    return float(np.mean(grid_aucs(at_fixations, negatives, n_other, step)))


def auc_borji(saliency_map, fixation_map, n_splits: int = 100, step: float = 0.1, seed=0) -> float:
    """AUC-Borji (AUC_Borji.m): negatives drawn uniformly with replacement from all pixels.

    NaN when at most one pixel is fixated (the reference is stricter here than the others).
    """
    pred, fixated = _prepare_for_auc(saliency_map, fixation_map)
    if fixated.size <= 1:
        return float("nan")
    scores = _normalised_scores(pred, fixated)
    if scores is None:
        return float("nan")
    values, at_fixations = scores
    draws = as_generator(seed).integers(0, values.size, size=(n_splits, at_fixations.size))
    return float(np.mean(grid_aucs(at_fixations, values[draws], at_fixations.size, step)))


__all__ = [
    "EPS",
    "PreparedMap",
    "auc_borji",
    "auc_judd",
    "auc_shuffled",
    "cc",
    "grid_aucs",
    "kl",
    "matlab_colon",
    "nss",
    "sim",
    "trapz",
]
