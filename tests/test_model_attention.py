"""Dot-product attention, STSA pairing and the two unpool formulations."""

import torch
from torch import nn

from model_helpers import clip, small_model
from stsanet.models.attention import dot_product_attention
from stsanet.models.stsa import STSALayer
from stsanet.models.unpool import ExportFriendlyMaxUnpool, MaxUnpool


def test_attention_is_unscaled_softmax_over_keys():
    g = torch.Generator().manual_seed(0)
    q, k = torch.randn(2, 5, 1, 3, 4, generator=g), torch.randn(2, 5, 2, 3, 4, generator=g)
    v = torch.randn(2, 7, 2, 3, 4, generator=g)
    sim = torch.einsum("bdn,bdm->bnm", q.flatten(2), k.flatten(2))
    expected = torch.einsum("bnm,bcm->bcn", sim.softmax(-1), v.flatten(2)).reshape(2, 7, 1, 3, 4)
    torch.testing.assert_close(dot_product_attention(q, k, v), expected)


def test_stsa_layer_pairs_queries_of_one_slot_with_keys_of_the_other():
    torch.manual_seed(0)
    layer = STSALayer(channels=6, qk_dim=3, pairs=2, norm=nn.Identity()).eval()
    x = torch.rand(1, 6, 4, 2, 3)
    f = x.chunk(4, dim=2)
    e = layer.embed
    expected = torch.cat([
        dot_product_attention(e[1].q(f[1]), e[0].k(f[0]), e[0].v(f[0])),
        dot_product_attention(e[0].q(f[0]), e[1].k(f[1]), e[1].v(f[1])),
        dot_product_attention(e[3].q(f[3]), e[2].k(f[2]), e[2].v(f[2])),
        dot_product_attention(e[2].q(f[2]), e[3].k(f[3]), e[3].v(f[3])),
    ], dim=2)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), x + expected, rtol=0, atol=0)


def test_layer_two_attends_jointly_over_halves():
    torch.manual_seed(0)
    layer = STSALayer(channels=4, qk_dim=2, pairs=1, norm=nn.Identity()).eval()
    x = torch.rand(1, 4, 4, 2, 2)
    m12, m34 = x[:, :, :2], x[:, :, 2:]
    e = layer.embed
    expected = torch.cat([dot_product_attention(e[1].q(m34), e[0].k(m12), e[0].v(m12)),
                          dot_product_attention(e[0].q(m12), e[1].k(m34), e[1].v(m34))], dim=2)
    with torch.no_grad():
        torch.testing.assert_close(layer(x), x + expected, rtol=0, atol=0)


def _pool_with_ties(seed):
    g = torch.Generator().manual_seed(seed)
    # ReLU-like input: many exact zeros, so many pooling windows are ties.
    x = torch.relu(torch.randn(2, 3, 4, 8, 12, generator=g)).round(decimals=1)
    pooled, idx = nn.MaxPool3d((1, 2, 2), (1, 2, 2), return_indices=True)(x)
    values = torch.randn(pooled.shape, generator=g)
    return x, values, idx


def test_export_friendly_unpool_equals_maxunpool_including_gradients():
    x, values, idx = _pool_with_ties(0)
    a = values.clone().requires_grad_()
    b = values.clone().requires_grad_()
    out_ref = MaxUnpool()(a, idx, x.shape)
    out = ExportFriendlyMaxUnpool()(b, idx, x.shape)
    assert torch.equal(out, out_ref)
    upstream = torch.randn(out.shape, generator=torch.Generator().manual_seed(1))
    out_ref.backward(upstream)
    out.backward(upstream)
    assert torch.equal(a.grad, b.grad)


def test_export_friendly_model_gives_the_same_numbers():
    ref = small_model(seed=3)
    alt = small_model(seed=3, unpool="export_friendly")
    alt.load_state_dict(ref.state_dict())
    x = clip(seed=4)
    with torch.no_grad():
        assert torch.equal(ref(x), alt(x))
