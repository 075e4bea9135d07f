"""What a prediction folder was made from, so that a rerun continues only its own work.

stsanet-predict resumes by skipping frames whose maps exist. That is only right when the maps
came from the same input, checkpoint and settings, so each ``<output>/<video>/`` holds a
``source.json``: the input (resolved path, size, modification time, frame count), the
checkpoint (resolved path, size, modification time) and the settings that change the maps.
Before the model loads, every output folder is compared with what this run would write there:
the same source resumes, a different one (a changed input, another checkpoint, other settings,
or maps with no record) is refused by name, or replaced with ``overwrite=true``.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from stsanet.atomic import write_text_atomic
from stsanet.data.frames import IMAGE_SUFFIXES
from stsanet.errors import OutputPlaceError

MANIFEST = "source.json"
FORMAT = 1
# what stsanet-predict writes in a video's folder (removed by overwrite=true; nothing else is)
PREDICTION_FILES = ("maps", "float", "overlay.mp4", MANIFEST)


def file_identity(path: str | os.PathLike) -> dict[str, Any]:
    """Resolved path, size and modification time of a file, or of a folder of frames (the
    total size of its images and the newest modification time among them)."""
    path = Path(path).resolve()
    if path.is_dir():
        images = [p for p in path.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES]
        stats = [p.stat() for p in images]
        return {"path": str(path), "files": len(images), "size": sum(s.st_size for s in stats),
                "mtime_ns": max((s.st_mtime_ns for s in stats), default=0)}
    stat = path.stat()
    return {"path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}


def manifest(source: Path, num_frames: int, checkpoint: Path, settings: dict) -> dict:
    return {"format": FORMAT, "input": {**file_identity(source), "frames": int(num_frames)},
            "checkpoint": file_identity(checkpoint), "settings": settings}


def _difference(found: dict, wanted: dict) -> str:
    if found.get("input", {}).get("path") != wanted["input"]["path"]:
        return f"another input ({found.get('input', {}).get('path')})"
    if found.get("input") != wanted["input"]:
        return "an earlier version of this input (its size, time or frame count changed)"
    if found.get("checkpoint") != wanted["checkpoint"]:
        return f"another checkpoint ({found.get('checkpoint', {}).get('path')}, or this one " \
               f"before it changed)"
    changed = [f"{k}={found.get('settings', {}).get(k)}" for k in wanted["settings"]
               if found.get("settings", {}).get(k) != wanted["settings"][k]]
    return f"other settings ({', '.join(changed) or 'format'})"


def check_folder(folder: Path, wanted: dict, overwrite: bool) -> str:
    """'new', 'resume' or 'replace' for a video's output folder; raises OutputPlaceError when
    it holds another source's maps and ``overwrite`` is false."""
    if folder.is_file():
        raise OutputPlaceError(f"{folder} is a file, where this video's output folder goes; "
                               f"move it or choose another output=")
    if not folder.is_dir() or not any((folder / name).exists() for name in PREDICTION_FILES
                                       if name != MANIFEST):
        return "new"  # nothing predicted there yet (at most a record of an earlier attempt)
    record = folder / MANIFEST
    found = None
    if record.is_file():
        try:
            found = json.loads(record.read_text())
        except (OSError, ValueError):
            found = None
    if found == wanted:
        return "resume"
    if overwrite:
        return "replace"
    what = _difference(found, wanted) if isinstance(found, dict) else \
        f"files with no record of their source ({MANIFEST})"
    raise OutputPlaceError(f"{folder} holds maps of {what}, not of {wanted['input']['path']} "
                           f"with this checkpoint and settings; pass overwrite=true to predict "
                           f"them again there, or choose another output=")


def prepare_folder(folder: Path, wanted: dict, decision: str) -> None:
    """Clear a replaced folder's prediction files, then record the source (before any map)."""
    if decision in ("replace", "new"):
        for name in PREDICTION_FILES:
            target = folder / name
            if target.is_dir():
                shutil.rmtree(target)
            elif target.exists():
                target.unlink()
    if decision != "resume":
        write_text_atomic(folder / MANIFEST, json.dumps(wanted, indent=2))


def output_names(inputs: list[Path]) -> dict[Path, str]:
    """One output folder name per input: the file stem (as before), or, where two inputs share
    a stem (clip.mp4 and clip.avi, or a frame folder clip/), the full name with '.' as '_'."""
    stems: dict[str, list[Path]] = {}
    for path in inputs:
        stems.setdefault(path.stem if path.is_file() else path.name, []).append(path)
    names = {}
    for stem, paths in stems.items():
        for path in paths:
            names[path] = stem if len(paths) == 1 else path.name.replace(".", "_")
    if len(set(names.values())) != len(names):  # e.g. clip.mp4 beside a folder named clip_mp4
        names = {path: f"{path.name.replace('.', '_')}-{i}" for i, path in enumerate(inputs)}
    return names
