"""stsanet-compare: the maps of several models side by side on a few frames (the style of the
paper's Fig. 5): the frame, its ground truth with the fixations, and each model's map with its CC
on that frame. Frames: two fixed ones (the first and the last candidate) and those where the
models' per-frame CC differs most (see stsanet.runs.examples).

    stsanet-compare --data dhf1k --data-root /data/DHF1K ours=preds/ours unet=preds/unet
    stsanet-compare --data synthetic --data-root data/synthetic-demo-seed0 --output fig.png \\
        ours=outputs/reproduce/synthetic/runs/ours/seed12345/score/examples \\
        unet=outputs/reproduce/synthetic/runs/unet/seed12345/score/examples

Each model is LABEL=FOLDER (or FOLDER, labelled by its name) holding stsanet-predict's layout
(<video>/maps/0001.png) or one PNG per frame under <video>/ named as the ground truth's frames.
Writes the PNG and, beside it, a JSON with the shown frames and their CC per model.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stsanet.cli.boundary import CommandParser, command
from stsanet.runs.examples import MAX_CANDIDATES, SHOWN_DISAGREE, SHOWN_FIXED, compare_folders

NAME = "stsanet-compare"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = CommandParser(prog=NAME, description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("models", nargs="+", metavar="LABEL=FOLDER",
                        help="prediction folders, optionally labelled")
    parser.add_argument("--data", required=True,
                        help="the ground truth's layout: dhf1k, hollywood2, ucf, diem, synthetic")
    parser.add_argument("--data-root", required=True, help="the dataset folder")
    parser.add_argument("--split", default="val")
    parser.add_argument("--videos", nargs="*", default=None, help="only these videos")
    parser.add_argument("--output", default="comparison.png",
                        help="the figure (PNG); the shown frames' CC go beside it as .json")
    parser.add_argument("--title", default=None)
    parser.add_argument("--fixed", type=int, default=SHOWN_FIXED, choices=(0, 1, 2),
                        help="fixed frames shown: the first and the last candidate")
    parser.add_argument("--disagree", type=int, default=SHOWN_DISAGREE,
                        help="frames shown where the models' per-frame CC differs most")
    parser.add_argument("--max-candidates", type=int, default=MAX_CANDIDATES,
                        help="frames scored to find the disagreement, spread evenly over the "
                             "frames every model has")
    return parser.parse_args(argv)


@command(NAME)
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    path, records = compare_folders(**vars(args))
    for record in records:
        scores = ", ".join(f"{k} {v:.3f}" if v is not None else f"{k} —"
                           for k, v in record["cc"].items())
        print(f"{record['video']} frame {record['frame']} ({record['why']}): CC {scores}")
    print(f"written: {path} ({Path(path).with_suffix('.json')})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
