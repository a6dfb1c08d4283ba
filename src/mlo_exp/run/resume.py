"""``resume=...``: find the checkpoint to continue from, and continue the run it belongs to.

Accepted values (``RunConfig.resume``):

* ``null`` (default): a new run.
* ``auto`` with a run directory named on the command line (``hydra.run.dir=DIR
  resume=auto``): that directory's newest valid checkpoint, or a new run there when ``DIR``
  holds no run yet; never a run elsewhere. ``DIR`` holding a run without a valid checkpoint
  is refused (nothing there is touched).
* ``auto`` otherwise: the newest valid checkpoint of (1) the directory Hydra gave this
  process, when it already holds ``checkpoints/``, else (2) the run
  directory under the outputs root (``$MLO_OUTPUTS``, else ``./outputs``) whose checkpoint
  log was written last, among those whose shape, ring, coefficients, agent and seed match
  this run's config and that hold a valid checkpoint. When there is none, a new run starts
  (so ``resume=auto`` can be put on every launch of a job that may be killed). A run
  directory another live process holds (:class:`RunLock`) is passed over, so parallel sweep
  jobs never continue the same run.
* a path to a ``.pt`` file: that checkpoint (its run directory is two levels up).
* a path to a run directory: its newest valid checkpoint.
* a run_id: the run directory under the outputs root whose ``run.json`` has that id.

"Newest valid" walks the log's kept entries from the highest episode down (plus checkpoint
files the log does not list yet: a crash between the rename and the log write); a file that
is missing, whose sha256 differs from the log, that fails to load, or whose pickle would run
code is skipped with a warning naming it. An explicitly named ``.pt`` file that is bad is an
error, as is a checkpoint for another shape or agent (:func:`checkpoint.check_compatible`).

A resumed run keeps its run_id, run name and start time, adds the checkpoint's
``run_duration_s`` to its clock, continues in the original run directory and appends to its
files; rows of ``metrics.jsonl`` / ``episodes.csv`` after the checkpoint's episode (played
after the last save and lost with the crash) are dropped, since they are played again.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import shlex
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from mlo_exp.io import atomic_write_text
from mlo_exp.run.checkpoint import (
    CHECKPOINT_DIR,
    CHECKPOINT_GLOB,
    LOG_NAME,
    CheckpointError,
    CheckpointLog,
    _episode_of,
    check_compatible,
    config_identity,
    load_checkpoint,
)
from mlo_exp.run_context import RunContext
from mlo_exp.run_files import START_UP_FILES, RunLock, holds_a_run, outputs_root

log = logging.getLogger("mlo_exp")


@dataclass
class ResumePoint:
    """A loaded, checked checkpoint and the run directory it continues."""

    path: Path
    payload: dict[str, Any]
    run_dir: Path
    skipped: list[str] = field(default_factory=list)
    lock: RunLock | None = None

    @property
    def episode(self) -> int:
        return int(self.payload["episode"])

    def run_context(self) -> RunContext:
        """The original run's identity, its clock continued from the checkpoint."""
        p = self.payload
        return RunContext(p["run_id"], p["run_name"], self.run_dir, int(p["seed"]),
                          p["started_at"], start_time=time.time(),
                          time_offset_s=float(p["run_duration_s"]), job_num=p.get("job_num"),
                          overrides=list(p.get("overrides") or []))


# -- resolving -------------------------------------------------------------------------
def resolve(value: str, process_dir: Path, config: dict[str, Any],
            explicit_dir: bool = False) -> ResumePoint | None:
    """The checkpoint ``resume=value`` names (see the module docstring); None: start anew.
    ``explicit_dir``: ``process_dir`` was named on the command line (``hydra.run.dir``)."""
    value = str(value)
    if value == "auto" and explicit_dir:
        return _resolve_auto_in(process_dir, config)
    if value == "auto":
        return _resolve_auto(process_dir, config)
    point = _resolve_named(value, config)
    check_compatible(point.payload, config, point.path)
    point.lock = _lock_or_fail(point.run_dir)
    return point


def _lock_or_fail(run_dir: Path) -> RunLock:
    lock = RunLock(run_dir)
    if not lock.acquire():
        raise CheckpointError(f"run directory {run_dir} is in use by another process "
                              f"(pid in {lock.path}); resume it once that process has ended")
    return lock


def _resolve_named(value: str, config: dict[str, Any]) -> ResumePoint:
    path = Path(value).expanduser()
    if path.suffix == ".pt" or path.is_file():
        run_dir = path.resolve().parent.parent
        entry = _log_entry(run_dir, path.name)
        payload = load_checkpoint(path, entry.get("sha256") if entry else None)
        return ResumePoint(path, payload, run_dir)
    if path.is_dir():
        point = newest_valid(path)
        if point is None:
            raise CheckpointError(f"resume={value}: {path} holds no valid checkpoint "
                                  f"(looked in {path / CHECKPOINT_DIR})")
        return point
    run_dir = find_run_by_id(value)
    point = newest_valid(run_dir)
    if point is None:
        raise CheckpointError(f"resume={value}: run directory {run_dir} holds no valid "
                              "checkpoint")
    return point


def _resolve_auto(process_dir: Path, config: dict[str, Any]) -> ResumePoint | None:
    """See the module docstring; run directories another process holds are passed over."""
    candidates = []
    if (process_dir / CHECKPOINT_DIR).is_dir():
        candidates.append(process_dir)
    else:
        root = outputs_root()
        wanted = {**config_identity(config), "seed": config.get("seed")}
        logs = sorted(root.glob(f"**/{CHECKPOINT_DIR}/{LOG_NAME}") if root.is_dir() else [],
                      key=lambda p: p.stat().st_mtime, reverse=True)
        for log_path in logs:
            run_log = CheckpointLog.read(log_path)
            if run_log is None:
                continue
            found = {**run_log.data.get("identity", {}), "seed": run_log.data.get("seed")}
            if found == wanted:
                candidates.append(log_path.parent.parent)
    for run_dir in candidates:
        lock = RunLock(run_dir)
        if not lock.acquire():
            log.info("resume=auto: %s is in use by another process; passed over", run_dir)
            continue
        point = newest_valid(run_dir)
        if point is not None:
            check_compatible(point.payload, config, point.path)
            point.lock = lock
            return point
        lock.release()
    log.info("resume=auto: no valid checkpoint of a run with this config under %s; "
             "starting a new run", outputs_root().resolve())
    return None


def _resolve_auto_in(run_dir: Path, config: dict[str, Any]) -> ResumePoint | None:
    """``resume=auto`` in a directory named on the command line: its run, or a new one."""
    if not holds_a_run(run_dir):
        log.info("resume=auto: %s holds no run yet; starting a new run there", run_dir)
        return None
    lock = _lock_or_fail(run_dir)
    refused: list[str] = []
    point = newest_valid(run_dir, refused)
    if point is None:
        lock.release()
        what = ("; ".join(refused[:5]) + (f"; and {len(refused) - 5} more"
                                          if len(refused) > 5 else "")
                if refused else f"no checkpoint file in {run_dir / CHECKPOINT_DIR}")
        raise CheckpointError(
            f"resume=auto: {run_dir} holds a run but no valid checkpoint to continue from. "
            f"Refused: {what}. Nothing was changed. Accepted: a directory with a valid "
            "checkpoint, or an empty or new hydra.run.dir")
    check_compatible(point.payload, config, point.path)
    point.lock = lock
    return point


def find_run_by_id(run_id: str) -> Path:
    """The run directory under :func:`outputs_root` whose ``run.json`` holds ``run_id``."""
    root = outputs_root()
    for run_json in sorted(root.glob("**/run.json")) if root.is_dir() else []:
        try:
            if json.loads(run_json.read_text(encoding="utf-8")).get("run_id") == run_id:
                return run_json.parent
        except (OSError, ValueError):
            continue
    raise CheckpointError(
        f"resume={run_id}: no run with that run_id under {root.resolve()} (set MLO_OUTPUTS to "
        "the outputs root it ran under); accepted: auto, a run_id, a run directory or a .pt "
        "checkpoint file")


def newest_valid(run_dir: Path, refused: list[str] | None = None) -> ResumePoint | None:
    """The newest checkpoint of ``run_dir`` that loads, matches its log and makes sense
    (:func:`~mlo_exp.run.checkpoint.check_sense`), so a bad newest one falls back to the
    previous good one; bad ones are skipped with a warning naming the file, and their
    reasons appended to ``refused`` when given."""
    directory = Path(run_dir) / CHECKPOINT_DIR
    run_log = CheckpointLog.read(directory / LOG_NAME)
    entries = run_log.kept() if run_log else []
    listed = {e["file"] for e in run_log.entries} if run_log else set()
    unlisted = [{"file": p.name, "episode": _episode_of(p), "sha256": None}
                for p in directory.glob(CHECKPOINT_GLOB) if p.name not in listed]
    candidates = sorted(entries + unlisted, key=lambda e: e["episode"], reverse=True)
    skipped = []
    for entry in candidates:
        path = directory / entry["file"]
        try:
            payload = load_checkpoint(path, entry.get("sha256"))
        except CheckpointError as error:
            log.warning("skipping checkpoint %s: %s", path, error)
            skipped.append(str(path))
            if refused is not None:
                refused.append(str(error).removeprefix(f"checkpoint {path} "))
                refused[-1] = f"{entry['file']} ({refused[-1]})"
            continue
        return ResumePoint(path, payload, Path(run_dir).resolve(), skipped)
    return None


def _log_entry(run_dir: Path, name: str) -> dict[str, Any] | None:
    run_log = CheckpointLog.read(run_dir / CHECKPOINT_DIR / LOG_NAME)
    return run_log.entry(name) if run_log else None


# -- continuing in the original run directory ------------------------------------------
def adopt_run_dir(point: ResumePoint, process_dir: Path) -> None:
    """Continue in ``point.run_dir``: the log file handlers Hydra opened in this process'
    own directory append to the run's ``train.log`` instead, and that directory is removed
    when it holds nothing but Hydra's start-up files."""
    run_dir = point.run_dir
    if process_dir.resolve() == run_dir:
        return
    root = logging.getLogger()
    for handler in list(root.handlers):
        if isinstance(handler, logging.FileHandler) and \
                Path(handler.baseFilename).parent == process_dir.resolve():
            replacement = logging.FileHandler(run_dir / Path(handler.baseFilename).name, "a")
            replacement.setFormatter(handler.formatter)
            replacement.setLevel(handler.level)
            root.removeHandler(handler)
            handler.close()
            root.addHandler(replacement)
    if process_dir.is_dir() and {p.name for p in process_dir.iterdir()} <= START_UP_FILES:
        shutil.rmtree(process_dir, ignore_errors=True)


def trim_run_files(run_dir: Path, episode: int) -> int:
    """Drop rows after ``episode`` (and a torn last line) from ``metrics.jsonl`` and
    ``episodes.csv``; returns how many metric rows were dropped."""
    dropped = 0
    metrics = run_dir / "metrics.jsonl"
    if metrics.is_file():
        keep = []
        lines = metrics.read_text(encoding="utf-8").splitlines(keepends=True)
        for line in lines:
            try:
                row = json.loads(line) if line.endswith("\n") else None
            except ValueError:
                row = None
            if isinstance(row, dict) and int(row.get("episode", 0)) <= episode:
                keep.append(line)
        dropped = len(lines) - len(keep)
        if dropped:
            atomic_write_text(metrics, "".join(keep))
    table = run_dir / "episodes.csv"
    if table.is_file():
        lines = table.read_text(encoding="utf-8").splitlines(keepends=True)
        keep = lines[:1]
        for line in lines[1:]:
            fields = next(csv.reader([line]), [])
            if line.endswith("\n") and len(fields) > 1 and fields[1].isdigit() \
                    and int(fields[1]) <= episode:
                keep.append(line)
        if len(keep) != len(lines):
            atomic_write_text(table, "".join(keep))
    return dropped


def resume_command(overrides: list[str], run_id: str, run_dir: Path | None = None) -> str:
    """The command line that continues this run: the same overrides, then
    ``hydra.run.dir=<run dir> resume=auto`` when ``run_dir`` (a directory named on the
    command line) is given, else ``resume=<run_id>`` under the same outputs root."""
    kept = [o for o in overrides if o.split("=", 1)[0].lstrip("+~") != "resume"]
    if run_dir is not None:
        words = ["mlo-train", *kept, f"hydra.run.dir={Path(run_dir).resolve()}", "resume=auto"]
    else:
        words = ["mlo-train", *kept, f"resume={run_id}"]
    prefix = ""
    if os.environ.get("MLO_OUTPUTS") and run_dir is None:
        prefix = f"MLO_OUTPUTS={shlex.quote(str(Path(os.environ['MLO_OUTPUTS']).resolve()))} "
    return prefix + " ".join(shlex.quote(w) for w in words)
