"""Always-on run files: ``metrics.jsonl`` (one JSON object per episode) and ``episodes.csv``.
(``summary.json`` is the trainer's, written once after the loggers have seen the summary.)

Both are append-only and written one whole record per ``write`` (see :mod:`mlo_exp.io`), so a
crash loses at most the record in flight, and a resumed run appends to them.

A record that cannot be written (disk full, read-only run directory) raises
:class:`mlo_exp.io.WriteError` (an ``OSError``; ``str(error)`` is ``"cannot write <path>:
<reason>"``). This backend is ``essential``: the error is not swallowed by the logger group
but reaches the run, which decides what else it can still write.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from mlo_exp.io import append_line, writing
from mlo_exp.loggers.base import EPISODE_COLUMNS, Logger
from mlo_exp.run_context import RunContext


class FilesLogger(Logger):
    name = "files"
    essential = True

    def __init__(self, run_dir: Path) -> None:
        self.metrics_path = Path(run_dir) / "metrics.jsonl"
        self.episodes_path = Path(run_dir) / "episodes.csv"

    def start(self, run: RunContext, config: dict[str, Any]) -> None:
        with writing(self.episodes_path):  # a stat refused here is a write refused next
            header_needed = (not self.episodes_path.exists()
                             or self.episodes_path.stat().st_size == 0)
        if header_needed:
            append_line(self.episodes_path, _csv_line(EPISODE_COLUMNS))

    def log_episode(self, record: dict[str, Any]) -> None:
        append_line(self.metrics_path, json.dumps(_jsonable(record), sort_keys=False))
        append_line(self.episodes_path, _csv_line(record.get(c, "") for c in EPISODE_COLUMNS))


def _csv_line(values) -> str:
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="").writerow(list(values))
    return buffer.getvalue()


def _jsonable(record: dict[str, Any]) -> dict[str, Any]:
    clean = {}
    for key, value in record.items():
        if isinstance(value, float) and not math.isfinite(value):
            value = str(value)
        clean[key] = value
    return clean
