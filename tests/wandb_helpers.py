"""What wandb wrote for an offline run, read back from its transaction log (``run-<id>.wandb``)
with wandb's own record definitions (``wandb.proto.wandb_internal_pb2``). wandb 0.31 ships no
Python reader; the log is wandb's LevelDB-style record file: a 7-byte header (":W&B", magic
0xBEE1, version), then 32 KiB blocks of records, each with a 7-byte header (CRC-32, length,
type: full, first, middle, last)."""

from __future__ import annotations

import json
import struct
import zlib
from pathlib import Path

BLOCK = 32 * 1024
HEADER = 7
FULL, FIRST, MIDDLE, LAST = 1, 2, 3, 4


def records(path: Path):
    """The protobuf records of one .wandb file, in order (checksums verified)."""
    from wandb.proto import wandb_internal_pb2

    raw = Path(path).read_bytes()
    ident, magic, _ = struct.unpack("<4sHB", raw[:HEADER])
    assert ident == b":W&B" and magic == 0xBEE1, f"{path}: not a wandb transaction log"
    position, pending = HEADER, b""
    while position + HEADER <= len(raw):
        if BLOCK - position % BLOCK < HEADER:  # a block's tail too short for a header
            position += BLOCK - position % BLOCK
            continue
        checksum, length, kind = struct.unpack("<IHB", raw[position:position + HEADER])
        if length == 0 and kind == 0:  # zero padding at the end
            break
        data = raw[position + HEADER:position + HEADER + length]
        assert zlib.crc32(data, zlib.crc32(bytes([kind]))) & 0xFFFFFFFF == checksum, \
            f"{path}: corrupt record at byte {position}"
        position += HEADER + length
        pending = data if kind in (FULL, FIRST) else pending + data
        if kind in (FULL, LAST):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record
            pending = b""


def _key(item) -> str:
    return item.key or ".".join(item.nested_key)


def read_run(run_folder: Path) -> dict:
    """An offline run folder (``.../wandb/offline-run-*``) as a dict: id, name, group, tags,
    job_type, config and summary (updates folded in order) and the history rows."""
    (log,) = Path(run_folder).glob("run-*.wandb")
    run = {"config": {}, "summary": {}, "history": []}
    for record in records(log):
        kind = record.WhichOneof("record_type")
        if kind == "run":
            r = record.run
            run.update(id=r.run_id, name=r.display_name, group=r.run_group, tags=list(r.tags),
                       job_type=r.job_type)
            for item in r.config.update:
                run["config"][_key(item)] = json.loads(item.value_json)
        elif kind == "config":
            for item in record.config.update:
                run["config"][_key(item)] = json.loads(item.value_json)
        elif kind == "summary":
            for item in record.summary.update:
                run["summary"][_key(item)] = json.loads(item.value_json)
        elif kind == "history":
            run["history"].append({_key(i): json.loads(i.value_json) for i in record.history.item})
    return run


def offline_runs(folder: Path) -> list[Path]:
    """The offline run folders under ``folder/wandb``."""
    return sorted(p for p in (Path(folder) / "wandb").glob("offline-run-*") if p.is_dir())
