"""Seed spread and paired significance of per-video scores (the ablation tables' noise model)."""

from __future__ import annotations

import math
import statistics

import numpy as np

BOOTSTRAP_SAMPLES = 2000
BOOTSTRAP_SEED = 0


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    """Mean and sample std of the finite values (std None below two of them)."""
    values = [v for v in values if math.isfinite(v)]
    if not values:
        return None, None
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def paired_bootstrap(row: dict[str, float], ours: dict[str, float],
                     samples: int = BOOTSTRAP_SAMPLES, seed: int = BOOTSTRAP_SEED,
                     level: float = 0.95) -> dict | None:
    """Paired bootstrap over videos of mean(row - ours): the mean difference, its `level`
    confidence interval, a two-sided p-value, and whether the difference is within noise (the
    interval holds 0). Videos present in both; None when fewer than two."""
    videos = sorted(v for v in set(row) & set(ours)
                    if math.isfinite(row[v]) and math.isfinite(ours[v]))
    if len(videos) < 2:
        return None
    diff = np.array([row[v] - ours[v] for v in videos], dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = diff[rng.integers(0, len(diff), size=(samples, len(diff)))].mean(axis=1)
    low, high = np.quantile(means, [(1 - level) / 2, (1 + level) / 2])
    p = min(1.0, 2 * min(float((means <= 0).mean()), float((means >= 0).mean())))
    return {"diff": float(diff.mean()), "low": float(low), "high": float(high), "p": p,
            "noise": bool(low <= 0 <= high), "videos": len(videos)}

