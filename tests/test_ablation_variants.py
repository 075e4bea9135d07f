"""The paper's ablation variants (Tables III-V): they build, run, and differ from the official
model by exactly the parts they switch off."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from stsanet.models import STSANet
from stsanet.models.amsf import STMS, AMSFStage
from stsanet.models.channels import BRANCHES, DECODER_STAGES
from stsanet.models.stsa import JointSTSALayer, PerStepSTSALayer, STSALayer

SMALL = (64, 96)


def count(module: nn.Module | None) -> int:
    return 0 if module is None else sum(p.numel() for p in module.parameters())


def meta_model(**options) -> STSANet:
    # Parameter shapes only: building on the meta device skips the 130M-value initialisation.
    with torch.device("meta"):
        return STSANet(norm="agnostic", input_size=SMALL, **options)


@pytest.fixture(scope="module")
def full() -> STSANet:
    return meta_model()


def test_defaults_are_the_official_model(full):
    with torch.device("meta"):
        official = STSANet()
        explicit = STSANet(decoder="amsf", stsa={"enabled": True, "variant": "full", "remove": []},
                           amsf={"fusion": "add", "weighting": True, "multiscale": True})
    assert count(official) == 160_840_060
    assert list(explicit.state_dict()) == list(official.state_dict())
    assert "decoder" not in official.config and "stsa" not in official.config


@pytest.mark.parametrize("n", [1, 2, 3, 4])
def test_rm_stsa_n_removes_exactly_that_branchs_attention(full, n):
    removed = meta_model(stsa={"remove": [n]})
    branch = full.stsa[n - 1]
    assert count(full) - count(removed) == count(branch.layer1) + count(branch.layer2) > 0
    assert removed.stsa[n - 1].layer1 is None and removed.stsa[n - 1].layer2 is None
    # the mid conv stays as the channel adapter; every other branch is untouched
    assert count(removed.stsa[n - 1].mid) == count(branch.mid)
    for i in set(range(4)) - {n - 1}:
        assert count(removed.stsa[i]) == count(full.stsa[i])


def test_removing_all_stsa_is_unet_like_plus_amsf(full):
    all_removed = meta_model(stsa={"remove": [1, 2, 3, 4]})
    unet_amsf = meta_model(stsa={"enabled": False})
    assert list(all_removed.state_dict()) == list(unet_amsf.state_dict())
    attention = sum(count(s.layer1) + count(s.layer2) for s in full.stsa)
    assert count(full) - count(unet_amsf) == attention


@pytest.mark.parametrize("variant,layer", [("no_layer1", "layer1"), ("no_layer2", "layer2")])
def test_without_one_stsa_layer(full, variant, layer):
    model = meta_model(stsa={"variant": variant})
    assert all(getattr(s, layer) is None for s in model.stsa)
    assert count(full) - count(model) == sum(count(getattr(s, layer)) for s in full.stsa)


def test_no_temporal_relations_keeps_every_weight(full):
    model = meta_model(stsa={"variant": "no_temporal_relations"})
    assert list(model.state_dict()) == list(full.state_dict())
    assert all(isinstance(s.layer1, PerStepSTSALayer) and isinstance(s.layer2, PerStepSTSALayer)
               for s in model.stsa)


def test_single_similarity_has_one_embedding_per_branch(full):
    model = meta_model(stsa={"variant": "single_similarity"})
    expected = count(full)
    for s in full.stsa:
        expected -= count(s.layer2) + sum(count(e) for e in s.layer1.embed[1:])
    assert count(model) == expected
    assert all(isinstance(s.layer1, JointSTSALayer) and s.layer2 is None for s in model.stsa)


def test_single_similarity_alternative_readings(full):
    """single_qk: the official layer-I query/key width (224 on the 480-channel branch) or the
    paper's C/2 (240); single_layers=both: a joint matrix in place of each of the two layers."""
    official = meta_model(stsa={"variant": "single_similarity"})
    half = meta_model(stsa={"variant": "single_similarity", "single_qk": "half"})
    widths = lambda model: [s.layer1.embed[0].q[0].out_channels for s in model.stsa]  # noqa: E731
    assert widths(official) == [b.qk_dim_1 for b in BRANCHES] == [96, 224, 416, 512]
    assert widths(half) == [b.channels // 2 for b in BRANCHES] == [96, 240, 416, 512]
    both = meta_model(stsa={"variant": "single_similarity", "single_layers": "both"})
    assert all(isinstance(s.layer2, JointSTSALayer) for s in both.stsa)
    assert [s.layer2.embed[0].q[0].out_channels for s in both.stsa] == [b.qk_dim_2 for b in BRANCHES]
    assert count(both) - count(official) == sum(count(s.layer2) for s in both.stsa)


@pytest.mark.parametrize("n", [1, 4])
def test_rm_stsa_n_can_drop_the_mid_conv_where_the_widths_allow(full, n):
    kept = meta_model(stsa={"remove": [n]})
    dropped = meta_model(stsa={"remove": [n], "removed_mid": "drop"})
    assert isinstance(dropped.stsa[n - 1].mid, nn.Identity)
    spec = BRANCHES[n - 1]
    mid = spec.channels * spec.mid_channels * 9 + spec.mid_channels
    # STSA_4 without its mid conv: the decoder's top conv takes C = 1024 channels, not 512
    top = (spec.channels - spec.mid_channels) * full.decoder.top[0].out_channels * 9 if n == 4 else 0
    assert count(kept) - count(dropped) == mid - top


def test_amsf_variants_change_only_their_part(full):
    stages = full.decoder.stages
    weighting = sum(count(s.weighting) for s in stages)
    stms = sum(count(s.stms) for s in stages)
    single_convs = sum(c * o * 9 + o for c, o in DECODER_STAGES)
    assert count(full) - count(meta_model(amsf={"weighting": False})) == weighting
    assert count(meta_model(amsf={"multiscale": False})) == count(full) - stms + single_convs
    concat_stms = sum(count(STMS(2 * c, o)) for c, o in DECODER_STAGES)
    assert count(meta_model(amsf={"fusion": "concat"})) == count(full) - stms + concat_stms
    unet = meta_model(decoder="unet", stsa={"enabled": False})
    assert count(unet) == count(meta_model(stsa={"enabled": False})) - weighting - stms + single_convs


def test_single_stream_uses_only_the_deepest_tap(full):
    model = meta_model(decoder="single_stream", stsa={"enabled": False})
    assert model.branch_ids == (3,) and len(model.stsa) == 1
    deepest = BRANCHES[-1]
    decoder = (count(full.decoder.top) + count(full.decoder.readout)
               + sum(c * o * 9 + o for c, o in DECODER_STAGES))
    mid = deepest.channels * deepest.mid_channels * 9 + deepest.mid_channels
    assert count(model) == count(full.backbone) + mid + decoder
    assert all(not stage.lateral and stage.weighting is None for stage in model.decoder.stages)


@pytest.mark.parametrize("options,message", [
    (dict(decoder="single_stream"), "stsa.enabled=false"),
    (dict(decoder="unet", amsf={"weighting": False}), "only apply to decoder=amsf"),
    (dict(stsa={"remove": [0]}), "from 1 to 4"),
    (dict(stsa={"variant": "no_layer3"}), "stsa.variant must be one of"),
    (dict(amsf={"fusion": "mul"}), r"amsf.fusion must be one of \['add', 'concat'\]"),
    (dict(stsa={"enabled": False, "variant": "no_layer1"}), "does nothing with stsa.enabled"),
    (dict(stsa={"enabled": False, "remove": [1]}), "does nothing with stsa.enabled"),
    (dict(amsf={"weigting": False}), "unknown amsf option"),
    (dict(decoder="transformer"), "decoder must be one of"),
    (dict(stsa={"remove": [2], "removed_mid": "drop"}), r"removed_mid=drop needs stsa.remove "
                                                          r"within \[1, 4\].*240/416"),
    (dict(stsa={"removed_mid": "drop"}), "removed_mid=drop needs stsa.remove"),
    (dict(stsa={"single_qk": "half"}), "only apply to stsa.variant=single_similarity"),
    (dict(stsa={"variant": "single_similarity", "single_layers": "three"}),
     r"single_layers must be one of \['one', 'both'\]"),
])
def test_bad_switches_say_what_is_allowed(options, message):
    with pytest.raises(ValueError, match=message):
        meta_model(**options)


# ---------------------------------------------------------------- real forwards at 64 x 96
FORWARD_CASES = {
    # every paper variant appears once; orthogonal switches share a model to keep the number
    # of 100M-parameter constructions small (unet_amsf = all four rm STSA_n, covered above)
    "single_stream": dict(decoder="single_stream", stsa={"enabled": False}),
    "unet_stsa+no_temporal_relations+rm_2": dict(
        decoder="unet", stsa={"variant": "no_temporal_relations", "remove": [2]}),
    "concat+single_similarity+rm_1_4": dict(stsa={"variant": "single_similarity",
                                                   "remove": [1, 4]}, amsf={"fusion": "concat"}),
    "no_aw+no_layer1": dict(stsa={"variant": "no_layer1"}, amsf={"weighting": False}),
    "no_stms+no_layer2+rm_3": dict(stsa={"variant": "no_layer2", "remove": [3]},
                                   amsf={"multiscale": False}),
    # the alternative readings: C/2-wide joint matrices in both layers; rm STSA_n without mid conv
    "single_similarity_half_both+rm_1_4_drop": dict(stsa={
        "variant": "single_similarity", "single_qk": "half", "single_layers": "both",
        "remove": [1, 4], "removed_mid": "drop"}),
}


@pytest.mark.parametrize("name", list(FORWARD_CASES))
def test_variant_runs_forward_and_backward(name):
    torch.manual_seed(0)
    model = STSANet(norm="agnostic", input_size=SMALL, unpool="export_friendly",
                    **FORWARD_CASES[name])
    clip = torch.rand(1, 3, 32, *SMALL, generator=torch.Generator().manual_seed(1))
    out = model(clip)
    assert out.shape == (1, *SMALL)
    assert torch.isfinite(out).all() and (out > 0).all() and (out < 1).all()
    out.mean().backward()
    # every parameter the variant builds takes part in the forward pass
    unused = [n for n, p in model.named_parameters() if p.grad is None]
    assert not unused, unused[:5]


# ------------------------------------------------- what the STSA variants attend to (small)
def _layer_output_change(layer: STSALayer, step: int) -> torch.Tensor:
    """Per time step, how much the layer output moves when only time step `step` changes."""
    torch.manual_seed(0)
    x = torch.rand(1, 8, 4, 3, 5)
    y = x.clone()
    y[:, :, step] += torch.rand(1, 8, 3, 5)
    with torch.no_grad():
        return (layer(x) - layer(y)).abs().amax(dim=(0, 1, 3, 4))


@pytest.mark.parametrize("cls,pairs", [(PerStepSTSALayer, 2), (PerStepSTSALayer, 1)])
def test_without_temporal_relations_no_time_step_sees_another(cls, pairs):
    torch.manual_seed(0)
    # identity norm: the norm over the whole feature shares statistics across time steps,
    # which is not attention
    layer = cls(8, 4, pairs, nn.Identity())
    change = _layer_output_change(layer, 1)
    assert change[1] > 0 and torch.all(change[[0, 2, 3]] == 0)


def test_paired_and_joint_layers_mix_time_steps():
    torch.manual_seed(0)
    paired = STSALayer(8, 4, 2, nn.Identity())
    joint = JointSTSALayer(8, 4, nn.Identity())
    # layer I pairs steps 1/2: step 1's output reads step 2's keys/values
    assert _layer_output_change(paired, 1)[0] > 0
    assert torch.all(_layer_output_change(paired, 1)[[2, 3]] == 0)
    # one 4HW x 4HW attention: every step reads every other
    assert torch.all(_layer_output_change(joint, 3) > 0)


def test_stage_without_lateral_input_is_a_plain_decoder_step():
    stage = AMSFStage(16, 8, weighting=True, multiscale=False, lateral=False)
    assert stage.weighting is None
    out = stage(torch.rand(1, 16, 4, 3, 5), None)
    assert out.shape == (1, 8, 4, 3, 5) and (out >= 0).all()
