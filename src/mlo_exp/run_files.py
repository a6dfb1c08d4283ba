"""Where runs live and what their directories hold: one place for every name.

A run directory (``outputs/runs/<date>/<time>_<token>/``, or a sweep job's
``outputs/multirun/<date>/<time>_<token>/<job>/``) holds the files named here; see
docs/runs.md ("What a run writes") for their contents.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import shutil
from pathlib import Path
from typing import ClassVar

RUN_JSON = "run.json"
SUMMARY_JSON = "summary.json"
METRICS_JSONL = "metrics.jsonl"
EPISODES_CSV = "episodes.csv"
ALGORITHM_JSON = "algorithm.json"
TRAIN_LOG = "train.log"
LOCK_FILE = ".lock"
HYDRA_DIR = ".hydra"
JOB_STATUS_JSON = "job_status.json"
CHECKPOINT_DIR = "checkpoints"
BENCHMARK_DIR = "benchmark"

# What Hydra and the lock leave in a run directory before the run itself writes anything.
START_UP_FILES = frozenset({HYDRA_DIR, TRAIN_LOG, LOCK_FILE})


def outputs_root() -> Path:
    """The outputs root: ``$MLO_OUTPUTS`` when set and not empty, else ``./outputs``."""
    return Path(os.environ.get("MLO_OUTPUTS") or "outputs")


def holds_a_run(run_dir: Path) -> bool:
    """True when ``run_dir`` already holds a run's own files (not just start-up files)."""
    return (run_dir / RUN_JSON).is_file() or (run_dir / CHECKPOINT_DIR).is_dir()


def explicit_run_dir(overrides: list[str]) -> str | None:
    """The value of a ``hydra.run.dir=...`` override among ``overrides``, if any (values
    with interpolations are left to Hydra: None)."""
    from hydra.core.override_parser.overrides_parser import OverridesParser

    for text in overrides:
        if not text.lstrip("+~").startswith("hydra.run.dir="):
            continue
        try:
            (override,) = OverridesParser.create().parse_overrides([text])
            value = override.value()
        except Exception:  # a malformed override: Hydra itself reports it, with its rules
            return None
        return value if isinstance(value, str) and "${" not in value else None
    return None


MIN_FREE_BYTES = 1 << 20  # a run needs more, and Hydra's record (tens of KiB) fits in it


def check_writable(directory: Path) -> None:
    """Create ``directory`` (and parents), write and remove a small probe file there and
    check that its file system has ``MIN_FREE_BYTES`` free; raises
    :class:`~mlo_exp.io.WriteError` naming the directory when that fails (read-only, full or
    nearly full, not a directory), so a run refuses to start instead of failing
    half-way (or in Hydra's own record, with a traceback). Folders it created are removed
    again when it fails."""
    from mlo_exp.io import WriteError, ensure_directory, short_write_error, writing

    probe = Path(directory) / f".write-probe-{os.getpid()}"
    created = _missing_parents(Path(directory))
    try:
        ensure_directory(directory, for_file=probe)
        with writing(directory):
            fd = os.open(probe, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            try:
                written = os.write(fd, b"mlo-exp write probe\n" * 8)
                if written != 160:
                    raise short_write_error(fd, written, 160)
            finally:
                os.close(fd)
                with contextlib.suppress(OSError):
                    probe.unlink()
        space = os.statvfs(directory)
        free = space.f_bavail * space.f_frsize
        if free < MIN_FREE_BYTES:
            raise WriteError(errno.ENOSPC, f"disk full (ENOSPC): {free // 1024} KiB free, a "
                             f"run needs at least {MIN_FREE_BYTES >> 20} MiB", directory)
    except OSError:
        for folder in created:  # the deepest first: leave no empty folder behind
            with contextlib.suppress(OSError):
                folder.rmdir()
        raise


def _missing_parents(directory: Path) -> list[Path]:
    """``directory`` and its parents that do not exist yet, the deepest first."""
    missing = []
    for folder in [directory, *directory.parents]:
        if folder.exists():
            break
        missing.append(folder)
    return missing


def discard_unused_run_dir(run_dir: Path, own_hydra_subdir: str | None = None,
                          existed_before: bool = False) -> None:
    """After a refused launch: remove ``run_dir`` when this launch created it
    (``existed_before`` False) and it holds only start-up files, and then its empty parents
    up to the outputs root; otherwise (another run's files, or a directory that was there
    before this launch, whose ``.hydra/`` may be another launch's) only remove
    ``own_hydra_subdir`` (this launch's Hydra record inside it), if given."""
    if not run_dir.is_dir() or not RunLock(run_dir).acquire():
        return  # another live process owns this directory: leave everything as it is
    if not existed_before and {p.name for p in run_dir.iterdir()} <= START_UP_FILES \
            and not holds_a_run(run_dir):
        _remove_locked_dir(run_dir)
        remove_empty(run_dir.parent)
    elif own_hydra_subdir and own_hydra_subdir.startswith(f"{HYDRA_DIR}/launch-"):
        shutil.rmtree(run_dir / own_hydra_subdir, ignore_errors=True)


def _remove_locked_dir(run_dir: Path) -> None:
    """Remove ``run_dir`` whose lock this process holds: its lock file last, so a launch
    that opens the lock file meanwhile gets the held one and is refused (with the lock file
    gone first, it would lock a new one and write while the removal goes on)."""
    for entry in run_dir.iterdir():
        if entry.name == LOCK_FILE:
            continue
        if entry.is_dir() and not entry.is_symlink():
            shutil.rmtree(entry, ignore_errors=True)
        else:
            with contextlib.suppress(OSError):
                entry.unlink()
    with contextlib.suppress(OSError):
        (run_dir / LOCK_FILE).unlink()
    with contextlib.suppress(OSError):
        run_dir.rmdir()  # fails, rightly, when another launch has written there since


def remove_empty(directory: Path) -> None:
    """Remove ``directory`` and its parents while they are empty, stopping at the outputs
    root (never removed) or at the first directory outside it."""
    root = outputs_root().resolve()
    directory = directory.resolve()
    while directory != root and root in directory.parents:
        try:
            directory.rmdir()
        except OSError:
            return
        directory = directory.parent


def _same_file(fd: int, path: Path) -> bool:
    """True when ``path`` still names the file open as ``fd``."""
    try:
        opened, named = os.fstat(fd), os.stat(path)
    except OSError:
        return False
    return (opened.st_dev, opened.st_ino) == (named.st_dev, named.st_ino)


class RunLock:
    """An exclusive ``flock`` on ``<run dir>/.lock`` held while a process writes the run, so
    two processes (racing launches, parallel sweep jobs with ``resume=auto``) never write the
    same run. The kernel drops it when the process ends, however it ends (SIGKILL included).

    Reentrant within a process: ``mlo-train`` takes the lock of a directory named on the
    command line before Hydra writes there, and the run takes the same lock again later."""

    _held: ClassVar[dict[Path, list[int]]] = {}  # resolved lock path -> [fd, holders]

    def __init__(self, run_dir: Path) -> None:
        self.path = Path(run_dir) / LOCK_FILE
        self._holding = False

    def acquire(self) -> bool:
        """Take the lock; False when another live process holds it."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        key = self.path.resolve()
        if self._holding:
            return True
        if key in self._held:
            self._held[key][1] += 1
            self._holding = True
            return True
        for _ in range(3):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError:
                os.close(fd)
                return False
            if _same_file(fd, self.path):
                break
            # The lock file was removed or replaced between the open and the flock: this
            # lock guards nothing (a process opening the path now gets another file).
            os.close(fd)
        else:
            return False
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._held[key] = [fd, 1]
        self._holding = True
        return True

    def release(self) -> None:
        if not self._holding:
            return
        self._holding = False
        key = self.path.resolve()
        entry = self._held.get(key)
        if entry is None:
            return
        entry[1] -= 1
        if entry[1] == 0:
            del self._held[key]
            os.close(entry[0])  # closing the descriptor releases the flock

    def holder(self) -> int | None:
        """The pid written by the process holding the lock, when readable."""
        try:
            return int(self.path.read_text().split()[0])
        except (OSError, ValueError, IndexError):
            return None
