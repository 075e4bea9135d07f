"""Key conversion (against the authors' 849-key list) and loading/saving of every format."""

import re

import pytest
import torch

from model_helpers import (clip, kylemin_s3d, official_keys, randomize, small_model,
                           torchvision_s3d)
from stsanet.models import STSANet
from stsanet.models import key_names as K
from stsanet.models import weights as W

DTYPES = {"float32": torch.float32, "int64": torch.int64}


def test_tsv_round_trip_gives_all_849_keys_and_shapes_back_in_order():
    rows = official_keys()
    assert len(rows) == 849
    official = {k: torch.zeros(s, dtype=DTYPES[d]) for k, s, d in rows}
    ours = K.official_to_ours(official)
    with torch.device("meta"):
        model = STSANet()
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert {k: tuple(v.shape) for k, v in ours.items()} == expected
    back = K.ours_to_official(ours)
    assert [(k, tuple(v.shape), str(v.dtype)[6:]) for k, v in back.items()] == rows


def test_conversion_rejects_unknown_keys():
    with pytest.raises(W.WeightsError, match="1 keys have no stsanet name: head.weight"):
        K.official_to_ours({"head.weight": torch.zeros(1)})


@pytest.fixture(scope="module")
def trained_small():
    model = randomize(small_model(norm="full_shape", seed=5), seed=6)
    return model, clip(seed=7)


@pytest.fixture(scope="module")
def official_file(trained_small, tmp_path_factory):
    """The trained model saved as the authors would have: their names under `module.`."""
    path = tmp_path_factory.mktemp("official") / "STSANet_DHF1K.pth"
    W.save_official(trained_small[0], path, module_prefix=True)
    return path


def _load_and_compare(trained_small, path, **options):
    """Load `path` into a freshly initialised model and compare outputs with the source."""
    model, x = trained_small
    fresh = small_model(norm="full_shape", seed=11, **options)
    W.load_weights(fresh, path)
    with torch.no_grad():
        assert torch.equal(fresh(x), model(x))


WRAPPINGS = {
    "raw": lambda sd: sd,
    "module": lambda sd: {f"module.{k}": v for k, v in sd.items()},
    "state_dict": lambda sd: {"state_dict": sd, "epoch": 3},
    "module+state_dict": lambda sd: {"state_dict": {f"module.{k}": v for k, v in sd.items()}},
    "model_state_dict": lambda sd: {"model_state_dict": sd, "optimizer_state_dict": {}},
    "lightning": lambda sd: {"pytorch-lightning_version": "2.6.6", "epoch": 1,
                             "state_dict": {**{f"net.{k}": v for k, v in sd.items()},
                                            "val_metrics.total": torch.tensor(3)},
                             "optimizer_states": [], "lr_schedulers": []},
    "compiled+ddp": lambda sd: {f"module._orig_mod.{k}": v for k, v in sd.items()},
}


@pytest.mark.parametrize("wrap", sorted(WRAPPINGS))
def test_every_wrapping_unwraps_to_the_plain_state_dict(tmp_path, wrap):
    sd = {"base1.0.conv_s.weight": torch.randn(2, 3), "ln_0_0.bias": torch.randn(4),
          "base1.0.bn_s.num_batches_tracked": torch.tensor(5)}
    torch.save(WRAPPINGS[wrap](sd), tmp_path / "w.pth")
    got = W.read_state_dict(tmp_path / "w.pth")
    assert list(got) == list(sd) and all(torch.equal(got[k], v) for k, v in sd.items())


def test_authors_file_gives_identical_outputs_with_export_friendly_unpool(trained_small,
                                                                         official_file):
    keys = list(torch.load(official_file, weights_only=True, mmap=True))
    assert len(keys) == 849 and keys[0] == "module.base1.0.conv_s.weight"
    assert keys[-1] == "module.readout_2.4.bias"
    _load_and_compare(trained_small, official_file, unpool="export_friendly")


def test_ours_format(trained_small, tmp_path):
    # (Lightning's `net.` wrapping of this format is covered by the unwrapping test above.)
    W.save_weights(trained_small[0], tmp_path / "ours.pt")
    saved = torch.load(tmp_path / "ours.pt", weights_only=True, mmap=True)
    assert saved["format"] == "stsanet" and saved["config"]["norm"] == "full_shape"
    _load_and_compare(trained_small, tmp_path / "ours.pt")


def _error(model, path, loader=W.load_weights) -> str:
    with pytest.raises(W.WeightsError) as info:
        loader(model, path)
    return str(info.value)


def test_missing_unexpected_and_misshaped_keys_are_listed(trained_small, tmp_path):
    model, _ = trained_small
    sd = K.ours_to_official(model.state_dict())
    sd = {k: v for k, v in sd.items() if not k.startswith("base")}
    del sd["readout_2.4.bias"], sd["SA_0.0.bias"]
    sd["module_extra.weight"] = torch.zeros(2)
    sd["inc_0_0.0.bias"] = torch.zeros(7)
    torch.save(sd, tmp_path / "bad.pth")
    before = {k: v.clone() for k, v in model.state_dict().items()}
    msg = _error(model, tmp_path / "bad.pth")
    assert "bad.pth" in msg and "464 missing, 1 unexpected, 1 mis-shaped" in msg
    assert re.search(r"missing \(464\): base1\.0\.conv_s\.weight, .*\(\+459 more\)", msg)
    assert "module_extra.weight" in msg
    assert "inc_0_0.0.bias file (7,) vs model (240,)" in msg
    # nothing was loaded
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())


def test_norm_mismatch_hint_names_the_configuration(tmp_path):
    # the STSA norms of a paper-size file in the authors' naming
    paper_like = {k: torch.zeros(s, dtype=DTYPES[d]) for k, s, d in official_keys()
                  if k.startswith("ln_")}
    torch.save(paper_like, tmp_path / "paper.pth")
    msg = _error(small_model(norm="agnostic"), tmp_path / "paper.pth")
    assert "mis-shaped" in msg and "ln_0_0.weight file (192, 4, 56, 96)" in msg
    assert "input_size=(224, 384)" in msg
    with pytest.raises(W.WeightsError, match="norm='agnostic'.*save_weights"):
        W.save_official(small_model(), tmp_path / "no.pth")


def test_unreadable_and_foreign_files(tmp_path):
    model = small_model()
    with pytest.raises(FileNotFoundError, match="nope.pth"):
        W.load_weights(model, tmp_path / "nope.pth")
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    assert "junk.pth: cannot be read" in _error(model, tmp_path / "junk.pth")
    torch.save({"epoch": 3}, tmp_path / "empty.pth")
    assert "no state_dict found" in _error(model, tmp_path / "empty.pth")
    torch.save({"fc1.weight": torch.zeros(1)}, tmp_path / "other.pth")
    assert "neither STSANet" in _error(model, tmp_path / "other.pth")


# --- backbone-only S3D files -----------------------------------------------------------------

def _backbone_matches(model, reference_taps):
    x = clip(seed=9)
    with torch.no_grad():
        taps = model.backbone(model.preprocess(x))
        ref = reference_taps(model.preprocess(x))
    # the same weights in another module tree: equal up to float rounding
    torch.testing.assert_close(taps[-1], ref, rtol=1e-5, atol=1e-5)


def test_kylemin_backbone_file(tmp_path):
    s3d = randomize(kylemin_s3d(), seed=1).eval()
    sd = {f"module.{k}": v for k, v in s3d.state_dict().items()}
    assert len([k for k in sd if ".base." in k or k.startswith("module.base.")]) == 462
    torch.save(sd, tmp_path / "S3D_kinetics400.pt")
    model = small_model()
    head_before = model.decoder.readout.temporal[0].weight.clone()
    W.load_backbone(model, tmp_path / "S3D_kinetics400.pt")
    _backbone_matches(model, s3d.base)
    assert torch.equal(model.decoder.readout.temporal[0].weight, head_before)
    assert "backbone-only" in _error(model, tmp_path / "S3D_kinetics400.pt")


def test_torchvision_backbone_file(tmp_path):
    tv = randomize(torchvision_s3d(), seed=2).eval()
    torch.save(tv.state_dict(), tmp_path / "s3d-d76dad2f.pth")
    model = small_model()
    W.load_backbone(model, tmp_path / "s3d-d76dad2f.pth")
    _backbone_matches(model, tv.features)
    # order-preserving 1:1 mapping onto the authors' backbone keys
    tv_keys = [k for k in tv.state_dict() if k.startswith("features.")]
    official = [k for k, _, _ in official_keys() if k.startswith("base")]
    assert [K.torchvision_to_official(k) for k in tv_keys] == official


def test_authors_backbone_file_and_full_checkpoint_as_backbone(trained_small, official_file,
                                                               tmp_path):
    source = trained_small[0]
    full = K.ours_to_official(source.state_dict())
    torch.save({k: v for k, v in full.items() if k.startswith("base")}, tmp_path / "S3D_backbone.pth")
    model = small_model()
    for path in (tmp_path / "S3D_backbone.pth", official_file):
        randomize(model.backbone, seed=12)
        W.load_backbone(model, path)
        for k, v in source.backbone.state_dict().items():
            assert torch.equal(model.backbone.state_dict()[k], v), (path, k)


def test_backbone_file_errors(tmp_path):
    s3d = kylemin_s3d()
    sd = s3d.state_dict()
    sd["base.1.weight"] = torch.zeros(1)  # a max-pool has no weights
    del sd["base.15.branch3.1.bn.running_var"]
    torch.save(sd, tmp_path / "kyle.pt")
    msg = _error(small_model(), tmp_path / "kyle.pt", W.load_backbone)
    assert "kyle.pt" in msg and "base.1.weight" in msg
    del sd["base.1.weight"]
    torch.save(sd, tmp_path / "kyle.pt")
    msg = _error(small_model(), tmp_path / "kyle.pt", W.load_backbone)
    assert "1 missing" in msg and "block4.1.branch3.1.bn.running_var" in msg
    torch.save({"fc1.weight": torch.zeros(1)}, tmp_path / "other.pt")
    assert "not an S3D backbone file" in _error(small_model(), tmp_path / "other.pt", W.load_backbone)


def test_real_lightning_checkpoint_reads_with_weights_only(tmp_path):
    import pytorch_lightning as pl

    class Tiny(pl.LightningModule):
        def __init__(self, model_config=None):
            super().__init__()
            self.save_hyperparameters(logger=False)
            self.net = torch.nn.Linear(2, 1)

        def training_step(self, batch, _):
            return self.net(batch[0]).mean()

        def configure_optimizers(self):
            return torch.optim.Adam(self.parameters())

    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.rand(4, 2)),
                                       batch_size=2)
    trainer = pl.Trainer(max_steps=1, logger=False, enable_progress_bar=False,
                         enable_model_summary=False, default_root_dir=tmp_path)
    module = Tiny(model_config={"_target_": "stsanet.models.STSANet", "input_size": [64, 96]})
    trainer.fit(module, data)
    ckpt = next(tmp_path.rglob("*.ckpt"))
    got = W.read_state_dict(ckpt)
    assert list(got) == ["weight", "bias"] and torch.equal(got["weight"], module.net.weight)
