"""The one dot-product attention STSANet uses (SPEC 3.3)."""

from __future__ import annotations

import torch


def dot_product_attention(query: torch.Tensor, key: torch.Tensor, value: torch.Tensor) -> torch.Tensor:
    """DA(q, k, v) over flattened (T, H, W) positions, as the official model computes it.

    query: B x d x Tq x Hq x Wq; key: B x d x Tk x Hk x Wk; value: B x C x Tk x Hk x Wk.
    Raw dot-product similarities (no 1/sqrt(d) scaling, no heads), softmax over the key axis;
    returns B x C x Tq x Hq x Wq.
    """
    b, _, tq, hq, wq = query.shape
    q = query.flatten(2)  # B x d x Nq
    k = key.flatten(2)  # B x d x Nk
    v = value.flatten(2)  # B x C x Nk
    weights = torch.bmm(q.transpose(1, 2), k).softmax(dim=-1)  # B x Nq x Nk
    out = torch.bmm(v, weights.transpose(1, 2))  # B x C x Nq
    return out.reshape(b, value.shape[1], tq, hq, wq)
