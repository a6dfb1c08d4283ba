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
   scope (TF32 on or off for every GEMM, baseline included), ``warmup`` untimed calls of
   each, then ``repeats`` timed samples, alternating baseline and algorithm so that load
   drifting on a shared machine hits both alike; a sample is ``chain`` consecutive calls
   (time / chain; 1 on the CPU, 10 on a GPU by default). Each writes into
   an output allocated once per size (``matmul(..., out=)``), so no timed call pays for
   faulting in fresh pages (which at N=8192 on the CPU cost either side up to 0.3 s, and
   more when memory is fragmented). Median, min and max
   seconds; effective TFLOP/s ``2 N1 N2 N3 / t`` (the school-method flop count, for both);
   speedup = baseline median / algorithm median (``speedup_of_min`` compares the minima,
   which load on a shared machine disturbs less). The relative Frobenius error and the
   largest absolute error of the algorithm against the baseline at that dtype and size
   are reported with each row, and so are the block additions per level of the plan in
   use and of the term-by-term evaluation (``additions``, ``additions_naive``).

Rows are flat dicts (snake_case keys, units in the names) shared by ``benchmark.json``, the
results registry and the report.
"""

from __future__ import annotations

import datetime as dt
import logging
import os
import statistics
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.benchmark.backend import Backend
from mlo_exp.benchmark.execute import BlockMatmul, padded_size
from mlo_exp.config import BENCHMARK_DTYPES

log = logging.getLogger("mlo_exp")

FLOAT64_TOLERANCE = 1e-9
# Defaults when no sizes are given. The stage's CPU sizes are small so that a default
# `mlo-train` stays quick; `mlo-benchmark` on the CPU uses CPU_FULL_SIZES.
CPU_DEFAULT_SIZES = (256, 512, 1024)
CPU_FULL_SIZES = (2048, 4096, 8192)
GPU_DEFAULT_SIZES = (4096, 8192, 16384)


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


def footprint_bytes(algorithm: Algorithm, size: Problem, levels: int, dtype: str) -> int:
    """A generous estimate of the memory one size needs (operands, outputs, workspaces)."""
    n, m, p = algorithm.shape
    padded = max(padded_size(d, x, levels) for d in problem_dims(size) for x in (n, m, p))
    blocks_ratio = algorithm.rank / min(n * m, m * p, n * p)  # batched S, T, M vs a matrix
    # A, B, two outputs, padding copies, error temporaries; plan temporaries (a few blocks)
    matrices = 7 + 3 * blocks_ratio
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


def benchmark_algorithm(algorithm: Algorithm, backend: Backend, identity: Identity,
                        sizes: list[Problem] | None, dtype: str = "float32", levels: int = 1,
                        warmup: int = 1, repeats: int = 3, strategy: str = "auto",
                        seed: int = 0, plan: str = "reduced",
                        chain: int | None = None) -> list[dict[str, Any]]:
    """Check, then time ``algorithm`` at each size or problem; one row each (see module
    docstring)."""
    if dtype not in BENCHMARK_DTYPES:
        raise ValueError(f"dtype={dtype!r}; accepted: {', '.join(BENCHMARK_DTYPES)}")
    check_exact(algorithm)
    chain = default_chain(backend) if chain is None else int(chain)
    with backend.math_scope():
        check_error = check_float64(algorithm, backend, levels, strategy, seed, plan)
    executor = BlockMatmul(algorithm, backend, levels, strategy, plan=plan)
    sizes = list(sizes) if sizes else default_sizes(backend, algorithm, levels, dtype)
    n, m, p = algorithm.shape
    rows = []
    for size in sizes:
        dims = problem_dims(size)
        log.info("benchmark: %s, %s %s, %s on %s", algorithm.name,
                 "x".join(map(str, dims)), dtype, executor.describe(),
                 backend.device["device"])
        with backend.math_scope():
            timing = _time_one_size(executor, backend, dims, dtype, warmup, repeats, seed,
                                    chain)
        rows.append({
            "benchmark_id": identity.benchmark_id,
            "run_id": identity.run_id,
            "source_run_id": identity.source_run_id,
            "algorithm": algorithm.name,
            "algorithm_digest": algorithm.digest(),
            "algorithm_shape": f"<{n},{m},{p}>",
            "rank": algorithm.rank,
            "ring": algorithm.ring,
            "levels": levels,
            "multiplications_per_level": algorithm.rank,
            "block_products": algorithm.rank**levels,
            "strategy": executor.strategy,
            "plan": plan,
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
            "repeats": repeats,
            "chain": chain,
            "float64_check_error": check_error,
            **timing,
            "timestamp": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        })
        backend.release()
    return rows


def _time_one_size(executor: BlockMatmul, backend: Backend, dims: tuple[int, int, int],
                   dtype: str, warmup: int, repeats: int, seed: int,
                   chain: int = 1) -> dict[str, Any]:
    xp = backend.xp
    rows_, inner, cols = dims
    rng = xp.random.default_rng(seed + max(dims))
    a = rng.random((rows_, inner), dtype=dtype)
    a -= 0.5
    b = rng.random((inner, cols), dtype=dtype)
    b -= 0.5

    # Both write into outputs allocated once, so neither pays for fresh pages each call.
    baseline_out = xp.empty((rows_, cols), dtype=dtype)
    algorithm_out = xp.empty((rows_, cols), dtype=dtype)

    def baseline() -> Any:
        return xp.matmul(a, b, out=baseline_out)

    def algorithm() -> Any:
        return executor(a, b, out=algorithm_out)

    for _ in range(warmup):
        baseline()
        algorithm()
        backend.sync()
    base_times, alg_times = [], []
    for _ in range(repeats):
        base_times.append(backend.time(baseline, chain)[0])
        alg_times.append(backend.time(algorithm, chain)[0])
    error = _relative_error(backend, algorithm_out, baseline_out)  # the last timed results
    max_abs = float(xp.abs(algorithm_out - baseline_out).max())
    flops = 2.0 * rows_ * inner * cols
    median, base_median = statistics.median(alg_times), statistics.median(base_times)
    return {
        "median_s": median,
        "min_s": min(alg_times),
        "max_s": max(alg_times),
        "tflops": flops / median / 1e12,
        "baseline_median_s": base_median,
        "baseline_min_s": min(base_times),
        "baseline_max_s": max(base_times),
        "baseline_tflops": flops / base_median / 1e12,
        "speedup": base_median / median,
        "speedup_of_min": min(base_times) / min(alg_times),  # robust to a loaded machine
        "relative_error": error,
        "max_abs_error": max_abs,
        "times_s": alg_times,
        "baseline_times_s": base_times,
    }


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


def facts(backend: Backend, identity: Identity, settings: dict[str, Any]) -> dict[str, Any]:
    """The run-level facts of a benchmark: ids, device, library versions, settings."""
    return {
        "benchmark_id": identity.benchmark_id,
        "run_id": identity.run_id,
        "source_run_id": identity.source_run_id,
        **backend.device,
        "math_mode": backend.math_mode,
        "git_commit": project_git_commit(),
        "host_load_average": _load_average(),  # 1/5/15 min: how busy the host was
        "timestamp": dt.datetime.now().astimezone().isoformat(timespec="seconds"),
        **{f"setting_{key}": value for key, value in settings.items()},
    }
