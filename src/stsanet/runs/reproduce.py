"""One ablation table reproduced: the sweep of its rows x seeds (one Hydra multirun of
stsanet-train per group of pending runs, on the local, submitit or SLURM launcher), the checks
that the paper's protocol holds (backbone, fine-tuning chain), and the table from what finished
(:mod:`stsanet.runs.table`). The command line is :mod:`stsanet.cli.reproduce`."""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

from stsanet.errors import InputError
from stsanet.runs.progress import SweepProgress
from stsanet.runs.table import EXPERIMENTS_DIR, Row, aggregate, paper_rows, read_result, run_dir
from stsanet.runs.tracker import log_table_run

REAL_DATASETS = ("dhf1k", "hollywood2", "ucf", "diem")
FINETUNED = ("hollywood2", "ucf", "diem")  # the paper fine-tunes these from the DHF1K model
# The synthetic pipeline check: optimiser steps per row and seeds (batch 4, 64 x 96, CPU).
# Measured on this project's 2-core machine (see README, "Reproducing the ablations").
SYNTHETIC_STEPS = 60
SYNTHETIC_SEEDS = 2
# Scoring every frame costs about as much as 25 training steps per run on 2 cores (512 windows),
# so the synthetic check scores the official sampling at a denser stride (5 labelled frames per
# 64-frame video) unless --protocol benchmark is given; the table names the protocol.
SYNTHETIC_PROTOCOL, SYNTHETIC_VAL_STRIDE = "official", 8
REAL_SEEDS = 3
BACKBONE_FORMATS = ("kylemin S3D (S3D_kinetics400.pt: keys base.N.*), torchvision S3D "
                    "(features.N.*), the authors' STSANet checkpoint (base1..4.*), or one of "
                    "ours (backbone.*); see stsanet.models.weights.load_backbone")


class ReproduceError(InputError):
    """A reproduce setting that cannot work; the message names it and the fix."""


def seeds_of(args: argparse.Namespace) -> list[int]:
    return [args.seed + i for i in range(args.seeds)]


def ranks_per_node(args: argparse.Namespace) -> int:
    """DDP processes per node: one per GPU, or ``--tasks`` CPU processes with no GPU."""
    return args.devices if args.devices > 0 else args.tasks


def world_batch(global_batch: int, world: int) -> tuple[int, int, int]:
    """(per-device batch, gradient accumulation, resulting global batch) for `world` devices:
    exact when `global_batch` splits evenly, else one clip per device and the accumulation that
    comes closest (the table records the global batch the runs report)."""
    if world < 1:
        raise ReproduceError(f"device count must be >= 1, got {world}")
    if global_batch % world == 0:
        return global_batch // world, 1, global_batch
    accumulate = max(1, round(global_batch / world))
    return 1, accumulate, world * accumulate


def check_backbone(path: str) -> None:
    """Refuse a backbone file that does not load, naming the formats that do."""
    from stsanet.models.key_names import WeightsError, detect_naming
    from stsanet.models.weights import read_state_dict

    try:
        naming = detect_naming(read_state_dict(path))
    except (FileNotFoundError, WeightsError) as error:
        reason = str(error).removeprefix(f"{path}: ")
        raise ReproduceError(f"--backbone {path}: {reason}. Formats that load: "
                             f"{BACKBONE_FORMATS}") from None
    if naming == "unknown":
        raise ReproduceError(f"--backbone {path}: not an S3D backbone file. Formats that load: "
                             f"{BACKBONE_FORMATS}")


def finetune_source(args: argparse.Namespace) -> str | None:
    """Where fine-tuned rows take their weights: a file, the DHF1K sweep (a path pattern with
    the row and seed), or None (not fine-tuned)."""
    if args.data not in FINETUNED:
        return None
    if args.finetune_from in (None, "auto"):
        dhf1k_runs = Path(args.out).resolve() / "dhf1k" / "runs"
        return str(dhf1k_runs) + "/${ablation.row}/seed${seed}/weights.pt"
    if args.finetune_from == "scratch":
        return None
    return args.finetune_from


def check_finetune(args: argparse.Namespace, todo: dict[str, list[int]]) -> None:
    if args.data not in FINETUNED or args.finetune_from == "scratch":
        return
    if args.finetune_from not in (None, "auto"):
        if not Path(args.finetune_from).is_file():
            raise ReproduceError(f"--finetune-from {args.finetune_from}: file not found (a DHF1K "
                                 "checkpoint, or 'auto' for the DHF1K sweep's same row)")
        return
    dhf1k_runs = Path(args.out).resolve() / "dhf1k" / "runs"
    missing = [str(run_dir(dhf1k_runs, row, seed) / "weights.pt")
               for row, seeds in todo.items() for seed in seeds
               if not (run_dir(dhf1k_runs, row, seed) / "weights.pt").is_file()]
    if missing:
        raise ReproduceError(
            f"{args.data} rows are fine-tuned from the DHF1K model (paper section IV-B), but the "
            f"DHF1K sweep has not produced {missing[0]}" + (f" (and {len(missing) - 1} more)"
                                                           if len(missing) > 1 else "") +
            f". Run the same table with --data dhf1k --out {args.out} first, give one DHF1K "
            "checkpoint with --finetune-from PATH, or opt out with --finetune-from scratch (the "
            "table then says the rows were not fine-tuned from DHF1K)")


def wandb_group(args: argparse.Namespace) -> str:
    """The wandb group of a table's runs and of the run holding the table."""
    return f"table{args.table}-{args.data}"


def sweep_overrides(args: argparse.Namespace, rows: list[str], seeds: list[int],
                    runs_dir: Path) -> list[str]:
    """Hydra overrides of one multirun over `rows` x `seeds`."""
    overrides = [
        f"hydra.searchpath=[file://{EXPERIMENTS_DIR.resolve()}]",
        f"+ablation={','.join(rows)}",
        f"seed={','.join(str(s) for s in seeds)}",
        f"hydra.sweep.dir={runs_dir}",
        "hydra.sweep.subdir=${ablation.row}/seed${seed}",
        # no test stage: the fast test metrics are for model selection only; a run is scored by
        # the predict + eval route after training (stsanet.scoring)
        "test=false",
        "ckpt_path=auto",
        f"+score.protocol={args.protocol}",
        f"+score.save_weights={str(args.data == 'dhf1k').lower()}",
        f"tags=[reproduce,table{args.table},{args.data}]",
    ]
    if args.first_frames is not None:
        overrides.append(f"+score.first_frames={args.first_frames}")
    if args.videos_file:
        # quoted: a numeric name (DHF1K's 0601) must stay a string
        names = ",".join(f"'{name}'" for name in read_video_list(args.videos_file))
        overrides.append(f"+score.videos=[{names}]")
    if args.data == "synthetic":
        overrides += [
            "experiment=demo", "callbacks=none", f"logger={args.logger or 'csv'}",
            # no checkpoint files, but a preempted run that saved on the signal resumes exactly
            "+callbacks.exact_resume={_target_:stsanet.lit.resume.ExactResume,seed:${seed}}",
            # no validation during these short runs: the final weights are scored
            "++trainer.limit_val_batches=0",
            f"data.val_stride={SYNTHETIC_VAL_STRIDE if args.protocol == 'official' else 32}",
            # no checkpoint files (Lightning's default callback writes 1.6 GB per run)
            "++trainer.enable_checkpointing=false",
            "trainer.max_epochs=100000", "trainer.log_every_n_steps=1",
        ]
        if args.data_root:
            overrides.append(f"data.root={args.data_root}")
    else:
        overrides += ["experiment=paper_dhf1k", f"data={args.data}", f"data.root={args.data_root}"]
        if args.logger:
            overrides.append(f"logger={args.logger}")
        if args.backbone and args.backbone != "scratch":
            overrides.append(f"init.backbone={args.backbone}")
        source = finetune_source(args)
        if source:
            overrides.append(f"init.weights={source}")
        if not args.sync_bn:
            overrides.append("++trainer.sync_batchnorm=false")
    if args.logger == "wandb":
        # one dashboard per table: group = table, tags = row and seed, name = row/seed
        overrides += [f"+logger.wandb.group={wandb_group(args)}",
                      "logger.wandb.tags=[table" + str(args.table) + ",${ablation.row},seed${seed}]",
                      "logger.wandb.name=${ablation.row}-seed${seed}"]
    if args.steps:
        # equal steps, not equal wall time: the rows differ 3x in cost per step
        overrides.append(f"++trainer.max_steps={args.steps}")
    if args.global_batch is not None:
        per_device, accumulate, _ = world_batch(args.global_batch, ranks_per_node(args) * args.nodes)
        overrides += [f"data.batch_size={per_device}",
                      f"++trainer.accumulate_grad_batches={accumulate}"]
    if args.launcher == "slurm":
        overrides += slurm_overrides(args)
    elif args.launcher == "submitit_local":
        overrides.append("hydra/launcher=submitit_local")
        if args.time_min is not None:
            overrides.append(f"hydra.launcher.timeout_min={args.time_min}")
    if args.trainer and args.launcher != "slurm":
        overrides.append(f"trainer={args.trainer}")
    return overrides + list(args.overrides)


def slurm_overrides(args: argparse.Namespace) -> list[str]:
    """The trainer and launcher of SLURM jobs. GPU jobs (``--gpus-per-node N``, N >= 1): one task
    per GPU, DDP over them (trainer=ddp, hydra/launcher=slurm). CPU jobs (``--gpus-per-node 0``):
    no GPU requested, ``--tasks`` processes per node talking through gloo (trainer=ddp_cpu; one
    task: trainer=cpu), hydra/launcher=slurm_cpu. Resources and placement pass through."""
    if args.devices > 0:
        overrides = ["trainer=ddp", f"trainer.devices={args.devices}", "hydra/launcher=slurm",
                     f"hydra.launcher.gpus_per_node={args.devices}",
                     f"hydra.launcher.tasks_per_node={args.devices}"]
    else:
        trainer = "ddp_cpu" if args.tasks > 1 else "cpu"
        # the launcher takes its tasks per node from trainer.devices (conf/hydra/launcher)
        overrides = [f"trainer={trainer}", f"trainer.devices={args.tasks}",
                     "hydra/launcher=slurm_cpu"]
    overrides += [f"++trainer.num_nodes={args.nodes}", f"hydra.launcher.nodes={args.nodes}"]
    for key, name in (("partition", "partition"), ("account", "account"), ("qos", "qos"),
                      ("constraint", "constraint"), ("time_min", "timeout_min"),
                      ("cpus_per_task", "cpus_per_task"), ("mem_gb", "mem_gb")):
        value = getattr(args, key)
        if value is not None:
            overrides.append(f"hydra.launcher.{name}={value}")
    if args.mem_gb is not None:  # memory per node instead of the CPU launcher's per CPU
        overrides.append("hydra.launcher.mem_per_cpu=null")
    for flag in args.sbatch:
        key, _, value = flag.partition("=")
        overrides.append(f"++hydra.launcher.additional_parameters.{key}={value or 'true'}")
    return overrides


def read_video_list(path: str) -> list[str]:
    try:
        names = [line.strip() for line in Path(path).read_text().splitlines()]
    except OSError as error:
        raise ReproduceError(f"--videos-file {path}: cannot be read ({error})") from None
    names = [n for n in names if n and not n.startswith("#")]
    bad = [n for n in names if any(c in n for c in ",[]'\" ")]
    if not names or bad:
        raise ReproduceError(f"--videos-file {path}: needs one video name per line"
                             + (f"; cannot pass {bad[0]!r}" if bad else " (it is empty)"))
    return names


def pending(rows: list[Row], seeds: list[int], runs_dir: Path) -> dict[str, list[int]]:
    """Row -> seeds not finished yet, "ours" first (a sweep cut short can still compare)."""
    todo = {}
    for name in sorted(dict.fromkeys(r.row for r in rows), key=lambda n: n != "ours"):
        missing = [s for s in seeds if read_result(run_dir(runs_dir, name, s), s) is None]
        if missing:
            todo[name] = missing
    return todo


def multiruns(todo: dict[str, list[int]], launcher: str) -> list[tuple[list[str], list[int]]]:
    """Group the pending row x seed pairs into multiruns that launch only pending pairs: rows
    with the same pending seeds share one. On this machine's local executor (every job of a
    multirun starts at once) one multirun per seed bounds the processes to the rows."""
    groups: dict[tuple[int, ...], list[str]] = {}
    for row, seeds in todo.items():
        groups.setdefault(tuple(seeds), []).append(row)
    out = []
    for seeds, rows in groups.items():
        if launcher == "submitit_local":
            out += [(rows, [seed]) for seed in seeds]
        else:
            out.append((rows, list(seeds)))
    return out


def run_sweeps(args: argparse.Namespace, todo: dict[str, list[int]], runs_dir: Path,
               table_runs: list[tuple[str, int]]) -> int:
    """The multiruns of the pending runs, one after the other (basic or submitit_local
    launcher); the exit code of the last failed one, else 0. Progress counts every
    (row, seed) of ``table_runs``, those an earlier session finished included."""
    code = 0
    for group_rows, group_seeds in multiruns(todo, args.launcher):
        command = [sys.executable, "-m", "stsanet.cli.train", "-m",
                   *sweep_overrides(args, group_rows, group_seeds, runs_dir)]
        print("$ " + " ".join(command), flush=True)
        with SweepProgress(runs_dir, table_runs, every_s=args.progress_every):
            returncode = subprocess.run(command).returncode  # the watcher reads the run folders
        if returncode:
            code = returncode
            print(f"reproduce: a sweep stopped with exit code {returncode}; the table shows "
                  "what finished, rerun to continue", file=sys.stderr)
    return code


def run_slurm_sweeps(args: argparse.Namespace, todo: dict[str, list[int]],
                     runs_dir: Path, table_runs: list[tuple[str, int]]) -> int:
    """The multiruns of the pending runs on SLURM, submitted together and followed until none
    of their jobs is pending or running (:mod:`stsanet.runs.slurm_jobs`); runs whose job from
    an earlier, interrupted reproduce is still queued are not submitted again. Returns the exit
    code of the last failed multirun, else 0."""
    from stsanet.runs import slurm_jobs

    queued = slurm_jobs.still_queued(todo, runs_dir)
    if queued:
        print("reproduce: still pending or running in SLURM, not submitted again: "
              + ", ".join(f"{run} (job {job})" for run, job in queued.items()), flush=True)
        todo = {row: [s for s in seeds if f"{row}/seed{s}" not in queued]
                for row, seeds in todo.items()}
        todo = {row: seeds for row, seeds in todo.items() if seeds}
    sweeps = []
    for group_rows, group_seeds in multiruns(todo, args.launcher):
        folder = slurm_jobs.new_sweep_folder(runs_dir)
        command = [sys.executable, "-m", "stsanet.cli.train", "-m",
                   *sweep_overrides(args, group_rows, group_seeds, runs_dir),
                   f"hydra.launcher.submitit_folder={folder}/%j"]
        print("$ " + " ".join(command), flush=True)
        sweeps.append((subprocess.Popen(command), folder,
                       slurm_jobs.sweep_order(group_rows, group_seeds)))
    code = 0
    with SweepProgress(runs_dir, table_runs, every_s=args.progress_every):
        for process, folder, order in sweeps:
            returncode = slurm_jobs.follow(process, folder, order, runs_dir)
            slurm_jobs.settle(folder, order, runs_dir)
            if returncode:
                code = returncode
                print(f"reproduce: a sweep stopped with exit code {returncode}; the table names "
                      "each missing run with its SLURM state and log, rerun to continue",
                      file=sys.stderr)
    return code


def table_title(args: argparse.Namespace) -> tuple[str, list[str]]:
    """The table's title and its protocol notes, from the settings the sweep ran with."""
    name = {3: "main components", 4: "STSA module", 5: "AMSF module",
            6: "supervision manner"}[args.table]
    paper_on = args.data if args.data in ("dhf1k", "hollywood2", "ucf") else "DHF1K val"
    if args.data == "synthetic":
        title = (f"{name} — PIPELINE CHECK on generated data (synthetic), not the paper's claim; "
                 f"paper values (DHF1K val) for reference only")
        notes = [f"{args.steps} optimiser steps per run (batch 4, 64 × 96 input, agnostic norm, "
                 "CPU demo settings), backbone from scratch; the rows are small networks "
                 "trained briefly, so their order says nothing about the paper's ablation"]
        return title, notes
    title = f"{name} — ours on {args.data}, paper on {paper_on}"
    notes = []
    if args.backbone == "scratch":
        title += " — backbone from scratch — not the paper's protocol"
        notes.append("Backbone: trained from scratch (init.backbone=scratch), not from "
                     "Kinetics-400 S3D weights as in the paper")
    elif args.backbone:
        notes.append(f"Backbone: S3D weights from {args.backbone}")
    if args.data in FINETUNED:
        if args.finetune_from == "scratch":
            title += " — not fine-tuned from DHF1K — not the paper's protocol"
            notes.append("Not fine-tuned from a DHF1K model (--finetune-from scratch)")
        elif args.finetune_from in (None, "auto"):
            notes.append("Fine-tuned from the DHF1K sweep's model of the same row and seed "
                         f"({Path(args.out).resolve() / 'dhf1k' / 'runs'})")
        else:
            notes.append(f"Fine-tuned from the DHF1K checkpoint {args.finetune_from}")
    if args.first_frames is not None or args.videos_file:
        notes.append("Table II protocol: " + "; ".join(
            filter(None, [f"first {args.first_frames} frames" if args.first_frames else "",
                          f"videos listed in {args.videos_file}" if args.videos_file else ""])))
    return title, notes


def reproduce(args: argparse.Namespace) -> int:
    """Train what is pending of the table (unless --aggregate-only), then write the table;
    the exit code of the last failed sweep, else 0."""
    rows = paper_rows(args.table, args.data)
    seeds = seeds_of(args)
    base = Path(args.out).resolve() / args.data
    runs_dir = base / "runs"
    todo = pending(rows, seeds, runs_dir)
    table_runs = [(r.row, s) for r in rows for s in seeds]
    finished = [f"{row}/seed{s}" for row, s in table_runs if s not in todo.get(row, [])]
    code = 0
    if finished:
        print(f"reproduce: finished runs kept: {', '.join(dict.fromkeys(finished))}", flush=True)
    if todo and not args.aggregate_only:
        if args.backbone and args.backbone != "scratch":
            check_backbone(args.backbone)
        check_finetune(args, todo)
        if args.videos_file:
            read_video_list(args.videos_file)
        if args.data_root is not None and not Path(args.data_root).is_dir():
            raise ReproduceError(f"--data-root {args.data_root}: no such folder (DATA_ROOT=... "
                                 f"for make)")
        if args.launcher == "slurm":
            code = run_slurm_sweeps(args, todo, runs_dir, table_runs)
        else:
            code = run_sweeps(args, todo, runs_dir, table_runs)
    title, notes = table_title(args)
    paths = aggregate(args.table, rows, seeds, runs_dir, base, title, notes)
    if args.logger == "wandb":  # the table, its figures and its page in one run of the group
        log_table_run(paths, wandb_group(args), f"table{args.table}", args.overrides,
                      [f"table{args.table}", args.data, "table"])
    print(Path(paths["md"]).read_text())
    print("written: " + ", ".join(str(p) for p in paths.values()))
    return code
