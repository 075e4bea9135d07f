"""make reproduce-table3..6: the paper's ablations (section IV-E), trained over seeds, scored with
the benchmark protocol, compared with "ours" by a paired bootstrap, written as a table.

    python -m stsanet.cli.reproduce --table 3                        # pipeline check, synthetic data
    python -m stsanet.cli.reproduce --table 4 --data dhf1k --data-root /data/DHF1K \\
        --backbone /weights/S3D_kinetics400.pt --seeds 3 --launcher slurm --gpus-per-node 4 \\
        --partition gpu --account myproj --time-min 1440
    python -m stsanet.cli.reproduce --table 3 --launcher slurm --gpus-per-node 0 --tasks 2 \\
        --partition cpu --cpus-per-task 2 --mem-gb 8                  # CPU jobs: gloo DDP
    python -m stsanet.cli.reproduce --table 6 --data ucf --data-root /data/ucf   # fine-tunes from
                                                                  # the DHF1K sweep's same row
    python -m stsanet.cli.reproduce --table 3 --aggregate-only       # table from what finished

Rows are the files of ``stsanet/experiments/ablation/`` (``+ablation=<row>``), the paper's numbers
``stsanet/experiments/paper_numbers.csv``. Each row x seed is one run (one Hydra job; one SLURM job
running DDP over its GPUs, or over ``--tasks`` CPU processes with ``--gpus-per-node 0``, with
``--launcher slurm``) in ``<out>/<data>/runs/<row>/seed<N>/``.
A run trains, tests, and then scores its weights through the predict route and the eval route
(:mod:`stsanet.runs.scoring`): by default every frame of every evaluation video at the original
resolution with the MATLAB-faithful metrics, s-AUC included (``--protocol official``: the
official validation sampling). Its ``results.json`` holds the scores (pooled and per video), the
steps, the wall time, the global batch and the loss traces, whatever logger was used.

A run whose ``results.json`` holds a score is finished and never launched again; an interrupted
run resumes from its ``last.ckpt`` (``ckpt_path=auto``), which is also how a preempted or
timed-out SLURM job continues after submitit requeues it (the signal saves ``last.ckpt`` first:
:mod:`stsanet.lit.preemption`). On SLURM the sweep is followed until none of its jobs is pending
or running; a failed or cancelled run is named in the table with its SLURM state and log, and
the same command submits only what did not finish. The table is written from whatever
finished: each cell is the mean ± std over seeds, the CSV keeps every seed, and every row is
compared with "ours" by a paired bootstrap over the evaluation videos (per-video scores
averaged over seeds), marking differences that are within noise.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from stsanet.atomic import check_folder_place
from stsanet.cli.boundary import CommandParser, command
from stsanet.runs.reproduce import (BACKBONE_FORMATS, FINETUNED, REAL_DATASETS, REAL_SEEDS,
                                    SYNTHETIC_PROTOCOL, SYNTHETIC_SEEDS, SYNTHETIC_STEPS,
                                    SYNTHETIC_VAL_STRIDE, reproduce)
from stsanet.runs.table import PAPER_GLOBAL_BATCH, TABLES


NAME = "reproduce"


def _at_least(minimum: int):
    def parse(text: str) -> int:
        value = int(text)
        if value < minimum:
            raise argparse.ArgumentTypeError(f"must be >= {minimum}, got {text}")
        return value

    parse.__name__ = "int"  # argparse names the type in its messages
    return parse


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """The arguments, each value in range and the output folder writable (the files and
    folders they name are checked by :func:`stsanet.runs.reproduce.reproduce` before any run)."""
    parser = CommandParser(prog=f"python -m stsanet.cli.{NAME}",
                           description=__doc__.splitlines()[0])
    parser.add_argument("--table", type=int, required=True, choices=TABLES)
    parser.add_argument("--data", default="synthetic",
                        help="synthetic (a CPU-sized pipeline check) or dhf1k, hollywood2, ucf, "
                             "diem")
    parser.add_argument("--data-root", default=None)
    parser.add_argument("--backbone", default=None,
                        help="S3D Kinetics-400 weights for real data, or 'scratch' to opt out")
    parser.add_argument("--finetune-from", default=None,
                        help="hollywood2/ucf/diem: 'auto' (default: the DHF1K sweep's same row "
                             "and seed in --out), a DHF1K checkpoint, or 'scratch'")
    parser.add_argument("--protocol", default=None, choices=("benchmark", "official"),
                        help="benchmark: every frame of every evaluation video (real-data "
                             "default); official: the official validation sampling (synthetic "
                             f"default, stride {SYNTHETIC_VAL_STRIDE})")
    parser.add_argument("--first-frames", type=_at_least(1), default=None,
                        help="Table II (i): score the first N frames of each video (DIEM: 300)")
    parser.add_argument("--videos-file", default=None,
                        help="Table II (ii): score only the videos listed (one name per line)")
    parser.add_argument("--seeds", type=_at_least(1), default=None,
                        help=f"runs per row (default {SYNTHETIC_SEEDS} synthetic, "
                             f"{REAL_SEEDS} real data)")
    parser.add_argument("--seed", type=_at_least(0), default=12345, help="first seed; then +1, +2, ...")
    parser.add_argument("--steps", type=_at_least(1), default=None,
                        help=f"optimiser steps per run (synthetic default {SYNTHETIC_STEPS}; "
                             "real data: the paper schedule unless given)")
    parser.add_argument("--global-batch", type=_at_least(1), default=None,
                        help=f"clips per optimiser step over all devices (real data default "
                             f"{PAPER_GLOBAL_BATCH}, the paper's)")
    parser.add_argument("--launcher", default="basic",
                        choices=("basic", "submitit_local", "slurm"))
    parser.add_argument("--devices", "--gpus-per-node", type=_at_least(0), default=1,
                        dest="devices",
                        help="GPUs per node of each run (DDP over them); 0: CPU jobs (SLURM: no "
                             "GPU requested, DDP over --tasks processes with gloo)")
    parser.add_argument("--tasks", type=_at_least(1), default=None,
                        help="with --gpus-per-node 0: DDP processes per node (default 1)")
    parser.add_argument("--nodes", type=_at_least(1), default=1)
    parser.add_argument("--partition", default=None)
    parser.add_argument("--account", default=None)
    parser.add_argument("--qos", default=None)
    parser.add_argument("--constraint", default=None, help="SLURM node features (--constraint)")
    parser.add_argument("--cpus-per-task", type=_at_least(1), default=None,
                        help="SLURM CPUs per task (default: conf/hydra/launcher/slurm*.yaml)")
    parser.add_argument("--mem-gb", type=_at_least(1), default=None,
                        help="SLURM memory per node in GB (default: the launcher config's)")
    parser.add_argument("--sbatch", action="append", default=[], metavar="KEY=VALUE",
                        help="any other sbatch option, e.g. --sbatch reservation=r1 --sbatch "
                             "exclusive (repeatable)")
    parser.add_argument("--time-min", type=_at_least(1), default=None,
                        help="SLURM time limit per job (minutes); the job requeues past it")
    parser.add_argument("--sync-bn", action="store_true", help="SyncBatchNorm under DDP")
    parser.add_argument("--trainer", default=None, help="trainer config, e.g. ddp or gpu")
    parser.add_argument("--logger", default=None, choices=("csv", "wandb", "none"))
    parser.add_argument("--out", default=str(Path(os.environ.get("STSANET_ROOT", "."))
                                             / "outputs" / "reproduce"))
    parser.add_argument("--aggregate-only", action="store_true")
    parser.add_argument("--progress-every", type=float, default=30.0, metavar="SECONDS",
                        help="while a sweep runs, print which runs are done, running (step, "
                             "ETA) and pending: on every change, else this often (0: never)")
    parser.add_argument("overrides", nargs="*", help="extra Hydra overrides (after --)")
    args = parser.parse_args(argv)
    if args.data != "synthetic":
        if not args.data_root:
            parser.error(f"--data {args.data} needs --data-root (DATA_ROOT=... for make)")
        if args.data not in REAL_DATASETS:
            parser.error(f"--data must be synthetic or one of {', '.join(REAL_DATASETS)}")
        needs_backbone = args.data not in FINETUNED or args.finetune_from == "scratch"
        if needs_backbone and not args.backbone and not args.aggregate_only:
            parser.error(
                f"--data {args.data} trains from Kinetics-400 S3D weights as the paper did: pass "
                f"--backbone /path/S3D_kinetics400.pt (BACKBONE=... for make; formats that load: "
                f"{BACKBONE_FORMATS}), or --backbone scratch to train from scratch (the table "
                "then says so)")
        if args.global_batch is None:
            args.global_batch = PAPER_GLOBAL_BATCH
    if args.data == "synthetic" and args.steps is None:
        args.steps = SYNTHETIC_STEPS
    if args.protocol is None:
        args.protocol = SYNTHETIC_PROTOCOL if args.data == "synthetic" else "benchmark"
    if args.seeds is None:
        args.seeds = SYNTHETIC_SEEDS if args.data == "synthetic" else REAL_SEEDS
    if args.devices > 0 and args.tasks not in (None, args.devices):
        parser.error(f"--tasks {args.tasks}: GPU jobs run one task per GPU (--gpus-per-node "
                     f"{args.devices}); --tasks is for CPU jobs (--gpus-per-node 0)")
    if args.tasks is None:
        args.tasks = args.devices or 1
    bad = [flag for flag in args.sbatch
           if not re.fullmatch(r"[A-Za-z][\w-]*", flag.partition("=")[0])]
    if bad:
        parser.error(f"--sbatch {bad[0]}: give KEY=VALUE (or KEY for a flag), e.g. "
                     "reservation=r1")
    check_folder_place(args.out, "--out")
    return args


@command(NAME)
def main(argv: list[str] | None = None) -> int:
    return reproduce(parse_args(argv))


if __name__ == "__main__":
    sys.exit(main())
