"""``mlo-benchmark``: benchmark algorithms outside a training run, or report past results.

Usage::

    mlo-benchmark TARGET [TARGET ...] [--sizes N ...] [--dtype float32] [--levels 1]
                  [--repeats 3] [--warmup 1] [--backend auto|cupy|numpy] [--strategy ...]
    mlo-benchmark report [--last K] [--algorithm TEXT] [--benchmark-id ID]

A TARGET is a run directory (its ``algorithm.json``; its ``run.json`` gives the source
run_id), a run_id (looked up under the outputs root), an algorithm file (format
``mlo-exp/algorithm``), or a library name (``strassen``, ``school-NxMxP``,
``alphatensor-NxMxP``). Each invocation gets its own ``benchmark_id``; rows record the
training run an algorithm came from as ``source_run_id``. Results go to
``<outputs>/benchmarks/<date>/<time>_<benchmark_id>/`` (``benchmark.json``, PNG plots) and
the results registry (``<outputs>/benchmarks.sqlite``).

Exit codes: 0 done; 1 an output could not be written or the registry could not be read;
2 bad input (unknown target, invalid file, refused algorithm, a backend that cannot run here,
invalid setting).

Outputs that cannot be written (disk full, read-only outputs directory, a path under a
regular file): the results table is printed to stdout first, as soon as the measurements are
done, so a refused output never loses them; then each output is tried on its own (the
results directory with ``benchmark.json`` and the plots, the registry, ``--markdown``,
``--json``), each refused one is reported in one line ``mlo-benchmark: cannot write <path>:
<reason>`` on stderr, the others are still written, and the exit code is 1. A registry that
cannot be written (say a read-only outputs root shared by a team) therefore does not hide the
table; ``--no-registry`` leaves it out and exits 0. ``report`` only reads the registry, even
in a read-only directory; one it cannot read ends in ``mlo-benchmark report: cannot read
<path>: <reason>`` and exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import logging
import re
import sys
from pathlib import Path
from typing import Any

from mlo_exp.algorithms.algorithm import Algorithm, AlgorithmFileError
from mlo_exp.algorithms.library import lookup
from mlo_exp.benchmark.backend import BackendError, select_backend
from mlo_exp.benchmark.measure import (
    CPU_FULL_SIZES,
    BenchmarkRefused,
    Identity,
    benchmark_algorithm,
    facts,
)
from mlo_exp.benchmark.report import format_comparison, format_table, plot
from mlo_exp.benchmark.store import RegistryReadError, ResultsStore
from mlo_exp.config import (
    BENCHMARK_BACKENDS,
    BENCHMARK_DTYPES,
    BENCHMARK_STRATEGIES,
    BenchmarkConfig,
    ConfigError,
)
from mlo_exp.io import WriteError, atomic_write_text
from mlo_exp.run_context import new_run_id
from mlo_exp.run_files import outputs_root

log = logging.getLogger("mlo_exp")

RUN_ID_PATTERN = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}")
TARGET_FORMS = ("a run directory, a run_id, an algorithm .json file, or a library name "
                "(strassen, school-NxMxP, alphatensor-NxMxP)")


class TargetError(ValueError):
    """A target that names no algorithm (says what was given and what is accepted)."""


def resolve_target(text: str) -> tuple[Algorithm, str | None]:
    """``(algorithm, source_run_id)`` for one TARGET (see module docstring)."""
    path = Path(text)
    if path.is_dir():
        return _from_run_dir(path)
    if path.is_file():
        algorithm = Algorithm.load(path)
        return algorithm, algorithm.provenance.get("run_id")
    if RUN_ID_PATTERN.fullmatch(text):
        root = outputs_root()
        for run_json in sorted(root.rglob("run.json")):
            try:
                if json.loads(run_json.read_text()).get("run_id") == text:
                    return _from_run_dir(run_json.parent)
            except (OSError, json.JSONDecodeError):
                continue
        raise TargetError(f"run_id {text!r}: no run directory under {root} has it "
                          "(set MLO_OUTPUTS to the outputs root that holds the run)")
    if text.endswith(".json"):
        raise TargetError(f"{text!r}: no such file; accepted: {TARGET_FORMS}")
    try:
        return lookup(text), None
    except KeyError as error:
        raise TargetError(f"{text!r} is not {TARGET_FORMS}. {error.args[0]}") from None


def _from_run_dir(run_dir: Path) -> tuple[Algorithm, str | None]:
    algorithm_file = run_dir / "algorithm.json"
    if not algorithm_file.is_file():
        raise TargetError(f"run directory {run_dir} has no algorithm.json (the run found no "
                          "exactly verified algorithm); accepted: a run that found one")
    algorithm = Algorithm.load(algorithm_file)
    run_id = algorithm.provenance.get("run_id")
    run_json = run_dir / "run.json"
    if run_json.is_file():
        with contextlib.suppress(json.JSONDecodeError):
            run_id = json.loads(run_json.read_text()).get("run_id", run_id)
    return algorithm, run_id


def _parser() -> argparse.ArgumentParser:
    defaults = BenchmarkConfig()
    parser = argparse.ArgumentParser(
        prog="mlo-benchmark",
        description="Time algorithms as block matrix products against the plain product "
                    "(CuPy on a CUDA device, NumPy on the CPU). `mlo-benchmark report` lists "
                    "past results.")
    parser.add_argument("targets", nargs="+", metavar="TARGET", help=TARGET_FORMS)
    parser.add_argument("--sizes", type=int, nargs="+", default=None,
                        help="square sizes N; default: what fits the device (CPU "
                             f"{' '.join(map(str, CPU_FULL_SIZES))}; GPU 4096 8192 16384)")
    parser.add_argument("--dtype", choices=BENCHMARK_DTYPES, default=defaults.dtype)
    parser.add_argument("--levels", type=int, default=defaults.levels)
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--repeats", type=int, default=defaults.repeats)
    parser.add_argument("--backend", choices=BENCHMARK_BACKENDS, default=defaults.backend)
    parser.add_argument("--strategy", choices=BENCHMARK_STRATEGIES,
                        default=defaults.strategy)
    parser.add_argument("--allow-tf32", action="store_true",
                        help="let CuPy use TF32 for fp32 (both algorithm and baseline)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random operands")
    parser.add_argument("--no-registry", action="store_true",
                        help="do not append to the results registry")
    parser.add_argument("--out", type=Path, default=None,
                        help="directory for benchmark.json and the plots")
    parser.add_argument("--markdown", type=Path, default=None,
                        help="also write the table as Markdown here (e.g. perf/benchmark.md)")
    parser.add_argument("--json", type=Path, default=None,
                        help="also write facts and rows as JSON here (e.g. perf/benchmark.json)")
    return parser


def _report_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlo-benchmark report",
                                     description="List and compare past benchmark results.")
    parser.add_argument("--last", type=int, default=None, help="only the last K benchmarks")
    parser.add_argument("--algorithm", default=None, help="algorithm name contains TEXT")
    parser.add_argument("--benchmark-id", default=None, help="one benchmark (or run_id)")
    parser.add_argument("--database", type=Path, default=None,
                        help="registry file (default: <outputs>/benchmarks.sqlite)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Entry point of ``mlo-benchmark``; returns the exit code."""
    logging.basicConfig(level=logging.INFO, format="[%(asctime)s][%(levelname)s] %(message)s",
                        datefmt="%H:%M:%S")
    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["report"]:
        return report(_report_parser().parse_args(argv[1:]))
    return benchmark(_parser().parse_args(argv))


def report(args: argparse.Namespace) -> int:
    store = ResultsStore(args.database)
    try:
        rows = store.rows(args.benchmark_id, args.algorithm, args.last)
    except RegistryReadError as error:
        print(f"mlo-benchmark report: {error}", file=sys.stderr)
        return 1
    if not rows:
        print(f"mlo-benchmark report: no results in {store.path} for these filters")
        return 0
    print(f"{len(rows)} rows from {store.path}\n")
    print(format_table(rows))
    print("\nspeedup by benchmark:")
    print(format_comparison(rows))
    return 0


def benchmark(args: argparse.Namespace) -> int:
    try:
        settings = BenchmarkConfig(backend=args.backend, sizes=args.sizes, dtype=args.dtype,
                                   levels=args.levels, warmup=args.warmup,
                                   repeats=args.repeats, strategy=args.strategy,
                                   allow_tf32=args.allow_tf32, registry=not args.no_registry)
        targets = [resolve_target(text) for text in args.targets]
        backend = select_backend(settings.backend, settings.allow_tf32)
    except (ConfigError, TargetError, AlgorithmFileError, BackendError) as error:
        print(f"mlo-benchmark: {error}", file=sys.stderr)
        return 2
    benchmark_id = new_run_id()
    log.info("benchmark_id %s on %s", benchmark_id, backend.device["device"])
    sizes = settings.sizes or (None if backend.on_gpu else list(CPU_FULL_SIZES))
    rows: list[dict[str, Any]] = []
    try:
        for algorithm, source_run_id in targets:
            identity = Identity(benchmark_id, benchmark_id, source_run_id)
            rows += benchmark_algorithm(algorithm, backend, identity, sizes, settings.dtype,
                                        settings.levels, settings.warmup, settings.repeats,
                                        settings.strategy, seed=args.seed)
    except BenchmarkRefused as error:
        print(f"mlo-benchmark: {error}", file=sys.stderr)
        return 2
    sources = sorted({str(s) for _, s in targets if s})
    run_facts = facts(backend, Identity(benchmark_id, benchmark_id, ",".join(sources) or None),
                      {**vars(settings), "targets": args.targets, "sizes": sizes})
    for row in rows:
        row["git_commit"] = run_facts["git_commit"]
    now = dt.datetime.now()
    out_dir = args.out or (outputs_root() / "benchmarks" / f"{now:%Y-%m-%d}"
                           / f"{now:%H-%M-%S}_{benchmark_id}")
    payload = {"benchmark_id": benchmark_id, "status": "success", "facts": run_facts,
               "rows": rows}
    # The table first: whatever output is refused below, the measurements are not lost.
    print(format_table(rows, title=f"benchmark {benchmark_id}"), flush=True)
    refused = 0

    def attempt(write) -> bool:  # noqa: ANN001 - a thunk
        nonlocal refused
        try:
            write()
        except WriteError as error:
            print(f"mlo-benchmark: {error}", file=sys.stderr, flush=True)
            refused += 1
            return False
        return True

    def results_dir() -> None:
        atomic_write_text(Path(out_dir) / "benchmark.json",
                          json.dumps(payload, indent=1, default=str) + "\n")
        plot(rows, out_dir)

    if attempt(results_dir):
        print(f"results: {out_dir}", flush=True)
    if settings.registry:
        attempt(lambda: ResultsStore().append(rows))
    if args.markdown:
        attempt(lambda: atomic_write_text(args.markdown, markdown_table(rows, run_facts)))
    if args.json:
        attempt(lambda: atomic_write_text(args.json, json.dumps(
            {"facts": run_facts, "rows": rows}, indent=1, default=str) + "\n"))
    return 1 if refused else 0


def markdown_table(rows: list[dict[str, Any]], run_facts: dict[str, Any]) -> str:
    """The benchmark as a Markdown document: device facts, then one row per algorithm/size."""
    kind = "GPU" if run_facts.get("backend") == "cupy" else "CPU"
    lines = [f"# Benchmark {run_facts['benchmark_id']} ({kind}, backend {run_facts['backend']})",
             "",
             f"- device: {run_facts.get('device')}",
             f"- math mode: {run_facts.get('math_mode')}",
             f"- NumPy {run_facts.get('numpy_version')}, CuPy {run_facts.get('cupy_version')}, "
             f"BLAS {run_facts.get('blas', '-')}, CUDA runtime "
             f"{run_facts.get('cuda_runtime_version')}, driver {run_facts.get('driver_version')}",
             f"- git commit: {run_facts.get('git_commit')}; at {run_facts.get('timestamp')}",
             f"- host load average (1/5/15 min) at the end: {run_facts.get('host_load_average')} "
             f"on {run_facts.get('cpu_threads') or '?'} CPU threads",
             "- timing: warm-up, then repeats alternating baseline and algorithm, each writing "
             "into an output allocated once; speedup = baseline median / algorithm median; "
             "TFLOP/s = 2N^3 / median",
             "",
             "| algorithm | R | levels | N | dtype | median s | min s | max s | TFLOP/s | "
             "plain median s | speedup | min/min | rel. error |",
             "|---|---:|---:|---:|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['algorithm']} | {r['rank']} | {r['levels']} | {r['size']} | "
                     f"{r['dtype']} | {r['median_s']:.4f} | {r['min_s']:.4f} | "
                     f"{r['max_s']:.4f} | {r['tflops']:.3f} | {r['baseline_median_s']:.4f} | "
                     f"{r['speedup']:.3f}x | {r.get('speedup_of_min', float('nan')):.3f}x | "
                     f"{r['relative_error']:.1e} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
