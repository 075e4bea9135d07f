"""The index of a dataset folder: parsed by its layout (:mod:`stsanet.data.layouts`) and cached
as JSON (``$STSANET_CACHE_DIR`` or ``~/.cache/stsanet``), keyed by dataset, root and options,
and reused while no folder of the layout has changed (directory mtimes)."""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path

from stsanet.atomic import write_text_atomic
from stsanet.data.layouts import (DATASETS, DatasetIndex, LayoutError, VideoRecord, parse_diem,
                                  parse_dhf1k, parse_synthetic, parse_training_testing)

INDEX_FORMAT = 1


def _cache_dir() -> Path:
    return Path(os.environ.get("STSANET_CACHE_DIR") or Path.home() / ".cache" / "stsanet")


def _signature(records: list[VideoRecord]) -> list:
    """Mtimes of every folder (and video file) the index was built from."""
    folders: set[Path] = set()
    for record in records:
        # The frame source and its parents catch changed frames and added/removed videos.
        folders.update([record.frames_path, record.frames_path.parent])
        for paths in (record.maps, record.fixations):
            for path in paths[:1] + paths[-1:]:
                if path is not None:
                    folders.update([path.parent, path.parent.parent, path.parent.parent.parent])
    stamps = []
    for folder in sorted(folders):
        try:
            stamps.append([str(folder), folder.stat().st_mtime_ns])
        except OSError:
            stamps.append([str(folder), None])
    return stamps


def _to_json(index: DatasetIndex) -> dict:
    videos = []
    for record in index.videos:
        entry = asdict(record)
        entry["frames_path"] = str(record.frames_path)
        entry["maps"] = [None if p is None else str(p) for p in record.maps]
        entry["fixations"] = [None if p is None else str(p) for p in record.fixations]
        videos.append(entry)
    return {"format": INDEX_FORMAT, "dataset": index.dataset, "root": str(index.root),
            "videos": videos, "signature": _signature(index.videos)}


def _from_json(data: dict) -> DatasetIndex:
    videos = []
    for entry in data["videos"]:
        entry = dict(entry)
        entry["frames_path"] = Path(entry["frames_path"])
        entry["maps"] = [None if p is None else Path(p) for p in entry["maps"]]
        entry["fixations"] = [None if p is None else Path(p) for p in entry["fixations"]]
        videos.append(VideoRecord(**entry))
    return DatasetIndex(data["dataset"], Path(data["root"]), videos)


def _cache_file(dataset: str, root: Path, options: dict) -> Path:
    key = json.dumps([dataset, str(root), sorted(options.items())])
    return _cache_dir() / f"index-{dataset}-{hashlib.sha1(key.encode()).hexdigest()[:16]}.json"


def build_index(dataset: str, root: str | os.PathLike, use_cache: bool = True, **options) -> DatasetIndex:
    """Parse ``root`` as ``dataset`` (one of :data:`DATASETS`) into a :class:`DatasetIndex`."""
    if dataset not in DATASETS:
        raise ValueError(f"unknown dataset {dataset!r}; choose one of {', '.join(DATASETS)}")
    if root is None or str(root) in ("", "???"):
        raise LayoutError("data.root is not set: pass data.root=/path/to/the/dataset")
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise LayoutError(f"{root}: data.root does not exist or is not a folder")
    cache = _cache_file(dataset, root, options)
    if use_cache and cache.is_file():
        try:
            data = json.loads(cache.read_text())
            if data.get("format") == INDEX_FORMAT:
                index = _from_json(data)
                if _signature(index.videos) == data["signature"]:
                    return index
        except (OSError, ValueError, KeyError, TypeError):
            pass  # a stale or damaged cache is rebuilt
    if dataset == "dhf1k":
        records = parse_dhf1k(root, **options)
    elif dataset in ("hollywood2", "ucf"):
        records = parse_training_testing(root, dataset)
    elif dataset == "diem":
        records = parse_diem(root)
    else:
        records = parse_synthetic(root)
    if not records:
        raise LayoutError(f"{root}: no videos found for the {dataset} layout")
    index = DatasetIndex(dataset, root, records)
    if use_cache:
        try:
            write_text_atomic(cache, json.dumps(_to_json(index)))
        except OSError:
            pass  # caching only saves time
    return index
