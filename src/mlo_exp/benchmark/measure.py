"""Benchmark one algorithm: correctness checks first, then timing against the plain product.

Order of work for :func:`benchmark_algorithm`:

1. Exact verification (:meth:`Algorithm.verify`); a failure raises :class:`BenchmarkRefused`
   with the residual described. Modulo-2 algorithms are refused too (they are not real
   products).
2. A float64 check on a small case whose sizes do not divide by the block sizes (so the
   padding path runs): relative error against the backend's plain product must be below
   :data:`FLOAT64_TOLERANCE`, else refused (an exactly verified algorithm that executes
   wrongly is a bug, not a result).
3. Per size ``N`` (square ``N x N`` times ``N x N``) or problem ``(N1, N2, N3)``
   (``N1 x N2`` times ``N2 x N3``; the row's ``size`` is then the largest side and
   ``problem`` names all three): random operands in ``dtype``, inside the backend's math
   scope (TF32 on or off for every GEMM, baseline included). Three sides are timed: the
   plain product (the baseline), the algorithm, and its *classical control*: the school
   scheme of the same block shape (:func:`classical_control`: ``school-2x2x2`` rank 8 for
   Strassen, ``school-4x4x4`` for ``<4,4,4>``, ``school-6x4x6`` for ``<3,2,3>*strassen``)
   run through the same executor, levels, strategy, plan and sums. The control costs what
   the executor costs (block copies, additions, smaller GEMMs) without saving anything, so
   ``speedup_over_control`` (control median / algorithm median) is what the algorithm
   itself saves; it cannot honestly exceed the arithmetic bound
   ``(n*m*p / rank) ** levels`` (:func:`arithmetic_bound`), and a row where it does is
   flagged (``above_bound``: noise, or blocks that run faster per flop). A scheme of
   classical rank is its own control (``classical``; no control is timed).
   ``warmup`` untimed calls of each side, then rounds: one sample of each side per round,
   the order rotated every round, so that load drifting on a shared machine hits all
   alike; a sample is ``chain`` consecutive calls (time / chain; 1 on the CPU, 10 on a GPU
   by default), the garbage collector off while timing. Rounds go on from ``repeats``
   until every speedup's bootstrap interval (:mod:`mlo_exp.benchmark.stats`, paired over
   rounds, 95%) is at most ``ci_width`` wide relative to it, or ``max_repeats`` rounds
   were taken; ``repeats`` in the row is the number taken. Each side writes into an output
   allocated once per size (``matmul(..., out=)``), so no timed call pays for faulting in
   fresh pages (which at N=8192 on the CPU cost either side up to 0.3 s). Median, min and
   max seconds; effective TFLOP/s ``2 N1 N2 N3 / t`` (the school-method flop count, for
   all); speedup = baseline median / algorithm median with its interval (``speedup_ci``)
   and ``speedup_verdict`` (``faster``, ``slower``, or ``no difference`` when the
   interval holds 1.0); the same for the control over the plain product and for the
   algorithm over its control (``speedup_of_min`` compares the minima). One more,
   untimed, call of the algorithm and of the control is instrumented
   (:meth:`BlockMatmul.profile_call`): ``additions_share`` is the share of its time spent
   in block sums and copies. The relative Frobenius error and the largest absolute error
   of the algorithm against the baseline are reported with each row, and so are the block
   additions per level of the plan in use and of the term-by-term evaluation
   (``additions``, ``additions_naive``), and the host's 1-minute load average when the
   size started (``host_load_1min``, ``loaded``: see :func:`stats.host_load`).

Rows are flat dicts (snake_case keys, units in the names) shared by ``benchmark.json``, the
results registry and the report.
"""

from __future__ import annotations

import datetime as dt
import gc
import logging
import os
import statistics
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.library import school
from mlo_exp.benchmark.backend import Backend
from mlo_exp.benchmark.execute import BlockMatmul, padded_size
from mlo_exp.benchmark.stats import (
    cpu_threads,
    host_load,
    relative_width,
    speedup,
    speedup_interval,
    verdict,
)
from mlo_exp.config import BENCHMARK_DTYPES

log = logging.getLogger("mlo_exp")

FLOAT64_TOLERANCE = 1e-9
# Defaults when no sizes are given. The stage's CPU sizes are small so that a default
# `mlo-train` stays quick; `mlo-benchmark` on the CPU uses CPU_FULL_SIZES.
CPU_DEFAULT_SIZES = (256, 512, 1024)
CPU_FULL_SIZES = (2048, 4096, 8192)
GPU_DEFAULT_SIZES = (4096, 8192, 16384)
DEFAULT_MAX_REPEATS = 10  # rounds at most, unless asked
DEFAULT_CI_WIDTH = 0.05  # rounds are added until each speedup's interval is this narrow


class BenchmarkRefused(ValueError):
    """An algorithm that must not be timed (not exact, or executing wrongly)."""


@dataclass(frozen=True)
class Identity:
    """Who a benchmark belongs to: its own id, the run it is part of, and the source run."""

    benchmark_id: str
    run_id: str  # the run this benchmark is logged under (a training run, or benchmark_id)
    source_run_id: str | None  # the training run that found the algorithm, if any


def check_exact(algorithm: Algorithm) -> None:
    """Refuse an algorithm that is not an exact decomposition over Z or Q."""
    if algorithm.ring == "Z2":
        raise BenchmarkRefused(f"{algorithm.name}: a modulo-2 algorithm is not a real-valued "
                               "matrix product; accepted: algorithms over Z or Q")
    check = algorithm.verify()
    if not check.ok:
        raise BenchmarkRefused(f"{algorithm.name}: refused, exact verification failed: "
                               f"{check.describe()}")


def check_float64(algorithm: Algorithm, backend: Backend, levels: int, strategy: str,
                  seed: int = 0, plan: str = "reduced") -> float:
    """Relative error of the algorithm against the plain product on a small float64 case."""
    n, m, p = algorithm.shape
    rows, inner, cols = 3 * n**levels + 1, 3 * m**levels + 2, 3 * p**levels + 1
    rng = np.random.default_rng(seed)
    a = backend.asarray(rng.standard_normal((rows, inner)))
    b = backend.asarray(rng.standard_normal((inner, cols)))
    product = BlockMatmul(algorithm, backend, levels, strategy, plan=plan)(a, b)
    expected = backend.xp.matmul(a, b)
    error = _relative_error(backend, product, expected)
    if not error <= FLOAT64_TOLERANCE:
        raise BenchmarkRefused(
            f"{algorithm.name}: refused, the float64 check ({rows}x{inner} @ {inner}x{cols}) "
            f"has relative error {error:.3g} > {FLOAT64_TOLERANCE:g} against the plain product"
        )
    return error


def default_sizes(backend: Backend, algorithm: Algorithm, levels: int, dtype: str) -> list[int]:
    """Sizes that fit the device: the CPU or GPU defaults whose footprint fits in memory."""
    candidates = GPU_DEFAULT_SIZES if backend.on_gpu else CPU_DEFAULT_SIZES
    budget = 0.7 * backend.free_memory_bytes()
    fitting = [size for size in candidates
               if footprint_bytes(algorithm, size, levels, dtype) <= budget]
    return fitting or [min(candidates)]


CPU_SIZE_LADDER = (256, 512, 1024, 2048, 4096, 8192)
SIDES = 3  # timed per round: plain product, scheme, classical control
EXECUTOR_OVERHEAD = 1.3  # a scheme or control call against the plain product, generously


def pick_cpu_sizes(backend: Backend, dtype: str, schemes: int, budget_s: float,
                   warmup: int, repeats: int) -> tuple[list[int], float]:
    """Up to three sizes (each double the last, from :data:`CPU_SIZE_LADDER`) whose timing
    should take about ``budget_s`` seconds for ``schemes`` schemes (and settings), each with
    ``warmup`` plus ``repeats + 2`` rounds of the three sides; the largest that fit. The
    plain product's speed here is measured first (at 1024: a fraction of a second).
    Returns the sizes and that speed in FLOP/s."""
    rng = np.random.default_rng(0)
    probe = 1024
    a = rng.random((probe, probe), dtype=dtype)
    out = np.empty_like(a)
    np.matmul(a, a, out=out)
    seconds = min(backend.time(lambda: np.matmul(a, a, out=out))[0] for _ in range(2))
    rate = 2.0 * probe**3 / max(seconds, 1e-9)
    calls = SIDES * (warmup + repeats + 2) * EXECUTOR_OVERHEAD * max(1, schemes)

    def cost(sizes: list[int]) -> float:
        return sum(calls * 2.0 * n**3 / rate for n in sizes)

    for top in reversed(CPU_SIZE_LADDER):
        sizes = [n for n in (top // 4, top // 2, top) if n >= CPU_SIZE_LADDER[0]]
        if cost(sizes) <= budget_s:
            return sizes, rate
    return [CPU_SIZE_LADDER[0]], rate


def footprint_bytes(algorithm: Algorithm, size: Problem, levels: int, dtype: str) -> int:
    """A generous estimate of the memory one size needs (operands, outputs, workspaces)."""
    n, m, p = algorithm.shape
    padded = max(padded_size(d, x, levels) for d in problem_dims(size) for x in (n, m, p))
    blocks_ratio = algorithm.rank / min(n * m, m * p, n * p)  # batched S, T, M vs a matrix
    # A, B, three outputs (plain, scheme, control), padding copies, error temporaries, plan
    # temporaries (a few blocks); the control's batched stacks (rank n*m*p) as well
    control_ratio = n * m * p / min(n * m, m * p, n * p)
    matrices = 8 + 3 * blocks_ratio + 3 * control_ratio
    return int(matrices * padded**2 * np.dtype(dtype).itemsize)


Problem = int | tuple[int, int, int]  # N (square) or (N1, N2, N3)


def problem_dims(problem: Problem) -> tuple[int, int, int]:
    """``(N1, N2, N3)`` of a size ``N`` or a problem triple."""
    if isinstance(problem, int):
        return problem, problem, problem
    dims = tuple(int(x) for x in problem)
    if len(dims) != 3:
        raise ValueError(f"problem {problem!r}; accepted: N or (N1, N2, N3)")
    return dims  # type: ignore[return-value]


def parse_problem(text: str) -> tuple[int, int, int]:
    """``"4096x2048x4096"`` -> ``(4096, 2048, 4096)`` (sides >= 1)."""
    try:
        dims = tuple(int(x) for x in text.lower().split("x"))
    except ValueError:
        dims = ()
    if len(dims) != 3 or min(dims) < 1:
        raise ValueError(f"shape {text!r}; accepted: N1xN2xN3 with integers >= 1, e.g. "
                         "4096x2048x4096 (N1 x N2 times N2 x N3)")
    return dims  # type: ignore[return-value]


def default_chain(backend: Backend) -> int:
    """Consecutive calls per timed sample when none is set: 10 on a GPU, 1 on the CPU."""
    return 10 if backend.on_gpu else 1


def is_classical(algorithm: Algorithm) -> bool:
    """True for a scheme with no fewer products than the school method (``n*m*p``): it
    cannot save a multiplication, and is its own classical control."""
    n, m, p = algorithm.shape
    return algorithm.rank >= n * m * p


def classical_control(algorithm: Algorithm) -> Algorithm | None:
    """The school scheme of the same block shape (``school-2x2x2`` for Strassen,
    ``school-6x4x6`` for a product of ``<3,2,3>`` and Strassen), or None for a scheme that
    is classical itself."""
    return None if is_classical(algorithm) else school(*algorithm.shape)


def arithmetic_bound(algorithm: Algorithm, levels: int) -> float:
    """``(n*m*p / rank) ** levels``: the most a scheme can gain over its classical control
    by saving multiplications alone (additions cost extra, never less)."""
    n, m, p = algorithm.shape
    return float((n * m * p / algorithm.rank) ** levels)


def benchmark_algorithm(algorithm: Algorithm, backend: Backend, identity: Identity,
                        sizes: list[Problem] | None, dtype: str = "float32", levels: int = 1,
                        warmup: int = 1, repeats: int = 3, strategy: str = "auto",
                        seed: int = 0, plan: str = "reduced",
                        chain: int | None = None, max_repeats: int | None = None,
                        ci_width: float = DEFAULT_CI_WIDTH, sums: str = "fused",
                        on_row: Callable[[dict[str, Any]], None] | None = None,
                        ) -> list[dict[str, Any]]:
    """Check, then time ``algorithm`` and its classical control at each size or problem;
    one row each (see module docstring). ``repeats`` is the least number of rounds,
    ``max_repeats`` (default ``max(repeats, DEFAULT_MAX_REPEATS)``) the most; rounds are
    added until every speedup's interval is at most ``ci_width`` wide relative to it.
    ``on_row`` is called with each row as soon as it is measured."""
    if dtype not in BENCHMARK_DTYPES:
        raise ValueError(f"dtype={dtype!r}; accepted: {', '.join(BENCHMARK_DTYPES)}")
    check_exact(algorithm)
    chain = default_chain(backend) if chain is None else int(chain)
    max_repeats = max(repeats, DEFAULT_MAX_REPEATS) if max_repeats is None \
        else max(repeats, int(max_repeats))
    control = classical_control(algorithm)
    with backend.math_scope():
        check_error = check_float64(algorithm, backend, levels, strategy, seed, plan)
        if control is not None:
            check_float64(control, backend, levels, strategy, seed, plan)
    executor = BlockMatmul(algorithm, backend, levels, strategy, plan=plan, sums=sums)
    control_executor = None if control is None else \
        BlockMatmul(control, backend, levels, strategy, plan=plan, sums=sums)
    sizes = list(sizes) if sizes else default_sizes(backend, algorithm, levels, dtype)
    n, m, p = algorithm.shape
    rows = []
    for size in sizes:
        dims = problem_dims(size)
        log.info("benchmark: %s, %s %s, %s on %s (control: %s)", algorithm.name,
                 "x".join(map(str, dims)), dtype, executor.describe(),
                 backend.device["device"], control.name if control else "itself")
        load = host_load(own_threads=_own_threads(backend))
        with backend.math_scope():
            timing = _time_one_size(executor, control_executor, backend, dims, dtype, warmup,
                                    repeats, max_repeats, ci_width, seed, chain)
        note_recent_work()
        bound = arithmetic_bound(algorithm, levels)
        over_control = timing.get("speedup_over_control")
        row = {
            "benchmark_id": identity.benchmark_id,
            "run_id": identity.run_id,
            "source_run_id": identity.source_run_id,
            "algorithm": algorithm.name,
            "algorithm_digest": algorithm.digest(),
            "algorithm_shape": f"<{n},{m},{p}>",
            "rank": algorithm.rank,
            "ring": algorithm.ring,
            "classical": control is None,
            "control": control.name if control is not None else None,
            "control_rank": control.rank if control is not None else None,
            "bound": bound,
            "above_bound": over_control is not None and over_control > bound,
            "levels": levels,
            "multiplications_per_level": algorithm.rank,
            "block_products": algorithm.rank**levels,
            "strategy": executor.strategy,
            "plan": plan,
            "sums": sums,
            "additions": executor.plan.additions,
            "additions_naive": executor.plan.naive_additions,
            "basis_change": executor.plan.basis_change is not None,
            "size": max(dims),
            "problem": "x".join(map(str, dims)),
            "padded_size": [padded_size(d, x, levels) for d, x in zip(dims, (n, m, p),
                                                                       strict=True)],
            "dtype": dtype,
            "backend": backend.name,
            "device": backend.device["device"],
            "math_mode": backend.math_mode,
            "warmup": warmup,
            "repeats": timing["rounds"],
            "min_repeats": repeats,
            "max_repeats": max_repeats,
            "ci_width_target": ci_width,
            "chain": chain,
            "host_load_1min": load["load_1min"],
            "loaded": load["loaded"],
            "float64_check_error": check_error,
            **timing,
            "timestamp": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        }
        rows.append(row)
        if on_row is not None:
            on_row(row)
        backend.release()
    return rows


_last_timing_end: float | None = None  # when this process last finished timing a size
BUSY_MEMORY_S = 120.0  # the 1-min load average still holds our own work this long after


def note_recent_work() -> None:
    """Tell the load check that this process has just kept the CPU busy (a size timed, or a
    training run before the benchmark stage): the 1-min load average still counts it."""
    global _last_timing_end
    _last_timing_end = time.monotonic()


def _own_threads(backend: Backend) -> int:
    """Threads this process itself keeps busy, as far as the 1-min load average still sees
    them: all CPU threads (BLAS) shortly after a CPU timing, one on the GPU, else none."""
    if _last_timing_end is None or time.monotonic() - _last_timing_end > BUSY_MEMORY_S:
        return 0
    return 1 if backend.on_gpu else cpu_threads()


def _time_one_size(executor: BlockMatmul, control: BlockMatmul | None, backend: Backend,
                   dims: tuple[int, int, int], dtype: str, warmup: int, repeats: int,
                   max_repeats: int, ci_width: float, seed: int,
                   chain: int = 1) -> dict[str, Any]:
    xp = backend.xp
    rows_, inner, cols = dims
    rng = xp.random.default_rng(seed + max(dims))
    a = rng.random((rows_, inner), dtype=dtype)
    a -= 0.5
    b = rng.random((inner, cols), dtype=dtype)
    b -= 0.5

    # Each writes into an output allocated once, so none pays for fresh pages each call.
    outputs = {side: xp.empty((rows_, cols), dtype=dtype)
               for side in ("baseline", "algorithm", "control")}
    calls = {"baseline": lambda: xp.matmul(a, b, out=outputs["baseline"]),
             "algorithm": lambda: executor(a, b, out=outputs["algorithm"])}
    if control is not None:
        calls["control"] = lambda: control(a, b, out=outputs["control"])
    sides = list(calls)
    for _ in range(warmup):
        for side in sides:
            calls[side]()
        backend.sync()
    times: dict[str, list[float]] = {side: [] for side in sides}
    rounds = 0
    gc_was_enabled = gc.isenabled()
    gc.disable()  # no collection inside a timed call
    try:
        while True:
            order = sides[rounds % len(sides):] + sides[:rounds % len(sides)]  # rotated
            for side in order:
                times[side].append(backend.time(calls[side], chain)[0])
            rounds += 1
            if rounds >= max_repeats or (rounds >= repeats and _narrow_enough(times,
                                                                               ci_width)):
                break
    finally:
        if gc_was_enabled:
            gc.enable()
    base, alg = times["baseline"], times["algorithm"]
    result: dict[str, Any] = {"rounds": rounds}
    error = _relative_error(backend, outputs["algorithm"], outputs["baseline"])
    max_abs = float(xp.abs(outputs["algorithm"] - outputs["baseline"]).max())
    flops = 2.0 * rows_ * inner * cols
    median, base_median = statistics.median(alg), statistics.median(base)
    interval = speedup_interval(base, alg)
    result.update({
        "median_s": median,
        "min_s": min(alg),
        "max_s": max(alg),
        "tflops": flops / median / 1e12,
        "baseline_median_s": base_median,
        "baseline_min_s": min(base),
        "baseline_max_s": max(base),
        "baseline_tflops": flops / base_median / 1e12,
        "speedup": base_median / median,
        "speedup_ci": _listed(interval),
        "speedup_verdict": verdict(interval),
        "speedup_of_min": min(base) / min(alg),
        "relative_error": error,
        "max_abs_error": max_abs,
        "times_s": alg,
        "baseline_times_s": base,
    })
    profile = executor.profile_call(a, b, outputs["algorithm"])
    result.update({"additions_s": profile["additions_s"], "products_s": profile["products_s"],
                   "additions_share": profile["additions_s"] / profile["total_s"]})
    if control is not None:
        ctl = times["control"]
        control_median = statistics.median(ctl)
        control_interval = speedup_interval(base, ctl)
        over_interval = speedup_interval(ctl, alg)
        control_profile = control.profile_call(a, b, outputs["control"])
        result.update({
            "control_median_s": control_median,
            "control_min_s": min(ctl),
            "control_max_s": max(ctl),
            "control_times_s": ctl,
            "control_speedup": base_median / control_median,
            "control_speedup_ci": _listed(control_interval),
            "control_speedup_verdict": verdict(control_interval),
            "speedup_over_control": control_median / median,
            "speedup_over_control_ci": _listed(over_interval),
            "speedup_over_control_verdict": verdict(over_interval),
            "control_relative_error": _relative_error(backend, outputs["control"],
                                                      outputs["baseline"]),
            "control_additions_share": control_profile["additions_s"]
            / control_profile["total_s"],
        })
    return result


def _listed(interval: tuple[float, float] | None) -> list[float] | None:
    return None if interval is None else list(interval)


def _narrow_enough(times: dict[str, list[float]], ci_width: float) -> bool:
    """Every speedup (algorithm and control over the plain product, algorithm over the
    control) has an interval at most ``ci_width`` wide relative to its value."""
    pairs = [("baseline", "algorithm")]
    if "control" in times:
        pairs += [("baseline", "control"), ("control", "algorithm")]
    for reference, side in pairs:
        point = speedup(times[reference], times[side])
        if relative_width(speedup_interval(times[reference], times[side]), point) > ci_width:
            return False
    return True


def _relative_error(backend: Backend, result: Any, expected: Any) -> float:
    """``||result - expected||_F / ||expected||_F`` accumulated in float64."""
    xp = backend.xp
    difference = (result - expected).astype(xp.float64)
    denominator = float(xp.linalg.norm(expected.astype(xp.float64)))
    return float(xp.linalg.norm(difference)) / denominator if denominator else 0.0


def _load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (AttributeError, OSError):  # pragma: no cover - not Unix
        return None


def project_git_commit() -> str | None:
    """The project's git commit (``-dirty`` when there are uncommitted changes), or None."""
    root = Path(__file__).resolve().parents[3]
    try:
        commit = subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], check=True,
                                capture_output=True, text=True, timeout=10).stdout.strip()
        status = subprocess.run(["git", "-C", str(root), "status", "--porcelain",
                                 "--untracked-files=no"], check=True, capture_output=True,
                                text=True, timeout=10).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return None
    return f"{commit}-dirty" if status else commit


def facts(backend: Backend, identity: Identity, settings: dict[str, Any],
          load_before: dict[str, Any] | None = None) -> dict[str, Any]:
    """The run-level facts of a benchmark: ids, device, library versions, settings, and the
    host's load before the run (``load_before``, :func:`stats.host_load`) and at its end."""
    return {
        "benchmark_id": identity.benchmark_id,
        "run_id": identity.run_id,
        "source_run_id": identity.source_run_id,
        **backend.device,
        "math_mode": backend.math_mode,
        "git_commit": project_git_commit(),
        "host_load_average": _load_average(),  # 1/5/15 min: how busy the host was
        "host_load_before": load_before,
        "timestamp": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        **{f"setting_{key}": value for key, value in settings.items()},
    }
