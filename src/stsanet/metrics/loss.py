"""The STSANet training loss: KL - CC, per sample, then the batch mean (SPEC section 6.1).

On ordinary inputs the computation is the official one, operation for operation:

* KL: both maps divided by their own sum (no min-max), ``sum G * log(eps + G / (S + eps))``
  with ``eps = 2.2204e-16`` in both places;
* CC: both maps z-scored with the per-sample mean and the *unbiased* ``torch.std`` (no eps),
  then ``sum(s * g) / sqrt(sum(s * s) * sum(g * g))``.

Degenerate samples, where the official formula gives NaN, have a fixed behaviour instead,
and their gradients are finite (the NaN-producing branches are never evaluated on them):

* a ground truth that sums to zero (empty or all-zero map) carries no target distribution:
  the sample is **masked out** and the loss is the mean over the remaining samples; a batch
  with no valid sample gives a loss of exactly 0 (still attached to the graph, zero grads);
* an all-zero prediction is kept as the zero distribution: its KL term is finite (about
  ``log(1/eps)`` ≈ 36 per unit of GT mass) and pushes the prediction up;
* a constant map (prediction or ground truth) has no correlation: its CC term is 0.
"""

from __future__ import annotations

import torch

OFFICIAL_EPS = 2.2204e-16


def _flat(x: torch.Tensor) -> torch.Tensor:
    if x.dim() < 2:
        raise ValueError(f"expected B × H × W maps, got shape {tuple(x.shape)}")
    return x.reshape(x.shape[0], -1)


def kl_per_sample(pred: torch.Tensor, target: torch.Tensor, eps: float = OFFICIAL_EPS) -> torch.Tensor:
    """KL(target || pred) of each sample (B,); a zero-sum map stays the zero map."""
    p, g = _flat(pred), _flat(target)
    p_sum = p.sum(1, keepdim=True)
    g_sum = g.sum(1, keepdim=True)
    # Dividing by a safe 1 keeps a zero map at zero with finite gradients.
    p = p / torch.where(p_sum > 0, p_sum, torch.ones_like(p_sum))
    g = g / torch.where(g_sum > 0, g_sum, torch.ones_like(g_sum))
    return torch.sum(g * torch.log(eps + g / (p + eps)), 1)


def _non_constant(x: torch.Tensor) -> torch.Tensor:
    with torch.no_grad():
        return (x.amax(1) > x.amin(1)) & (torch.std(x, 1) > 0)


def _z_score(x: torch.Tensor, usable: torch.Tensor) -> torch.Tensor:
    # Constant rows are swapped for a fixed non-constant row before torch.std, so that the
    # std (and its backward) is never evaluated at zero; those rows are zeroed afterwards.
    ramp = torch.linspace(0.0, 1.0, x.shape[1], dtype=x.dtype, device=x.device).expand_as(x)
    safe = torch.where(usable[:, None], x, ramp)
    mean = torch.mean(safe, 1, keepdim=True)
    std = torch.std(safe, 1, keepdim=True)
    return torch.where(usable[:, None], (safe - mean) / std, torch.zeros_like(x))


def cc_per_sample(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Pearson correlation of each sample (B,); 0 when either map is constant."""
    p, g = _flat(pred), _flat(target)
    usable = _non_constant(p) & _non_constant(g)
    s = _z_score(p, usable)
    t = _z_score(g, usable)
    ab = torch.sum(s * t, 1)
    aa = torch.sum(s * s, 1)
    bb = torch.sum(t * t, 1)
    denominator = torch.sqrt(torch.where(usable, aa * bb, torch.ones_like(aa)))
    return torch.where(usable, ab / denominator, torch.zeros_like(ab))


def valid_targets(target: torch.Tensor) -> torch.Tensor:
    """Samples whose ground truth has mass (B,) bool; the others are masked from the loss."""
    with torch.no_grad():
        return _flat(target).sum(1) > 0


def kl_cc_loss(pred: torch.Tensor, target: torch.Tensor, eps: float = OFFICIAL_EPS) -> torch.Tensor:
    """KL - CC per sample, averaged over the samples with a non-empty ground truth.

    ``pred`` and ``target`` are B × H × W (any trailing shape), non-negative. Returns a scalar.
    """
    if pred.shape != target.shape:
        raise ValueError(f"pred {tuple(pred.shape)} and target {tuple(target.shape)} differ in shape")
    per_sample = kl_per_sample(pred, target, eps) - cc_per_sample(pred, target)
    valid = valid_targets(target)
    # Sync-free masked mean (no .item() on GPU); an all-masked batch gives exactly 0.
    masked = torch.where(valid, per_sample, torch.zeros_like(per_sample))
    return masked.sum() / valid.sum().clamp_min(1).to(masked.dtype)


__all__ = ["OFFICIAL_EPS", "cc_per_sample", "kl_cc_loss", "kl_per_sample", "valid_targets"]
