"""The SLURM side of a reproduce sweep: which job runs each row x seed, following the sweep until
none of its jobs is pending or running, and what became of the runs that did not finish.

Hydra's submitit launcher submits a multirun as one job array, task i being the i-th of its
jobs (Hydra's basic sweeper: the cartesian product of the sweep's values, in the order given,
see :func:`sweep_order`), and submitit keeps a folder per task, ``<folder>/<array>_<i>/``, with
its logs (a multirun of one job is a plain job: ``<folder>/<job>/``). Submitit waits for every task in turn; a task cancelled while pending leaves no
accounting record in SLURM 22.05, so submitit would wait for it forever, and a sweep whose first
task failed stops waiting while the others still run. So the sweep is followed here, by SLURM's
own view (squeue): it is over when none of its tasks is pending or running, whatever the Hydra
process is still waiting for. Each run's ``slurm.json`` records its job, then the job's final
SLURM state and log, which the table reports for the runs that did not finish
(:func:`stsanet.runs.table.run_status`); a run whose job is still pending or running (a
reproduce that was interrupted) is not submitted twice.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from datetime import datetime
from pathlib import Path

from stsanet.atomic import write_text_atomic
from stsanet.runs.table import RUN_SLURM_FILE, run_dir

# seconds between looks at the queue (squeue, sacct); STSANET_SLURM_POLL_S for tests
POLL_S = float(os.environ.get("STSANET_SLURM_POLL_S", 15))
# accounting (slurmdbd) learns that a job ended a moment after the queue: wait this long at most
ACCOUNTING_S = 120
TASK_FOLDER = re.compile(r"^(\d+)_(\d+)$")
# states of a job that has not ended yet, as sacct writes them
NOT_ENDED = {"PENDING", "RUNNING", "REQUEUED", "RESIZING", "SUSPENDED", "COMPLETING",
             "CONFIGURING", "SIGNALING", "STAGE_OUT"}


def sweep_order(rows: list[str], seeds: list[int]) -> list[tuple[str, int]]:
    """The (row, seed) of each job of a multirun over ``+ablation=rows seed=seeds``, in Hydra's
    order: the cartesian product, the first sweep key outermost."""
    return [(row, seed) for row in rows for seed in seeds]


def new_sweep_folder(runs_dir: Path) -> Path:
    """submitit's folder for one multirun (``hydra.launcher.submitit_folder=<this>/%j``): its own,
    so that the task folders in it are this sweep's jobs."""
    return runs_dir / ".submitit" / f"{datetime.now():%Y%m%d-%H%M%S-%f}"


def tasks(folder: Path) -> dict[int, str]:
    """Array index -> SLURM job id (``<array>_<index>``, or ``<job>`` for a sweep of one job) of
    the jobs submitted into ``folder``."""
    found = {}
    for path in folder.iterdir() if folder.is_dir() else ():
        match = TASK_FOLDER.match(path.name)
        if match and path.is_dir():
            found[int(match.group(2))] = path.name
        elif path.name.isdigit() and (path / f"{path.name}_submitted.pkl").is_file():
            found[0] = path.name  # an array's own folder holds only its submission script
    return found


def _slurm(*command: str) -> str | None:
    """A SLURM command's output, or None when it fails (controller unreachable, ...)."""
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def queued(job_ids: list[str]) -> set[str] | None:
    """Which of ``job_ids`` SLURM still has pending, running or requeued (None: cannot tell)."""
    arrays = sorted({job.split("_")[0] for job in job_ids})
    out = _slurm("squeue", "-h", "-r", "-o", "%i", "-j", ",".join(arrays))
    if out is None:
        return None
    return set(out.split()) & set(job_ids)


def states(job_ids: list[str]) -> dict[str, str]:
    """Job id -> its SLURM state (first word: "CANCELLED by 0" is CANCELLED), from accounting;
    ids SLURM has no record of are left out."""
    arrays = sorted({job.split("_")[0] for job in job_ids})
    out = _slurm("sacct", "-X", "-n", "-P", "-o", "JobID,State", "-j", ",".join(arrays)) or ""
    found = {}
    for line in out.splitlines():
        job, _, state = line.partition("|")
        array, _, index = job.partition("_")
        state = state.split()[0] if state.split() else "UNKNOWN"
        if index.startswith("["):  # tasks never started share one record: 12_[2-3%2]
            for part in index.strip("[]").split("%")[0].split(","):
                low, _, high = part.partition("-")
                for i in range(int(low), int(high or low) + 1):
                    found[f"{array}_{i}"] = state
        else:
            found[job] = state
    return {job: found[job] for job in job_ids if job in found}


def follow(process: subprocess.Popen, folder: Path, order: list[tuple[str, int]],
           runs_dir: Path) -> int:
    """Wait until the multirun's jobs are over: SLURM has none of them pending or running and
    Hydra's process ended, or SLURM has none left for two looks in a row while Hydra still waits
    (it is then stopped). Records each job in its run's ``slurm.json`` as soon as it is
    submitted. Returns Hydra's exit code, 1 when it had to be stopped."""
    recorded: set[str] = set()
    empty_looks = unknown_looks = 0
    while True:
        submitted = tasks(folder)
        for index, job in submitted.items():
            if job not in recorded and index < len(order):
                write_record(runs_dir, *order[index], job, "SUBMITTED", folder)
                recorded.add(job)
        returncode = process.poll()
        left = queued(list(submitted.values())) if submitted else set()
        unknown_looks = unknown_looks + 1 if left is None else 0
        if left == set():
            if returncode is not None:
                return returncode
            empty_looks += 1 if submitted else 0
            if empty_looks >= 2:
                print(f"reproduce: no job of {folder} is pending or running, but the launcher "
                      "still waits (a job cancelled before it started leaves no record it can "
                      "see): stopping it", file=sys.stderr, flush=True)
                process.terminate()
                process.wait()
                return 1
        else:
            empty_looks = 0
        if returncode is not None and unknown_looks >= 3:
            print("reproduce: squeue does not answer; the table shows what finished",
                  file=sys.stderr, flush=True)
            return returncode
        time.sleep(POLL_S if returncode is None else min(POLL_S, 5))


def settle(folder: Path, order: list[tuple[str, int]], runs_dir: Path) -> None:
    """After the sweep: each run's job, its final SLURM state and its log, in ``slurm.json``
    (``NO RECORD``: SLURM kept none, as for a task cancelled before it started)."""
    submitted = tasks(folder)
    deadline = time.monotonic() + ACCOUNTING_S
    while True:
        known = states(list(submitted.values()))
        if not NOT_ENDED & set(known.values()) or time.monotonic() > deadline:
            break
        time.sleep(min(POLL_S, 2))
    for index, job in submitted.items():
        if index < len(order):
            write_record(runs_dir, *order[index], job, known.get(job, "NO RECORD"), folder)


def write_record(runs_dir: Path, row: str, seed: int, job: str, state: str, folder: Path) -> None:
    log = folder / job / f"{job}_0_log.err"
    record = {"job": job, "state": state, "log": str(log) if log.is_file() else None,
              "submitit_folder": str(folder / job)}
    write_text_atomic(run_dir(runs_dir, row, seed) / RUN_SLURM_FILE, json.dumps(record, indent=2))


def still_queued(todo: dict[str, list[int]], runs_dir: Path) -> dict[str, str]:
    """``row/seedN`` -> job id of the pending runs whose recorded job SLURM still has pending or
    running (a reproduce interrupted while its jobs ran): not to be submitted again."""
    jobs = {}
    for row, seeds in todo.items():
        for seed in seeds:
            try:
                record = json.loads((run_dir(runs_dir, row, seed) / RUN_SLURM_FILE).read_text())
                jobs[f"{row}/seed{seed}"] = str(record["job"])
            except (OSError, ValueError, KeyError, TypeError):
                continue
    if not jobs:
        return {}
    left = queued(list(jobs.values())) or set()
    return {run: job for run, job in jobs.items() if job in left}
