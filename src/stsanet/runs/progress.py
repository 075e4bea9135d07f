"""Live progress of a sweep, read from its run folders (so it is the same whatever launched the
runs: Hydra's basic launcher, submitit, SLURM): a run is done when its ``results.json`` holds a
score, running while its ``progress.json`` (:mod:`stsanet.lit.progress`) is fresh, else pending.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from stsanet.lit.progress import read_progress
from stsanet.runs.table import read_result, run_dir

# a running run writes at least every few seconds while it trains; scoring a real table's
# run writes nothing for up to an hour, so only a long silence is called stalled
STALLED_AFTER_S = 2 * 3600


@dataclass(frozen=True)
class RunStatus:
    name: str  # "<row>/seed<N>"
    state: str  # done | running | stalled | pending
    detail: str = ""


def _duration(seconds: float) -> str:
    seconds = int(round(seconds))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"


def run_status(path: Path, seed: int, since: float, now: float | None = None) -> RunStatus:
    """One run's state; progress written before ``since`` (an earlier session) is not running."""
    name = f"{path.parent.name}/{path.name}"
    if read_result(path, seed) is not None:
        return RunStatus(name, "done")
    progress = read_progress(path)
    if progress is None or float(progress.get("updated", 0)) < since:
        step = progress.get("step") if progress else None
        return RunStatus(name, "pending", f"resumes after step {step}" if step else "")
    now = time.time() if now is None else now
    silent = now - float(progress["updated"])
    step, total = progress.get("step"), progress.get("total_steps")
    where = f"step {step}/{total}" if total else f"step {step}"
    if silent > STALLED_AFTER_S:
        return RunStatus(name, "stalled", f"{where}, no progress for {_duration(silent)}")
    if progress.get("state") == "training":
        detail = where
        if progress.get("seconds_per_step"):
            detail += f", {progress['seconds_per_step']:.1f} s/step"
        if progress.get("eta_seconds") is not None:
            detail += f", ETA {_duration(max(0.0, progress['eta_seconds'] - silent))}"
        return RunStatus(name, "running", detail)
    if progress.get("state") == "stopped":
        return RunStatus(name, "stalled", f"{where}, stopped ({progress.get('error', 'error')})")
    return RunStatus(name, "running", f"{progress.get('state')} after {step} steps")


def sweep_status(runs_dir: Path, pairs: list[tuple[str, int]], since: float,
                 now: float | None = None) -> list[RunStatus]:
    return [run_status(run_dir(runs_dir, row, seed), seed, since, now) for row, seed in pairs]


def format_status(statuses: list[RunStatus]) -> str:
    """One line: done count, each running run with its step and ETA, the pending ones."""
    by_state: dict[str, list[RunStatus]] = {}
    for status in statuses:
        by_state.setdefault(status.state, []).append(status)
    parts = [f"done {len(by_state.get('done', []))}/{len(statuses)}"]
    for state in ("running", "stalled"):
        if by_state.get(state):
            parts.append(f"{state}: " + ", ".join(
                f"{s.name} ({s.detail})" if s.detail else s.name for s in by_state[state]))
    pending = by_state.get("pending", [])
    if pending:
        names = [s.name for s in pending]
        parts.append(f"pending {len(pending)}: " + ", ".join(names[:4])
                     + (f" and {len(names) - 4} more" if len(names) > 4 else ""))
    return " · ".join(parts)


class SweepProgress:
    """While the ``with`` block runs (a sweep), prints the sweep's status line whenever a run
    changes state, and otherwise every ``every_s`` seconds if anything moved; once more at the
    end if that line would differ from the last. A watcher thread; the block itself is
    untouched."""

    def __init__(self, runs_dir: Path, pairs: list[tuple[str, int]], every_s: float = 30.0,
                 poll_s: float = 2.0, stream=None, since: float | None = None):
        self.runs_dir, self.pairs = Path(runs_dir), list(pairs)
        self.every_s, self.poll_s = every_s, poll_s
        self.stream = stream
        self.since = time.time() if since is None else since
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._last: tuple[list[RunStatus], float] | None = None

    def _print(self, statuses: list[RunStatus]) -> None:
        stamp = time.strftime("%H:%M:%S")
        print(f"reproduce: progress {stamp} · {format_status(statuses)}",
              file=self.stream or sys.stdout, flush=True)
        self._last = (statuses, time.monotonic())

    def poll(self) -> None:
        statuses = sweep_status(self.runs_dir, self.pairs, self.since)
        if self._last is None:
            self._print(statuses)
            return
        before, printed = self._last
        moved = statuses != before
        changed = [s.state for s in statuses] != [s.state for s in before]
        if changed or (moved and time.monotonic() - printed >= self.every_s):
            self._print(statuses)

    def _watch(self) -> None:
        while not self._stop.wait(self.poll_s):
            try:
                self.poll()
            except Exception as error:  # a watcher must never take the sweep down
                print(f"reproduce: progress unavailable ({error})", file=sys.stderr)
                return

    def __enter__(self) -> "SweepProgress":
        if self.every_s > 0 and self.pairs:
            self.poll()
            self._thread = threading.Thread(target=self._watch, name="sweep-progress",
                                            daemon=True)
            self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        if self._thread is not None:
            self._stop.set()
            self._thread.join()
            statuses = sweep_status(self.runs_dir, self.pairs, self.since)
            if self._last is None or statuses != self._last[0]:
                self._print(statuses)
