"""A run that fails in a SLURM job fails the job.

Hydra hands a run's exception back to the launcher inside the job's result file, so the job
itself ends normally: SLURM would record a run that crashed as COMPLETED and its log would not
say why. :class:`FailTheJob` (a Hydra callback, ``conf/hydra/default.yaml``) writes the error's
traceback to the job's stderr log and exits with code 1, so ``sacct`` says FAILED and the sweep's
table (:mod:`stsanet.runs.slurm_jobs`) can name the failure and point at the log. Outside a
SLURM job (no ``SUBMITIT_EXECUTOR=slurm``, which submitit's batch script sets) it does nothing.
"""

from __future__ import annotations

import logging
import os
import sys
import traceback
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback

log = logging.getLogger(__name__)


class FailTheJob(Callback):
    def on_job_end(self, config: Any, job_return: JobReturn, **kwargs: Any) -> None:
        if job_return.status != JobStatus.FAILED or os.environ.get("SUBMITIT_EXECUTOR") != "slurm":
            return
        try:
            job_return.return_value  # raises the run's exception
        except Exception as error:
            log.error("the run failed (%s: %s); ending the SLURM job as failed",
                      type(error).__name__, error)
            traceback.print_exception(error, file=sys.stderr)  # into the job's .err log
        sys.exit(1)
