"""What the tracker (wandb) sees of the benchmark: each run's scores in its run summary and its
per-video scores as a table; a table's aggregate, chart, comparison figure and page in one run
of the sweep's group. Online or offline, as the logger config says."""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from stsanet.runs.config import CONF_DIR

SCORE_PREFIX = "score"


def _wandb_loggers(loggers: list[Any]) -> list[Any]:
    from pytorch_lightning.loggers import WandbLogger

    return [logger for logger in loggers if isinstance(logger, WandbLogger)]


def _number(value: Any) -> float | None:
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def log_run_scores(loggers: list[Any], score: dict[str, Any], cfg) -> None:
    """The scored run's benchmark numbers into each wandb logger's run: summary
    ``score/<metric>`` (frame-pooled; None where the metric was undefined), ``score/frames``,
    ``score/protocol``, the table row and seed in its config, and ``score/per_video`` as a
    wandb Table (one line per evaluation video)."""
    loggers = _wandb_loggers(loggers)
    if not loggers:
        return
    import wandb

    columns = list(score.get("scores", {}))
    summary = {f"{SCORE_PREFIX}/{name}": _number(value)
               for name, value in score.get("scores", {}).items()}
    summary[f"{SCORE_PREFIX}/frames"] = score.get("frames")
    summary[f"{SCORE_PREFIX}/protocol"] = score.get("description") or score.get("protocol")
    ablation = OmegaConf.select(cfg, "ablation")
    config = {"seed": int(cfg.seed)}
    if ablation is not None:
        config["ablation"] = OmegaConf.to_container(ablation, resolve=True)
    per_video = wandb.Table(columns=["video", *columns], data=[
        [str(video), *[_number(scores.get(c)) for c in columns]]
        for video, scores in score.get("per_video", {}).items()])
    for logger in loggers:
        run = logger.experiment
        run.config.update(config, allow_val_change=True)
        run.log({f"{SCORE_PREFIX}/per_video": per_video})
        run.summary.update(summary)


def finish_runs(loggers: list[Any]) -> None:
    """End the wandb run of this training run: in a multirun (Hydra's basic launcher runs its
    jobs one after another in one process) the next job's logger would otherwise log into it."""
    if _wandb_loggers(loggers):
        import wandb

        wandb.finish()


def wandb_settings(overrides: list[str]) -> dict[str, Any]:
    """project and offline of the logger config (``conf/logger/wandb.yaml``), with the
    sweep's ``logger.wandb.*`` overrides applied."""
    node = OmegaConf.load(CONF_DIR / "logger" / "wandb.yaml").wandb
    settings = {"project": str(node.project), "offline": bool(node.offline)}
    for override in overrides:
        key, _, value = override.lstrip("+").partition("=")
        if key == "logger.wandb.project":
            settings["project"] = value
        elif key == "logger.wandb.offline":
            settings["offline"] = value.strip().lower() in ("true", "1", "yes")
    return settings


def log_table_run(paths: dict[str, Path], group: str, name: str, overrides: list[str],
                  tags: list[str]) -> str | None:
    """One wandb run in the sweep's ``group`` holding the table: ``table`` (a wandb Table of
    the markdown table's cells, with the means, spreads and the paper's values as numbers),
    ``table/<row>/<metric>`` means in the summary, the chart, the comparison figure, the loss
    curves and the HTML page. Says where in one line and returns the run id; where wandb
    refuses (online without a login, say), says so and returns None: the table's files stand."""
    import wandb

    try:
        run_id = _log_table(paths, group, name, overrides, tags)
    except wandb.errors.Error as error:
        print(f"reproduce: the table was not logged to wandb ({error}); its files are written",
              file=sys.stderr)
        return None
    print(f"reproduce: table logged to wandb run {run_id} (group {group})")
    return run_id


def _log_table(paths: dict[str, Path], group: str, name: str, overrides: list[str],
               tags: list[str]) -> str:
    import wandb

    settings = wandb_settings(overrides)
    aggregate = json.loads(Path(paths["json"]).read_text())
    out_dir = Path(paths["json"]).parent
    mode = "offline" if settings["offline"] else "online"
    run = wandb.init(project=settings["project"], group=group, name=name, job_type="table",
                     tags=tags, dir=str(out_dir), mode=mode,
                     settings=wandb.Settings(console="off"),  # this run has no output of its own
                     config={"table": aggregate["table"], "seeds": aggregate["seeds"],
                             "protocol": aggregate["protocol"]})
    try:
        metrics = aggregate["metrics"]
        columns = ["row", "label", "seeds finished"]
        for metric in metrics:
            columns += [metric, f"{metric} std", f"{metric} paper", f"{metric} mark"]
        cells_columns = [f"cell: {c}" for c in aggregate["cells"]["columns"]]
        width = len(cells_columns)
        # the markdown's cells of each row, found by its label (the first cell)
        cells_of = {cells[0]: (cells + [""] * width)[:width]
                    for cells in aggregate["cells"]["rows"] if cells}
        data = []
        for entry in aggregate["rows"]:
            cells = cells_of.get(entry["label"], [""] * width)
            line = [entry["row"], entry["label"], entry["runs"]]
            for metric in metrics:
                value = entry["metrics"][metric]
                line += [value["mean"], value["std"], value["paper"], value["mark"]]
            data.append(line + cells)
        images = {key: wandb.Image(str(paths[key]), caption=caption)
                  for key, caption in (("png", "scores: mean ± std over seeds, paper"),
                                       ("examples", "qualitative comparison"),
                                       ("loss", "training loss of each run"))
                  if paths.get(key) and Path(paths[key]).is_file()}
        run.log({"table": wandb.Table(columns=columns + cells_columns, data=data), **images,
                 **({"report": wandb.Html(Path(paths["html"]).read_text())}
                    if paths.get("html") else {})})
        run.summary.update({f"table/{entry['row']}/{metric}": entry["metrics"][metric]["mean"]
                            for entry in aggregate["rows"] for metric in metrics})
        return run.id
    finally:
        run.finish()
