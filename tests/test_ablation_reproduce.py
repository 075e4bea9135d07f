"""make reproduce-table3..6: the rows of each table, the sweep it launches, resumption, and the
table written from whatever finished (no training here: run folders are written by hand)."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from PIL import Image

from stsanet import reproduce
from stsanet.reproduce import METRICS, aggregate, main, paper_rows, read_result, sweep_overrides


def finish(run_dir: Path, cc: float, steps: int = 6) -> None:
    """What stsanet-train leaves in a finished row: results.json and the CSV log."""
    run_dir.mkdir(parents=True)
    metrics = {"test/cc": cc, "test/nss": 2 * cc, "test/sim": cc / 2, "test/auc_judd": 0.8,
               "test/kl": 1.5, "train/loss_epoch": 1.0}
    (run_dir / "results.json").write_text(json.dumps({"metrics": metrics}))
    log = run_dir / "csv" / "version_0" / "metrics.csv"
    log.parent.mkdir(parents=True)
    log.write_text("epoch,step,train/loss\n" + "".join(f"0,{s},1.0\n" for s in range(steps)))


@pytest.mark.parametrize("table,count", [(3, 5), (4, 9), (5, 4), (6, 2)])
def test_paper_tables_have_their_rows(table, count):
    rows = paper_rows(table, "synthetic")
    assert len(rows) == count and rows[-1 if table != 6 else 0].row == "ours"
    ours = next(r for r in rows if r.row == "ours")
    assert ours.paper == {"CC": 0.539, "NSS": 3.082, "SIM": 0.411, "AUC": 0.920, "KL": 1.344}


def test_table6_takes_the_datasets_own_paper_numbers():
    rows = {r.row: r.paper for r in paper_rows(6, "hollywood2")}
    assert rows["last_supervised"]["CC"] == 0.722 and rows["ours"]["KL"] == 0.769
    with pytest.raises(ValueError, match="table must be one of"):
        paper_rows(7, "dhf1k")


def test_cpu_sweep_is_one_multirun_over_the_unfinished_rows(tmp_path):
    args = reproduce.parse_args(["--table", "3"])
    overrides = sweep_overrides(args, ["unet", "ours"], tmp_path)
    assert "+ablation=unet,ours" in overrides and "experiment=demo" in overrides
    assert f"hydra.sweep.dir={tmp_path}" in overrides
    assert "hydra.sweep.subdir=${ablation.row}" in overrides
    assert "test=true" in overrides and "++trainer.max_steps=40" in overrides
    steps = sweep_overrides(reproduce.parse_args(["--table", "3", "--steps", "50"]), ["ours"],
                            tmp_path)
    assert "++trainer.max_steps=50" in steps


def test_real_data_uses_the_paper_preset(tmp_path):
    args = reproduce.parse_args(["--table", "5", "--data", "dhf1k", "--data-root", "/d",
                                 "--trainer", "ddp", "--", "data.num_workers=8"])
    overrides = sweep_overrides(args, ["ours"], tmp_path)
    assert {"experiment=paper_dhf1k", "data=dhf1k", "data.root=/d", "trainer=ddp"} <= set(overrides)
    assert overrides[-1] == "data.num_workers=8" and not any("max_steps" in o for o in overrides)
    with pytest.raises(SystemExit):
        reproduce.parse_args(["--table", "3", "--data", "dhf1k"])  # no data root


def test_partial_sweep_still_gives_a_table(tmp_path):
    runs = tmp_path / "runs"
    finish(runs / "ours", 0.6, steps=7)
    finish(runs / "unet", 0.4)
    (runs / "unet_stsa").mkdir()  # interrupted: folder but no results
    rows = paper_rows(3, "synthetic")
    paths = aggregate(3, rows, runs, tmp_path, "main components")

    markdown = paths["md"].read_text()
    assert "| Ours | 0.600 (0.539) | 1.200 (3.082) | 0.300 (0.411) | 0.800 (0.920) | " \
           "1.500 (1.344) | 7 | [runs/ours](runs/ours) |" in markdown
    assert "missing (interrupted or failed): [runs/unet_stsa]" in markdown
    assert "missing (not run): [runs/single_stream]" in markdown
    assert "Missing rows (not finished): Single-stream, UNet-like + STSA, UNet-like + AMSF" \
        in markdown

    with open(paths["csv"], newline="") as handle:
        table = {r["row"]: r for r in csv.DictReader(handle)}
    assert list(table) == [r.row for r in rows]
    assert table["unet"]["status"] == "done" and float(table["unet"]["CC"]) == 0.4
    assert table["unet"]["CC_paper"] == "0.523" and table["unet"]["steps"] == "6"
    assert table["single_stream"]["CC"] == "" and table["single_stream"]["status"].startswith(
        "missing")
    with Image.open(paths["png"]) as image:
        assert image.format == "PNG" and image.width > 500


def test_result_needs_every_test_metric(tmp_path):
    finish(tmp_path / "ok", 0.5)
    assert read_result(tmp_path / "ok") == {"CC": 0.5, "NSS": 1.0, "SIM": 0.25, "AUC": 0.8,
                                            "KL": 1.5}
    (tmp_path / "train_only").mkdir()
    (tmp_path / "train_only" / "results.json").write_text(json.dumps({"metrics": {"x": 1}}))
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "results.json").write_text("{")
    for name in ("train_only", "corrupt", "absent"):
        assert read_result(tmp_path / name) is None
    assert set(METRICS) == {"CC", "NSS", "SIM", "AUC", "KL"}


def test_rerun_trains_only_the_missing_rows(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "synthetic" / "runs"
    for row in ("single_stream", "unet", "unet_stsa", "ours"):
        finish(runs / row, 0.5)
    launched = []

    class Done:
        returncode = 0

    def fake_run(command):
        launched.append(command)
        finish(runs / "unet_amsf", 0.55)  # the sweep trains the missing row
        return Done()

    monkeypatch.setattr(reproduce.subprocess, "run", fake_run)
    assert main(["--table", "3", "--out", str(tmp_path)]) == 0
    assert len(launched) == 1 and "+ablation=unet_amsf" in launched[0]
    assert "-m" in launched[0] and "stsanet.cli.train" in launched[0]
    assert "Missing rows" not in (tmp_path / "synthetic" / "table3.md").read_text()

    # everything finished: nothing is launched, the table is rewritten
    launched.clear()
    assert main(["--table", "3", "--out", str(tmp_path)]) == 0
    assert launched == [] and "finished rows kept" in capsys.readouterr().out


def test_failed_sweep_reports_its_code_and_keeps_the_table(tmp_path, monkeypatch):
    class Failed:
        returncode = 1

    launched = []
    monkeypatch.setattr(reproduce.subprocess, "run",
                        lambda command: launched.append(command) or Failed())
    assert main(["--table", "5", "--out", str(tmp_path)]) == 1
    # the reference row goes first, so a sweep cut short still has something to compare with
    assert "+ablation=ours,amsf_concat,amsf_no_aw,amsf_no_stms" in launched[0]
    assert "missing (not run)" in (tmp_path / "synthetic" / "table5.md").read_text()
