"""The SLURM cluster the SLURM tests run on, and the callbacks their jobs carry.

The cluster is the project's own (``make slurm-up``: ``.slurm/etc/slurm.conf``) or any other that
``SLURM_CONF`` (or the default ``/etc/slurm/slurm.conf``) names; ``STSANET_SLURM_PARTITION`` and
``STSANET_SLURM_ACCOUNT`` place the jobs. Without a cluster the tests skip and say why; with
``STSANET_REQUIRE_SLURM=1`` (CI, ``.ci/run``) they fail instead. The jobs import this module
(``PYTHONPATH`` carries ``tests/``), so on a site's cluster the project folder and
``--basetemp`` must be on a file system the nodes share.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

PROJECT = Path(__file__).resolve().parents[1]
LOCAL_CONF = Path(os.environ.get("STSANET_SLURM_DIR", PROJECT / ".slurm")) / "etc" / "slurm.conf"
TESTS = Path(__file__).resolve().parent


def cluster_problem() -> str | None:
    """Why no SLURM cluster can run the tests here, or None when one answers with accounting."""
    if "SLURM_CONF" not in os.environ and LOCAL_CONF.is_file():
        os.environ["SLURM_CONF"] = str(LOCAL_CONF)
    if shutil.which("sbatch") is None:
        return ("no SLURM client (sbatch) on PATH: `make slurm-install slurm-up` (as root) "
                "starts a local cluster")
    info = _run("sinfo", "-h", "-N", "-o", "%T")
    if info is None:
        return ("no SLURM cluster answers (sinfo failed): `make slurm-up` (as root), or point "
                "SLURM_CONF at a cluster")
    if not any(s.rstrip("*~#") in ("idle", "mixed", "allocated", "completing")
               for s in info.split()):
        return f"the SLURM cluster has no usable node (sinfo: {' '.join(info.split())})"
    if _run("sacct", "-n", "-X", "-j", "1") is None:
        return "SLURM accounting (slurmdbd) does not answer: submitit needs sacct"
    return None


def _run(*command: str) -> str | None:
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return result.stdout if result.returncode == 0 else None


def require_cluster() -> None:
    problem = cluster_problem()
    if problem is None:
        return
    if os.environ.get("STSANET_REQUIRE_SLURM") == "1":
        pytest.fail(f"STSANET_REQUIRE_SLURM=1 but {problem}")
    pytest.skip(problem)


def placement() -> list[str]:
    """Launcher overrides of every test job: CPU jobs of one CPU (the local cluster has two),
    on the site's partition and account when given."""
    overrides = ["hydra.launcher.cpus_per_task=1", "hydra.launcher.timeout_min=10"]
    for env, key in (("STSANET_SLURM_PARTITION", "partition"), ("STSANET_SLURM_ACCOUNT", "account")):
        if os.environ.get(env):
            overrides.append(f"hydra.launcher.{key}={os.environ[env]}")
    return overrides


# what an in-process DDP test before leaves in os.environ (Lightning sets them and keeps them).
# sbatch passes them on and the SLURM launchers' setup clears them in the job, so job_env keeps
# them (the jobs meet that case as users' jobs do); a local DDP run here must drop them itself
RENDEZVOUS = ("MASTER_ADDR", "MASTER_PORT", "WORLD_SIZE", "RANK", "LOCAL_RANK", "NODE_RANK",
              "GROUP_RANK", "LOCAL_WORLD_SIZE")


def job_env(root: Path) -> dict[str, str]:
    """The environment of the commands that submit (sbatch passes it on to the jobs)."""
    path = os.pathsep.join(filter(None, [str(TESTS), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "STSANET_ROOT": str(root),
            "STSANET_CACHE_DIR": str(root / "cache"), "STSANET_SLURM_POLL_S": "1"}


def sacct(job: str, duplicates: bool = False) -> list[dict[str, str]]:
    """Accounting records of a job (``-D``: its requeued attempts too)."""
    fields = "JobID,JobIDRaw,State,Elapsed,AllocCPUS,AllocTRES"
    out = _run("sacct", "-X", "-n", "-P", "-o", fields, "-j", job, *(["-D"] if duplicates else []))
    names = fields.split(",")
    return [dict(zip(names, line.split("|"))) for line in (out or "").splitlines()]


def final_states(job: str, timeout: float = 60) -> list[str]:
    """The states of a job's attempts once SLURM has recorded its end (the launcher can have
    its result a moment before the job is accounted COMPLETED)."""
    ended = ("COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "OUT_OF_MEMORY", "NODE_FAIL")
    records = wait_for(lambda: [r["State"].split()[0] for r in sacct(job, duplicates=True)]
                       if (sacct(job) or [{}])[-1].get("State", "").startswith(ended) else None,
                       timeout, f"job {job} to end in SLURM's accounting", poll=0.5)
    return records


def wait_for(condition, timeout: float, what: str, poll: float = 0.2):
    """Poll ``condition()`` until it returns something true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(poll)
    raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")


def attempt() -> int:
    """Which start of the job this is: SLURM counts requeues in SLURM_RESTART_COUNT."""
    return int(os.environ.get("SLURM_RESTART_COUNT", 0))


class StepLog(pl.Callback):
    """Journal of a training job in ``<run>/steps.jsonl``: a line when training starts (attempt,
    job, the step it starts from), after every optimiser step (attempt, step, time, rank 0's
    loss) and when it ends; the final weights in ``<run>/final_weights.pt``. ``hold_at``: in the
    attempts listed in ``hold_attempts`` (all: None) of the run whose folder is named
    ``hold_in`` (any: None), after that step the job waits (at most ``hold_s``) until a signal
    reaches it, as a long training would: the signal then always comes mid-training, wherever
    SLURM's timing puts it."""

    def __init__(self, hold_at: int | None = None, hold_attempts: list[int] | None = None,
                 hold_in: str | None = None, hold_s: float = 150.0) -> None:
        self.hold_at, self.hold_attempts, self.hold_s = hold_at, hold_attempts, hold_s
        self.hold_in = hold_in

    def _write(self, trainer: pl.Trainer, **entry) -> None:
        if trainer.is_global_zero:
            with open(Path(trainer.default_root_dir) / "steps.jsonl", "a") as handle:
                handle.write(json.dumps({"attempt": attempt(), "time": time.time(), **entry}) + "\n")

    def on_train_start(self, trainer, pl_module) -> None:
        self._write(trainer, event="start", step=trainer.global_step,
                    job=os.environ.get("SLURM_JOB_ID"))

    def on_train_batch_end(self, trainer, pl_module, outputs, *args) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        self._write(trainer, event="step", step=trainer.global_step, loss=float(loss))
        holding = ((self.hold_attempts is None or attempt() in self.hold_attempts)
                   and self.hold_in in (None, Path(trainer.default_root_dir).name))
        if trainer.global_step == self.hold_at and holding:
            self._write(trainer, event="hold", step=trainer.global_step)
            noted = [c for c in trainer.callbacks if hasattr(c, "received")]
            deadline = time.monotonic() + self.hold_s
            while time.monotonic() < deadline and not any(c.received for c in noted):
                time.sleep(0.1)

    def on_train_end(self, trainer, pl_module) -> None:
        if trainer.is_global_zero:
            state = {k: v.detach().cpu().clone() for k, v in pl_module.state_dict().items()}
            torch.save(state, Path(trainer.default_root_dir) / "final_weights.pt")
        self._write(trainer, event="end", step=trainer.global_step)


class RankReport(pl.Callback):
    """Each rank writes where its rank came from: ``<run>/rank<N>.json``."""

    def on_train_start(self, trainer, pl_module) -> None:
        environment = trainer.strategy.cluster_environment
        report = {"global_rank": trainer.global_rank, "world_size": trainer.world_size,
                  "SLURM_PROCID": os.environ.get("SLURM_PROCID"),
                  "SLURM_NTASKS": os.environ.get("SLURM_NTASKS"),
                  "environment": type(environment).__name__,
                  "auto_requeue": getattr(environment, "auto_requeue", None),
                  "backend": getattr(trainer.strategy, "process_group_backend", None),
                  "threads": torch.get_num_threads(),
                  "main_port": getattr(environment, "main_port", None)}
        path = Path(trainer.default_root_dir) / f"rank{trainer.global_rank}.json"
        path.write_text(json.dumps(report))


def journal(run: Path) -> list[dict]:
    path = run / "steps.jsonl"
    return [json.loads(line) for line in path.read_text().splitlines()] if path.is_file() else []


def callback(target: type, **kwargs) -> str:
    """A Hydra override adding ``target`` as a callback of the run."""
    args = "".join(f",{k}:{json.dumps(v)}" for k, v in kwargs.items())
    return f"+callbacks.{target.__name__.lower()}={{_target_:slurm_helpers.{target.__name__}{args}}}"
