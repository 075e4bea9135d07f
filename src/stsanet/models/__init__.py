"""The STSANet network (no data, no training logic)."""

from .stsanet import STSANet

__all__ = ["STSANet"]
