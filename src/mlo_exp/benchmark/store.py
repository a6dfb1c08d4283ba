"""The project-wide results registry: an SQLite database in the outputs root.

Location: ``$MLO_OUTPUTS/benchmarks.sqlite`` (``outputs/benchmarks.sqlite`` when
``MLO_OUTPUTS`` is unset), next to the run directories.

Parallel sweep jobs append to it at the same time, so every write is one short
``BEGIN IMMEDIATE`` transaction in WAL mode (readers never block the writer), with a busy
timeout and a few retries with backoff on ``database is locked``; a row is either in the
database or the append raised. One table, ``results``: the columns of :data:`COLUMNS`
(one row per algorithm and size of a benchmark) plus ``row`` with the whole row as JSON.
"""

from __future__ import annotations

import json
import os
import random
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing
from pathlib import Path
from typing import Any

DATABASE_NAME = "benchmarks.sqlite"
BUSY_TIMEOUT_S = 30.0
RETRIES = 8

# (column, SQL type). Every row from mlo_exp.benchmark.measure has these keys.
COLUMNS: tuple[tuple[str, str], ...] = (
    ("benchmark_id", "TEXT"), ("run_id", "TEXT"), ("source_run_id", "TEXT"),
    ("algorithm", "TEXT"), ("algorithm_digest", "TEXT"), ("algorithm_shape", "TEXT"),
    ("rank", "INTEGER"), ("levels", "INTEGER"), ("strategy", "TEXT"), ("size", "INTEGER"),
    ("dtype", "TEXT"), ("backend", "TEXT"), ("device", "TEXT"), ("math_mode", "TEXT"),
    ("repeats", "INTEGER"), ("median_s", "REAL"), ("min_s", "REAL"), ("max_s", "REAL"),
    ("tflops", "REAL"), ("baseline_median_s", "REAL"), ("speedup", "REAL"),
    ("speedup_of_min", "REAL"),
    ("relative_error", "REAL"), ("timestamp", "TEXT"), ("git_commit", "TEXT"),
)
_NAMES = [name for name, _ in COLUMNS]


def outputs_root() -> Path:
    """The outputs root: ``$MLO_OUTPUTS`` or ``outputs`` (relative to the working dir)."""
    return Path(os.environ.get("MLO_OUTPUTS") or "outputs")


def default_database() -> Path:
    return outputs_root() / DATABASE_NAME


class ResultsStore:
    """Append and query benchmark rows (see module docstring)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_database()

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_S, isolation_level=None)
        connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        return connection

    def _with_retries(self, work):  # noqa: ANN001, ANN202 - internal helper
        for attempt in range(RETRIES):
            try:
                with closing(self._connect()) as connection:
                    return work(connection)
            except sqlite3.OperationalError as error:
                if "locked" not in str(error) and "busy" not in str(error):
                    raise
                if attempt == RETRIES - 1:
                    raise
                time.sleep(0.05 * 2**attempt * (1 + random.random()))
        return None  # pragma: no cover

    def _ensure_schema(self, connection: sqlite3.Connection) -> None:
        connection.execute("PRAGMA journal_mode = WAL")
        columns = ", ".join(f'"{name}" {kind}' for name, kind in COLUMNS)
        connection.execute(f"CREATE TABLE IF NOT EXISTS results (id INTEGER PRIMARY KEY "
                           f"AUTOINCREMENT, {columns}, row TEXT NOT NULL)")
        connection.execute("CREATE INDEX IF NOT EXISTS results_benchmark ON results "
                           "(benchmark_id)")
        # A registry written by an older version: add the columns it lacks (rows keep NULL
        # there; the full row is in the JSON column anyway).
        present = {row[1] for row in connection.execute("PRAGMA table_info(results)")}
        for name, kind in COLUMNS:
            if name not in present:
                connection.execute(f'ALTER TABLE results ADD COLUMN "{name}" {kind}')

    def append(self, rows: Iterable[dict[str, Any]], extra: dict[str, Any] | None = None) -> int:
        """Append rows in one transaction; ``extra`` keys are added to every row. Returns
        the number of rows written."""
        records = [{**row, **(extra or {})} for row in rows]
        if not records:
            return 0
        placeholders = ", ".join("?" for _ in range(len(_NAMES) + 1))
        names = ", ".join(f'"{name}"' for name in _NAMES)
        values = [[_sql_value(record.get(name)) for name in _NAMES]
                  + [json.dumps(record, default=str)] for record in records]

        def work(connection: sqlite3.Connection) -> int:
            self._ensure_schema(connection)
            connection.execute("BEGIN IMMEDIATE")
            try:
                connection.executemany(
                    f"INSERT INTO results ({names}, row) VALUES ({placeholders})", values)
                connection.execute("COMMIT")
            except BaseException:
                connection.execute("ROLLBACK")
                raise
            return len(values)

        return self._with_retries(work)

    def rows(self, benchmark_id: str | None = None, algorithm: str | None = None,
             last: int | None = None) -> list[dict[str, Any]]:
        """Stored rows, oldest first; filters: one benchmark, an algorithm name (substring),
        or the ``last`` N benchmarks."""
        if not self.path.exists():
            return []
        query = "SELECT row FROM results WHERE 1=1"
        params: list[Any] = []
        if benchmark_id:
            query += " AND benchmark_id = ?"
            params.append(benchmark_id)
        if algorithm:
            query += " AND algorithm LIKE ?"
            params.append(f"%{algorithm}%")
        if last:
            query += (" AND benchmark_id IN (SELECT benchmark_id FROM results GROUP BY "
                      "benchmark_id ORDER BY MAX(id) DESC LIMIT ?)")
            params.append(int(last))
        query += " ORDER BY id"

        def work(connection: sqlite3.Connection) -> list[dict[str, Any]]:
            try:
                return [json.loads(text) for (text,) in connection.execute(query, params)]
            except sqlite3.OperationalError as error:
                if "no such table" in str(error):
                    return []
                raise

        return self._with_retries(work)


def _sql_value(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str)):
        return value
    return json.dumps(value, default=str)
