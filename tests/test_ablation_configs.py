"""Ablation config groups and experiment rows compose, and build the variant they name."""

from __future__ import annotations

import pytest
import torch
from hydra import compose, initialize_config_dir
from hydra.core.global_hydra import GlobalHydra
from hydra.utils import instantiate
from omegaconf import OmegaConf

from stsanet.errors import ConfigError
from stsanet.runs.train import check_train_config
from stsanet.runs.config import CONF_DIR
from stsanet.models import STSANet
from stsanet.runs.table import EXPERIMENTS_DIR

ROWS = sorted(p.stem for p in (EXPERIMENTS_DIR / "ablation").glob("*.yaml"))


def compose_train(overrides: list[str]):
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        return compose("train", overrides=[
            f"hydra.searchpath=[file://{EXPERIMENTS_DIR.resolve()}]", "data.root=/tmp",
            *overrides])


def build(cfg) -> STSANet:
    with torch.device("meta"):
        return instantiate(cfg.model)


def test_default_model_config_is_the_official_model():
    cfg = compose_train([])
    model = build(cfg)
    with torch.device("meta"):
        official = STSANet()
    assert list(model.state_dict()) == list(official.state_dict())
    assert model.config == official.config
    assert sum(p.numel() for p in model.parameters()) == 160_840_060


def test_there_is_one_experiment_file_per_paper_row():
    assert len(ROWS) == 17
    assert {"ours", "single_stream", "unet", "unet_stsa", "unet_amsf", "no_temporal_relations",
            "single_similarity", "no_layer1", "no_layer2", "rm_stsa_1", "rm_stsa_2", "rm_stsa_3",
            "rm_stsa_4", "amsf_concat", "amsf_no_aw", "amsf_no_stms",
            "last_supervised"} == set(ROWS)


EXPECTED = {
    "ours": ("amsf", dict(enabled=True, variant="full", remove=[]), {}),
    "single_stream": ("single_stream", dict(enabled=False), {}),
    "unet": ("unet", dict(enabled=False), {}),
    "unet_stsa": ("unet", dict(enabled=True), {}),
    "unet_amsf": ("amsf", dict(enabled=False), {}),
    "no_temporal_relations": ("amsf", dict(variant="no_temporal_relations"), {}),
    "single_similarity": ("amsf", dict(variant="single_similarity"), {}),
    "no_layer1": ("amsf", dict(variant="no_layer1"), {}),
    "no_layer2": ("amsf", dict(variant="no_layer2"), {}),
    "rm_stsa_1": ("amsf", dict(remove=[1]), {}),
    "rm_stsa_2": ("amsf", dict(remove=[2]), {}),
    "rm_stsa_3": ("amsf", dict(remove=[3]), {}),
    "rm_stsa_4": ("amsf", dict(remove=[4]), {}),
    "amsf_concat": ("amsf", {}, dict(fusion="concat", weighting=True, multiscale=True)),
    "amsf_no_aw": ("amsf", {}, dict(fusion="add", weighting=False, multiscale=True)),
    "amsf_no_stms": ("amsf", {}, dict(fusion="add", weighting=True, multiscale=False)),
    "last_supervised": ("amsf", dict(enabled=True, variant="full", remove=[]), {}),
}


@pytest.mark.parametrize("row,experiment", [(row, "demo") for row in ROWS] + [
    ("single_stream", "paper_dhf1k"), ("last_supervised", "paper_dhf1k")])
def test_every_experiment_row_composes_to_its_variant(row, experiment):
    # paper_dhf1k trains on a GPU; here the check would (rightly) refuse trainer=gpu without one
    cpu = ["trainer=cpu"] if experiment == "paper_dhf1k" else []
    cfg = compose_train([f"+ablation={row}", f"experiment={experiment}", *cpu])
    assert cfg.ablation.row == row and cfg.ablation.label
    decoder, stsa, amsf = EXPECTED[row]
    model_cfg = OmegaConf.to_container(cfg.model)
    assert model_cfg["decoder"] == decoder
    assert {k: model_cfg["stsa"][k] for k in stsa} == stsa
    assert {k: model_cfg["amsf"][k] for k in amsf} == amsf
    assert cfg.data.supervision == ("last" if row == "last_supervised" else "middle")
    check_train_config(cfg)  # every paper row is a combination the checks accept
    if experiment == "demo":  # the experiment's own model settings survive the row
        assert model_cfg["norm"] == "agnostic" and model_cfg["input_size"] == [64, 96]
        build(cfg)  # the switches are accepted by the model


@pytest.mark.parametrize("override,key,value", [
    ("model/decoder=unet", "decoder", "unet"),
    ("model/decoder=amsf", "decoder", "amsf"),
    ("model/stsa=none", "stsa.enabled", False),
    ("model/stsa=full", "stsa.enabled", True),
    ("model/stsa=no_temporal_relations", "stsa.variant", "no_temporal_relations"),
    ("model/stsa=single_similarity", "stsa.variant", "single_similarity"),
    ("model/stsa=no_layer1", "stsa.variant", "no_layer1"),
    ("model/stsa=no_layer2", "stsa.variant", "no_layer2"),
    ("model.stsa.remove=[1,3]", "stsa.remove", [1, 3]),
    ("model/amsf=concat", "amsf.fusion", "concat"),
    ("model/amsf=no_aw", "amsf.weighting", False),
    ("model/amsf=no_stms", "amsf.multiscale", False),
])
def test_group_options_compose_from_the_command_line(override, key, value):
    cfg = compose_train(["experiment=demo", override])
    assert OmegaConf.select(cfg.model, key) == value
    build(cfg)


def test_groups_compose_together_and_supervision_group():
    cfg = compose_train(["experiment=demo", "model/decoder=unet", "model/stsa=no_layer2",
                         "model.stsa.remove=[4]", "+data/supervision=last"])
    model = build(cfg)
    assert model.decoder_kind == "unet" and cfg.data.supervision == "last"
    assert model.stsa[3].layer1 is None and model.stsa[0].layer2 is None
    assert compose_train(["+data/supervision=middle"]).data.supervision == "middle"


GROUPS = {
    group: [f"model/{group}={p.stem}" for p in sorted((CONF_DIR / "model" / group).glob("*.yaml"))]
    for group in ("decoder", "stsa", "amsf")
}
GROUPS["remove"] = ["model.stsa.remove=[]", "model.stsa.remove=[1]", "model.stsa.remove=[4]",
                    "model.stsa.remove=[1,2,3,4]"]
PAIRS = [(a, b) for i, first in enumerate(GROUPS) for second in list(GROUPS)[i + 1:]
         for a in GROUPS[first] for b in GROUPS[second]]
# The pairs that must be refused: a switch that would change nothing in the network. The
# single-stream decoder needs model/stsa=none, which the other groups' defaults are not.
SINGLE = "model/decoder=single_stream"
REFUSED = (
    {(SINGLE, s) for s in GROUPS["stsa"] if s != "model/stsa=none"}
    | {(SINGLE, x) for group in ("remove", "amsf") for x in GROUPS[group]}
    | {("model/decoder=unet", a) for a in GROUPS["amsf"] if a != "model/amsf=full"}
    | {("model/stsa=none", r) for r in GROUPS["remove"] if r != "model.stsa.remove=[]"}
)


def test_every_pair_of_variant_groups_builds_or_is_refused_by_name():
    refused = set()
    for first, second in PAIRS:
        cfg = compose_train(["experiment=demo", first, second])
        try:
            check_train_config(cfg)
        except ConfigError as error:
            refused.add((first, second))
            # the message names the keys it is about and says what would work
            message = str(error)
            assert "model." in message and (" use " in message or " drop " in message), message
            continue
        build(cfg)
    assert refused == REFUSED


@pytest.mark.parametrize("overrides, message", [
    (["model/decoder=single_stream"],
     "model.decoder=single_stream has no branches to put STSA on: use stsa.enabled=false "
     "(model/stsa=none sets stsa.enabled=false"),
    (["model/stsa=none", "model.stsa.variant=no_layer1"],
     "model.stsa.variant=no_layer1 does nothing with stsa.enabled=false"),
    (["model/stsa=none", "model.stsa.remove=[1]"],
     "model.stsa.remove=[1] does nothing with stsa.enabled=false"),
    (["model/decoder=unet", "model/amsf=no_stms"],
     "model.amsf.multiscale=False only apply to decoder=amsf, not decoder=unet"),
    (["model.stsa.remove=[5]"], "model.stsa.remove[0]=5 must be <= 4"),
    (["model.stsa.remove=[1,1]"], "model.stsa.remove lists distinct STSA_n numbers from 1 to 4"),
    (["model.decoder=amsfx"], "model.decoder='amsfx' is unknown; allowed: amsf, unet, single_stream"),
    (["model.amsf.fusion=mean"], "model.amsf.fusion='mean' is unknown; allowed: add, concat"),
    (["model.stsa.remove=[3]", "model.stsa.removed_mid=drop"],
     "model.stsa.removed_mid=drop needs stsa.remove within [1, 4]"),
    (["model.stsa.single_qk=half"], "model.stsa.single_qk=half only apply to stsa.variant="),
])
def test_nonsense_variant_combinations_are_refused_before_any_work(overrides, message):
    with pytest.raises(ConfigError) as error:
        check_train_config(compose_train(["experiment=demo", *overrides]))
    assert message in str(error.value)
