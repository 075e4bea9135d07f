"""A wheel install works: configs ship inside the package, commands run from any directory."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]


def run(args: list[str], cwd: Path, env: dict) -> subprocess.CompletedProcess:
    done = subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, f"{args}\nstdout:\n{done.stdout}\nstderr:\n{done.stderr}"
    return done


@pytest.mark.slow
def test_wheel_installed_outside_the_repo_runs_info_and_train(tmp_path):
    # Build from a copy so the checkout gets no build/ or egg-info folders.
    source = tmp_path / "source"
    source.mkdir()
    shutil.copy(REPO / "pyproject.toml", source)
    shutil.copy(REPO / "README.md", source)
    shutil.copytree(REPO / "src", source / "src",
                    ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
    wheels, site, work = tmp_path / "wheels", tmp_path / "site", tmp_path / "work"
    work.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("STSANET_", "PYTHON"))}
    run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
         "-w", str(wheels), str(source)], work, env)
    [wheel] = wheels.glob("stsanet-*.whl")
    run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(site),
         str(wheel)], work, env)
    shutil.rmtree(source)  # nothing may come from the sources any more

    # The installed copy, not the checkout or the environment's editable install.
    env["PYTHONPATH"] = str(site)
    located = run([sys.executable, "-c", "import stsanet; print(stsanet.__file__)"], work, env)
    assert Path(located.stdout.strip()).is_relative_to(site)
    assert (site / "stsanet" / "conf" / "model" / "decoder" / "unet.yaml").is_file()
    assert (site / "stsanet" / "experiments" / "paper_numbers.csv").is_file()

    info = run([sys.executable, "-m", "stsanet.cli.info", "model.norm=agnostic",
                "model.input_size=[64,96]"], work, env)
    assert "STSANet  norm=agnostic" in info.stdout

    run([sys.executable, "-m", "stsanet.cli.train", "data=synthetic", "data.size=ci",
         f"data.root={work / 'data'}", "data.batch_size=1", "data.num_workers=0",
         "data.val_stride=40", "model.norm=agnostic", "model.input_size=[64,96]",
         "logger=none", "callbacks=none", "trainer.max_epochs=1",
         "+trainer.limit_train_batches=1", "+trainer.limit_val_batches=1",
         "+trainer.enable_progress_bar=false"], work, env)
    [results] = (work / "outputs" / "train" / "runs").glob("*/results.json")
    assert '"train/loss_epoch"' in results.read_text()
