"""A checkpoint on the signal that ends a job, so that a preempted, requeued, cancelled or
timed-out run loses no step.

One owner of the SLURM signals: submitit (Hydra's ``hydra/launcher=slurm``) decides what a
signal means and requeues the job (``--signal=USR2@signal_delay_s`` before the time limit,
counted against ``max_num_timeout``); Lightning's own SLURM auto-requeue is off
(:func:`stsanet.runs.train.build_trainer` gives it ``SLURMEnvironment(auto_requeue=False)``) and
its SIGTERM handler is replaced here. :class:`CheckpointOnSignal` only moves the signal to a
step boundary: the handler notes the signal; after the next optimiser step every rank agrees
(one all-reduce), the full training state is written to the run's ``last.ckpt`` (the file
``ckpt_path=auto`` resumes from) and then the signal takes its course:

- the requeue signal (SIGUSR2, submitit's): submitit's handler runs (rank 0 requeues the job or,
  past ``max_num_timeout``, ends it as failed) and the process exits;
- SIGTERM (``scontrol requeue``, ``scancel``, preemption; SLURM sends SIGKILL ``KillWait``
  seconds later): the process exits with 128 + 15; SLURM requeues or ends the job itself.

A signal during validation or after the last step is acted on at the next step boundary or at
the end of training. Written to a temporary name and moved into place, the checkpoint is never
half written, even when SIGKILL comes first.
"""

from __future__ import annotations

import logging
import os
import signal
from pathlib import Path
from typing import Any

import pytorch_lightning as pl

log = logging.getLogger(__name__)

SIGNALS = (signal.SIGUSR2, signal.SIGTERM)


class CheckpointOnSignal(pl.Callback):
    """Saves the full training state to ``path`` at the first step boundary after SIGUSR2 or
    SIGTERM, then hands the signal on (see the module's docstring)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        self.received: int | None = None
        self._previous: dict[int, Any] = {}
        self._step_at_batch_start = -1

    def _note(self, signum: int, frame: Any) -> None:
        log.warning("received %s: saving %s after the current step", signal.Signals(signum).name,
                    self.path)
        self.received = signum

    def on_train_start(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        # After Lightning installed its handlers (trainer._run): ours replace its SIGTERM one,
        # and Lightning puts back what was there before (submitit's) when fitting ends.
        for signum in SIGNALS:
            try:
                self._previous[signum] = signal.signal(signum, self._note)
            except ValueError:  # not the main thread: the signals are not ours to take
                return

    def on_train_batch_start(self, trainer: pl.Trainer, *args: Any) -> None:
        self._step_at_batch_start = trainer.global_step

    def on_train_batch_end(self, trainer: pl.Trainer, *args: Any) -> None:
        # only after an optimiser step: mid-accumulation the summed gradients are in no file
        if trainer.global_step > self._step_at_batch_start:
            self._act(trainer)

    def on_train_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        self._act(trainer)

    def _act(self, trainer: pl.Trainer) -> None:
        received = self.received is not None
        if trainer.world_size > 1:  # every rank stops at the same step, or a collective hangs
            received = trainer.strategy.reduce_boolean_decision(received, all=False)
        if not received:
            return
        trainer.save_checkpoint(self.path)
        log.warning("saved the training state at step %d to %s", trainer.global_step, self.path)
        signum = self.received if self.received is not None else signal.SIGTERM
        previous = self._previous.get(signum)
        if signum == signal.SIGUSR2 and callable(previous):
            previous(signum, None)  # submitit: rank 0 requeues (or fails the job) and exits
            raise SystemExit(0)  # the other ranks: the job is requeued, nothing left to do
        raise SystemExit(128 + signum)
