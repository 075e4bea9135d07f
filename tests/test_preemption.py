"""The checkpoint on the signal that ends a job (stsanet.lit.preemption), in one process, without
SLURM: a run that gets SIGTERM mid-epoch saves its state after the step in flight and exits
143; resumed from that file it trains every remaining step once, on the same clips, and ends
with the same weights as an uninterrupted run. The requeue signal (SIGUSR2) is handed to the
handler that was there before (submitit's, in a SLURM job) after the save. The real generated
data and the real DataModule, a one-layer network (the SLURM test trains STSANet itself).
"""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest
import pytorch_lightning as pl
import torch

from stsanet.data.synthetic import SyntheticDataModule, generate
from stsanet.lit.preemption import CheckpointOnSignal
from stsanet.lit.resume import ExactResume

STEPS = 8  # two epochs of the 4 training videos, batch 1: the signal comes at epoch 1, batch 2


class TinyNet(pl.LightningModule):
    """Mean colour of the clip -> a constant map; trains, so every step changes the weights."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.head = torch.nn.Linear(3, 1)
        self.seen: list[tuple[int, str, int]] = []

    def training_step(self, batch, batch_idx):
        self.seen.append((self.global_step, batch["video"][0], int(batch["frame"][0])))
        colour = batch["clip"].mean(dim=(2, 3, 4))
        return (self.head(colour).squeeze(1) - batch["saliency"].mean(dim=(1, 2))).pow(2).mean()

    def configure_optimizers(self):
        return torch.optim.Adam(self.parameters(), lr=1e-2)


class SignalAt(pl.Callback):
    """Sends `signum` to this process as optimiser step `step` + 1 starts."""

    def __init__(self, step: int, signum: int) -> None:
        self.step, self.signum = step, signum

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if trainer.global_step == self.step:
            os.kill(os.getpid(), self.signum)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return generate(tmp_path_factory.mktemp("synthetic"), size="ci", seed=0)


def fit(data_root: Path, out: Path, *callbacks: pl.Callback, ckpt: Path | None = None):
    net = TinyNet()
    data = SyntheticDataModule(root=str(data_root), size="ci", input_size=(32, 48),
                               batch_size=1, num_workers=0, seed=3)
    trainer = pl.Trainer(accelerator="cpu", max_steps=STEPS, max_epochs=100, logger=False,
                         enable_checkpointing=False, enable_progress_bar=False,
                         enable_model_summary=False, limit_val_batches=0,
                         default_root_dir=str(out),
                         callbacks=[ExactResume(seed=3),
                                    CheckpointOnSignal(out / "checkpoints" / "last.ckpt"),
                                    *callbacks])
    trainer.fit(net, datamodule=data, ckpt_path=str(ckpt) if ckpt else None)
    return net, trainer


def test_sigterm_saves_after_the_step_and_the_resumed_run_is_exact(data_root, tmp_path):
    reference, _ = fit(data_root, tmp_path / "reference")
    assert [s for s, _, _ in reference.seen] == list(range(STEPS))

    interrupted = tmp_path / "interrupted"
    with pytest.raises(SystemExit) as exit_info:
        fit(data_root, interrupted, SignalAt(6, signal.SIGTERM))
    assert exit_info.value.code == 128 + signal.SIGTERM
    checkpoint = interrupted / "checkpoints" / "last.ckpt"
    state = torch.load(checkpoint, map_location="cpu", weights_only=True)
    assert state["global_step"] == 7  # the step in flight when the signal came was finished
    assert signal.getsignal(signal.SIGTERM) is not None  # Lightning put the handlers back

    resumed, trainer = fit(data_root, interrupted, ckpt=checkpoint)
    assert trainer.global_step == STEPS
    assert resumed.seen == reference.seen[7:]  # the remaining step, on the same clip
    for key, value in reference.state_dict().items():
        assert torch.equal(value, resumed.state_dict()[key]), key


def test_the_requeue_signal_goes_to_the_previous_handler_after_the_save(data_root, tmp_path):
    calls = []

    def submitit_like(signum, frame):
        calls.append((signum, torch.load(tmp_path / "checkpoints" / "last.ckpt",
                                         map_location="cpu", weights_only=True)["global_step"]))
        raise SystemExit(-1)  # submitit requeues the job, then exits

    previous = signal.signal(signal.SIGUSR2, submitit_like)
    try:
        with pytest.raises(SystemExit) as exit_info:
            fit(data_root, tmp_path, SignalAt(2, signal.SIGUSR2))
    finally:
        signal.signal(signal.SIGUSR2, previous)
    assert exit_info.value.code == -1
    assert calls == [(signal.SIGUSR2, 3)]
