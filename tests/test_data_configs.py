import subprocess
import sys
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from hydra.utils import instantiate

from stsanet.runs.config import CONF_DIR


@pytest.mark.parametrize("name", ["dhf1k", "hollywood2", "ucf", "diem"])
def test_data_group_requires_only_root(name, tmp_path):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("check_data", overrides=[f"data={name}"])
        with pytest.raises(Exception, match="data.root|root"):
            instantiate(cfg.data)
        cfg = compose("check_data", overrides=[f"data={name}", f"data.root={tmp_path}"])
        dm = instantiate(cfg.data)
        assert dm.dataset_name == name and dm.input_size == (224, 384)
        assert dm.hparams.clip_len == 32 and dm.hparams.supervision == "middle"


def test_synthetic_group_defaults(tmp_path):
    with initialize_config_dir(config_dir=str(CONF_DIR), version_base="1.3"):
        cfg = compose("check_data", overrides=["data=synthetic", f"data.root={tmp_path / 's'}",
                                                "data.size=ci"])
        dm = instantiate(cfg.data)
        assert dm.dataset_name == "synthetic" and dm.input_size == (64, 96) and dm.size == "ci"


def test_check_data_command_exit_codes(tmp_path):
    env_python = sys.executable
    made = subprocess.run([env_python, "-m", "stsanet.cli.make_synthetic", f"root={tmp_path / 's'}",
                           "size=ci"], capture_output=True, text=True, cwd=tmp_path)
    assert made.returncode == 0, made.stderr
    ok = subprocess.run([env_python, "-m", "stsanet.cli.check_data", "data=synthetic",
                         f"data.root={tmp_path / 's'}"], capture_output=True, text=True, cwd=tmp_path)
    assert ok.returncode == 0 and "OK: the root is usable" in ok.stdout
    (tmp_path / "s" / "video" / "003.AVI").write_bytes(b"")
    bad = subprocess.run([env_python, "-m", "stsanet.cli.check_data", "data=synthetic",
                          f"data.root={tmp_path / 's'}"], capture_output=True, text=True, cwd=tmp_path)
    assert bad.returncode == 1 and "zero-length video: 1" in bad.stdout
    unset = subprocess.run([env_python, "-m", "stsanet.cli.check_data", "data=dhf1k"],
                           capture_output=True, text=True, cwd=tmp_path)
    assert unset.returncode == 2 and "data.root is required but not set" in unset.stderr
    assert not list(Path(tmp_path).glob("*.log"))
