"""Correctness before timing: refusal of unverifiable algorithms, rows and their metadata."""

from __future__ import annotations

import pytest

from mlo_exp.algorithms.library import lookup
from mlo_exp.benchmark.backend import select_backend
from mlo_exp.benchmark.measure import (
    BenchmarkRefused,
    Identity,
    arithmetic_bound,
    benchmark_algorithm,
    classical_control,
    facts,
)
from mlo_exp.benchmark.schemes import resolve_scheme

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
    assert 2 <= row["repeats"] <= 10 and len(row["times_s"]) == row["repeats"]
    assert len(row["baseline_times_s"]) == len(row["control_times_s"]) == row["repeats"]


def test_every_scheme_is_timed_beside_its_classical_control_and_bound():
    rows = benchmark_algorithm(lookup("strassen"), NUMPY, IDENTITY, [64], "float32",
                               warmup=0, repeats=2, max_repeats=2)
    (row,) = rows
    assert row["control"] == "school-2x2x2" and row["control_rank"] == 8
    assert row["bound"] == pytest.approx(8 / 7) and not row["classical"]
    assert row["repeats"] == 2  # max_repeats caps the rounds
    assert row["speedup_over_control"] == pytest.approx(row["control_median_s"]
                                                        / row["median_s"])
    assert row["above_bound"] == (row["speedup_over_control"] > row["bound"])
    for key in ("speedup", "control_speedup", "speedup_over_control"):
        assert row[f"{key}_ci"] is None and row[f"{key}_verdict"] == "too few rounds"
    (row,) = benchmark_algorithm(lookup("strassen"), NUMPY, IDENTITY, [64], "float32",
                                 warmup=0, repeats=3, max_repeats=3)
    for key in ("speedup", "control_speedup", "speedup_over_control"):
        low, high = row[f"{key}_ci"]
        assert low <= high
        assert row[f"{key}_verdict"] in ("faster", "slower", "no difference")
    assert row["control_relative_error"] < 1e-5
    assert 0 <= row["additions_share"] < 1 and 0 <= row["control_additions_share"] < 1
    assert row["host_load_1min"] is None or row["host_load_1min"] >= 0


def test_two_levels_square_the_bound_and_products_of_schemes_get_their_school_scheme():
    assert arithmetic_bound(lookup("strassen"), 2) == pytest.approx((8 / 7) ** 2)
    scheme = resolve_scheme("best-3x2x3*strassen")
    control = classical_control(scheme)
    assert control is not None and control.shape == (6, 4, 6) and control.rank == 144
    assert arithmetic_bound(scheme, 1) == pytest.approx(144 / 105)


def test_a_classical_scheme_is_its_own_control():
    assert classical_control(lookup("school-2x3x4")) is None
    (row,) = benchmark_algorithm(lookup("school-2x2x2"), NUMPY, IDENTITY, [32], "float32",
                                 warmup=0, repeats=2, max_repeats=2)
    assert row["classical"] and row["control"] is None and row["bound"] == 1.0
    assert row.get("speedup_over_control") is None and not row["above_bound"]


def test_rounds_stop_once_the_intervals_are_narrow_enough(monkeypatch):
    """A side whose every sample is the same gives a zero-width interval: the least number
    of rounds is enough; an impossible target runs to the cap."""
    constant = iter(range(10**6))
    monkeypatch.setattr(type(NUMPY), "time",
                        lambda self, call, chain=1: (1.0 + 0 * next(constant), None))
    (row,) = benchmark_algorithm(lookup("strassen"), NUMPY, IDENTITY, [16], warmup=0,
                                 repeats=3, max_repeats=7)
    assert row["repeats"] == 3 and row["speedup_ci"] == [1.0, 1.0]
    assert row["speedup_verdict"] == "no difference"
    noisy = iter(x for _ in range(10**4) for x in (1.0, 3.0, 2.0, 5.0))
    monkeypatch.setattr(type(NUMPY), "time", lambda self, call, chain=1: (next(noisy), None))
    (row,) = benchmark_algorithm(lookup("strassen"), NUMPY, IDENTITY, [16], warmup=0,
                                 repeats=3, max_repeats=7)
    assert row["repeats"] == 7


def test_facts_name_device_versions_and_commit():
    info = facts(NUMPY, IDENTITY, {"dtype": "float32"})
    for key in ("benchmark_id", "source_run_id", "device", "numpy_version", "cupy_version",
                "host_cpu", "git_commit", "timestamp", "math_mode", "compute_capability"):
        assert key in info
    assert info["setting_dtype"] == "float32"
