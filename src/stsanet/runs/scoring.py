"""A trained network's benchmark score: the predict route, then the eval route.

This is how a row of ``make reproduce-table<N>`` is scored (SPEC section 7, METRICS.md section
1.1). The network predicts the evaluation videos with the sliding window
(:class:`stsanet.runs.predictor.SlidingWindowPredictor`: edge frames padded, maps resized bilinearly to
the video's original resolution and written as 8-bit PNGs); the PNGs are scored with the
MATLAB-faithful metrics, s-AUC included, against the original-resolution maps and fixations
(:func:`stsanet.metrics.evaluate.evaluate_items`). Two protocols:

``benchmark``  every frame of every evaluation video (the benchmark's protocol). A middle- and a
               last-supervised network are scored on exactly the same frames.
``official``   the official validation sampling: the labelled frame of each non-overlapping clip
               (stride ``val_stride``, 32 on DHF1K) only. Middle and last supervision label
               different frames of a clip, so their frames differ.

Table II's DIEM protocols combine with either: ``first_frames=300`` (the first 300 frames of each
video), ``videos=[...]`` (a user-given subset), neither (all test videos).

Everything is resumable: predicted maps that exist are not predicted again and scored frames
are checkpointed (``frames.partial.jsonl``). The scores (frame-pooled and per video, for the
paired tests of :mod:`stsanet.runs.reproduce`) come back as a dict for ``results.json``.

Under DDP (a ``torch.distributed`` process group, as Lightning leaves it after fitting) every
rank predicts a share of the evaluation videos into ``out_dir`` (which all ranks must see, as a
run's output folder is), the ranks meet, and rank 0 scores every frame in ``workers`` processes.
The scores are those of a one-rank run.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from stsanet.data.clips import strided_labels
from stsanet.runs.evaluate import (EvalConfigError, items_from_index, select_protocol,
                                   workers_from_config)
from stsanet.metrics.evaluate import EvalSettings, evaluate_items
from stsanet.metrics.eval_results import write_results
from stsanet.runs.examples import EXAMPLES_DIR, keep_examples
from stsanet.runs.predictor import PredictOptions, SlidingWindowPredictor

PROTOCOLS = ("benchmark", "official")
CHECKPOINT_NAME = "frames.partial.jsonl"


@dataclass
class ScoreOptions:
    protocol: str = "benchmark"
    split: str = "val"
    val_stride: int = 32  # official protocol only
    first_frames: int | None = None  # Table II (i)
    videos: list[str] | None = None  # Table II (ii)
    batch_windows: int = 4
    keep_predictions: bool = False
    # keep the maps of a few example frames for the table's comparison figure (runs/examples.py)
    examples: bool = True
    # inference route of the predictor (stsanet.runs.predictor.PredictOptions): torch.compile
    # true | false | auto (where the windows to predict pay for the compile)
    compile: bool | str = "auto"
    # processes that score the frames; None: every CPU this process may use
    workers: int | None = None
    # EvalSettings of the eval route (the DHF1K driver's defaults)
    eval_seed: int = 0
    n_splits: int = 100

    def __post_init__(self):
        if self.protocol not in PROTOCOLS:
            raise EvalConfigError(f"score.protocol={self.protocol!r} is unknown; choose one of "
                                  f"{list(PROTOCOLS)}")
        if not isinstance(self.compile, bool) and self.compile != "auto":
            raise EvalConfigError(f"score.compile={self.compile!r} is unknown; choose true, false "
                                  f"or auto")

    def describe(self, clip_len: int = 32) -> str:
        if self.protocol == "benchmark":
            text = ("every frame of every evaluation video, sliding window at the original "
                    "resolution, MATLAB-faithful metrics (s-AUC included)")
        else:
            text = (f"official validation sampling (the labelled frame of each clip at stride "
                    f"{self.val_stride}), bilinear to the ground-truth size, MATLAB-faithful "
                    "metrics")
        if self.first_frames is not None:
            text += f"; first {self.first_frames} frames of each video"
        if self.videos is not None:
            text += f"; {len(self.videos)}-video subset"
        return text + f" (split {self.split})"


def _frame_filter(video, options: ScoreOptions, clip_len: int, supervision: str) -> list[int] | None:
    """0-based frames of one video to predict, or None for all."""
    frames = None
    if options.protocol == "official":
        frames = strided_labels(video.num_frames, options.val_stride, clip_len, supervision)
    if options.first_frames is not None:
        frames = [t for t in (frames if frames is not None else range(video.num_frames))
                  if t < int(options.first_frames)]
    return frames


def _rank_and_world() -> tuple[int, int]:
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def share_videos(videos: list, frames: dict[str, int], world: int) -> list[list]:
    """The videos each rank predicts: longest first to the rank with the fewest frames so far
    (every rank computes the same shares from the same list)."""
    shares: list[list] = [[] for _ in range(world)]
    load = [0] * world
    for video in sorted(videos, key=lambda v: (-frames[v.name], v.name)):
        rank = load.index(min(load))
        shares[rank].append(video)
        load[rank] += frames[video.name]
    return shares


def _meet(rank: int, world: int, failure: BaseException | None) -> None:
    """Every rank waits until all have predicted their share; a rank that failed re-raises its
    error, the others name it."""
    if world == 1:
        if failure is not None:
            raise failure
        return
    import torch.distributed as dist

    reports: list = [None] * world
    dist.all_gather_object(reports, None if failure is None else f"{type(failure).__name__}: {failure}")
    if failure is not None:
        raise failure
    failed = [(r, message) for r, message in enumerate(reports) if message is not None]
    if failed:
        raise RuntimeError(f"prediction for scoring failed on rank {failed[0][0]}: {failed[0][1]}")


def score_network(net: torch.nn.Module, index, options: ScoreOptions, out_dir: str | Path, *,
                  input_size, clip_len: int = 32, supervision: str = "middle",
                  device: torch.device | str = "cpu") -> dict[str, Any] | None:
    """Predict and score ``index``'s ``options.split`` into ``out_dir`` (see the module doc).

    Under DDP every rank must call it; rank 0 returns the scores, the other ranks None.
    """
    out_dir = Path(out_dir)
    pred_root = out_dir / "predictions"
    videos = index.split(options.split)
    if not videos:
        raise EvalConfigError(f"split={options.split!r} has no videos in {index.root}; "
                              f"available: {sorted(index.splits())}")
    if options.videos is not None:
        wanted = {str(v) for v in options.videos}
        unknown = sorted(wanted - {v.name for v in videos})
        if unknown:
            raise EvalConfigError(f"score.videos={unknown} are not videos of split "
                                  f"{options.split!r} in {index.root}")
        videos = [v for v in videos if v.name in wanted]
    rank, world = _rank_and_world()
    to_predict = {v.name: _frame_filter(v, options, clip_len, supervision) for v in videos}
    chosen = {name: None if frames is None else set(frames) for name, frames in to_predict.items()}
    counts = {v.name: v.num_frames if to_predict[v.name] is None else len(to_predict[v.name])
              for v in videos}
    share = share_videos(videos, counts, world)[rank]
    failure = None
    try:
        predictor = SlidingWindowPredictor(
            net, input_size, device,
            PredictOptions(clip_len=clip_len, supervision=supervision,
                           batch_windows=options.batch_windows, overlay=False, progress=False,
                           compile=options.compile),
            windows=sum(counts[v.name] for v in share))
        for video in share:
            predictor.predict_video(Path(video.frames_path), pred_root, name=video.name,
                                    frames=to_predict[video.name])
    except Exception as error:  # every rank must reach the meeting, or the others wait forever
        failure = error
    _meet(rank, world, failure)
    if rank != 0:
        return None

    items = items_from_index(index, options.split, pred_root)
    items = select_protocol(items, options.videos, options.first_frames)
    if options.protocol == "official":
        keep = set()
        for video in videos:
            for i, (saliency, fixation) in enumerate(zip(video.maps, video.fixations)):
                if i in chosen[video.name] and (saliency or fixation):
                    keep.add((video.name, Path(saliency if saliency is not None
                                                else fixation).stem))
        items = [item for item in items if (item.video, item.frame) in keep]
    items = [item for item in items if item.video in chosen]
    settings = EvalSettings(seed=options.eval_seed, n_splits=options.n_splits)
    results = evaluate_items(items, settings, progress=False,
                             checkpoint=out_dir / CHECKPOINT_NAME, workers=options.workers)
    write_results(results, out_dir)
    (out_dir / CHECKPOINT_NAME).unlink(missing_ok=True)
    if options.examples:
        keep_examples(predictor, videos, pred_root, out_dir / EXAMPLES_DIR,
                      scored=lambda video: _frame_filter(video, options, clip_len, "middle"))
    if not options.keep_predictions:
        shutil.rmtree(pred_root, ignore_errors=True)
    if results.errors:
        first = results.errors[0]
        raise EvalConfigError(f"{len(results.errors)} frames could not be scored, e.g. "
                              f"{first.get('video')}/{first.get('frame')}: {first.get('message')}")
    return {
        "protocol": options.protocol,
        "description": options.describe(clip_len),
        "split": options.split,
        "first_frames": options.first_frames,
        "videos": options.videos,
        "frames": len(results.frames),
        "scores": results.summary(),
        "per_video": {name: entry["scores"] for name, entry in results.per_video().items()},
        "eval_settings": results.settings,
    }


def score_from_config(cfg, net: torch.nn.Module, out_dir: str | Path,
                      device: torch.device | str = "cpu") -> dict[str, Any] | None:
    """:func:`score_network` with the run's data config and ``cfg.score`` (a train config);
    ``score.workers`` and ``score.compile`` choose the processes and the inference route."""
    from omegaconf import OmegaConf

    from stsanet.data.index import build_index

    node = OmegaConf.to_container(cfg.score, resolve=True)
    data = cfg.data
    options = ScoreOptions(
        protocol=str(node.get("protocol", "benchmark")),
        split=str(node.get("split") or data.val_split),
        val_stride=int(node.get("val_stride") or data.val_stride),
        first_frames=node.get("first_frames"),
        videos=[str(v) for v in node["videos"]] if node.get("videos") is not None else None,
        batch_windows=int(node.get("batch_windows", 4)),
        keep_predictions=bool(node.get("keep_predictions", False)),
        examples=bool(node.get("examples", True)),
        eval_seed=int(node.get("eval_seed", 0)),
        n_splits=int(node.get("n_splits", 100)),
        compile=node.get("compile", "auto"),
        workers=workers_from_config(node.get("workers")),
    )
    dataset = str(data.dataset)
    if "synthetic" in str(OmegaConf.select(cfg, "data._target_", default="")):
        from stsanet.data.synthetic import generate

        generate(data.root, data.size, data.generate_seed)
    index_options = data.get("index_options")
    index_options = OmegaConf.to_container(index_options, resolve=True) if index_options else {}
    index = build_index(dataset, data.root, **index_options)
    return score_network(net, index, options, out_dir, input_size=tuple(cfg.model.input_size),
                         clip_len=int(data.clip_len), supervision=str(data.supervision),
                         device=device)
