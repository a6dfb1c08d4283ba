"""The SQLite results registry: round trip, filters, concurrent appends from processes."""

from __future__ import annotations

import errno
import multiprocessing
import sqlite3
from pathlib import Path

import pytest

from mlo_exp.benchmark.store import RegistryReadError, ResultsStore
from mlo_exp.io import WriteError
from tests.disk_faults import read_only, small_tmpfs

ROWS_PER_WRITER = 20
WRITERS = 4


def _row(benchmark_id: str, size: int) -> dict:
    return {"benchmark_id": benchmark_id, "run_id": benchmark_id, "source_run_id": None,
            "algorithm": "strassen", "size": size, "speedup": 1.0, "padded_size": [size] * 3}


def _writer(path: str, writer: int) -> None:
    store = ResultsStore(path)
    for index in range(ROWS_PER_WRITER):
        store.append([_row(f"job{writer}", index)])


def test_round_trip_and_filters(tmp_path: Path):
    store = ResultsStore(tmp_path / "db.sqlite")
    assert store.rows() == []
    assert store.append([_row("a", 1), _row("a", 2)]) == 2
    store.append([{**_row("b", 3), "algorithm": "school-2x2x2"}])
    assert [r["size"] for r in store.rows()] == [1, 2, 3]
    assert [r["size"] for r in store.rows(benchmark_id="a")] == [1, 2]
    assert [r["benchmark_id"] for r in store.rows(algorithm="school")] == ["b"]
    assert [r["benchmark_id"] for r in store.rows(last=1)] == ["b"]
    assert store.rows()[0]["padded_size"] == [1, 1, 1]


def test_a_registry_from_an_older_version_gets_the_new_columns(tmp_path: Path):
    path = tmp_path / "old.sqlite"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE results (id INTEGER PRIMARY KEY AUTOINCREMENT, "
                   "benchmark_id TEXT, row TEXT NOT NULL)")
        db.execute("INSERT INTO results (benchmark_id, row) VALUES ('old', '{\"size\": 1}')")
    store = ResultsStore(path)
    store.append([_row("new", 2)])
    assert [r["size"] for r in store.rows()] == [1, 2]


def test_default_location_follows_mlo_outputs(tmp_path: Path, monkeypatch):
    monkeypatch.setenv("MLO_OUTPUTS", str(tmp_path / "out"))
    assert ResultsStore().path == tmp_path / "out" / "benchmarks.sqlite"


def test_parallel_processes_lose_no_rows(tmp_path: Path):
    path = str(tmp_path / "shared.sqlite")
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_writer, args=(path, w)) for w in range(WRITERS)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    rows = ResultsStore(path).rows()
    assert len(rows) == WRITERS * ROWS_PER_WRITER
    for writer in range(WRITERS):
        sizes = sorted(r["size"] for r in rows if r["benchmark_id"] == f"job{writer}")
        assert sizes == list(range(ROWS_PER_WRITER))


# -- write failures ------------------------------------------------------------------------------
def test_registry_under_a_regular_file_is_a_write_error(tmp_path: Path):
    (tmp_path / "file.txt").write_text("")
    store = ResultsStore(tmp_path / "file.txt" / "benchmarks.sqlite")
    with pytest.raises(WriteError) as caught:
        store.append([_row("a", 1)])
    assert caught.value.errno == errno.ENOTDIR
    assert str(caught.value) == (f"cannot write {store.path}: a parent path is not a "
                                 "directory (ENOTDIR)")
    assert store.rows() == []  # nothing there to read


def test_a_refused_insert_rolls_back_and_says_disk_full(tmp_path: Path, monkeypatch):
    store = ResultsStore(tmp_path / "db.sqlite")
    store.append([_row("a", 1)])
    real_connect = store._connect

    class FullDisk:  # SQLite's answer when its write() gets ENOSPC
        def __init__(self, connection):
            self.connection = connection

        def __getattr__(self, name):
            return getattr(self.connection, name)

        def executemany(self, sql, *args):
            self.connection.executemany(sql, *args)
            raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(store, "_connect", lambda **kw: FullDisk(real_connect(**kw)))
    with pytest.raises(WriteError) as caught:
        store.append([_row("b", 2), _row("b", 3)])
    assert caught.value.errno == errno.ENOSPC
    assert str(caught.value) == f"cannot write {store.path}: disk full (SQLITE_FULL)"
    monkeypatch.undo()
    assert [r["benchmark_id"] for r in store.rows()] == ["a"]  # rolled back, nothing torn


def test_a_really_full_disk(tmp_path: Path):
    with small_tmpfs(tmp_path / "disk", "256k") as disk:
        store = ResultsStore(disk / "benchmarks.sqlite")
        store.append([_row("first", 1)])
        with pytest.raises(WriteError) as caught:
            for index in range(10_000):
                store.append([{**_row(f"b{index}", index), "pad": "x" * 2000}])
        assert caught.value.errno == errno.ENOSPC and "disk full" in str(caught.value)
        assert store.rows()[0]["benchmark_id"] == "first"
        assert len(store.rows()) == index + 1  # every append before the full one is there


def test_a_read_only_outputs_dir_refuses_appends_but_can_be_read(tmp_path: Path):
    outputs = tmp_path / "outputs"
    outputs.mkdir()
    store = ResultsStore(outputs / "benchmarks.sqlite")
    store.append([_row("a", 1)])
    with read_only(outputs):
        with pytest.raises(WriteError) as caught:
            store.append([_row("b", 2)])
        assert caught.value.errno in (errno.EROFS, errno.EACCES)
        assert "read-only" in str(caught.value) or "no permission" in str(caught.value)
        assert [r["benchmark_id"] for r in store.rows()] == ["a"]  # report still works
        assert ResultsStore(outputs / "missing.sqlite").rows() == []
    assert sorted(p.name for p in outputs.iterdir()) == ["benchmarks.sqlite"]


def test_a_file_that_is_not_a_database(tmp_path: Path):
    path = tmp_path / "benchmarks.sqlite"
    path.write_bytes(b"definitely not sqlite" * 100)
    with pytest.raises(RegistryReadError, match="not an SQLite database"):
        ResultsStore(path).rows()
    with pytest.raises(WriteError, match="not an SQLite database"):
        ResultsStore(path).append([_row("a", 1)])
    assert path.read_bytes() == b"definitely not sqlite" * 100
