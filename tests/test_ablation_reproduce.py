"""make reproduce-table3..6: the rows of each table, the sweeps it launches, the protocol checks,
resumption, and the table written from whatever finished (no training here: run folders are
written by hand; tests/test_ablation_end_to_end.py trains for real)."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path

import pytest
import torch
from PIL import Image

from model_helpers import kylemin_s3d
from stsanet.cli.boundary import UsageError
from stsanet.cli.reproduce import main, parse_args
from stsanet.metrics.significance import paired_bootstrap
from stsanet.runs import reproduce
from stsanet.runs.reproduce import multiruns, pending, sweep_overrides, world_batch
from stsanet.runs.table import METRICS, aggregate, paper_rows, read_result

VIDEOS = [f"{v:04d}" for v in range(601, 613)]


def finish(run_dir: Path, cc: float, seed: int = 1, steps: int = 6, shift=None,
           trace=None) -> None:
    """What stsanet-train leaves in a scored run: results.json with per-video scores."""
    run_dir.mkdir(parents=True)
    shift = shift or (lambda i: 0.0)
    per_video = {v: {"CC": cc + shift(i), "NSS": 2 * cc, "SIM": cc / 2, "AUC-J": 0.8,
                     "s-AUC": 0.6, "KL": 1.5} for i, v in enumerate(VIDEOS)}
    scores = {c: statistics.fmean(s[c] for s in per_video.values()) for c in METRICS.values()}
    data = {"metrics": {"train/loss": 1.0}, "seed": seed, "steps": steps,
            "train_seconds": 120.0, "global_batch": 3,
            "train_loss_trace": trace or [[s, 1.0] for s in range(steps)],
            "loggers": {"wandb": f"run{seed}"},
            "score": {"protocol": "benchmark", "description": "every frame (split val)",
                      "scores": scores, "per_video": per_video}}
    (run_dir / "results.json").write_text(json.dumps(data))


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


def test_synthetic_sweep_is_rows_by_seeds(tmp_path):
    args = parse_args(["--table", "3"])
    assert args.seeds == reproduce.SYNTHETIC_SEEDS and args.steps == reproduce.SYNTHETIC_STEPS
    overrides = sweep_overrides(args, ["unet", "ours"], [1, 2], tmp_path)
    assert "+ablation=unet,ours" in overrides and "seed=1,2" in overrides
    assert "experiment=demo" in overrides and f"hydra.sweep.dir={tmp_path}" in overrides
    assert "hydra.sweep.subdir=${ablation.row}/seed${seed}" in overrides
    assert "+score.protocol=official" in overrides and "ckpt_path=auto" in overrides
    assert f"data.val_stride={reproduce.SYNTHETIC_VAL_STRIDE}" in overrides
    assert f"++trainer.max_steps={reproduce.SYNTHETIC_STEPS}" in overrides
    every = sweep_overrides(parse_args(["--table", "3", "--protocol", "benchmark",
                                                  "--steps", "50"]), ["ours"], [1], tmp_path)
    assert "+score.protocol=benchmark" in every and "++trainer.max_steps=50" in every
    real = parse_args(["--table", "3", "--data", "dhf1k", "--data-root", "/d",
                                 "--backbone", "scratch"])
    assert real.protocol == "benchmark" and real.seeds == reproduce.REAL_SEEDS
    # Table II (DIEM): first 300 frames, a user-given video subset
    listing = tmp_path / "subset.txt"
    listing.write_text("# the 17 videos\n0601\nBBC_life_in_cold_blood_1278x710\n")
    diem = parse_args(["--table", "6", "--data", "diem", "--data-root", "/d",
                                 "--finetune-from", "/w.pt", "--first-frames", "300",
                                 "--videos-file", str(listing)])
    overrides = sweep_overrides(diem, ["ours"], [1], tmp_path)
    assert "+score.first_frames=300" in overrides and "init.weights=/w.pt" in overrides
    assert "+score.videos=['0601','BBC_life_in_cold_blood_1278x710']" in overrides
    assert "Table II protocol: first 300 frames; videos listed in" in " ".join(
        reproduce.table_title(diem)[1])
    listing.write_text("a,b\n")
    with pytest.raises(reproduce.ReproduceError, match="one video name per line"):
        reproduce.read_video_list(str(listing))


def test_real_data_needs_a_backbone_or_says_scratch(tmp_path, capsys):
    with pytest.raises(UsageError, match="--backbone /path/S3D_kinetics400.pt"):
        parse_args(["--table", "3", "--data", "dhf1k", "--data-root", "/d"])
    with pytest.raises(UsageError, match="needs --data-root"):
        parse_args(["--table", "3", "--data", "dhf1k"])  # no data root
    args = parse_args(["--table", "3", "--data", "dhf1k", "--data-root", "/d",
                                 "--backbone", "scratch"])
    title, _ = reproduce.table_title(args)
    assert "backbone from scratch — not the paper's protocol" in title
    assert not any(o.startswith("init.backbone") for o in sweep_overrides(args, ["ours"], [1],
                                                                          tmp_path))
    # a file that is not an S3D backbone is refused before anything starts, naming the formats
    bad = tmp_path / "bad.pt"
    torch.save({"head.weight": torch.zeros(2)}, bad)
    with pytest.raises(reproduce.ReproduceError, match="kylemin S3D"):
        reproduce.check_backbone(str(bad))
    good = tmp_path / "S3D_kinetics400.pt"
    torch.save(kylemin_s3d().state_dict(), good)
    reproduce.check_backbone(str(good))
    args = parse_args(["--table", "5", "--data", "dhf1k", "--data-root", "/d",
                                 "--backbone", str(good), "--trainer", "ddp", "--",
                                 "data.num_workers=8"])
    overrides = sweep_overrides(args, ["ours"], [1], tmp_path)
    assert {"experiment=paper_dhf1k", "data=dhf1k", "data.root=/d", "trainer=ddp",
            f"init.backbone={good}", "+score.save_weights=true", "data.batch_size=3",
            "++trainer.sync_batchnorm=false"} <= set(overrides)
    assert overrides[-1] == "data.num_workers=8" and not any("max_steps" in o for o in overrides)


def test_global_batch_follows_the_device_count():
    assert world_batch(3, 1) == (3, 1, 3) and world_batch(3, 3) == (1, 1, 3)
    assert world_batch(3, 2) == (1, 2, 4) and world_batch(3, 4) == (1, 1, 4)
    assert world_batch(6, 2) == (3, 1, 6)


def test_finetuned_datasets_start_from_the_dhf1k_sweep(tmp_path, capsys):
    args = parse_args(["--table", "6", "--data", "ucf", "--data-root", "/d",
                                 "--out", str(tmp_path)])
    overrides = sweep_overrides(args, ["ours"], [1], tmp_path)
    assert (f"init.weights={tmp_path.resolve()}/dhf1k/runs/${{ablation.row}}/seed${{seed}}"
            "/weights.pt") in overrides
    with pytest.raises(reproduce.ReproduceError, match="--data dhf1k"):
        reproduce.check_finetune(args, {"ours": [1]})
    weights = tmp_path / "dhf1k" / "runs" / "ours" / "seed1" / "weights.pt"
    weights.parent.mkdir(parents=True)
    weights.write_bytes(b"x")
    reproduce.check_finetune(args, {"ours": [1]})
    assert "Fine-tuned from the DHF1K sweep" in " ".join(reproduce.table_title(args)[1])
    # opting out needs a backbone again, and the title says so
    with pytest.raises(UsageError, match="--backbone"):
        parse_args(["--table", "6", "--data", "ucf", "--data-root", "/d",
                              "--finetune-from", "scratch"])
    args = parse_args(["--table", "6", "--data", "ucf", "--data-root", "/d",
                                 "--finetune-from", "scratch", "--backbone", "scratch"])
    assert "not fine-tuned from DHF1K" in reproduce.table_title(args)[0]
    assert main(["--table", "6", "--data", "ucf", "--data-root", "/d",
                 "--out", str(tmp_path / "none")]) == 2
    assert "has not produced" in capsys.readouterr().err


def test_slurm_sweep_sets_launcher_and_ddp_together(tmp_path):
    args = parse_args(["--table", "3", "--data", "dhf1k", "--data-root", "/d",
                                 "--backbone", "scratch", "--launcher", "slurm",
                                 "--gpus-per-node", "4", "--nodes", "2", "--partition", "gpu",
                                 "--account", "proj", "--time-min", "240", "--logger", "wandb"])
    overrides = set(sweep_overrides(args, ["ours"], [1, 2], tmp_path))
    assert {"hydra/launcher=slurm", "trainer=ddp", "trainer.devices=4", "++trainer.num_nodes=2",
            "hydra.launcher.gpus_per_node=4", "hydra.launcher.tasks_per_node=4",
            "hydra.launcher.nodes=2", "hydra.launcher.partition=gpu",
            "hydra.launcher.account=proj", "hydra.launcher.timeout_min=240",
            "data.batch_size=1", "++trainer.accumulate_grad_batches=1",
            "+logger.wandb.group=table3-dhf1k",
            "logger.wandb.tags=[table3,${ablation.row},seed${seed}]"} <= overrides


def test_slurm_cpu_jobs_ask_no_gpu_and_pass_placement_through(tmp_path):
    args = parse_args(["--table", "3", "--launcher", "slurm", "--gpus-per-node", "0",
                       "--tasks", "2", "--cpus-per-task", "1", "--mem-gb", "4", "--qos", "low",
                       "--constraint", "avx512", "--partition", "cpu", "--sbatch",
                       "reservation=r1", "--sbatch", "exclusive"])
    overrides = sweep_overrides(args, ["ours"], [1], tmp_path)
    assert {"hydra/launcher=slurm_cpu", "trainer=ddp_cpu", "trainer.devices=2",
            "hydra.launcher.nodes=1", "hydra.launcher.cpus_per_task=1",
            "hydra.launcher.mem_gb=4", "hydra.launcher.mem_per_cpu=null",
            "hydra.launcher.qos=low", "hydra.launcher.constraint=avx512",
            "hydra.launcher.partition=cpu",
            "++hydra.launcher.additional_parameters.reservation=r1",
            "++hydra.launcher.additional_parameters.exclusive=true"} <= set(overrides)
    assert not any("gpus_per_node" in o or o == "trainer=ddp" for o in overrides)
    one = sweep_overrides(parse_args(["--table", "3", "--launcher", "slurm",
                                      "--gpus-per-node", "0"]), ["ours"], [1], tmp_path)
    assert {"trainer=cpu", "trainer.devices=1", "hydra/launcher=slurm_cpu"} <= set(one)
    assert not any("mem_per_cpu" in o for o in one)  # the launcher config's default
    # real data: the global batch splits over the CPU ranks as over GPUs
    real = parse_args(["--table", "3", "--data", "dhf1k", "--data-root", "/d", "--backbone",
                       "scratch", "--launcher", "slurm", "--gpus-per-node", "0", "--tasks", "3"])
    assert "data.batch_size=1" in sweep_overrides(real, ["ours"], [1], tmp_path)
    for bad, says in ((["--gpus-per-node", "2", "--tasks", "3"], "one task per GPU"),
                      (["--sbatch", "=x"], "give KEY=VALUE")):
        with pytest.raises(UsageError, match=says):
            parse_args(["--table", "3", "--launcher", "slurm", *bad])


def test_slurm_sweep_order_is_hydras(tmp_path):
    """Task i of a sweep's job array is the i-th job Hydra's basic sweeper makes of the
    overrides reproduce passes: the order slurm_jobs maps SLURM jobs to runs with."""
    from hydra._internal.core_plugins.basic_sweeper import BasicSweeper
    from hydra.core.override_parser.overrides_parser import OverridesParser

    from stsanet.runs.slurm_jobs import sweep_order

    rows, seeds = ["ours", "amsf_concat", "amsf_no_aw"], [7, 8]
    overrides = sweep_overrides(parse_args(["--table", "5", "--launcher", "slurm"]), rows, seeds,
                                tmp_path)
    parsed = OverridesParser.create().parse_overrides(overrides)
    [jobs] = BasicSweeper.split_arguments(parsed, None)
    made = [(next(o.split("=")[1] for o in job if o.startswith("+ablation=")),
             int(next(o.split("=")[1] for o in job if o.startswith("seed=")))) for job in jobs]
    assert made == sweep_order(rows, seeds)


def test_sacct_records_of_an_array_map_to_its_tasks(monkeypatch):
    from stsanet.runs import slurm_jobs

    out = "12_0|COMPLETED\n12_1|CANCELLED by 0\n12_[2-3,5%2]|PENDING\n13_0|FAILED\n"
    monkeypatch.setattr(slurm_jobs, "_slurm", lambda *command: out)
    jobs = ["12_0", "12_1", "12_2", "12_3", "12_4", "12_5", "13_0"]
    assert slurm_jobs.states(jobs) == {"12_0": "COMPLETED", "12_1": "CANCELLED",
                                       "12_2": "PENDING", "12_3": "PENDING",
                                       "12_5": "PENDING", "13_0": "FAILED"}


def test_slurm_jobs_of_a_sweep_are_read_from_submitits_folders(tmp_path):
    from stsanet.runs.slurm_jobs import tasks

    array, single = tmp_path / "array", tmp_path / "single"
    for name in ("12", "12_0", "12_1", "12_10"):  # 12/ holds the array's submission script
        (array / name).mkdir(parents=True)
    (array / "12" / "12_submission.sh").write_text("#!/bin/bash")
    (array / ".submission_file_x.sh").write_text("")
    (single / "21").mkdir(parents=True)
    (single / "21" / "21_submitted.pkl").write_bytes(b"")
    assert tasks(array) == {0: "12_0", 1: "12_1", 10: "12_10"}
    assert tasks(single) == {0: "21"} and tasks(tmp_path / "none") == {}


def test_table_names_missing_runs_with_their_slurm_state_and_log(tmp_path):
    runs = tmp_path / "runs"
    for seed in (1, 2):
        finish(runs / "ours" / f"seed{seed}", 0.6, seed=seed)
    finish(runs / "last_supervised" / "seed1", 0.5, seed=1)
    log = runs / ".submitit" / "t" / "5_3" / "5_3_0_log.err"
    log.parent.mkdir(parents=True)
    log.write_text("Traceback ...")
    (runs / "last_supervised" / "seed2").mkdir(parents=True)
    (runs / "last_supervised" / "seed2" / "slurm.json").write_text(json.dumps(
        {"job": "5_3", "state": "FAILED", "log": str(log)}))
    (runs / "ours" / "seed1" / "slurm.json").write_text(json.dumps(
        {"job": "5_0", "state": "COMPLETED", "log": None}))  # finished: not reported
    paths = aggregate(6, paper_rows(6, "synthetic"), [1, 2], runs, tmp_path, "t")
    markdown = paths["md"].read_text()
    assert "Missing runs (not finished): last-supervised (1 of 2 seeds)" in markdown
    assert ("- last-supervised, seed 2: FAILED (SLURM job 5_3), "
            "log runs/.submitit/t/5_3/5_3_0_log.err") in markdown
    assert "s2 FAILED (SLURM job 5_3)" in markdown and "5_0" not in markdown
    with open(paths["csv"], newline="") as handle:
        status = {(r["row"], r["seed"]): r["status"] for r in csv.DictReader(handle)}
    assert status["last_supervised", "2"] == "FAILED (SLURM job 5_3)"
    assert status["ours", "1"] == "done"


def test_runs_still_queued_from_an_interrupted_reproduce_are_not_submitted_again(
        tmp_path, monkeypatch, capsys):
    from stsanet.runs import slurm_jobs

    runs = tmp_path / "synthetic" / "runs"
    for row, job in (("ours", "9_0"), ("last_supervised", "9_1")):
        (runs / row / "seed1").mkdir(parents=True)
        (runs / row / "seed1" / "slurm.json").write_text(json.dumps({"job": job,
                                                                     "state": "SUBMITTED"}))
    monkeypatch.setattr(slurm_jobs, "queued", lambda jobs: {"9_0"} & set(jobs))  # 9_1 ended
    launched = []
    monkeypatch.setattr(reproduce.subprocess, "Popen", lambda command: launched.append(command))
    monkeypatch.setattr(slurm_jobs, "follow", lambda process, folder, order, runs_dir: 0)
    monkeypatch.setattr(slurm_jobs, "settle", lambda folder, order, runs_dir: None)
    assert main(["--table", "6", "--seeds", "1", "--seed", "1", "--launcher", "slurm",
                 "--out", str(tmp_path)]) == 0
    assert len(launched) == 1 and "+ablation=last_supervised" in launched[0]
    assert any(o.startswith(f"hydra.launcher.submitit_folder={runs}/.submitit/")
               for o in launched[0])
    assert "not submitted again: ours/seed1 (job 9_0)" in capsys.readouterr().out


def test_only_unfinished_pairs_are_launched(tmp_path):
    rows = paper_rows(5, "synthetic")
    finish(tmp_path / "ours" / "seed1", 0.5, seed=1)
    finish(tmp_path / "ours" / "seed2", 0.5, seed=2)
    finish(tmp_path / "amsf_concat" / "seed1", 0.5, seed=1)
    todo = pending(rows, [1, 2], tmp_path)
    assert todo == {"amsf_concat": [2], "amsf_no_aw": [1, 2], "amsf_no_stms": [1, 2]}
    assert multiruns(todo, "slurm") == [(["amsf_concat"], [2]),
                                        (["amsf_no_aw", "amsf_no_stms"], [1, 2])]
    assert multiruns(todo, "submitit_local") == [
        (["amsf_concat"], [2]), (["amsf_no_aw", "amsf_no_stms"], [1]),
        (["amsf_no_aw", "amsf_no_stms"], [2])]


def test_paired_bootstrap_marks_noise():
    ours = {v: 0.5 + 0.01 * (i % 3) for i, v in enumerate(VIDEOS)}
    clear = paired_bootstrap({v: s - 0.05 for v, s in ours.items()}, ours)
    assert clear["diff"] == pytest.approx(-0.05) and not clear["noise"] and clear["p"] < 0.01
    noisy = paired_bootstrap({v: s + (0.02 if i % 2 else -0.02)
                              for i, (v, s) in enumerate(ours.items())}, ours)
    assert noisy["noise"] and noisy["low"] < 0 < noisy["high"] and noisy["videos"] == 12
    assert paired_bootstrap({"a": 1.0}, {"a": 1.0}) is None


def test_partial_sweep_gives_a_table_with_seeds_and_significance(tmp_path):
    runs = tmp_path / "runs"
    finish(runs / "ours" / "seed1", 0.60, seed=1, steps=7,
           trace=[[s, 2.0 - s / 10] for s in range(16)])
    finish(runs / "ours" / "seed2", 0.62, seed=2, steps=7)
    finish(runs / "unet" / "seed1", 0.40, seed=1, shift=lambda i: 0.01 * (i % 3))
    finish(runs / "unet" / "seed2", 0.44, seed=2)
    finish(runs / "unet_stsa" / "seed1", 0.61, seed=1, shift=lambda i: (-0.05, 0.05)[i % 2])
    finish(runs / "unet_stsa" / "seed2", 0.61, seed=2, shift=lambda i: (0.05, -0.05)[i % 2])
    (runs / "unet_amsf" / "seed1").mkdir(parents=True)  # interrupted: folder but no results
    rows = paper_rows(3, "synthetic")
    paths = aggregate(3, rows, [1, 2], runs, tmp_path, "main components", ["a note"])

    markdown = paths["md"].read_text()
    assert markdown.startswith("# Table III: main components\n\n- a note\n")
    assert "- Scoring protocol: every frame (split val)" in markdown
    assert "- Seeds: 1, 2 (2 per row); global batch: 3 clips" in markdown
    ours = next(x for x in markdown.splitlines() if x.startswith("| Ours |"))
    assert "| 0.610 ± 0.014 (0.539) |" in ours and "| reference | 2/2 | 7 | 2.0 min |" in ours
    assert "still falling 1/2" in ours and "[s1](runs/ours/seed1) wandb run1" in ours
    unet = next(x for x in markdown.splitlines() if x.startswith("| UNet-like |"))
    assert "| 0.425 ± 0.021 * (0.523) |" in unet and "| -0.185 [" in unet
    stsa = next(x for x in markdown.splitlines() if x.startswith("| UNet-like + STSA |"))
    assert "0.610 ± 0.000 ≈ (0.534)" in stsa and "within noise" in stsa
    amsf = next(x for x in markdown.splitlines() if x.startswith("| UNet-like + AMSF |"))
    assert "| — |" in amsf and "s1 interrupted or failed s2 not run" in amsf
    assert "Missing runs (not finished): Single-stream (2 of 2 seeds), UNet-like + AMSF " \
           "(2 of 2 seeds)" in markdown
    assert "Noise: the 95% interval of a row-vs-Ours CC difference is ±" in markdown

    with open(paths["csv"], newline="") as handle:
        table = list(csv.DictReader(handle))
    assert len(table) == 5 * 2  # every row x seed
    unet_rows = [r for r in table if r["row"] == "unet"]
    assert [r["CC"] for r in unet_rows] == ["0.4100", "0.4400"]
    assert unet_rows[0]["CC_paper"] == "0.523" and unet_rows[0]["steps"] == "6"
    assert unet_rows[0]["wandb_run"] == "run1" and unet_rows[0]["s-AUC_paper"] == ""
    assert next(r for r in table if r["row"] == "single_stream")["status"] == "not run"
    with Image.open(paths["png"]) as image:
        assert image.format == "PNG" and image.width > 500


def test_result_needs_the_score(tmp_path):
    finish(tmp_path / "ok", 0.5)
    result = read_result(tmp_path / "ok")
    assert result.scores["CC"] == pytest.approx(0.5) and result.steps == 6
    assert set(result.per_video) == set(VIDEOS) and result.global_batch == 3
    fast = {"test/cc": 0.5, "test/nss": 1, "test/sim": 0.2, "test/auc_judd": 0.8, "test/kl": 1}
    (tmp_path / "fast").mkdir()
    (tmp_path / "fast" / "results.json").write_text(json.dumps({"metrics": fast}))
    assert read_result(tmp_path / "fast") is None  # the fast test values do not finish a row
    assert read_result(tmp_path / "fast", require_score=False).scores["CC"] == 0.5
    (tmp_path / "corrupt").mkdir()
    (tmp_path / "corrupt" / "results.json").write_text("{")
    for name in ("corrupt", "absent"):
        assert read_result(tmp_path / name) is None


def test_rerun_trains_only_the_missing_runs(tmp_path, monkeypatch, capsys):
    runs = tmp_path / "synthetic" / "runs"
    for row in ("single_stream", "unet", "unet_stsa", "ours"):
        for seed in (12345, 12346):
            finish(runs / row / f"seed{seed}", 0.5, seed=seed)
    finish(runs / "unet_amsf" / "seed12345", 0.5, seed=12345)
    launched = []

    class Done:
        returncode = 0

    def fake_run(command):
        launched.append(command)
        finish(runs / "unet_amsf" / "seed12346", 0.55, seed=12346)  # the sweep trains it
        return Done()

    monkeypatch.setattr(reproduce.subprocess, "run", fake_run)
    assert main(["--table", "3", "--seeds", "2", "--out", str(tmp_path)]) == 0
    assert len(launched) == 1 and "+ablation=unet_amsf" in launched[0]
    assert "seed=12346" in launched[0] and "stsanet.cli.train" in launched[0]
    progress = [line.split(" · ", 1)[1] for line in capsys.readouterr().out.splitlines()
                if line.startswith("reproduce: progress")]
    # the whole table is counted, the runs an earlier session finished included
    assert progress == ["done 9/10 · pending 1: unet_amsf/seed12346", "done 10/10"]
    markdown = (tmp_path / "synthetic" / "table3.md").read_text()
    assert "Missing runs" not in markdown
    assert "PIPELINE CHECK on generated data (synthetic), not the paper's claim" in markdown

    launched.clear()
    assert main(["--table", "3", "--seeds", "2", "--out", str(tmp_path)]) == 0
    assert launched == [] and "finished runs kept" in capsys.readouterr().out


def test_failed_sweep_reports_its_code_and_keeps_the_table(tmp_path, monkeypatch):
    class Failed:
        returncode = 1

    launched = []
    monkeypatch.setattr(reproduce.subprocess, "run",
                        lambda command: launched.append(command) or Failed())
    assert main(["--table", "5", "--seeds", "1", "--out", str(tmp_path)]) == 1
    # the reference row goes first, so a sweep cut short still has something to compare with
    assert "+ablation=ours,amsf_concat,amsf_no_aw,amsf_no_stms" in launched[0]
    assert "not run" in (tmp_path / "synthetic" / "table5.md").read_text()
