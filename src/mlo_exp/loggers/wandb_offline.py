"""Read what an offline W&B run recorded, without W&B's servers: check before ``wandb sync``.

An offline run directory (``<run_dir>/wandb/offline-run-<time>-<run_id>/``) holds
``run-<run_id>.wandb``: W&B's record log in LevelDB's log format (a 7-byte header
``:W&B`` + magic ``0xBEE1`` + version; then 32 KiB blocks of chunks, each chunk
``crc32 (4) | length (2, little endian) | type (1: full, 2: first, 3: middle, 4: last)``),
each record a ``wandb_internal_pb2.Record`` protobuf. Tables live as JSON files under
``files/media/table/``; history rows point at them.

``read_offline_run(path)`` returns an :class:`OfflineRun`: the run's identity, config,
history (one merged dict per step), summary, saved files, artifacts and exit code. A resumed
run leaves one ``offline-run-*`` folder per process, all with the same run id: given the run
directory, they are read oldest first and merged into one :class:`OfflineRun` (later values
win; the exit code is the last process's).
"""

from __future__ import annotations

import json
import struct
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_HEADER_LENGTH = 7
_BLOCK = 32 * 1024
_CHUNK_HEADER = struct.Struct("<IHB")
_FULL, _FIRST, _MIDDLE, _LAST = 1, 2, 3, 4


@dataclass
class OfflineRun:
    """What one offline W&B run recorded (see the module docstring)."""

    directory: Path
    run: dict[str, Any] = field(default_factory=dict)
    config: dict[str, Any] = field(default_factory=dict)
    history: dict[int, dict[str, Any]] = field(default_factory=dict)
    summary: dict[str, Any] = field(default_factory=dict)
    files: list[str] = field(default_factory=list)
    artifacts: list[dict[str, Any]] = field(default_factory=list)
    exit_code: int | None = None
    # Every offline-run folder read, oldest first (several after a resume).
    directories: list[Path] = field(default_factory=list)

    def table_rows(self, key: str) -> tuple[list[str], list[list[Any]]]:
        """Columns and rows of the table logged under ``key`` as the W&B UI shows it: for
        an incremental table every increment in step order, else the last one logged."""
        logged = [(step, row) for step, row in sorted(self.history.items())
                  if f"{key}/path" in row]
        if not logged:
            raise KeyError(f"no table {key!r} in {self.directory}")
        incremental = logged[-1][1].get(f"{key}/log_mode") == "INCREMENTAL"
        chosen = logged if incremental else logged[-1:]
        columns: list[str] = []
        rows: list[list[Any]] = []
        folders = self.directories[::-1] or [self.directory]  # newest first
        for _, row in chosen:
            relative = row[f"{key}/path"]
            path = next((d / "files" / relative for d in folders
                         if (d / "files" / relative).is_file()), folders[0] / "files" / relative)
            table = json.loads(path.read_text())
            columns = table["columns"]
            rows += table["data"]
        return columns, rows


def find_offline_runs(run_dir: Path) -> list[Path]:
    """The offline W&B run directories below a mlo-exp run directory, oldest first."""
    return sorted(Path(run_dir).glob("wandb/offline-run-*"))


def _run_id(folder: Path) -> str:
    """``offline-run-<date>_<time>-<run id>`` -> the run id."""
    return folder.name.removeprefix("offline-run-").split("-", 1)[-1]


def read_offline_run(directory: Path, wait_s: float = 10.0) -> OfflineRun:
    """Parse ``directory``: an ``offline-run-*`` folder, or a run dir holding the folders of
    one W&B run (one, or one per process after a resume: merged, see the module docstring).

    W&B's service process writes the record log a moment after ``run.finish()`` returns, so
    this waits up to ``wait_s`` seconds for the (last) run's exit record (a run that never
    finished is returned as it is after that, with ``exit_code`` None)."""
    directory = Path(directory)
    if directory.name.startswith("offline-run-"):
        return _read_one(directory, wait_s)
    found = find_offline_runs(directory)
    ids = sorted({_run_id(folder) for folder in found})
    if len(ids) != 1:
        raise FileNotFoundError(
            f"expected the offline W&B run(s) of one run under {directory}, found "
            f"{len(found)} folder(s) of {len(ids)} run id(s)"
            + (f" ({', '.join(ids)}); pass one offline-run-* folder" if ids else ""))
    merged = OfflineRun(found[-1])
    for index, folder in enumerate(found):  # oldest first: later values win
        part = _read_one(folder, wait_s if index == len(found) - 1 else 0.0)
        merged.run = {**merged.run, **{k: v for k, v in part.run.items() if v}}
        merged.config.update(part.config)
        for step, row in part.history.items():
            merged.history.setdefault(step, {}).update(row)
        merged.summary.update(part.summary)
        merged.files += [f for f in part.files if f not in merged.files]
        merged.artifacts += part.artifacts
        merged.exit_code = part.exit_code
        merged.directories.append(folder)
    return merged


def _read_one(directory: Path, wait_s: float) -> OfflineRun:
    """One ``offline-run-*`` folder (see :func:`read_offline_run`)."""
    from google.protobuf.message import DecodeError
    from wandb.proto import wandb_internal_pb2 as pb

    deadline = time.monotonic() + wait_s
    while True:
        result = OfflineRun(directory, directories=[directory])
        try:
            for log_file in directory.glob("run-*.wandb"):
                for raw in read_records(log_file):
                    record = pb.Record()
                    record.ParseFromString(raw)
                    _apply(result, record)
        except DecodeError:
            if time.monotonic() >= deadline:
                raise
            result.exit_code = None  # caught the service mid-write: read again
        if result.exit_code is not None or time.monotonic() >= deadline:
            return result
        time.sleep(0.1)


def read_records(path: Path) -> list[bytes]:
    """The raw records of a ``.wandb`` file (LevelDB log format, see module docstring)."""
    data = Path(path).read_bytes()
    if data[:4] != b":W&B":
        raise ValueError(f"{path} is not a W&B record log (header {data[:7]!r})")
    records: list[bytes] = []
    pending = b""
    position = _HEADER_LENGTH
    while position + _CHUNK_HEADER.size <= len(data):
        left_in_block = _BLOCK - position % _BLOCK
        if left_in_block < _CHUNK_HEADER.size:  # block trailer padding
            position += left_in_block
            continue
        _, length, kind = _CHUNK_HEADER.unpack_from(data, position)
        if position + _CHUNK_HEADER.size + length > len(data):
            break  # the writer is mid-chunk: what follows is not there yet
        position += _CHUNK_HEADER.size
        chunk = data[position:position + length]
        position += length
        if kind == _FULL:
            records.append(chunk)
        elif kind == _FIRST:
            pending = chunk
        elif kind == _MIDDLE:
            pending += chunk
        elif kind == _LAST:
            records.append(pending + chunk)
            pending = b""
        elif length == 0:  # zero padding at the end of the file
            break
    return records


def _key(item: Any) -> str:
    return item.key or "/".join(item.nested_key)


def _items(items: Any) -> dict[str, Any]:
    return {_key(item): json.loads(item.value_json) for item in items}


def _apply(result: OfflineRun, record: Any) -> None:
    kind = record.WhichOneof("record_type")
    if kind == "run":
        run = record.run
        result.run = {"id": run.run_id, "name": run.display_name, "project": run.project,
                      "entity": run.entity, "group": run.run_group, "job_type": run.job_type,
                      "tags": list(run.tags), "notes": run.notes}
        result.config.update(_items(run.config.update))
    elif kind == "config":
        result.config.update(_items(record.config.update))
    elif kind == "history":
        row = _items(record.history.item)
        step = int(row.get("_step", record.history.step.num))
        result.history.setdefault(step, {}).update(row)
    elif kind == "summary":
        result.summary.update(_items(record.summary.update))
    elif kind == "files":
        result.files += [file.path for file in record.files.files]
    elif kind == "artifact":
        artifact = record.artifact
        result.artifacts.append({"name": artifact.name, "type": artifact.type,
                                 "aliases": list(artifact.aliases),
                                 "files": [entry.path for entry in artifact.manifest.contents],
                                 "metadata": json.loads(artifact.metadata or "{}")})
    elif kind == "exit":
        result.exit_code = record.exit.exit_code
