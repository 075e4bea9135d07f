"""Sweeps on a real SLURM cluster (issue 20): the local one of ``make slurm-up`` here and in CI,
or a site's (see tests/slurm_helpers.py and the README, "On a SLURM cluster").

Every job trains the single-stream network (16 M parameters, STSA off) on the generated ``ci``
set (4 training videos of 40 frames) at 64 x 96 with the agnostic norm, batch 1, one CPU:
1. a reproduce of Table VI's two rows x two seeds through ``--launcher slurm``: one job per row
   x seed, the table with its spread;
2. preemption: ``scontrol requeue`` of a running job after a checkpoint and further steps: it
   resumes from the state saved on the signal, no step trained twice or skipped, and ends with
   the weights of an uninterrupted job of the same seed;
3. a time limit (1 min) that expires mid-training: the job is requeued before it is killed and
   finishes; a job out of ``max_num_timeout`` ends as failed, its state saved;
4. a failed job (a corrupt video) and a job cancelled before it started: the sweep returns, the
   table names both with their SLURM state and log, the same command then submits only those;
5. DDP under srun: one job of two tasks trains with the ranks SLURM gives, writes one
   checkpoint, and matches a local trainer=ddp_cpu run of the same seed.
Tests 1 and 4 share one reproduce: its first sweep meets the failure and the cancel, the rerun
after the data is fixed completes the table.
"""

from __future__ import annotations

import csv
import json
import os
import re
import shutil
import socket
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from slurm_helpers import (RENDEZVOUS, RankReport, StepLog, callback, final_states, job_env,
                           journal, placement, require_cluster, sacct, wait_for)
from stsanet.data.synthetic import generate
from stsanet.runs.slurm_jobs import tasks

pytestmark = pytest.mark.slow
SEEDS = (12345, 12346)


@pytest.fixture(scope="session")
def cluster():
    require_cluster()


@pytest.fixture(scope="session")
def synthetic_root(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synthetic_ci"), size="ci", seed=0)


def tiny(root: Path | str, steps: int) -> list[str]:
    """Overrides of a tiny training run (the project's test settings)."""
    return [f"data.root={root}", "data=synthetic", "data.size=ci", "data.batch_size=1",
            "data.num_workers=0", "data.val_stride=40", "model.norm=agnostic",
            "model.input_size=[64,96]", "model.bn_momentum=0.1", "model/decoder=single_stream",
            "model/stsa=none", "schedule=constant", "logger=none", "trainer.max_epochs=100",
            f"++trainer.max_steps={steps}", "++trainer.limit_val_batches=0",
            "+trainer.enable_progress_bar=false", "~callbacks.progress",
            "~callbacks.model_checkpoint", "~callbacks.val_overlays", "test=false",
            "ckpt_path=auto"]


def submit(sweep_dir: Path, overrides: list[str], log: Path,
           env: dict[str, str] | None = None) -> subprocess.Popen:
    """stsanet-train -m on the SLURM CPU launcher; one job per value of the sweep."""
    command = [sys.executable, "-m", "stsanet.cli.train", "-m", "hydra/launcher=slurm_cpu",
               *placement(), f"hydra.sweep.dir={sweep_dir}", *overrides]
    with open(log, "w") as handle:
        return subprocess.Popen(command, env={**job_env(sweep_dir), **(env or {})},
                                stdout=handle, stderr=handle, cwd=sweep_dir.parent)


def finish(process: subprocess.Popen, log: Path, timeout: float) -> int:
    """The sweep's exit code; past `timeout` its process is killed and its jobs cancelled."""
    try:
        return process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        jobs = [job for folder in log.parent.rglob(".submitit")
                for sweep in [folder, *folder.iterdir()] for job in tasks(sweep).values()]
        subprocess.run(["scancel", *jobs], check=False)
        raise AssertionError(f"the sweep did not end within {timeout} s (cancelled {jobs}):\n"
                             + log.read_text()[-3000:]) from None


def sweep_logs(sweep: Path) -> str:
    """Everything the jobs of a sweep wrote (all attempts, all tasks)."""
    return "".join(p.read_text(errors="replace")
                   for p in sorted((sweep / ".submitit").rglob("*_log.*")))


def weights(run: Path) -> dict[str, torch.Tensor]:
    return torch.load(run / "final_weights.pt", map_location="cpu", weights_only=True)


def steps_by_attempt(entries: list[dict]) -> dict[int, list[int]]:
    out: dict[int, list[int]] = {}
    for e in entries:
        if e["event"] == "step":
            out.setdefault(e["attempt"], []).append(e["step"])
    return out


def drop_checkpoints(folder: Path) -> None:
    for path in folder.rglob("*.ckpt"):
        path.unlink()


# --- 1 and 4: a reproduce sweep with a failed and a cancelled job, then the rerun -------------

@pytest.fixture(scope="module")
def reproduce_sweeps(cluster, synthetic_root, tmp_path_factory):
    """Table VI, two rows x two seeds, each run reading its own data root: last_supervised's
    seed 12346 a copy with a corrupt video. Its seed 12345 is cancelled while pending (two
    jobs at a time). Then the data is fixed and the same command is run again."""
    tmp = tmp_path_factory.mktemp("reproduce_slurm")
    roots = tmp / "roots"
    roots.mkdir()
    for row in ("ours", "last_supervised"):
        for seed in SEEDS:
            (roots / f"{row}-seed{seed}").symlink_to(synthetic_root)
    corrupt = roots / f"last_supervised-seed{SEEDS[1]}"
    corrupt.unlink()
    shutil.copytree(synthetic_root, corrupt)
    (corrupt / "video" / "001.AVI").write_bytes(b"not a video" * 100)

    out = tmp / "out"
    command = [sys.executable, "-m", "stsanet.cli.reproduce", "--table", "6", "--seeds", "2",
               "--steps", "2", "--launcher", "slurm", "--gpus-per-node", "0",
               "--cpus-per-task", "1", "--mem-gb", "4", "--logger", "none", "--out", str(out)]
    for env, flag in (("STSANET_SLURM_PARTITION", "--partition"),
                      ("STSANET_SLURM_ACCOUNT", "--account")):
        if os.environ.get(env):
            command += [flag, os.environ[env]]
    command += ["--", f"data.root={roots}/${{ablation.row}}-seed${{seed}}", "data.size=ci",
                "data.batch_size=1", "data.num_workers=0", "model/decoder=single_stream",
                "model/stsa=none", "hydra.launcher.array_parallelism=2"]
    runs = out / "synthetic" / "runs"

    started = time.monotonic()
    first_log = tmp / "first.log"
    with open(first_log, "w") as handle:
        first = subprocess.Popen(command, env=job_env(tmp), stdout=handle, stderr=subprocess.STDOUT)
        # task 2 of the array (last_supervised, seed 12345) waits for one of the first two
        task2 = wait_for(lambda: next(iter(runs.glob(".submitit/*/*_2")), None), 120,
                         "the sweep's submission").name
        pending = wait_for(lambda: subprocess.run(["squeue", "-h", "-r", "-j", task2, "-o", "%T"],
                                                  capture_output=True, text=True).stdout.strip(),
                           30, f"{task2} in the queue")
        assert pending == "PENDING", f"{task2} is {pending}: the test needs it still pending"
        subprocess.run(["scancel", task2], check=True)
        first_code = finish(first, first_log, 420)
    first_seconds = time.monotonic() - started
    first_table = (out / "synthetic" / "table6.md").read_text()
    first_csv = (out / "synthetic" / "table6.csv").read_text()
    first_records = {(row, seed): json.loads((runs / row / f"seed{seed}" / "slurm.json").read_text())
                     for row in ("ours", "last_supervised") for seed in SEEDS}

    corrupt_log = Path(first_records["last_supervised", SEEDS[1]]["log"])
    shutil.rmtree(corrupt)  # the data is fixed, the command run again
    corrupt.symlink_to(synthetic_root)
    started = time.monotonic()
    second = subprocess.run(command, env=job_env(tmp), capture_output=True, text=True,
                            timeout=420)
    second_seconds = time.monotonic() - started
    print(f"\n[slurm] reproduce: first sweep {first_seconds:.0f} s (2 runs, 1 failed, 1 "
          f"cancelled), rerun {second_seconds:.0f} s (2 runs)")
    return {"out": out / "synthetic", "runs": runs, "task2": task2, "first_code": first_code,
            "first_log": first_log.read_text(), "first_table": first_table,
            "first_csv": first_csv, "first_records": first_records,
            "corrupt_log": corrupt_log.read_text(errors="replace"), "second": second}


def test_4_failed_and_cancelled_jobs_are_named_and_only_they_rerun(reproduce_sweeps):
    sweeps = reproduce_sweeps
    # the sweep returned although submitit cannot see the cancelled task (no record in SLURM)
    assert sweeps["first_code"] != 0
    assert "no job of" in sweeps["first_log"] and "stopping it" in sweeps["first_log"]
    records = sweeps["first_records"]
    assert [records["ours", s]["state"] for s in SEEDS] == ["COMPLETED", "COMPLETED"]
    cancelled, failed = records["last_supervised", SEEDS[0]], records["last_supervised", SEEDS[1]]
    assert cancelled["job"] == sweeps["task2"]
    assert cancelled["state"] == "NO RECORD" and cancelled["log"] is None
    assert failed["state"] == "FAILED" and failed["job"].endswith("_3")
    assert sacct(failed["job"])[0]["State"] == "FAILED"
    # the failed job's log says why in one line naming the corrupt file, without a traceback
    refusal = [line for line in sweeps["corrupt_log"].splitlines()
               if line.startswith("stsanet-train: ")]
    assert len(refusal) == 1 and "001.AVI" in refusal[0], sweeps["corrupt_log"]
    assert "Traceback" not in sweeps["corrupt_log"] and "exit code 2" in sweeps["corrupt_log"]

    table = sweeps["first_table"]
    assert "Missing runs (not finished): last-supervised (2 of 2 seeds)" in table
    log = os.path.relpath(failed["log"], sweeps["out"])
    assert (f"- last-supervised, seed {SEEDS[1]}: FAILED (SLURM job {failed['job']}), "
            f"log {log}") in table
    assert (f"- last-supervised, seed {SEEDS[0]}: NO RECORD (SLURM job {cancelled['job']}), "
            "no log (the job never started)") in table
    rows = list(csv.DictReader(sweeps["first_csv"].splitlines()))
    assert [r["status"] for r in rows] == [
        "done", "done", f"NO RECORD (SLURM job {cancelled['job']})",
        f"FAILED (SLURM job {failed['job']})"]

    # the same command submits only the two unfinished runs, as one sweep
    second = sweeps["second"]
    assert second.returncode == 0, second.stdout[-2000:] + second.stderr[-2000:]
    launched = [line for line in second.stdout.splitlines() if line.startswith("$ ")]
    assert len(launched) == 1
    assert "+ablation=last_supervised" in launched[0] and f"seed={SEEDS[0]},{SEEDS[1]}" in launched[0]
    assert f"finished runs kept: ours/seed{SEEDS[0]}, ours/seed{SEEDS[1]}" in second.stdout
    # sweep progress follows the SLURM jobs through their run folders, counting the whole table
    progress = [line.split(" · ", 1)[1] for line in second.stdout.splitlines()
                if line.startswith("reproduce: progress")]
    assert progress[0].startswith("done 2/4 · ") and progress[-1] == "done 4/4", progress


def test_1_reproduce_runs_one_slurm_job_per_row_and_seed(reproduce_sweeps):
    out, runs = reproduce_sweeps["out"], reproduce_sweeps["runs"]
    jobs = {}
    for row in ("ours", "last_supervised"):
        for seed in SEEDS:
            run = runs / row / f"seed{seed}"
            record = json.loads((run / "slurm.json").read_text())
            assert record["state"] == "COMPLETED"
            [accounting] = sacct(record["job"])
            assert accounting["State"] == "COMPLETED" and accounting["AllocCPUS"] == "1"
            assert "gres/gpu" not in accounting["AllocTRES"]  # a CPU job: no GPU asked for
            results = json.loads((run / "results.json").read_text())
            assert results["seed"] == seed and results["steps"] == 2
            assert results["world_size"] == 1
            jobs[row, seed] = (record["job"], results["score"]["scores"]["CC"])
    assert len({job for job, _ in jobs.values()}) == 4  # one job per row x seed

    markdown = (out / "table6.md").read_text()
    assert "Missing runs" not in markdown
    for row, label in (("ours", "middle-supervised"), ("last_supervised", "last-supervised")):
        line = next(x for x in markdown.splitlines() if x.startswith(f"| {label} |"))
        values = [jobs[row, seed][1] for seed in SEEDS]
        expected = f"{statistics.fmean(values):.3f} ± {statistics.stdev(values):.3f}"
        assert line.split("|")[2].strip().startswith(expected)
        assert "| 2/2 | 2 |" in line


# --- 2: preemption --------------------------------------------------------------------------

def test_2_requeued_job_resumes_without_losing_or_repeating_a_step(cluster, synthetic_root,
                                                                   tmp_path):
    """Two jobs of the same seed: `interrupted` is requeued by `scontrol requeue` after its
    step-2 checkpoint and one more step (it waits after step 3 until the signal comes);
    `reference` runs through."""
    steps = 8  # two epochs of four clips; a checkpoint every 2 steps
    sweep = tmp_path / "preempt"
    log = tmp_path / "hydra.log"
    process = submit(sweep, [
        *tiny(synthetic_root, steps), "trainer=cpu", "hydra.sweep.subdir=${label}",
        "+label=interrupted,reference", "callbacks.last_checkpoint.every_n_epochs=null",
        "+callbacks.last_checkpoint.every_n_train_steps=2",
        "callbacks.last_checkpoint.save_on_train_epoch_end=false",
        callback(StepLog, hold_at=3, hold_attempts=[0], hold_in="interrupted", hold_s=60)], log)
    run = sweep / "interrupted"
    wait_for(lambda: any(e["event"] == "hold" for e in journal(run)), 240,
             "the job past its step-2 checkpoint and step 3")
    assert (run / "checkpoints" / "last.ckpt").is_file()
    job = journal(run)[0]["job"]
    requeued_at = time.time()
    subprocess.run(["scontrol", "requeue", job], check=True)
    assert finish(process, log, 300) == 0, log.read_text()[-3000:]

    entries = journal(run)
    by_attempt = steps_by_attempt(entries)
    assert sorted(by_attempt) == [0, 1]
    first, second = by_attempt[0], by_attempt[1]
    restart = next(e for e in entries if e["event"] == "start" and e["attempt"] == 1)
    # the second attempt starts from the state saved on the signal: the first one's last step
    assert first == [1, 2, 3] and restart["step"] == 3
    assert first + second == list(range(1, steps + 1))  # every step once, none lost
    assert "saved the training state at step 3" in sweep_logs(sweep)
    expected, got = weights(sweep / "reference"), weights(run)
    assert got.keys() == expected.keys()
    assert [k for k, v in expected.items() if not torch.equal(v, got[k])] == []
    assert final_states(job) == ["REQUEUED", "COMPLETED"]
    first_step = next(e for e in entries if e["event"] == "step" and e["attempt"] == 1)
    print(f"\n[slurm] preemption: requeued after step 3 (last periodic checkpoint: step 2), "
          f"saved at step 3, restarted from step {restart['step']}: steps lost "
          f"{first[-1] - restart['step']}, repeated 0; requeue -> training resumed "
          f"{restart['time'] - requeued_at:.1f} s, -> first step after it "
          f"{first_step['time'] - requeued_at:.1f} s")
    drop_checkpoints(sweep)


# --- 3: time limit --------------------------------------------------------------------------

def test_3_time_limit_requeues_before_the_kill_and_max_num_timeout_holds(cluster, synthetic_root,
                                                                         tmp_path):
    """1-minute jobs that wait after step 4 of 6 until a signal comes (a long training):
    `limited` (max_num_timeout=2) waits only in its first attempt, saves and is requeued on the
    time-out warning, and finishes; `exhausted` (max_num_timeout=0) saves and ends as failed."""
    steps = 6
    common = [*tiny(synthetic_root, steps), "trainer=cpu", "hydra.launcher.timeout_min=1",
              # warned 5 s before the limit: SLURM sends it up to ~30 s early (its 30 s check)
              "hydra.launcher.signal_delay_s=5", "hydra.sweep.subdir=run"]
    limited_log, exhausted_log = tmp_path / "limited.log", tmp_path / "exhausted.log"
    started = time.time()
    limited = submit(tmp_path / "limited", [*common, "hydra.launcher.max_num_timeout=2",
                                            callback(StepLog, hold_at=4, hold_attempts=[0])],
                     limited_log)
    exhausted = submit(tmp_path / "exhausted", [*common, "hydra.launcher.max_num_timeout=0",
                                                callback(StepLog, hold_at=4)], exhausted_log)
    assert finish(limited, limited_log, 300) == 0, limited_log.read_text()[-3000:]
    # the exhausted job's end: from accounting (submitit, in the launcher, looks only every
    # half minute by then; following the jobs so is reproduce's business, test 4)
    exhausted_run = tmp_path / "exhausted" / "run"
    job = wait_for(lambda: journal(exhausted_run) and journal(exhausted_run)[0]["job"], 60,
                   "the exhausted job's journal")
    assert final_states(job, timeout=120) == ["FAILED"]
    exhausted.terminate()
    exhausted.wait()

    run = tmp_path / "limited" / "run"
    entries = journal(run)
    by_attempt = steps_by_attempt(entries)
    assert by_attempt == {0: [1, 2, 3, 4], 1: [5, 6]}  # saved after step 4, one requeue
    restart = next(e for e in entries if e["event"] == "start" and e["attempt"] == 1)
    assert restart["step"] == 4
    text = sweep_logs(run.parent)
    assert "this job is timed-out" in text and "Requeued job" in text
    assert "1 remaining timeouts" in text  # counted against max_num_timeout=2
    assert "DUE TO TIME LIMIT" not in text  # requeued before SLURM killed it
    job = entries[0]["job"]
    assert final_states(job) == ["REQUEUED", "COMPLETED"]
    held = next(e for e in entries if e["event"] == "hold")

    run = tmp_path / "exhausted" / "run"
    entries = journal(run)
    assert {e["attempt"] for e in entries} == {0} and entries[-1]["step"] == 4
    assert "timed-out too many times" in sweep_logs(run.parent)
    state = torch.load(run / "checkpoints" / "last.ckpt", map_location="cpu", weights_only=True)
    assert state["global_step"] == 4  # saved on the signal: a rerun loses nothing
    print(f"\n[slurm] time limit: training waited from {held['time'] - started:.0f} s after "
          f"submission, saved at step 4, restarted training from step {restart['step']} "
          f"{restart['time'] - started:.0f} s after submission; both jobs done in "
          f"{time.time() - started:.0f} s")
    drop_checkpoints(tmp_path)


# --- 5: DDP under srun ----------------------------------------------------------------------

def test_5_ddp_job_takes_its_ranks_from_slurm_and_matches_a_local_ddp_run(
        cluster, synthetic_root, tmp_path, monkeypatch):
    steps = 2  # one epoch: two clips per rank
    overrides = [*tiny(synthetic_root, steps), "trainer=ddp_cpu", "trainer.devices=2",
                 callback(RankReport), callback(StepLog)]
    sweep = tmp_path / "ddp"
    log = tmp_path / "hydra.log"
    # a rendezvous left in the submitting shell, on a port that is taken: sbatch passes it on,
    # and the launcher's setup must clear it so the job's ranks meet where SLURM says
    taken = socket.socket()
    taken.bind(("127.0.0.1", 0))
    taken.listen()
    stale = {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(taken.getsockname()[1]),
             "WORLD_SIZE": "7", "RANK": "3"}
    process = submit(sweep, [*overrides, "hydra.sweep.subdir=run"], log, env=stale)

    # the same run with Lightning's own launcher here, meanwhile (one thread per rank, as there)
    from hydra import compose, initialize_config_dir
    from hydra.core.global_hydra import GlobalHydra
    from omegaconf import OmegaConf

    from stsanet.runs.config import CONF_DIR
    from stsanet.runs.train import train

    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    for name in RENDEZVOUS:  # a free port of its own, not one an earlier DDP test left behind
        monkeypatch.delenv(name, raising=False)
    GlobalHydra.instance().clear()
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("train", overrides=overrides)
    OmegaConf.set_struct(cfg, False)
    local = tmp_path / "local"
    cfg.paths.output_dir = cfg.paths.work_dir = str(local)
    cfg.pop("hydra", None)
    train(cfg)
    assert finish(process, log, 300) == 0, log.read_text()[-3000:]
    taken.close()

    run = sweep / "run"
    reports = [json.loads((run / f"rank{r}.json").read_text()) for r in (0, 1)]
    for rank, report in enumerate(reports):
        assert report["global_rank"] == rank and report["SLURM_PROCID"] == str(rank)
        assert report["world_size"] == 2 and report["SLURM_NTASKS"] == "2"
        assert report["environment"] == "SLURMEnvironment" and report["auto_requeue"] is False
        assert report["backend"] == "gloo" and report["threads"] == 1
        assert report["main_port"] != int(stale["MASTER_PORT"])  # SLURM's, not the shell's
    assert [p.relative_to(run) for p in run.rglob("*.ckpt")] == [Path("checkpoints/last.ckpt")]
    slurm_loss = [(e["step"], e["loss"]) for e in journal(run) if e["event"] == "step"]
    local_loss = [(e["step"], e["loss"]) for e in journal(local) if e["event"] == "step"]
    assert [s for s, _ in slurm_loss] == [s for s, _ in local_loss] == [1, 2]
    # tolerance: the same reductions in the same order should agree to the last bit; allow
    # float32 rounding should a library pick another kernel in another process
    assert [l for _, l in slurm_loss] == pytest.approx([l for _, l in local_loss], rel=1e-5)
    got, expected = weights(run), weights(local)
    worst = max(float((got[k].float() - expected[k].float()).abs().max()) for k in expected)
    print(f"\n[slurm] ddp: loss after {steps} steps {slurm_loss[-1][1]:.7f} (SLURM) vs "
          f"{local_loss[-1][1]:.7f} (local); largest weight difference {worst:.2e}")
    assert worst <= 1e-5
    drop_checkpoints(tmp_path)
