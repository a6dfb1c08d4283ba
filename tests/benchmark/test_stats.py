"""Bootstrap intervals on speedups, their verdicts, and the host's load."""

from __future__ import annotations

import os

import pytest

from mlo_exp.benchmark import stats


def test_interval_brackets_the_speedup_and_narrows_with_steady_samples():
    reference = [1.00, 1.02, 0.98, 1.01, 0.99, 1.03, 0.97, 1.00]
    times = [0.80, 0.82, 0.79, 0.81, 0.80, 0.83, 0.78, 0.80]
    point = stats.speedup(reference, times)
    low, high = stats.speedup_interval(reference, times)
    assert low <= point <= high and point == pytest.approx(1.25, rel=0.01)
    assert stats.verdict((low, high)) == "faster"
    assert stats.relative_width((low, high), point) < 0.1
    wild = [0.4, 2.5, 0.9, 1.8, 0.5, 2.2, 0.7, 1.9]
    assert stats.relative_width(stats.speedup_interval(reference, wild), point) > 0.5


def test_verdicts():
    assert stats.verdict((1.01, 1.2)) == "faster"
    assert stats.verdict((0.8, 0.99)) == "slower"
    assert stats.verdict((0.95, 1.05)) == "no difference"
    assert stats.verdict(None) == "too few rounds"


def test_too_few_rounds_give_no_interval_and_unequal_samples_are_refused():
    assert stats.speedup_interval([1.0, 1.1], [0.9, 0.8]) is None
    assert stats.relative_width(None, 1.0) == float("inf")
    with pytest.raises(ValueError, match="paired samples"):
        stats.speedup_interval([1.0, 1.0, 1.0], [1.0, 1.0])


def test_pairing_cancels_load_that_hits_both_sides_alike():
    """Rounds whose load doubles both sides: the paired interval stays narrow."""
    reference = [1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0, 2.0, 1.0]
    times = [0.5, 1.0, 0.5, 1.0, 0.5, 1.0, 0.5, 1.0, 0.5]
    low, high = stats.speedup_interval(reference, times)
    assert low == pytest.approx(2.0) and high == pytest.approx(2.0)


def test_a_host_counts_as_loaded_beyond_its_own_threads(monkeypatch):
    monkeypatch.setattr(stats, "cpu_threads", lambda: 2)
    monkeypatch.setattr(os, "getloadavg", lambda: (0.4, 0.3, 0.2))
    assert stats.host_load() == {"load_1min": 0.4, "cpu_threads": 2, "loaded": False}
    assert stats.load_warning(stats.host_load(), "before the run") is None
    monkeypatch.setattr(os, "getloadavg", lambda: (3.5, 3.0, 2.0))
    assert stats.host_load()["loaded"]  # 3.5 others on 2 threads
    assert stats.host_load(own_threads=2)["loaded"]  # 1.5 others beside our 2
    monkeypatch.setattr(os, "getloadavg", lambda: (2.8, 3.0, 2.0))
    assert not stats.host_load(own_threads=2)["loaded"]  # 0.8 others: at most 0.5 per thread
    assert "WARNING: loaded machine" in stats.load_warning(stats.host_load(), "now")
