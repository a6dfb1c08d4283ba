"""The project-wide results registry: an SQLite database in the outputs root.

Location: ``$MLO_OUTPUTS/benchmarks.sqlite`` (``outputs/benchmarks.sqlite`` when
``MLO_OUTPUTS`` is unset), next to the run directories.

Parallel sweep jobs append to it at the same time, so every write is one short
``BEGIN IMMEDIATE`` transaction in WAL mode (readers never block the writer), with a busy
timeout and a few retries with backoff on ``database is locked``; a row is either in the
database or the append raised. One table, ``results``: the columns of :data:`COLUMNS`
(one row per algorithm and size of a benchmark) plus ``row`` with the whole row as JSON.

Failures: an append the file system or SQLite refuses (disk full, read-only or missing
outputs directory, a registry path under a regular file, a file that is not a database)
raises :class:`mlo_exp.io.WriteError` naming the registry and the cause; nothing is half
written (the transaction rolls back). Reading (:meth:`ResultsStore.rows`) creates nothing:
it opens the database read-only, and where the directory refuses SQLite's ``-wal``/``-shm``
files (a read-only outputs directory) it reads the database file as it is on disk, without
the writes of an appender that is still running; a registry that cannot be read at all
raises :class:`RegistryReadError`.
"""

from __future__ import annotations

import errno
import json
import os
import random
import sqlite3
import time
from collections.abc import Iterable
from contextlib import closing, suppress
from pathlib import Path
from typing import Any
from urllib.parse import quote

from mlo_exp.io import WriteError, ensure_directory
from mlo_exp.run_files import outputs_root

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
    ("speedup_verdict", "TEXT"), ("control", "TEXT"), ("control_median_s", "REAL"),
    ("speedup_over_control", "REAL"), ("bound", "REAL"), ("host_load_1min", "REAL"),
)
_NAMES = [name for name, _ in COLUMNS]


class RegistryReadError(Exception):
    """The registry exists but cannot be read; ``str(error)`` is ``"cannot read <path>:
    <reason>"``."""

    def __init__(self, path: Path, reason: str) -> None:
        super().__init__(f"cannot read {path}: {reason}")
        self.path = path
        self.reason = reason


def default_database() -> Path:
    return outputs_root() / DATABASE_NAME


class ResultsStore:
    """Append and query benchmark rows (see module docstring)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path is not None else default_database()

    def _connect(self, read_only: bool = False, immutable: bool = False) -> sqlite3.Connection:
        if read_only:
            flags = "mode=ro&immutable=1" if immutable else "mode=ro"
            target, uri = f"file:{quote(str(self.path.absolute()))}?{flags}", True
        else:
            ensure_directory(self.path.parent, for_file=self.path)
            target, uri = str(self.path), False
        connection = sqlite3.connect(target, timeout=BUSY_TIMEOUT_S, isolation_level=None,
                                     uri=uri)
        try:
            connection.execute(f"PRAGMA busy_timeout = {int(BUSY_TIMEOUT_S * 1000)}")
        except BaseException:
            connection.close()
            raise
        return connection

    def _with_retries(self, work, **connect):  # noqa: ANN001, ANN003, ANN202 - internal
        for attempt in range(RETRIES):
            try:
                with closing(self._connect(**connect)) as connection:
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
                # SQLite rolls back by itself on some errors (SQLITE_FULL, ...); a ROLLBACK
                # then would fail and hide the error that matters.
                if connection.in_transaction:
                    with suppress(sqlite3.Error):
                        connection.execute("ROLLBACK")
                raise
            return len(values)

        try:
            return self._with_retries(work)
        except sqlite3.Error as error:
            raise registry_write_error(self.path, error) from error

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

        try:
            try:
                return self._with_retries(work, read_only=True)
            except sqlite3.OperationalError as error:
                if _code(error) != "SQLITE_CANTOPEN":
                    raise
                # A WAL database in a directory that refuses its -wal/-shm files: read the
                # file as it is (see the module docstring).
                return self._with_retries(work, read_only=True, immutable=True)
        except sqlite3.Error as error:
            raise RegistryReadError(self.path, _sqlite_reason(error)) from error
        except OSError as error:
            raise RegistryReadError(self.path, error.strerror or str(error)) from error


def registry_write_error(path: Path, error: sqlite3.Error) -> WriteError:
    """A refused append as a :class:`WriteError`: SQLite's result code, told in the words of
    :mod:`mlo_exp.io`, checked against the directory where SQLite only says it cannot open
    the file or hit an I/O error (SQLite creates ``-wal``/``-shm`` files next to it)."""
    code = _code(error)
    if code == "SQLITE_FULL":
        return WriteError(errno.ENOSPC, "disk full (SQLITE_FULL)", path)
    if code == "SQLITE_READONLY":
        return WriteError(errno.EROFS, "read-only: the registry or its directory is not "
                          "writable (SQLITE_READONLY)", path)
    if code in ("SQLITE_CANTOPEN", "SQLITE_IOERR", "SQLITE_PERM"):
        diagnosis = _directory_refuses(path.parent)
        if diagnosis is not None:
            return WriteError(diagnosis[0], f"{diagnosis[1]} ({code})", path)
    return WriteError(None, _sqlite_reason(error), path)


def _code(error: sqlite3.Error) -> str:
    """SQLite's primary result code name (``SQLITE_FULL``, ...), from the error or its text."""
    name = getattr(error, "sqlite_errorname", None)
    if name:
        return "_".join(name.split("_")[:2])  # SQLITE_IOERR_WRITE -> SQLITE_IOERR
    text = str(error)
    for needle, code in (("disk is full", "SQLITE_FULL"), ("readonly", "SQLITE_READONLY"),
                         ("unable to open", "SQLITE_CANTOPEN"), ("I/O error", "SQLITE_IOERR"),
                         ("not a database", "SQLITE_NOTADB"), ("locked", "SQLITE_BUSY")):
        if needle in text:
            return code
    return ""


def _sqlite_reason(error: sqlite3.Error) -> str:
    code = _code(error)
    words = {"SQLITE_NOTADB": "not an SQLite database",
             "SQLITE_BUSY": f"database still locked after {RETRIES} tries"}.get(code)
    text = f"{words} ({error})" if words else str(error)
    return f"{text} ({code})" if code and code not in text else text


def _directory_refuses(directory: Path) -> tuple[int, str] | None:
    """Why files cannot be created in ``directory``, if the file system says so."""
    try:
        stats = os.statvfs(directory)
    except OSError as error:
        return error.errno or errno.EIO, error.strerror or str(error)
    if stats.f_flag & os.ST_RDONLY:
        return errno.EROFS, "read-only file system"
    if not os.access(directory, os.W_OK | os.X_OK):
        return errno.EACCES, "no permission (the directory is not writable)"
    if stats.f_bavail == 0:
        return errno.ENOSPC, "disk full"
    return None


def _sql_value(value: Any) -> Any:
    if value is None or isinstance(value, (int, float, str)):
        return value
    return json.dumps(value, default=str)
