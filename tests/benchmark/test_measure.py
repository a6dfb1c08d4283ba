"""Correctness before timing: refusal of unverifiable algorithms, rows and their metadata."""

from __future__ import annotations

import pytest

from mlo_exp.algorithms.library import lookup
from mlo_exp.benchmark.backend import select_backend
from mlo_exp.benchmark.measure import BenchmarkRefused, Identity, benchmark_algorithm, facts

NUMPY = select_backend("numpy")
IDENTITY = Identity("bench-1", "bench-1", "20260101-000000-deadbeef")


def test_an_algorithm_that_fails_verification_is_refused_with_its_residual():
    broken = lookup("strassen")
    broken.u[0, 0] = 0
    with pytest.raises(BenchmarkRefused, match=r"exact verification failed.*wrong entries"):
        benchmark_algorithm(broken, NUMPY, IDENTITY, [8])


def test_modulo_two_algorithms_are_refused():
    with pytest.raises(BenchmarkRefused, match="modulo-2"):
        benchmark_algorithm(lookup("alphatensor-2x2x2-z2"), NUMPY, IDENTITY, [8])


def test_rows_carry_timing_errors_and_metadata():
    algorithm = lookup("strassen")
    rows = benchmark_algorithm(algorithm, NUMPY, IDENTITY, [30, 64], "float32", levels=1,
                               warmup=0, repeats=2)
    assert [row["size"] for row in rows] == [30, 64]
    row = rows[0]
    assert row["padded_size"] == [30, 30, 30]
    assert rows[1]["block_products"] == 7 and row["multiplications_per_level"] == 7
    assert row["source_run_id"] == "20260101-000000-deadbeef"
    assert row["algorithm_digest"] == algorithm.digest()
    assert row["backend"] == "numpy" and row["device"].startswith("CPU")
    assert row["float64_check_error"] < 1e-12
    assert 0 < row["relative_error"] < 1e-5
    assert row["min_s"] <= row["median_s"] <= row["max_s"]
    assert row["speedup"] == pytest.approx(row["baseline_median_s"] / row["median_s"])
    assert len(row["times_s"]) == 2


def test_facts_name_device_versions_and_commit():
    info = facts(NUMPY, IDENTITY, {"dtype": "float32"})
    for key in ("benchmark_id", "source_run_id", "device", "numpy_version", "cupy_version",
                "host_cpu", "git_commit", "timestamp", "math_mode", "compute_capability"):
        assert key in info
    assert info["setting_dtype"] == "float32"
