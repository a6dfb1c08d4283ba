"""Tables and plots from benchmark rows."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from mlo_exp.benchmark.report import display_rows, format_comparison, format_table, plot
from mlo_exp.io import WriteError
from tests.disk_faults import fail_writes


def _row(benchmark_id: str, algorithm: str, size: int, speedup: float) -> dict:
    return {"benchmark_id": benchmark_id, "run_id": benchmark_id, "source_run_id": "src-1",
            "algorithm": algorithm, "algorithm_shape": "<2,2,2>", "rank": 7, "levels": 1,
            "size": size, "dtype": "float32", "backend": "numpy", "device": "CPU: test",
            "math_mode": "fp32", "median_s": 1.0 / speedup, "min_s": 0.9 / speedup,
            "max_s": 1.1 / speedup, "tflops": 0.1, "baseline_median_s": 1.0,
            "speedup": speedup, "speedup_of_min": speedup, "relative_error": 1e-7}


ROWS = [_row("b1", "strassen", 256, 0.9), _row("b1", "strassen", 512, 1.1),
        _row("b2", "strassen", 512, 1.2)]


def test_logged_rows_have_a_source_run_id_column():
    (first, *_) = display_rows(ROWS)
    assert first["Source Run ID"] == "src-1" and first["Run ID"] == "b1"
    assert first["Speedup"] == 0.9


def test_console_table_names_the_device_and_speedups():
    table = format_table(ROWS, title="t")
    assert "device: numpy on CPU: test" in table
    assert " 0.900x" in table and " 1.100x" in table


def test_comparison_puts_benchmarks_side_by_side():
    text = format_comparison(ROWS)
    line_512 = next(line for line in text.splitlines() if " 512 " in line)
    assert "1.100x" in line_512 and "1.200x" in line_512


def test_plots_are_written(tmp_path: Path):
    paths = plot(ROWS, tmp_path / "figs")
    assert [p.name for p in paths] == ["latency.png", "speedup.png"]
    assert all(p.read_bytes().startswith(b"\x89PNG") for p in paths)


def test_plots_that_cannot_be_written_raise_write_error(tmp_path: Path, monkeypatch):
    fail_writes(monkeypatch, "speedup.png", errno.ENOSPC)
    with pytest.raises(WriteError, match=r"speedup.png: disk full \(ENOSPC\)"):
        plot(ROWS, tmp_path / "figs")
    assert sorted(p.name for p in (tmp_path / "figs").iterdir()) == ["latency.png"]
    (tmp_path / "file.txt").write_text("")
    with pytest.raises(WriteError) as caught:
        plot(ROWS, tmp_path / "file.txt" / "figs")
    assert caught.value.errno == errno.ENOTDIR
