"""A run's progress, in a small file its folder holds while it trains, for whoever watches the
folders (``stsanet.runs.progress``: the reproduce command, whatever launcher ran the job)."""

from __future__ import annotations

import json
import math
import os
import socket
import time
from pathlib import Path

import pytorch_lightning as pl

from stsanet.atomic import write_text_atomic

PROGRESS_FILE = "progress.json"


def read_progress(run_dir: Path) -> dict | None:
    """The run's last progress report, or None (none written, or unreadable mid-replace)."""
    try:
        data = json.loads((Path(run_dir) / PROGRESS_FILE).read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None


class ProgressFile(pl.Callback):
    """Writes ``progress.json`` into ``out_dir`` at the start of training, at most every
    ``every_s`` seconds while it runs, and at its end (state ``after``: what the run does next).
    The ETA is the remaining steps at this session's own pace."""

    def __init__(self, out_dir: str | Path, after: str = "finishing", every_s: float = 2.0):
        self.path = Path(out_dir) / PROGRESS_FILE
        self.after = after
        self.every_s = every_s
        self._session: tuple[float, int] | None = None  # (time, step) when this session began
        self._written = 0.0
        self._total: int | None = None

    def _write(self, trainer: pl.Trainer, state: str, **extra) -> None:
        if not trainer.is_global_zero:
            return
        now = time.time()
        step, total = int(trainer.global_step), self._total
        per_step = eta = None
        if self._session is not None and step > self._session[1]:
            per_step = (now - self._session[0]) / (step - self._session[1])
            if total is not None:
                eta = max(0, total - step) * per_step
        write_text_atomic(self.path, json.dumps({
            "state": state, "step": step, "total_steps": total,
            "seconds_per_step": None if per_step is None else round(per_step, 3),
            "eta_seconds": None if eta is None else round(eta, 1),
            "updated": now, "pid": os.getpid(), "host": socket.gethostname(), **extra}))
        self._written = now

    def on_train_start(self, trainer, pl_module) -> None:
        self._session = (time.time(), int(trainer.global_step))
        try:  # max_steps, or epochs x batches per epoch; unknown for endless loaders
            total = float(trainer.estimated_stepping_batches)
            self._total = int(total) if math.isfinite(total) else None
        except Exception:
            self._total = None
        self._write(trainer, "training")

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        if time.time() - self._written >= self.every_s:
            self._write(trainer, "training")

    def on_train_end(self, trainer, pl_module) -> None:
        self._write(trainer, self.after)

    def on_exception(self, trainer, pl_module, exception) -> None:
        if self._session is None:  # refused before training began: leave nothing behind
            return
        self._write(trainer, "stopped", error=type(exception).__name__)
