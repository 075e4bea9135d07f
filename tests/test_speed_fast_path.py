"""The fast formulation computes what the reference formulation computes, with the same weights."""

import pytest
import torch
from torch import nn

from model_helpers import clip, randomize, small_model
from stsanet.models.fast import ChannelsLastMaxPool3d, OneDNNConv3d, fast_attend
from stsanet.models.stsa import STSALayer


def _pair(**options):
    ref = randomize(small_model(seed=1, fast=False, **options), 2)
    fast = small_model(seed=7, **options)
    fast.load_state_dict(ref.state_dict())
    return ref, fast


@pytest.fixture(scope="module")
def pair():
    """One reference/fast pair (64x96, agnostic norm) shared by the tests that only read it."""
    return _pair()


def test_fast_is_the_default_and_shares_the_state_dict(pair):
    ref, fast = pair
    assert any(getattr(m, "fast_attention", False) for m in fast.modules())
    assert not any(getattr(m, "fast_attention", False) for m in ref.modules())
    assert list(ref.state_dict()) == list(fast.state_dict())
    assert [n for n, _ in ref.named_modules()] == [n for n, _ in fast.named_modules()]


def test_fast_model_output_matches_reference(pair):
    ref, fast = pair
    x = clip(seed=3)
    with torch.no_grad():
        a, b = ref.trace_stages(x), fast.trace_stages(x)
    for name in a:
        torch.testing.assert_close(b[name], a[name], rtol=0, atol=1e-5, msg=name)
    # what feeds branch 0's bottleneck pools is computed as in the reference, bit for bit (a
    # last-bit change there can move an argmax); the rest runs channels-last through oneDNN
    for name in ("tap1", "compressed0"):
        assert torch.equal(a[name], b[name]), name
    assert b["tap2"].is_contiguous(memory_format=torch.channels_last_3d)
    assert isinstance(fast.backbone.block2[0].branch0[0].conv, OneDNNConv3d)
    assert type(fast.backbone.block1[0].conv_s) is nn.Conv3d
    # parameters keep their layout: a channels-last copy is cached for inference only
    assert all(p.is_contiguous() for p in fast.parameters())


def _gradients(model, x, target) -> dict[str, torch.Tensor]:
    model.train()
    ((model(x) - target) ** 2).mean().backward()
    return {name: p.grad for name, p in model.named_parameters()}


def _worst_relative_difference(grads, reference) -> float:
    return max(float((grads[n] - g).abs().max() / g.abs().max().clamp_min(1e-30))
               for n, g in reference.items())


def test_fast_model_gradients_match_reference():
    """Under autograd the fast model (channels-last backbone and decoder, query-major attention)
    gives the reference's gradients up to float rounding. At this size the randomized model
    amplifies rounding a lot (through near-saturated softmaxes and norms): the reference itself,
    fed its backbone input channels-last, moves some gradients by a few percent. That is the
    noise floor the fast model is held to; a wrong gradient path is off by ~100 %."""
    ref, fast = _pair(unpool="export_friendly")
    floor_model = small_model(seed=9, fast=False, unpool="export_friendly")
    floor_model.load_state_dict(ref.state_dict())
    channels_last = torch.channels_last_3d
    floor_model.backbone.register_forward_pre_hook(
        lambda m, args: (args[0].contiguous(memory_format=channels_last),))
    floor_model.backbone.register_forward_hook(lambda m, args, taps: [t.contiguous() for t in taps])
    x = clip(seed=5)
    target = torch.rand(1, 64, 96, generator=torch.Generator().manual_seed(6))
    reference = _gradients(ref, x, target)
    floor = _worst_relative_difference(_gradients(floor_model, x, target), reference)
    deviation = _worst_relative_difference(_gradients(fast, x, target), reference)
    assert floor < 0.2  # the floor itself is rounding, not a different computation
    assert deviation <= max(2 * floor, 1e-3), (deviation, floor)


def test_batched_attend_equals_paired_calls_for_both_layers():
    torch.manual_seed(0)
    for pairs in (2, 1):
        layer = STSALayer(channels=8, qk_dim=4, pairs=pairs, norm=nn.Identity()).eval()
        x = torch.rand(2, 8, 4, 6, 10).contiguous(memory_format=torch.channels_last_3d)
        with torch.no_grad():
            torch.testing.assert_close(fast_attend(layer, x), layer.attend(x.contiguous()),
                                       rtol=0, atol=1e-6)


def test_channels_last_pool_keeps_values_indices_and_gradients_with_ties():
    g = torch.Generator().manual_seed(0)
    x = torch.relu(torch.randn(1, 5, 6, 8, 10, generator=g)).round(decimals=1)
    upstream = torch.randn(1, 5, 6, 8, 10, generator=g)
    for cls_args in (dict(kernel_size=3, stride=1, padding=1),
                     dict(kernel_size=(1, 2, 2), stride=(1, 2, 2))):
        a, b = x.clone().requires_grad_(), x.clone().requires_grad_()
        ref = nn.MaxPool3d(**cls_args, return_indices=True)(a)
        out = ChannelsLastMaxPool3d(**cls_args, return_indices=True)(b)
        assert torch.equal(ref[0], out[0]) and torch.equal(ref[1], out[1])
        assert out[0].is_contiguous()
        ref[0].backward(upstream[..., :ref[0].shape[-3], :ref[0].shape[-2], :ref[0].shape[-1]])
        out[0].backward(upstream[..., :ref[0].shape[-3], :ref[0].shape[-2], :ref[0].shape[-1]])
        assert torch.equal(a.grad, b.grad)


def test_fast_model_under_autograd_runs_the_reference_formulation(pair):
    ref, fast = pair
    x = clip(seed=4)
    with torch.enable_grad():
        a, b = ref(x), fast(x)
    # no batched attention, no folded BatchNorms: the backbone and STSA are the reference's,
    # the pools are exact and only the decoder's convs run channels-last (summation order)
    torch.testing.assert_close(b, a, rtol=0, atol=1e-6)


def test_ablation_layers_stay_reference():
    variant = small_model(stsa={"variant": "no_temporal_relations"})
    assert not any(getattr(m, "fast_attention", False) for m in variant.modules())
