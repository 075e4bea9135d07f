"""Stage shapes, parameter count, options and input validation of STSANet."""

import pytest
import torch

from model_helpers import SMALL, clip, small_model
from stsanet.models import STSANet
from stsanet.models.channels import BRANCHES


def expected_stages(h: int, w: int) -> dict[str, tuple[int, ...]]:
    return {
        "tap1": (1, 192, 16, h // 4, w // 4), "tap2": (1, 480, 16, h // 8, w // 8),
        "tap3": (1, 832, 8, h // 16, w // 16), "tap4": (1, 1024, 4, h // 32, w // 32),
        "compressed0": (1, 192, 4, h // 4, w // 4), "compressed1": (1, 480, 4, h // 8, w // 8),
        "compressed2": (1, 832, 4, h // 16, w // 16), "compressed3": (1, 1024, 4, h // 32, w // 32),
        "stsa0": (1, 192, 4, h // 4, w // 4), "stsa1": (1, 240, 4, h // 8, w // 8),
        "stsa2": (1, 416, 4, h // 16, w // 16), "stsa3": (1, 512, 4, h // 32, w // 32),
        "fused0": (1, 240, 4, h // 8, w // 8), "fused1": (1, 192, 4, h // 4, w // 4),
        "fused2": (1, 192, 4, h // 2, w // 2), "saliency": (1, h, w),
    }


def check_stages(stages, size):
    assert {k: tuple(v.shape) for k, v in stages.items()} == expected_stages(*size)
    out = stages["saliency"]
    assert torch.isfinite(out).all() and out.min() > 0 and out.max() < 1


def test_small_stages_agnostic():
    check_stages(small_model().trace_stages(clip()), SMALL)


def test_forward_matches_traced_output_and_batches():
    model = small_model()
    x = clip(batch=2)
    with torch.no_grad():
        out = model(x)
        single = model(x[1:])
    assert out.shape == (2, *SMALL)
    torch.testing.assert_close(out[1:], single, rtol=1e-5, atol=1e-6)
    traced = model.trace_stages(x[:1])["saliency"]
    torch.testing.assert_close(traced, out[:1], rtol=1e-5, atol=1e-6)


@pytest.mark.slow
def test_paper_size_stages_and_parameter_count():
    torch.manual_seed(0)
    model = STSANet().eval()
    assert sum(p.numel() for p in model.parameters()) == 160_840_060
    assert len(model.state_dict()) == 849
    check_stages(model.trace_stages(clip(size=(224, 384))), (224, 384))


def test_parameter_count_groups_match_the_authors():
    model = STSANet(norm="full_shape", input_size=(224, 384))
    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert count(model) == 160_840_060
    assert count(model.backbone) == 7_910_048
    assert count(model.compress) == 2_455_008
    norms = sum(count(s.layer1.norm) + count(s.layer2.norm) for s in model.stsa)
    assert norms == 28_643_328
    assert sum(count(s.mid) for s in model.stsa) == 9_203_536
    assert count(model.decoder.readout) == 149_889
    assert count(model.decoder.top) == 1_917_344
    assert count(model.decoder.stages) == 6_473_419
    state = model.state_dict()
    assert sum(v.numel() for v in state.values()) - count(model) == 21_293  # BN buffers


def test_full_shape_norm_at_a_configured_small_size():
    model = small_model(norm="full_shape")
    assert model.stsa[0].layer1.norm.weight.shape == (192, 4, 16, 24)
    assert model.stsa[3].layer2.norm.weight.shape == (512, 4, 2, 3)
    check_stages(model.trace_stages(clip()), SMALL)


def test_agnostic_norm_has_same_statistics_as_full_shape_at_init():
    # Same normalisation statistics; only the affine differs (identity at init in both).
    a, f = small_model(norm="agnostic", seed=1), small_model(norm="full_shape", seed=1)
    f.load_state_dict({k: v for k, v in a.state_dict().items() if ".norm." not in k}, strict=False)
    with torch.no_grad():
        torch.testing.assert_close(a(clip()), f(clip()), rtol=1e-5, atol=1e-6)


def test_agnostic_model_runs_at_other_sizes():
    model = small_model()
    with torch.no_grad():
        assert model(clip(size=(32, 64))).shape == (1, 32, 64)


def test_options_are_validated_with_clear_errors():
    with pytest.raises(ValueError, match="norm must be one of"):
        STSANet(norm="batch")
    with pytest.raises(ValueError, match="unpool must be one of"):
        STSANet(unpool="nearest", norm="agnostic", input_size=SMALL)
    with pytest.raises(ValueError, match="multiples of 32"):
        STSANet(norm="agnostic", input_size=(100, 96))
    with pytest.raises(ValueError, match="mean and std"):
        STSANet(norm="agnostic", input_size=SMALL, mean=(0.5,))


def test_bad_clip_sizes_name_the_rule():
    model = small_model(norm="full_shape")
    with pytest.raises(ValueError, match="multiples of 32"):
        model(torch.rand(1, 3, 32, 70, 96))
    with pytest.raises(ValueError, match="exactly 32 frames"):
        model(torch.rand(1, 3, 16, 64, 96))
    with pytest.raises(ValueError, match="B x 3 x 32 x H x W"):
        model(torch.rand(3, 32, 64, 96))
    with pytest.raises(ValueError, match="norm='full_shape'.*64 x 96.*got 32 x 64"):
        model(torch.rand(1, 3, 32, 32, 64))


def test_bn_momentum_and_eps_reach_every_backbone_batchnorm():
    model = small_model(bn_momentum=0.1)
    bns = [m for m in model.modules() if isinstance(m, torch.nn.BatchNorm3d)]
    assert len(bns) > 50 and all(m.momentum == 0.1 and m.eps == 1e-3 for m in bns)
    assert all(m.momentum == 0.001 for m in small_model().modules()
               if isinstance(m, torch.nn.BatchNorm3d))


def test_preprocessor_normalises_rgb_in_unit_range():
    model = small_model(mean=(0.5, 0.25, 0.0), std=(0.5, 0.25, 1.0))
    x = torch.ones(1, 3, 1, 1, 1)
    assert model.preprocess(x).flatten().tolist() == [1.0, 3.0, 1.0]
    assert "preprocess.mean" not in model.state_dict()


def test_branch_table_drives_module_sizes():
    model = small_model()
    for spec, compress, stsa in zip(BRANCHES, model.compress, model.stsa):
        assert stsa.layer1.embed[0].q[0].out_channels == spec.qk_dim_1
        assert stsa.layer2.embed[0].k[0].out_channels == spec.qk_dim_2
        assert stsa.mid[0].out_channels == spec.mid_channels
        assert stsa.layer1.bottleneck == spec.bottleneck
        assert isinstance(compress, torch.nn.Identity) == (spec.time_stride == 1)


def test_training_step_reaches_every_parameter():
    model = small_model().train()
    out = model(clip())
    out.mean().backward()
    assert all(p.grad is not None for p in model.parameters())
