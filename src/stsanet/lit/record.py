"""What a training run writes about itself into ``results.json``, whatever logger it used.

:class:`RunRecord` counts the optimiser steps and the training wall time (summed over resumed
sessions through its state in ``last.ckpt``) and keeps the training and validation loss as a
short trace, so that a table built from results files can say how long each row trained and
whether its loss had levelled off, without reading any logger's files.
"""

from __future__ import annotations

import math
import time
from typing import Any

import pytorch_lightning as pl

# losses kept per trace; older points are merged pairwise when the trace is full
TRACE_POINTS = 256


def _merge(trace: list[list[float]]) -> list[list[float]]:
    """Halve a [[step, loss, count], ...] trace by merging neighbours (count-weighted)."""
    merged = []
    for i in range(0, len(trace) - 1, 2):
        (_, l0, n0), (s1, l1, n1) = trace[i], trace[i + 1]
        merged.append([s1, (l0 * n0 + l1 * n1) / (n0 + n1), n0 + n1])
    if len(trace) % 2:
        merged.append(trace[-1])
    return merged


class RunRecord(pl.Callback):
    """Steps, wall time and loss traces of one run (see the module doc)."""

    def __init__(self) -> None:
        self.train_seconds = 0.0
        self.train_trace: list[list[float]] = []  # [step, mean loss, count]
        self.val_trace: list[list[float]] = []  # [step, val loss]
        self._started: float | None = None

    # wall time of fitting, resumption included
    def on_train_start(self, trainer, pl_module) -> None:
        self._started = time.perf_counter()

    def on_train_end(self, trainer, pl_module) -> None:
        if self._started is not None:
            self.train_seconds += time.perf_counter() - self._started
            self._started = None

    def seconds(self) -> float:
        running = time.perf_counter() - self._started if self._started is not None else 0.0
        return self.train_seconds + running

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx) -> None:
        loss = outputs.get("loss") if isinstance(outputs, dict) else outputs
        if loss is None:
            return
        value = float(loss.detach()) if hasattr(loss, "detach") else float(loss)
        if not math.isfinite(value):
            return
        self.train_trace.append([int(trainer.global_step), value, 1])
        if len(self.train_trace) > TRACE_POINTS:
            self.train_trace = _merge(self.train_trace)

    def on_validation_epoch_end(self, trainer, pl_module) -> None:
        if trainer.sanity_checking:
            return
        value = trainer.callback_metrics.get("val/loss")
        if value is not None and math.isfinite(float(value)):
            self.val_trace.append([int(trainer.global_step), float(value)])
            if len(self.val_trace) > TRACE_POINTS:
                self.val_trace = self.val_trace[::2]

    def state_dict(self) -> dict[str, Any]:
        return {"train_seconds": self.seconds(), "train_trace": self.train_trace,
                "val_trace": self.val_trace}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.train_seconds = float(state.get("train_seconds", 0.0))
        self.train_trace = [list(p) for p in state.get("train_trace", [])]
        self.val_trace = [list(p) for p in state.get("val_trace", [])]

    def summary(self, trainer: pl.Trainer) -> dict[str, Any]:
        return {"steps": int(trainer.global_step), "train_seconds": round(self.seconds(), 3),
                "train_loss_trace": [[int(s), round(v, 6)] for s, v, _ in self.train_trace],
                "val_loss_trace": [[int(s), round(v, 6)] for s, v in self.val_trace]}


def convergence(trace: list[list[float]], fraction: float = 0.25,
                tolerance: float = 0.02) -> dict[str, Any] | None:
    """Did a loss trace level off? Compares the mean of its last `fraction` of points with the
    mean of the `fraction` before it: a relative drop of at most `tolerance` counts as
    levelled off ("plateau"), a larger drop as "still falling", a rise as "rising"."""
    values = [float(v) for _, v in trace]
    width = max(1, int(len(values) * fraction))
    if len(values) < 2 * width or len(values) < 4:
        return None
    last = sum(values[-width:]) / width
    before = sum(values[-2 * width:-width]) / width
    change = (last - before) / abs(before) if before else 0.0
    verdict = ("plateau" if abs(change) <= tolerance else
               "still falling" if change < 0 else "rising")
    return {"last": last, "before": before, "change": change, "verdict": verdict,
            "from_step": int(trace[-2 * width][0]), "to_step": int(trace[-1][0])}
