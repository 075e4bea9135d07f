"""Fast batched CC / NSS / SIM / KL in torch, for validation and model selection only.

These follow the MATLAB definitions (sample std, min-max + sum normalisation for SIM, eps in
both places for KL) but run on whatever maps the model gives (its own resolution, float,
no 8-bit quantisation, no MATLAB resize), so they are *not* benchmark numbers: report
:mod:`stsanet.metrics.evaluate` results instead. Log them under names that say so, e.g.
``SaliencyMetrics(prefix="val/fast_")``.

State is sums and counts reduced with ``sum`` across processes, so the epoch value is the
mean over all samples of all ranks. Samples whose score is NaN (constant map, no fixation)
are left out of the mean and counted in ``nan_counts()``, like NaN frames in the benchmark.
"""

from __future__ import annotations

import torch
from torchmetrics import Metric

from stsanet.metrics.benchmark import EPS

METRIC_NAMES = ("cc", "nss", "sim", "kl")


def _flat(x: torch.Tensor) -> torch.Tensor:
    return x.reshape(x.shape[0], -1).float()


def batch_cc(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Pearson correlation per sample (B,); NaN for a constant map."""
    a = _flat(pred)
    b = _flat(gt)
    a = a - a.mean(1, keepdim=True)
    b = b - b.mean(1, keepdim=True)
    return (a * b).sum(1) / torch.sqrt((a * a).sum(1) * (b * b).sum(1))


def batch_nss(pred: torch.Tensor, fixation: torch.Tensor) -> torch.Tensor:
    """Mean z-score (unbiased std) at fixated pixels per sample; NaN without fixations."""
    p = _flat(pred)
    f = (_flat(fixation) > 0).float()
    z = (p - p.mean(1, keepdim=True)) / p.std(1, keepdim=True)
    return (z * f).sum(1) / f.sum(1)


def _min_max_sum_normalise(x: torch.Tensor) -> torch.Tensor:
    lo = x.amin(1, keepdim=True)
    hi = x.amax(1, keepdim=True)
    scaled = (x - lo) / (hi - lo)
    scaled = scaled / scaled.sum(1, keepdim=True)
    nonzero = (x != 0).any(1, keepdim=True)
    return torch.where(nonzero, scaled, x)  # a zero map stays zero (MATLAB)


def batch_sim(pred: torch.Tensor, gt: torch.Tensor) -> torch.Tensor:
    """Histogram intersection per sample; 0 for an all-zero map, NaN for a constant one."""
    p = _min_max_sum_normalise(_flat(pred))
    g = _min_max_sum_normalise(_flat(gt))
    return torch.minimum(p, g).sum(1)


def batch_kl(pred: torch.Tensor, gt: torch.Tensor, eps: float = EPS) -> torch.Tensor:
    """KL(GT || prediction) per sample with eps in both places (MATLAB KLdiv)."""
    p = _flat(pred)
    g = _flat(gt)
    p_sum = p.sum(1, keepdim=True)
    g_sum = g.sum(1, keepdim=True)
    p = torch.where(p_sum != 0, p / p_sum, p)
    g = torch.where(g_sum != 0, g / g_sum, g)
    return (g * torch.log(eps + g / (p + eps))).sum(1)


class SaliencyMetrics(Metric):
    """Epoch means of CC, NSS, SIM and KL over samples, synced across DDP ranks.

    ``update(pred, saliency, fixation)`` takes B × H × W tensors of one size (prediction,
    continuous ground truth, fixation map with fixated pixels > 0). ``compute()`` returns
    ``{prefix + "cc", ... "nss", "sim", "kl"}``; a metric with no finite sample is NaN.
    """

    full_state_update = False
    is_differentiable = False

    def __init__(self, prefix: str = "", **kwargs) -> None:
        super().__init__(**kwargs)
        self.prefix = prefix
        for name in METRIC_NAMES:
            self.add_state(f"{name}_sum", torch.tensor(0.0, dtype=torch.float64), dist_reduce_fx="sum")
            self.add_state(f"{name}_count", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")
            self.add_state(f"{name}_nan", torch.tensor(0, dtype=torch.int64), dist_reduce_fx="sum")

    def update(self, pred: torch.Tensor, saliency: torch.Tensor, fixation: torch.Tensor) -> None:
        if pred.shape != saliency.shape or pred.shape != fixation.shape:
            raise ValueError(
                "SaliencyMetrics.update: pred, saliency and fixation must have one shape, got "
                f"{tuple(pred.shape)}, {tuple(saliency.shape)}, {tuple(fixation.shape)}"
            )
        pred = pred.detach()
        saliency = saliency.detach()
        fixation = fixation.detach()
        scores = {
            "cc": batch_cc(pred, saliency),
            "nss": batch_nss(pred, fixation),
            "sim": batch_sim(pred, saliency),
            "kl": batch_kl(pred, saliency),
        }
        for name, values in scores.items():
            finite = torch.isfinite(values)
            total = getattr(self, f"{name}_sum")
            setattr(self, f"{name}_sum", total + torch.where(finite, values, 0.0).sum().double())
            setattr(self, f"{name}_count", getattr(self, f"{name}_count") + finite.sum())
            setattr(self, f"{name}_nan", getattr(self, f"{name}_nan") + (~finite).sum())

    def compute(self) -> dict[str, torch.Tensor]:
        out = {}
        for name in METRIC_NAMES:
            count = getattr(self, f"{name}_count")
            total = getattr(self, f"{name}_sum")
            mean = total / count.clamp_min(1).double()
            out[self.prefix + name] = torch.where(count > 0, mean, torch.full_like(mean, float("nan"))).float()
        return out

    def nan_counts(self) -> dict[str, int]:
        """How many samples each metric left out as NaN (after sync, all ranks)."""
        with self.sync_context():
            return {self.prefix + name + "_nan": int(getattr(self, f"{name}_nan")) for name in METRIC_NAMES}


__all__ = ["METRIC_NAMES", "SaliencyMetrics", "batch_cc", "batch_kl", "batch_nss", "batch_sim"]
