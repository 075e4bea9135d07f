"""Done-when of issue 23: a tiny two-row sweep (Table VI: middle- and last-supervised, one seed,
two steps, the ci-sized synthetic data at 32 x 32) through the reproduce command with the wandb
logger offline, then what wandb wrote read back from its transaction logs: each run's scores in
its own run summary and its per-video scores as a table, and the run holding the table."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stsanet.cli.reproduce import main
from wandb_helpers import offline_runs, read_run

pytestmark = pytest.mark.slow  # trains two STSANet runs (about 30 s on 2 loaded cores)

SEED = 12345
ROWS = ("ours", "last_supervised")


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wandb_sweep")
    patch = pytest.MonkeyPatch()
    for name, folder in (("STSANET_ROOT", "root"), ("STSANET_CACHE_DIR", "cache"),
                         ("WANDB_CONFIG_DIR", "wandb-config"), ("WANDB_CACHE_DIR", "wandb-cache"),
                         ("WANDB_DATA_DIR", "wandb-data")):
        patch.setenv(name, str(tmp / folder))
    patch.setenv("OMP_NUM_THREADS", "1")
    out = tmp / "out"
    printed = tmp / "stdout.txt"
    import contextlib
    import io

    buffer = io.StringIO()
    with contextlib.redirect_stdout(buffer):
        code = main(["--table", "6", "--seeds", "1", "--steps", "2", "--logger", "wandb",
                     "--out", str(out), "--progress-every", "1", "--",
                     "data.size=ci", "model.input_size=[32,32]", "data.num_workers=0",
                     "data.batch_size=2"])
    printed.write_text(buffer.getvalue())
    patch.undo()
    assert code == 0, buffer.getvalue()[-3000:]
    return out / "synthetic", buffer.getvalue()


def results(base: Path, row: str) -> dict:
    return json.loads((base / "runs" / row / f"seed{SEED}" / "results.json").read_text())


def test_each_run_logs_its_scores_into_its_own_wandb_run(sweep):
    base, _ = sweep
    ids = set()
    for row in ROWS:
        folder = base / "runs" / row / f"seed{SEED}"
        (run_folder,) = offline_runs(folder)
        run = read_run(run_folder)
        data = results(base, row)
        assert run["id"] == data["loggers"]["wandb"]
        ids.add(run["id"])
        assert run["group"] == "table6-synthetic" and run["name"] == f"{row}-seed{SEED}"
        assert {"table6", row, f"seed{SEED}"} <= set(run["tags"])
        assert run["config"]["ablation"]["row"] == row and run["config"]["seed"] == SEED
        score = data["score"]
        for metric, value in score["scores"].items():
            assert run["summary"][f"score/{metric}"] == pytest.approx(value)
        assert run["summary"]["score/frames"] == score["frames"] == 4
        assert run["summary"]["score/protocol"] == score["description"]
        # the per-video table, as wandb stored it beside the run
        table_file = run_folder / "files" / run["summary"]["score/per_video.path"]
        table = json.loads(table_file.read_text())
        assert table["columns"][0] == "video" and "CC" in table["columns"]
        cc = table["columns"].index("CC")
        assert {line[0]: line[cc] for line in table["data"]} == pytest.approx(
            {video: s["CC"] for video, s in score["per_video"].items()})
    assert len(ids) == 2  # one wandb run per training run, although one process ran both


def test_the_table_is_logged_to_one_run_of_the_group(sweep):
    base, printed = sweep
    (run_folder,) = offline_runs(base)
    run = read_run(run_folder)
    assert run["group"] == "table6-synthetic" and run["job_type"] == "table"
    assert run["name"] == "table6" and f"table logged to wandb run {run['id']}" in printed
    aggregate = json.loads((base / "table6.json").read_text())
    for entry in aggregate["rows"]:
        assert entry["runs"] == 1
        cc = results(base, entry["row"])["score"]["scores"]["CC"]
        assert run["summary"][f"table/{entry['row']}/CC"] == pytest.approx(cc)
    table = json.loads((run_folder / "files" / run["summary"]["table.path"]).read_text())
    assert [line[0] for line in table["data"]] == ["ours", "last_supervised"]
    paper = table["columns"].index("CC paper")
    assert [line[paper] for line in table["data"]] == [0.539, 0.537]
    assert any(c.startswith("cell: CC") for c in table["columns"])
    for key in ("png", "examples", "loss"):
        assert (run_folder / "files" / run["summary"][f"{key}.path"]).is_file()
    assert run["summary"]["report._type"] == "html-file"


def test_sweep_writes_the_page_and_the_figure_and_shows_progress(sweep):
    base, printed = sweep
    for name in ("table6.html", "table6_examples.png", "table6_loss.png"):
        assert (base / name).stat().st_size > 1000
    progress = [line for line in printed.splitlines() if line.startswith("reproduce: progress")]
    assert "pending 2: ours/seed12345, last_supervised/seed12345" in progress[0]
    assert progress[-1].endswith("done 2/2")
    assert any("running: " in line for line in progress), progress
