"""Tables and plots from benchmark rows."""

from __future__ import annotations

import errno
from pathlib import Path

import pytest

from mlo_exp.benchmark.report import (
    break_even,
    display_rows,
    format_break_even,
    format_comparison,
    format_table,
    interpret,
    plot,
    side_by_side,
)
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
    line_512 = next(line for line in text.splitlines() if " 512x512x512 " in line)
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


def _series(speedups: dict[int, float], algorithm: str = "strassen", **extra) -> list[dict]:
    return [{**_row("b", algorithm, size, speedup), **extra} for size, speedup in speedups.items()]


def test_break_even_is_interpolated_in_log_size():
    (entry,) = break_even(_series({1024: 0.8, 2048: 0.9, 4096: 1.1, 8192: 1.2}))
    assert entry["status"] == "crossed"
    assert entry["size"] == pytest.approx(2048 * 2**0.5)  # halfway from 0.9x to 1.1x
    assert "beats the plain product from N ~ 2896" in entry["text"]


def test_break_even_not_within_or_from_the_smallest_size():
    (losing,) = break_even(_series({256: 0.2, 512: 1.3, 1024: 0.7}))  # loses at the largest
    assert losing["status"] == "not_within" and losing["size"] is None
    assert "not within the measured sizes (up to N=1024" in losing["text"]
    (winning,) = break_even(_series({4096: 1.05, 8192: 1.1}))
    assert winning["status"] == "wins_from_smallest" and winning["size"] == 4096


def test_break_even_uses_the_median_of_repeated_rows_and_separates_schemes():
    rows = _series({512: 0.5, 1024: 1.5}) + _series({512: 0.9}) + _series({512: 0.95}) \
        + _series({512: 2.0, 1024: 2.0}, strategy="batched")
    entries = {entry["scheme"]: entry for entry in break_even(rows)}
    assert entries["strassen L1"]["speedups"][0] == 0.9  # median of 0.5, 0.9, 0.95
    assert entries["strassen L1 batched"]["status"] == "wins_from_smallest"
    assert "break-even" in format_break_even(rows)


def test_the_reading_for_the_user_says_a_cpu_loss_is_expected():
    losing = _series({256: 0.14, 512: 0.4, 1024: 0.74})
    sentence = interpret(losing)
    assert sentence.startswith("On this CPU no scheme beat the plain product at N <= 1024")
    assert "expected" in sentence and "exactly verified" in sentence
    assert "At 1024x1024x1024 strassen L1: 0.740x over the plain product" in sentence
    winning = interpret(_series({4096: 0.95, 8192: 1.1}))
    assert "beats the plain product from N ~" in winning
    assert "At 8192x8192x8192 strassen L1: 1.100x" in winning  # the largest size, not a max


def test_side_by_side_has_one_column_per_setting():
    rows = _series({512: 1.1}) + _series({512: 0.8}, strategy="batched", levels=2) \
        + _series({512: 0.7}, strategy="batched", levels=2, math_mode="fp32 TF32 allowed")
    table = side_by_side(rows)
    header = table.splitlines()[0]
    assert "L1 " in header and "L2 batched" in header and "L2 batched TF32" in header
    assert "| strassen | 512x512x512 | 1.100x | 0.800x | 0.700x |" in table


RUN_NAME = "matmul2x2x2__pairpolicy__s{seed}__20261201-124854-{tag}-rank7"


def test_runs_found_algorithms_are_told_apart_in_tables_and_legends(tmp_path: Path):
    rows = [_row("b1", RUN_NAME.format(seed=0, tag="e06b33b0"), 256, 0.9),
            _row("b1", RUN_NAME.format(seed=1, tag="77aa01ff"), 256, 0.8)]
    table = format_table(rows)
    assert "pairpolicy s0 e06b33b0" in table and "pairpolicy s1 77aa01ff" in table
    assert max(len(line) for line in table.splitlines()) < 190
    plot(rows, tmp_path)
    # the legends, read back from the figure objects the plot draws
    from matplotlib.figure import Figure

    drawn: list[Figure] = []
    original = Figure.savefig

    def keep(self, *args, **kwargs):
        drawn.append(self)
        return original(self, *args, **kwargs)

    Figure.savefig = keep
    try:
        plot(rows, tmp_path)
    finally:
        Figure.savefig = original
    latency, speedup = drawn
    labels = [t.get_text() for t in speedup.axes[0].get_legend().get_texts()]
    assert "1.0x: as fast as plain matmul" in labels
    assert all(len(label) <= 48 for label in labels)
    assert any("pairpolicy s0 e06b33b0 r7" in label for label in labels)
    assert "min to max" in latency.axes[0].get_ylabel()


def test_the_comparison_keeps_the_newest_benchmarks_only():
    rows = [_row(f"b{k}", "strassen", 512, 1.0 + k / 100) for k in range(9)]
    text = format_comparison(rows)
    assert max(len(line) for line in text.splitlines()) < 135
    assert "4 older benchmark(s) left out" in text and "1.080x" in text


def _controlled(speedup_over_control: float, loaded: bool = False) -> dict:
    row = _row("b1", "strassen", 8192, 1.2)
    row.update({"control": "school-2x2x2", "control_rank": 8, "bound": 8 / 7,
                "classical": False, "above_bound": speedup_over_control > 8 / 7,
                "control_median_s": speedup_over_control / 1.2, "control_min_s": 0.8,
                "control_max_s": 1.2, "control_speedup": 1.2 / speedup_over_control,
                "control_speedup_ci": [0.97, 1.02], "control_speedup_verdict": "no difference",
                "speedup_ci": [1.15, 1.25], "speedup_verdict": "faster",
                "speedup_over_control": speedup_over_control,
                "speedup_over_control_ci": [1.1, 1.3], "speedup_over_control_verdict": "faster",
                "additions_share": 0.04, "control_additions_share": 0.01, "repeats": 5,
                "control_relative_error": 1e-7, "host_load_1min": 3.2 if loaded else 0.1,
                "loaded": loaded})
    return row


def test_each_scheme_row_is_followed_by_its_control_with_intervals_and_bound():
    table = format_table([_controlled(1.104)])
    lines = table.splitlines()
    scheme = next(i for i, line in enumerate(lines) if line.startswith("strassen"))
    assert lines[scheme + 1].startswith("  control school-2x2x2")
    assert "1.200x [1.15,1.25] faster" in lines[scheme]
    assert "1.104x [1.10,1.30] faster" in lines[scheme] and "1.143" in lines[scheme]
    assert "1.087x [0.97,1.02] no diff" in lines[scheme + 1]
    assert "WARNING" not in table and "!" not in table


def test_a_speedup_above_the_bound_and_a_loaded_machine_are_flagged():
    table = format_table([_controlled(1.369, loaded=True)])
    assert "1.369x [1.10,1.30] faster !" in table
    assert "above the arithmetic bound 1.143x" in table
    assert "WARNING: loaded machine: 1 of 1 row(s)" in table and "3.2" in table
    reading = interpret([_controlled(1.369, loaded=True)])
    assert "above it, so noise" in reading and "loaded" in reading


def test_a_school_method_result_is_labelled_and_never_counted_as_a_win():
    row = _row("b1", "matmul2x2x2__greedy__s0__20261201-124854-e06b33b0-rank8", 1024, 1.3)
    row.update({"rank": 8, "classical": True, "control": None, "bound": 1.0,
                "speedup_ci": [1.2, 1.4], "speedup_verdict": "faster"})
    table = format_table([row])
    assert "classical rank (itself)" in table and "measures the executor only" in table
    reading = interpret([row])
    assert reading.startswith("On this CPU no scheme beat the plain product")
    assert "classical rank, the school method" in reading


def test_a_size_within_noise_is_not_a_win():
    rows = _series({4096: 1.05, 8192: 1.1})
    rows[1].update({"speedup_ci": [0.95, 1.2], "speedup_verdict": "no difference"})
    (entry,) = break_even(rows)
    assert entry["status"] == "not_within" and "no difference" in entry["text"]
