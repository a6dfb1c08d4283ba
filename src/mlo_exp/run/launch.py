"""What ``mlo-train`` does before Hydra writes anything, and how it refuses a launch.

A run directory named on the command line (``hydra.run.dir=DIR``) is probed writable and
locked (:class:`mlo_exp.run_files.RunLock`) before Hydra writes there: a second launch into a
running run's directory is refused before it can touch a file, and a launch into a directory
that already holds a run writes its Hydra record under ``DIR/.hydra/launch-<time>-<pid>/``
instead of over the run's own ``.hydra/``. :func:`refuse` undoes what a refused launch added.
"""

from __future__ import annotations

import datetime as dt
import os
import sys
from pathlib import Path
from typing import Any


def check_output_dir_writable(arguments: list[str]) -> None:
    """Refuse to start (exit 1) when the run directory named on the command line, else the
    outputs root, cannot be written: Hydra would fail writing its record there."""
    from mlo_exp.run_files import check_writable, explicit_run_dir, outputs_root

    named = explicit_run_dir(arguments)
    directory = Path(named).expanduser() if named is not None else outputs_root()
    try:
        check_writable(directory)
    except OSError as error:
        print(f"mlo-train: {error}; nothing was run. Accepted: a writable hydra.run.dir or "
              "MLO_OUTPUTS (the outputs root)", file=sys.stderr)
        sys.exit(1)


def lock_named_run_dir(arguments: list[str]) -> None:
    """Take the lock of a run directory named on the command line before Hydra writes there
    (refused: exit 2), and keep Hydra's record of this launch off an existing run's."""
    from mlo_exp.run_files import HYDRA_DIR, RunLock, explicit_run_dir

    if "-m" in arguments or "--multirun" in arguments:
        return
    named = explicit_run_dir(arguments)
    if named is None:
        return
    run_dir = Path(named).expanduser()
    try:
        LAUNCH["existed"] = (run_dir, run_dir.is_dir() and any(run_dir.iterdir()))
        log_file = run_dir / "train.log"
        LAUNCH["train_log"] = (log_file,
                               log_file.stat().st_size if log_file.is_file() else None)
        LAUNCH["started"] = (run_dir, dt.datetime.now().timestamp())
    except OSError:
        LAUNCH.clear()  # unreadable: the lock below or Hydra reports it
    lock = RunLock(run_dir)
    if not lock.acquire():
        print(f"mlo-train: run directory {run_dir} is in use by another process "
              f"(pid {lock.holder() or '?'}); nothing there was touched. Wait for it to end, "
              "or choose another hydra.run.dir", file=sys.stderr)
        sys.exit(2)
    if (run_dir / HYDRA_DIR).is_dir():
        stamp = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
        sys.argv.append(f"hydra.output_subdir={HYDRA_DIR}/launch-{stamp}")


# What a launch into a directory named on the command line found there: ``train_log``:
# (path, size before this launch, None when it did not exist); ``existed``: (the directory,
# whether it held anything before this launch); ``started``: (the directory, launch time).
LAUNCH: dict[str, tuple[Path, Any]] = {}


def refuse(run_dir: Path, message: str, hydra_subdir: str | None = None) -> None:
    """Refuse the launch (exit 2): remove what it added to ``run_dir`` (an unused run dir,
    its own Hydra record, the lines it appended to an existing run's ``train.log``)."""
    import contextlib
    import logging

    from mlo_exp.run_files import discard_unused_run_dir

    run_json = run_dir / "run.json"
    ran = run_json.is_file() and run_json.stat().st_mtime >= LAUNCH.get("started", (0, 0))[1]
    if "train_log" in LAUNCH and not ran and \
            LAUNCH["train_log"][0].parent.resolve() == run_dir.resolve():
        # Refused before this launch's run began: its log lines go (the run's log is kept).
        log_file, size = LAUNCH["train_log"]
        logging.shutdown()  # Hydra's file handler: flushed and closed before the cut
        with contextlib.suppress(OSError):
            if size is None:
                log_file.unlink(missing_ok=True)
            else:
                os.truncate(log_file, size)
    named, existed = LAUNCH.get("existed", (None, False))
    existed = existed and named is not None and named.resolve() == run_dir.resolve()
    discard_unused_run_dir(run_dir, hydra_subdir, existed_before=existed)
    print(f"mlo-train: {message}", file=sys.stderr)
    sys.exit(2)
