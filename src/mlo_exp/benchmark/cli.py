"""``mlo-benchmark``: benchmark algorithms outside a training run, or report past results.

Usage::

    mlo-benchmark TARGET [TARGET ...] [--sizes N ... | --full-sizes] [--shape N1xN2xN3 ...]
                  [--dtype float32] [--levels 1 [2]] [--strategy stream [batched]]
                  [--tf32 off [on]] [--plan reduced|naive] [--sums fused [numpy]]
                  [--repeats 3] [--max-repeats 10] [--ci-width 0.05] [--warmup 1]
                  [--chain K] [--backend auto|cupy|numpy] [--time-budget 60]
    mlo-benchmark report [--last K] [--algorithm TEXT] [--benchmark-id ID]

A TARGET is a run directory (its ``algorithm.json``; its ``run.json`` gives the source
run_id), a run_id (looked up under the outputs root), an algorithm file (format
``mlo-exp/algorithm``), or a library name (``strassen``, ``school-NxMxP``,
``alphatensor-NxMxP`` in any order of the sides: ``alphatensor-4x2x4`` is AlphaTensor's
``<2,4,4>`` reordered, exactly). ``--shape`` times rectangular products (``N1 x N2`` times
``N2 x N3``) instead of square sizes. ``--levels``, ``--strategy`` and ``--tf32`` take
several values: every combination is timed, and the table, the Markdown file and the
break-even lines show them side by side. Each invocation gets its own ``benchmark_id``;
rows record the training run an algorithm came from as ``source_run_id``. Results go to
``<outputs>/benchmarks/<date>/<time>_<benchmark_id>/`` (``benchmark.json``, PNG plots) and
the results registry (``<outputs>/benchmarks.sqlite``); ``--markdown``/``--json`` write
further copies where asked (``make benchmark`` asks for ``perf/`` only with
``UPDATE_PERF=1``). After the table: the block additions per level (plan and term by
term) and, per scheme and device, the size from which it beats the plain product.

Every scheme is timed beside its classical control (the school scheme of the same block
shape, same executor and settings) and the plain product; speedups carry 95% bootstrap
intervals, and rounds are added (from ``--repeats`` up to ``--max-repeats``) until each
interval is at most ``--ci-width`` wide (see :mod:`mlo_exp.benchmark.measure`).

Sizes: ``--sizes``/``--shape`` as given; else on a GPU those that fit its memory; else on
a CPU the largest of 256..8192 (up to three, each double the last) that the plain
product's speed here says will finish within ``--time-budget`` seconds (default 60) for all
targets and settings, with at most ``--repeats`` + 2 rounds unless ``--max-repeats`` is
given; ``--full-sizes`` takes the full CPU set (2048 4096 8192) instead.

Ctrl-C: the rows measured so far are printed as the table and written as usual (with
``"status": "interrupted"``); exit code 130, no traceback.

Exit codes: 0 done; 130 interrupted; 1 an output could not be written or the registry
could not be read; 2 bad input (unknown target, invalid file, refused algorithm, a backend
that cannot run here, invalid setting).

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
import math
import re
import sys
from pathlib import Path
from typing import Any

from mlo_exp.algorithms.algorithm import Algorithm, AlgorithmFileError
from mlo_exp.algorithms.formats import read_algorithm_file
from mlo_exp.benchmark.backend import BackendError, select_backend
from mlo_exp.benchmark.execute import SUMS
from mlo_exp.benchmark.measure import (
    CPU_FULL_SIZES,
    DEFAULT_CI_WIDTH,
    DEFAULT_MAX_REPEATS,
    BenchmarkRefused,
    Identity,
    benchmark_algorithm,
    facts,
    parse_problem,
    pick_cpu_sizes,
)
from mlo_exp.benchmark.report import (
    READING,
    break_even,
    format_break_even,
    format_comparison,
    format_table,
    plot,
    side_by_side,
    speedup_cell,
    warnings,
)
from mlo_exp.benchmark.schemes import resolve_scheme
from mlo_exp.benchmark.stats import host_load
from mlo_exp.benchmark.store import RegistryReadError, ResultsStore
from mlo_exp.config import (
    BENCHMARK_BACKENDS,
    BENCHMARK_DTYPES,
    BENCHMARK_PLANS,
    BENCHMARK_STRATEGIES,
    BenchmarkConfig,
    ConfigError,
)
from mlo_exp.io import WriteError, atomic_write_text
from mlo_exp.run_context import new_run_id
from mlo_exp.run_files import outputs_root

log = logging.getLogger("mlo_exp")

RUN_ID_PATTERN = re.compile(r"\d{8}-\d{6}-[0-9a-f]{8}")
TARGET_FORMS = ("a run directory, a run_id, an algorithm .json file, a library name "
                "(strassen, school-NxMxP, alphatensor-NxMxP, best-NxMxP) or a product of "
                "names (best-3x2x3*strassen)")


class TargetError(ValueError):
    """A target that names no algorithm (says what was given and what is accepted)."""


def resolve_target(text: str) -> tuple[Algorithm, str | None]:
    """``(algorithm, source_run_id)`` for one TARGET (see module docstring)."""
    path = Path(text)
    if path.is_dir():
        return _from_run_dir(path)
    if path.is_file():
        algorithm = read_algorithm_file(path)  # any format, e.g. a published *_reduced.json
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
        return resolve_scheme(text), None
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
                        help="square sizes N; default: on a CPU sizes that finish within "
                             "--time-budget, on a GPU 4096 8192 16384 as memory allows")
    parser.add_argument("--full-sizes", action="store_true",
                        help="the full default sizes (CPU "
                             f"{' '.join(map(str, CPU_FULL_SIZES))}) whatever they take")
    parser.add_argument("--time-budget", type=float, default=60.0, metavar="SECONDS",
                        help="CPU without --sizes: pick sizes that finish in about this long")
    parser.add_argument("--shape", nargs="+", default=None, metavar="N1xN2xN3",
                        help="rectangular problems (N1 x N2 times N2 x N3) instead of --sizes")
    parser.add_argument("--dtype", choices=BENCHMARK_DTYPES, default=defaults.dtype)
    parser.add_argument("--levels", type=int, nargs="+", default=[defaults.levels],
                        help="recursion levels (several: each is timed)")
    parser.add_argument("--warmup", type=int, default=defaults.warmup)
    parser.add_argument("--repeats", type=int, default=defaults.repeats,
                        help="least timed rounds (plain, scheme, control) per size")
    parser.add_argument("--max-repeats", type=int, default=None,
                        help="most rounds: more are taken while a speedup's 95%% interval "
                             f"is wider than --ci-width (default {DEFAULT_MAX_REPEATS})")
    parser.add_argument("--ci-width", type=float, default=DEFAULT_CI_WIDTH,
                        help="target width of each speedup's 95%% interval, relative to it")
    parser.add_argument("--sums", choices=SUMS, nargs="+", default=["fused"],
                        help="CPU block sums: fused (one compiled pass) or numpy (ufuncs); "
                             "several: each is timed")
    parser.add_argument("--chain", type=int, default=defaults.chain,
                        help="consecutive calls per timed sample (default: 1 CPU, 10 GPU)")
    parser.add_argument("--backend", choices=BENCHMARK_BACKENDS, default=defaults.backend)
    parser.add_argument("--strategy", choices=BENCHMARK_STRATEGIES, nargs="+",
                        default=[defaults.strategy], help="several: each is timed")
    parser.add_argument("--plan", choices=BENCHMARK_PLANS, default=defaults.plan,
                        help="block sums: the fewest additions found (reduced: shared sums "
                        "or the file's own plan), an addition-reduced file's own plan (file), "
                        "or term by term (naive)")
    parser.add_argument("--tf32", choices=("off", "on"), nargs="+", default=None,
                        help="CuPy fp32 math: off, on, or both (side by side)")
    parser.add_argument("--allow-tf32", action="store_true",
                        help="let CuPy use TF32 for fp32 (both algorithm and baseline); "
                             "same as --tf32 on")
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
    tf32 = args.tf32 or (["on"] if args.allow_tf32 else ["off"])
    try:
        variants = [(BenchmarkConfig(backend=args.backend, sizes=args.sizes, dtype=args.dtype,
                                     levels=levels, warmup=args.warmup, repeats=args.repeats,
                                     strategy=strategy, allow_tf32=mode == "on",
                                     registry=not args.no_registry, plan=args.plan,
                                     chain=args.chain), sums)
                    for mode in dict.fromkeys(tf32) for levels in dict.fromkeys(args.levels)
                    for strategy in dict.fromkeys(args.strategy)
                    for sums in dict.fromkeys(args.sums)]
        settings = variants[0][0]
        _check_noise_settings(args)
        problems = [parse_problem(text) for text in args.shape] if args.shape else None
        targets = [resolve_target(text) for text in args.targets]
        backends = {mode: select_backend(settings.backend, mode == "on")
                    for mode in dict.fromkeys(tf32)}
    except (ConfigError, ValueError) as error:  # a bad setting or --shape
        print(f"mlo-benchmark: {error}", file=sys.stderr)
        return 2
    except (TargetError, AlgorithmFileError, BackendError) as error:
        print(f"mlo-benchmark: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("mlo-benchmark: interrupted before any timing", file=sys.stderr)
        return 130
    backend = backends[tf32[0]]
    benchmark_id = new_run_id()
    log.info("benchmark_id %s on %s", benchmark_id, backend.device["device"])
    load_before = host_load()
    max_repeats = args.max_repeats
    sizes: list[Any] | None = problems or settings.sizes
    if sizes is None and not backend.on_gpu:
        if args.full_sizes:
            sizes = list(CPU_FULL_SIZES)
        else:
            try:
                sizes, rate = pick_cpu_sizes(backend, settings.dtype,
                                             len(targets) * len(variants), args.time_budget,
                                             settings.warmup, settings.repeats)
            except KeyboardInterrupt:
                print("mlo-benchmark: interrupted before any timing", file=sys.stderr)
                return 130
            max_repeats = max_repeats or settings.repeats + 2
            log.info("sizes %s: expected to finish in about %.0f s (plain product here: "
                     "%.0f GFLOP/s; --sizes or --full-sizes to choose)",
                     " ".join(map(str, sizes)), args.time_budget, rate / 1e9)
    rows: list[dict[str, Any]] = []
    status = "success"

    def record(row: dict[str, Any]) -> None:  # as soon as measured: Ctrl-C keeps it
        rows.append(row)
        log.info("  %s %s: %s vs plain, %s vs control", row["algorithm"], row["problem"],
                 speedup_cell(row, "speedup"), speedup_cell(row, "speedup_over_control"))

    try:
        for algorithm, source_run_id in targets:
            identity = Identity(benchmark_id, benchmark_id, source_run_id)
            for variant, sums in variants:
                benchmark_algorithm(
                    algorithm, backends["on" if variant.allow_tf32 else "off"], identity,
                    sizes, variant.dtype, variant.levels, variant.warmup, variant.repeats,
                    variant.strategy, seed=args.seed, plan=variant.plan, chain=variant.chain,
                    max_repeats=max_repeats, ci_width=args.ci_width, sums=sums,
                    on_row=record)
    except BenchmarkRefused as error:
        print(f"mlo-benchmark: {error}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        status = "interrupted"
        print(f"\nmlo-benchmark: interrupted; the {len(rows)} row(s) measured so far follow",
              file=sys.stderr, flush=True)
    sources = sorted({str(s) for _, s in targets if s})
    run_facts = facts(backend, Identity(benchmark_id, benchmark_id, ",".join(sources) or None),
                      {**vars(settings), "targets": args.targets, "sizes": sizes,
                       "levels": args.levels, "strategy": args.strategy, "tf32": tf32,
                       "sums": args.sums, "max_repeats": max_repeats,
                       "ci_width": args.ci_width}, load_before=load_before)
    for row in rows:
        row["git_commit"] = run_facts["git_commit"]
    now = dt.datetime.now()
    out_dir = args.out or (outputs_root() / "benchmarks" / f"{now:%Y-%m-%d}"
                           / f"{now:%H-%M-%S}_{benchmark_id}")
    payload = {"benchmark_id": benchmark_id, "status": status, "facts": run_facts,
               "rows": rows, "break_even": break_even(rows)}
    # The table first: whatever output is refused below, the measurements are not lost.
    title = f"benchmark {benchmark_id}" + (" (interrupted: partial)" if rows and
                                           status == "interrupted" else "")
    if rows:
        print(format_table(rows, title=title), flush=True)
        print(format_break_even(rows), flush=True)
    else:
        print("no row was measured", flush=True)
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
        if rows:
            plot(rows, out_dir)

    if attempt(results_dir):
        print(f"results: {out_dir}", flush=True)
    if settings.registry and rows:
        attempt(lambda: ResultsStore().append(rows))
    if args.markdown and rows:
        attempt(lambda: atomic_write_text(args.markdown, markdown_table(rows, run_facts)))
    if args.json:
        attempt(lambda: atomic_write_text(args.json, json.dumps(
            {"status": status, "facts": run_facts, "rows": rows,
             "break_even": payload["break_even"]}, indent=1, default=str) + "\n"))
    if status == "interrupted":
        return 130
    return 1 if refused else 0


def _check_noise_settings(args: argparse.Namespace) -> None:
    if args.max_repeats is not None and args.max_repeats < 1:
        raise ValueError(f"--max-repeats {args.max_repeats}; accepted: an integer >= 1")
    if not args.ci_width > 0:
        raise ValueError(f"--ci-width {args.ci_width}; accepted: a number > 0 (e.g. 0.05: "
                         "each speedup's 95% interval within 5% of it)")
    if not args.time_budget > 0:
        raise ValueError(f"--time-budget {args.time_budget}; accepted: seconds > 0")


def markdown_table(rows: list[dict[str, Any]], run_facts: dict[str, Any]) -> str:
    """The benchmark as a Markdown document: device facts (and a loaded-machine warning),
    how to read it, the speedups over the plain product and over the classical control side
    by side, the break-even sizes, then one row per scheme and size, each followed by its
    control's row."""
    kind = "GPU" if run_facts.get("backend") == "cupy" else "CPU"
    before = run_facts.get("host_load_before") or {}
    lines = [f"# Benchmark {run_facts['benchmark_id']} ({kind}, backend {run_facts['backend']})",
             "",
             f"- device: {run_facts.get('device')}",
             f"- math mode: {run_facts.get('math_mode')}",
             f"- NumPy {run_facts.get('numpy_version')}, CuPy {run_facts.get('cupy_version')}, "
             f"BLAS {run_facts.get('blas', '-')}, CUDA runtime "
             f"{run_facts.get('cuda_runtime_version')}, driver {run_facts.get('driver_version')}",
             f"- git commit: {run_facts.get('git_commit')}; at {run_facts.get('timestamp')}",
             f"- host load average (1 min) before the run: {before.get('load_1min')}; "
             f"(1/5/15 min) at the end: {run_facts.get('host_load_average')} "
             f"on {run_facts.get('cpu_threads') or before.get('cpu_threads') or '?'} CPU "
             "threads",
             "- timing: warm-up, then rounds of one sample each of the plain product, the "
             "scheme and its classical control (order rotated; each sample `chain` consecutive "
             "calls, into an output allocated once), from the least to the most rounds until "
             "every speedup's 95% paired-bootstrap interval is narrow enough "
             f"(width target {run_facts.get('setting_ci_width')}); speedup = median / median; "
             "TFLOP/s = 2 N1 N2 N3 / median; additions = block additions per level with shared "
             "subexpressions / term by term; add% = share of an instrumented call's time in "
             "block sums and copies",
             ""]
    lines += [f"**{line}**" for line in warnings(rows) if line.startswith("WARNING")]
    lines += ["", READING, "",
              "## Speedup over the plain product, side by side (median / median)",
              "",
              side_by_side(rows),
              "",
              "## Speedup over the classical control, side by side (median / median)",
              "",
              side_by_side(rows, "speedup_over_control"),
              "",
              "## Break-even",
              "",
              *[f"- {entry['text']}" for entry in break_even(rows)],
              "",
              "## All rows",
              "",
              "| algorithm | R | levels | strategy | additions | problem | dtype | rounds | "
              "median s | min s | max s | TFLOP/s | plain median s | vs plain [95% CI] | "
              "vs control [95% CI] | bound | add% | rel. error |",
              "|---|---:|---:|---|---:|---|---|---:|---:|---:|---:|---:|---:|---|---|---:|"
              "---:|---:|"]
    for r in rows:
        additions = f"{r.get('additions')}/{r.get('additions_naive')}"
        if r.get("classical"):
            versus = "classical rank (its own control)"
        else:
            versus = speedup_cell(r, "speedup_over_control")
            versus = f"**{versus}; above the bound**" if r.get("above_bound") else versus
        bound = "-" if r.get("bound") is None else f"{r['bound']:.3f}"
        share = r.get("additions_share")
        lines.append(f"| {r['algorithm']} | {r['rank']} | {r['levels']} | "
                     f"{r.get('strategy')} | {additions} | {r.get('problem', r['size'])} | "
                     f"{r['dtype']} | {r.get('repeats')} | {r['median_s']:.4f} | "
                     f"{r['min_s']:.4f} | {r['max_s']:.4f} | {r['tflops']:.3f} | "
                     f"{r['baseline_median_s']:.4f} | {speedup_cell(r, 'speedup')} | "
                     f"{versus} | {bound} | "
                     f"{'-' if share is None else f'{100 * share:.0f}%'} | "
                     f"{r['relative_error']:.1e} |")
        if r.get("control_median_s") is not None:
            share = r.get("control_additions_share")
            flops = 2.0 * math.prod(int(x) for x in str(r.get("problem")).split("x")) \
                if r.get("problem") else 2.0 * r["size"] ** 3
            lines.append(f"| ↳ control {r['control']} | {r.get('control_rank')} | "
                         f"{r['levels']} | {r.get('strategy')} | | | | | "
                         f"{r['control_median_s']:.4f} | {r['control_min_s']:.4f} | "
                         f"{r['control_max_s']:.4f} | "
                         f"{flops / r['control_median_s'] / 1e12:.3f} | "
                         f"{r['baseline_median_s']:.4f} | "
                         f"{speedup_cell(r, 'control_speedup')} | | | "
                         f"{'-' if share is None else f'{100 * share:.0f}%'} | "
                         f"{r.get('control_relative_error', float('nan')):.1e} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
