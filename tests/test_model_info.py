"""stsanet-info: Table I numbers at the paper setting, counted on the meta device."""

import json

import pytest

from stsanet.cli import info
from stsanet.models.profile import profile


def test_paper_setting_matches_table_one():
    p = profile()
    assert p.parameters == 160_840_060 and p.state_dict_entries == 849
    assert round(p.size_mb, 1) == 643.4
    assert round(p.conv_gmac, 2) == 192.75
    assert p.attention_gmac == pytest.approx(17.86, abs=0.01)
    assert sum(p.groups.values()) == p.parameters
    assert p.shapes["tap4"] == (1, 1024, 4, 7, 12) and p.shapes["saliency"] == (1, 224, 384)


def test_cli_prints_table_and_json_for_overrides(capsys):
    info.main([])
    out = capsys.readouterr().out
    assert "160,840,060 (160.84 M)" in out and "643.4 MB" in out and "192.75" in out
    assert "stsa1        1 x 240 x 4 x 28 x 48" in out
    info.main(["model.norm=agnostic", "model.input_size=[64,96]", "--json"])
    data = json.loads(capsys.readouterr().out)
    assert data["config"]["norm"] == "agnostic" and data["shapes"]["saliency"] == [1, 64, 96]


def test_cli_bad_option_is_one_clear_line(capsys):
    assert info.main(["model.input_size=[100,96]"]) == 2
    assert "multiples of 32" in capsys.readouterr().err
