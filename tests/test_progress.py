"""Live progress of a sweep: the progress file a run writes while it trains (a real Lightning fit
of a tiny module), and the status read from run folders whatever launched them."""

from __future__ import annotations

import io
import json
import time

import pytorch_lightning as pl
import torch

from stsanet.lit.progress import PROGRESS_FILE, ProgressFile, read_progress
from stsanet.runs.progress import (STALLED_AFTER_S, SweepProgress, format_status, run_status,
                                   sweep_status)


class Tiny(pl.LightningModule):
    def __init__(self):
        super().__init__()
        self.layer = torch.nn.Linear(4, 1)

    def training_step(self, batch, batch_idx):
        time.sleep(0.05)  # a measurable pace for the ETA
        return self.layer(batch[0]).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.SGD(self.parameters(), lr=0.1)


class Watch(pl.Callback):
    """Reads the progress file during training, as a watcher would."""

    def __init__(self, folder):
        self.folder, self.seen = folder, []

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        self.seen.append(read_progress(self.folder))


def test_a_run_reports_its_step_pace_and_eta(tmp_path):
    data = torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(40, 4)),
                                       batch_size=4)
    watch = Watch(tmp_path)
    trainer = pl.Trainer(max_steps=6, logger=False, enable_checkpointing=False,
                         enable_progress_bar=False, enable_model_summary=False,
                         callbacks=[ProgressFile(tmp_path, after="scoring", every_s=0.0), watch])
    trainer.fit(Tiny(), data)
    middle = watch.seen[2]
    assert middle["state"] == "training" and middle["step"] == 3 and middle["total_steps"] == 6
    assert middle["seconds_per_step"] >= 0.05
    # the 3 remaining steps at the pace so far (the file rounds the ETA to 0.1 s)
    assert abs(middle["eta_seconds"] - 3 * middle["seconds_per_step"]) <= 0.051
    final = json.loads((tmp_path / PROGRESS_FILE).read_text())
    assert final["state"] == "scoring" and final["step"] == 6


def write(folder, **progress):
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PROGRESS_FILE).write_text(json.dumps(progress))


def finish(folder):
    folder.mkdir(parents=True, exist_ok=True)
    scores = dict.fromkeys(("CC", "NSS", "SIM", "AUC-J", "s-AUC", "KL"), 0.5)
    (folder / "results.json").write_text(json.dumps({"seed": 1, "score": {"scores": scores}}))


def test_status_from_run_folders(tmp_path):
    now = 100_000.0
    since = now - 3 * 3600  # the watcher started three hours ago
    finish(tmp_path / "ours" / "seed1")
    write(tmp_path / "unet" / "seed1", state="training", step=20, total_steps=60,
          seconds_per_step=1.5, eta_seconds=60.0, updated=now - 10)
    write(tmp_path / "unet_stsa" / "seed1", state="scoring", step=60, total_steps=60,
          updated=now - 5)
    write(tmp_path / "unet_amsf" / "seed1", state="training", step=12, updated=since - 100)
    write(tmp_path / "single_stream" / "seed1", state="training", step=3, total_steps=60,
          updated=now - STALLED_AFTER_S - 60)
    pairs = [(row, 1) for row in ("ours", "unet", "unet_stsa", "unet_amsf", "single_stream",
                                  "rm_stsa_1")]
    statuses = sweep_status(tmp_path, pairs, since, now)
    assert [s.state for s in statuses] == ["done", "running", "running", "pending", "stalled",
                                           "pending"]
    assert statuses[1].detail == "step 20/60, 1.5 s/step, ETA 0:50"  # 60 s at the write, 10 ago
    assert statuses[2].detail == "scoring after 60 steps"
    assert statuses[3].detail == "resumes after step 12"  # written by an earlier session
    assert statuses[4].detail == "step 3/60, no progress for 2:01:00"
    assert format_status(statuses) == (
        "done 1/6 · running: unet/seed1 (step 20/60, 1.5 s/step, ETA 0:50), unet_stsa/seed1 "
        "(scoring after 60 steps) · stalled: single_stream/seed1 (step 3/60, no progress for "
        "2:01:00) · pending 2: unet_amsf/seed1, rm_stsa_1/seed1")
    write(tmp_path / "rm_stsa_1" / "seed1", state="stopped", step=4, error="KeyboardInterrupt",
          updated=now)
    assert run_status(tmp_path / "rm_stsa_1" / "seed1", 1, since, now).detail == \
        "step 4, stopped (KeyboardInterrupt)"


def lines_of(stream) -> list[str]:
    return [line.split(" · ", 1)[1] for line in stream.getvalue().splitlines()]


def test_watcher_prints_state_changes_at_once_and_steps_at_its_pace(tmp_path):
    stream = io.StringIO()
    watcher = SweepProgress(tmp_path, [("ours", 1), ("unet", 1)], every_s=3600, stream=stream)
    watcher.poll()
    write(tmp_path / "ours" / "seed1", state="training", step=0, total_steps=2,
          updated=time.time())
    watcher.poll()  # ours started: printed
    write(tmp_path / "ours" / "seed1", state="training", step=1, total_steps=2,
          updated=time.time())
    watcher.poll()  # only a step: not before every_s
    finish(tmp_path / "ours" / "seed1")
    watcher.poll()
    assert lines_of(stream) == ["done 0/2 · pending 2: ours/seed1, unet/seed1",
                                "done 0/2 · running: ours/seed1 (step 0/2) · pending 1: unet/seed1",
                                "done 1/2 · pending 1: unet/seed1"]


def test_watcher_thread_follows_the_folders_while_the_block_runs(tmp_path):
    stream = io.StringIO()
    with SweepProgress(tmp_path, [("ours", 1)], every_s=0.01, poll_s=0.01, stream=stream):
        finish(tmp_path / "ours" / "seed1")  # what the sweep leaves
        deadline = time.time() + 30
        while "done 1/1" not in stream.getvalue() and time.time() < deadline:
            time.sleep(0.01)
    lines = lines_of(stream)
    assert lines[0] == "done 0/1 · pending 1: ours/seed1"
    assert lines[1:] == ["done 1/1"]  # the closing line is not repeated when nothing changed
