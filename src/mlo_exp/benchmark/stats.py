"""Noise, said plainly: bootstrap intervals on speedups, their verdicts, and the host's load.

A speedup is ``median(reference times) / median(times)``. Samples are taken in rounds (one
sample of each side per round, alternating, see :mod:`mlo_exp.benchmark.measure`), so load
that drifts during a run hits a round's samples alike: :func:`speedup_interval` resamples
*rounds* (a paired bootstrap, :data:`RESAMPLES` draws, fixed seed) and returns the
percentile interval at :data:`CONFIDENCE`. :func:`verdict` reads it: ``faster`` when the
whole interval is above 1.0, ``slower`` when below, ``no difference`` when it holds 1.0.
:func:`relative_width` (``(high - low) / point``) is what the measurement compares against
its target to decide whether more rounds are needed. Fewer than :data:`MIN_ROUNDS` rounds
give no interval and the verdict ``too few rounds``.

Load: :func:`host_load` gives the 1-minute load average and whether the machine counts as
loaded: more than :data:`LOADED_OTHERS` runnable tasks per CPU thread beyond what the
benchmark itself uses (``own`` threads: 0 before it starts, every thread while it runs,
because the BLAS uses them all).
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

RESAMPLES = 2000
MIN_ROUNDS = 3  # fewer rounds give no interval (verdict "too few rounds")
CONFIDENCE = 0.95
LOADED_OTHERS = 0.5  # other runnable tasks per CPU thread from which a host is "loaded"


def speedup(reference: list[float], times: list[float]) -> float:
    """``median(reference) / median(times)``."""
    return float(np.median(reference) / np.median(times))


def speedup_interval(reference: list[float], times: list[float],
                     seed: int = 0) -> tuple[float, float] | None:
    """The bootstrap interval of :func:`speedup` over paired rounds (module docstring);
    ``reference[i]`` and ``times[i]`` are round ``i``'s samples. None with fewer than
    :data:`MIN_ROUNDS` rounds: one or two samples say nothing about the spread."""
    ref, alg = np.asarray(reference, dtype=float), np.asarray(times, dtype=float)
    if ref.shape != alg.shape or ref.size == 0:
        raise ValueError(f"paired samples needed, got {ref.size} and {alg.size}")
    if ref.size < MIN_ROUNDS:
        return None
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, ref.size, size=(RESAMPLES, ref.size))
    ratios = np.median(ref[picks], axis=1) / np.median(alg[picks], axis=1)
    tail = (1.0 - CONFIDENCE) / 2.0
    low, high = np.quantile(ratios, [tail, 1.0 - tail])
    return float(low), float(high)


def relative_width(interval: tuple[float, float] | None, point: float) -> float:
    """``(high - low) / point``: 0.05 means the interval spans 5% of the speedup."""
    if interval is None or not point > 0:
        return float("inf")
    return (interval[1] - interval[0]) / point


def verdict(interval: tuple[float, float] | None) -> str:
    """``faster``, ``slower``, ``no difference`` (the interval holds 1.0), or ``too few
    rounds`` (no interval)."""
    if interval is None:
        return "too few rounds"
    if interval[0] > 1.0:
        return "faster"
    if interval[1] < 1.0:
        return "slower"
    return "no difference"


def cpu_threads() -> int:
    """CPU threads this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not Linux
        return os.cpu_count() or 1


def host_load(own_threads: int = 0) -> dict[str, Any]:
    """``{"load_1min", "cpu_threads", "loaded"}`` (module docstring); ``load_1min`` is
    None where the OS does not say (then never ``loaded``)."""
    threads = cpu_threads()
    try:
        load = round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        return {"load_1min": None, "cpu_threads": threads, "loaded": False}
    others = load - min(own_threads, threads)
    return {"load_1min": load, "cpu_threads": threads,
            "loaded": others > LOADED_OTHERS * threads}


def load_warning(load: dict[str, Any], when: str) -> str | None:
    """One line warning about a loaded host, or None."""
    if not load.get("loaded"):
        return None
    return (f"WARNING: loaded machine {when}: 1-min load average {load['load_1min']} on "
            f"{load['cpu_threads']} CPU threads; other work shares the cores, so these "
            "times and speedups are unreliable (rerun on a quiet machine)")
