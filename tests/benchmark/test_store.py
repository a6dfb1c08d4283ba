"""The SQLite results registry: round trip, filters, concurrent appends from processes."""

from __future__ import annotations

import multiprocessing
import sqlite3
from pathlib import Path

from mlo_exp.benchmark.store import ResultsStore

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
