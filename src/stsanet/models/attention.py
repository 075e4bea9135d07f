"""The one dot-product attention STSANet uses (SPEC 3.3)."""

from __future__ import annotations

import torch

from .precision import fp32, full_precision


def dot_product_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """DA(q, k, v) over flattened (T, H, W) positions, as the official model computes it.

    query: B x d x Tq x Hq x Wq; key: B x d x Tk x Hk x Wk; value: B x C x Tk x Hk x Wk.
    Raw dot-product similarities (no 1/sqrt(d) scaling, no heads), softmax over the key axis;
    returns B x C x Tq x Hq x Wq, always fp32 (see `precision`).

    The product is taken query-major, (w v^T)^T rather than the official v w^T: the same
    products and sums, but the softmax's gradient arrives in the layout its backward wants
    instead of transposed (a copy of every attention matrix in each training step).
    """
    b, _, tq, hq, wq = query.shape
    with full_precision(query):
        q = fp32(query).flatten(2)  # B x d x Nq
        k = fp32(key).flatten(2)  # B x d x Nk
        v = fp32(value).flatten(2)  # B x C x Nk
        weights = torch.bmm(q.transpose(1, 2), k).softmax(dim=-1)  # B x Nq x Nk
        out = torch.bmm(weights, v.transpose(1, 2))  # B x Nq x C
    return out.transpose(1, 2).reshape(b, value.shape[1], tq, hq, wq)
