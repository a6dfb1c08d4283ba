"""Statistics across seeds: misses stay in the share and the median, intervals are honest."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mlo_exp.run.sweep.seeds import (
    bootstrap_interval,
    censored_median,
    curve_interval,
    share_interval,
    success_curve,
)

INF = math.inf


def test_success_curve_keeps_misses_in_the_denominator() -> None:
    times = [1.0, 3.0, INF, INF]
    assert success_curve(times, [0.5, 1.0, 2.9, 3.0, 100.0]).tolist() == [0, .25, .25, .5, .5]
    assert success_curve([], [1.0]).tolist() == [0.0]


def test_censored_median_counts_misses_instead_of_dropping_them() -> None:
    # the median of the successes alone would be 1.0; with two misses of three it is unknown
    assert censored_median([1.0, INF, INF]) == INF
    assert censored_median([1.0, 5.0, INF]) == 5.0
    assert censored_median([2.0, 4.0, 6.0, INF]) == 4.0  # by 4 s half the seeds had it
    assert math.isnan(censored_median([]))


def test_share_interval_is_wilson_and_never_certain_from_three_seeds() -> None:
    low, high = share_interval(3, 3)
    assert high == 1.0 and low == pytest.approx(0.4385, abs=1e-4)
    low, high = share_interval(0, 3)
    assert low == 0.0 and high == pytest.approx(0.5615, abs=1e-4)
    low, high = share_interval(50, 100)  # large n: about 0.5 +- 1.96 * 0.05
    assert (low, high) == pytest.approx((0.404, 0.596), abs=2e-3)


def test_bootstrap_interval_of_the_censored_median() -> None:
    low, high = bootstrap_interval([2.0, 4.0, 6.0, INF], censored_median)
    # >= 3 misses in 4 draws happen with p = 0.051 > 2.5 %: the upper bound is censored
    assert low == 2.0 and high == INF
    assert bootstrap_interval([5.0] * 6, censored_median) == (5.0, 5.0)
    # reproducible: a summary written twice is identical
    values = list(np.random.default_rng(1).exponential(10, 8))
    assert bootstrap_interval(values, censored_median) == bootstrap_interval(
        values, censored_median)


def test_curve_band_contains_the_curve() -> None:
    times = [1.0, 2.0, 4.0, INF, INF]
    grid = np.linspace(0, 5, 11)
    low, high = curve_interval(times, grid)
    share = success_curve(times, grid)
    assert np.all(low <= share) and np.all(share <= high)
    assert high[0] > 0  # 0 of 5 by t=0 does not prove "never"
