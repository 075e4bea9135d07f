"""The fast path's kernels compute what the plain ops compute: exact where it claims bits."""

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from model_helpers import clip, randomize, small_model
from stsanet.models.attention import dot_product_attention
from stsanet.models.fast import (CHANNELS_LAST, PREPACKED, ChannelsLastMaxPool3d, OneDNNConv3d,
                                 _bn_relu_, onednn_conv,
                                 query_major_attention)


def test_backbone_spatial_pool_is_exact_with_ties_negatives_and_odd_sizes():
    g = torch.Generator().manual_seed(0)
    pool = ChannelsLastMaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
    reference = nn.MaxPool3d((1, 3, 3), (1, 2, 2), (0, 1, 1))
    for shape in [(2, 3, 4, 8, 12), (1, 5, 2, 7, 9), (1, 2, 3, 2, 2)]:
        # negative values test the -inf padding; rounding makes ties
        x = (torch.randn(shape, generator=g) * 3).round() - 2
        with torch.no_grad():
            out = pool(x)
        assert torch.equal(out, reference(x)), shape
        assert out.is_contiguous()


@pytest.mark.skipif(not PREPACKED, reason="this torch build has no oneDNN pointwise conv")
def test_prepacked_conv_is_bit_identical_to_mkldnn_and_follows_weight_changes():
    g = torch.Generator().manual_seed(1)
    conv = nn.Conv3d(16, 24, (1, 3, 3), padding=(0, 1, 1), groups=2)
    x = torch.randn(2, 16, 4, 10, 14, generator=g)
    with torch.no_grad():
        def run(relu):
            return onednn_conv(x, conv, "weight", (conv.weight,), lambda: (conv.weight, conv.bias),
                               conv.padding, conv.stride, conv.dilation, conv.groups, relu=relu)

        plain = torch.mkldnn_convolution(x.contiguous(memory_format=CHANNELS_LAST),
                                         conv.weight.contiguous(memory_format=CHANNELS_LAST),
                                         conv.bias, conv.padding, conv.stride, conv.dilation,
                                         conv.groups)
        assert torch.equal(run(False), plain)
        assert torch.equal(run(True), plain.relu())
        assert run(False).is_contiguous(memory_format=CHANNELS_LAST)
        conv.weight.mul_(2)  # in place: same storage, new version -> repacked
        torch.testing.assert_close(run(False) - conv.bias.view(1, -1, 1, 1, 1),
                                   2 * (plain - conv.bias.view(1, -1, 1, 1, 1)))


def test_in_place_batchnorm_relu_has_the_reference_bits():
    g = torch.Generator().manual_seed(2)
    bn = randomize(nn.BatchNorm3d(8, eps=1e-3), 3).eval()
    x = torch.randn(1, 8, 3, 6, 10, generator=g)
    with torch.no_grad():
        expected = F.relu(bn(x))
        assert torch.equal(_bn_relu_(x.clone(), bn), expected)


def test_query_major_attention_equals_the_reference_with_gradients():
    g = torch.Generator().manual_seed(4)
    q, k = torch.randn(2, 4, 1, 5, 6, generator=g), torch.randn(2, 4, 1, 5, 6, generator=g)
    v = torch.randn(2, 7, 1, 5, 6, generator=g)
    grads = []
    for attention in (dot_product_attention, query_major_attention):
        leaves = [t.clone().requires_grad_() for t in (q, k, v)]
        out = attention(*leaves)
        (out * torch.arange(out.numel()).view(out.shape)).sum().backward()
        grads.append((out.detach(), *(t.grad for t in leaves)))
    for a, b in zip(*grads):
        torch.testing.assert_close(b, a, rtol=1e-5, atol=1e-5)


def test_channels_last_conv_under_autograd_stays_channels_last_with_reference_gradients():
    g = torch.Generator().manual_seed(5)
    conv = nn.Conv3d(6, 5, (1, 3, 3), padding=(0, 1, 1))
    fast = OneDNNConv3d(6, 5, (1, 3, 3), padding=(0, 1, 1))
    fast.load_state_dict(conv.state_dict())
    x = torch.randn(1, 6, 2, 5, 7, generator=g)
    xs = [x.clone().requires_grad_(), x.contiguous(memory_format=CHANNELS_LAST).requires_grad_()]
    outs = [conv(xs[0]), fast(xs[1])]
    assert outs[1].is_contiguous(memory_format=CHANNELS_LAST)
    for out in outs:
        out.pow(2).sum().backward()
    torch.testing.assert_close(outs[1], outs[0])
    torch.testing.assert_close(xs[1].grad, xs[0].grad)
    torch.testing.assert_close(fast.weight.grad, conv.weight.grad)


def _cc(a, b):
    a, b = a.double().flatten(), b.double().flatten()
    a, b = a - a.mean(), b - b.mean()
    return float((a * b).sum() / (a.norm() * b.norm()))


def test_bf16_path_keeps_the_map_of_fp32():
    """Under bf16 autocast the fast model follows the fp32 reference map closely: its
    pool-sensitive region, attention and readout stay fp32. This randomized model has many
    near-tied bottleneck windows: run channels-last in fp32, that region alone gave CC 0.948."""
    ref = randomize(small_model(seed=1, fast=False), 2)
    with torch.no_grad():  # a decoder that spreads the map, so CC measures something
        for module in ref.decoder.modules():
            if isinstance(module, nn.Conv3d):
                module.weight.normal_(0, (2.0 / module.weight[0].numel()) ** 0.5,
                                      generator=torch.Generator().manual_seed(3))
    bf16 = small_model(seed=8)
    bf16.load_state_dict(ref.state_dict())
    x = clip(seed=9)
    with torch.no_grad():
        expected = ref(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            out = bf16(x).float()
    assert expected.std() > 1e-3
    assert _cc(out, expected) >= 0.999


def test_derived_weights_follow_fused_adam_and_running_statistics():
    """Fused Adam and BatchNorm's running statistics change weights without bumping version
    counters; a training step must still reach the next inference forward."""
    ref = small_model(seed=1, fast=False, bn_momentum=0.5)
    fast = small_model(seed=2, bn_momentum=0.5)
    fast.load_state_dict(ref.state_dict())
    x = clip(seed=3)
    with torch.no_grad():
        fast(x)  # builds the prepacked / folded weights
    for model in (ref, fast):
        optimizer = torch.optim.Adam(model.parameters(), lr=1e-2, fused=True)
        model.train()
        model(x).mean().backward()
        optimizer.step()
        model.eval()
    with torch.no_grad():
        torch.testing.assert_close(fast(x), ref(x), rtol=0, atol=1e-4)
