"""Flip-graph agent: seeds reaching the target rank, time to it, flips per second per core.

Runs the agent directly (one thread, so flips/s is per core) from the school method, one
episode after another until the target rank or the budget; the found decomposition is
verified exactly before it counts. Writes ``flipgraph.md`` and ``flipgraph.json``.

Sections: (0) kernel speed: flip attempts and flips per CPU-second on <3,3,3>, <4,4,4>,
<5,5,5> over Z2 (and C3-symmetric <5,5,5>), next to the figures of the previous kernel;
(1) <3,3,3> over Z2, 10 seeds, target 23; (2) every shape with n,m,p <= 3 plus
<2,2,4>, <2,3,4>, <2,4,4>, over Z2 and Z ({-1,0,1}), target the best known rank; (3) <4,4,4>
over Z2 (aim 47) and over Z (aim 49), 3 seeds each, best rank within the budget; (4) the
frontier targets of issue 26 (``TARGETS``), 30-minute runs (``quick``: 10 s each, a smoke test
of the entries), over Z2 (with the lifting, :func:`mlo_exp.algorithms.lifting.lift_z2`, sign
solve then Hensel, of every result) and over Z with coefficients -1, 0, 1 (the ternary
kernel). ``quick`` shrinks budgets and seed counts.

``FLIPGRAPH_SET=targets`` runs sections (0) and (4) only and writes ``flipgraph_targets.md``
and ``.json`` (the other tables stay as they are): ``FLIPGRAPH_TARGET_SEEDS`` (default
``0,1,2``), ``FLIPGRAPH_BUDGET_S`` (default 1800); jobs run seed by seed, two at a time, so
with fewer seeds every target still gets its seed 0. ``FLIPGRAPH_TARGETS=5x5x5-Z2-c3,...``
(``shape-ring-symmetry``, ``-catalogue`` for a target started from the catalogue, ``-built``
from a start built from other shapes, ``-built-starts16`` from the 16 best of them, one per
walk) runs only those targets and writes
``flipgraph_targets_<those>.md``.

Targets start from the school method (a measure of the search) unless their settings say
``start="catalogue"``: then from :func:`mlo_exp.algorithms.starts.best_start` (what
``agent.start_from=auto`` picks: the catalogue's best scheme, or one restricted, extended or
summed from other shapes), and the aim is below that start's rank; or ``start="built"``
(``agent.start_from=built``: the same without the shape's own scheme), and the aim is the
record. The row names the start.
"""

from __future__ import annotations

import json
import os
import statistics
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context
from pathlib import Path

import numba
import numpy as np

from mlo_exp.agents.flipgraph import FlipGraphAgent
from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.lifting import LiftError, lift_z2
from mlo_exp.algorithms.reference import best_known_rank
from mlo_exp.benchmark.backend import host_cpu_name
from mlo_exp.env import TensorGame

SHAPES = [(2, 2, 2), (2, 2, 3), (2, 3, 3), (3, 3, 3), (2, 2, 4), (2, 3, 4), (2, 4, 4)]


# The kernels of commit fc8a995 (before issue 26: no bounded paths, no adaptive plus limit,
# no population), one thread, 15 s each, from perf/flipgraph_targets.md (2026-12-05):
# (attempts/CPU-s, flips/CPU-s).
BEFORE = {"3x3x3": (5_831_866, 5_831_864), "4x4x4": (5_320_634, 5_289_297),
          "5x5x5": (5_095_585, 5_095_585)}
BEFORE_C3 = {"5x5x5": (6_213_988, 1_543_050)}

# Issue 26's targets: (shape, ring, symmetry, aim, settings); the aim stops a search early.
# A target whose settings hold start="catalogue" (or "built") is named
# shape-ring-symmetry-catalogue (-built).
C3_SETTINGS = {"walks": 8, "flips_per_episode": 20_000, "plateau_flips": 12_500,
               "plus_slack": 6, "max_plus_slack": 9, "symmetry": "c3"}
PLAIN_SETTINGS = {"walks": 16, "flips_per_episode": 100_000, "plateau_flips": 20_000,
                  "plus_slack": 3}
TARGETS = [((4, 4, 4), "Z2", "none", 47, PLAIN_SETTINGS),
           ((4, 4, 5), "Z2", "none", 60, PLAIN_SETTINGS),
           ((4, 5, 5), "Z2", "none", 73, PLAIN_SETTINGS),  # the issue: <= 76, aim 73
           ((5, 5, 5), "Z2", "c3", 93, C3_SETTINGS),
           ((4, 4, 4), "Z2", "c3", 47, C3_SETTINGS),
           ((3, 4, 5), "Z", "none", 47, PLAIN_SETTINGS),  # ternary: coefficients -1, 0, 1
           ((3, 5, 5), "Z", "none", 58, PLAIN_SETTINGS),
           ((4, 5, 6), "Z", "none", 90, PLAIN_SETTINGS),
           # the same two over Z2, lifted to Z: "over Z (ternary or lifted)" in the issue
           ((3, 4, 5), "Z2", "none", 47, PLAIN_SETTINGS),
           ((3, 5, 5), "Z2", "none", 58, PLAIN_SETTINGS),
           # from the catalogue's best (61, 76 and 90 over Z): the best known ranks over Z2
           ((4, 4, 5), "Z2", "none", 60, {**PLAIN_SETTINGS, "start": "catalogue"}),
           ((4, 5, 5), "Z2", "none", 73, {**PLAIN_SETTINGS, "start": "catalogue"}),
           ((4, 5, 6), "Z2", "none", 89, {**PLAIN_SETTINGS, "start": "catalogue"}),
           # reductions to a dead end (or a one-value trap) at a reached rank refused
           ((4, 4, 4), "Z2", "none", 47, {**PLAIN_SETTINGS, "min_flippable": 1,
                                          "label": "refuse1"}),
           ((4, 4, 4), "Z2", "none", 47, {**PLAIN_SETTINGS, "min_flippable": 2,
                                          "label": "refuse2"}),
           # from a start built from other shapes' records only (agent.start_from=built:
           # restricted, extended, or the direct sum of two smaller shapes): a rediscovery
           *(((shape), "Z2", "none", aim, {**PLAIN_SETTINGS, "start": "built"})
             for shape, aim in (((3, 4, 5), 47), ((3, 5, 5), 58), ((4, 4, 5), 60),
                                ((4, 5, 5), 73), ((4, 5, 6), 89))),
           # the walks spread over the 16 lowest-rank built starts (agent.starts=16)
           *(((shape), ring, "none", aim, {**PLAIN_SETTINGS, "start": "built", "starts": 16,
                                           "label": "starts16"})
             for shape, ring, aim in (((3, 4, 5), "Z2", 47), ((3, 4, 5), "Z", 47),
                                      ((3, 5, 5), "Z", 58), ((4, 4, 4), "Z2", 47),
                                      ((4, 4, 5), "Z2", 60), ((4, 5, 5), "Z2", 73),
                                      ((4, 5, 6), "Z2", 89), ((4, 5, 6), "Z", 90)))]


def target_name(shape, ring, symmetry, settings) -> str:
    """``4x5x5-Z2-none`` (``-catalogue`` or ``-built`` for those starts, ``-<label>`` for
    settings other than the plain ones)."""
    start = f"-{settings['start']}" if "start" in settings else ""
    label = f"-{settings['label']}" if "label" in settings else ""
    return f"{'x'.join(map(str, shape))}-{ring}-{symmetry}{start}{label}"


def catalogue_start(shape, ring, directory: Path, own: bool = True, count: int = 1
                    ) -> tuple[str, str]:
    """The scheme ``agent.start_from=auto`` (``built`` without ``own``) would pick, saved in
    ``directory``, or with ``count`` > 1 the ``agent.starts`` schemes it would pick, saved in a
    folder there: (the path, a description: names, ranks and rings)."""
    from mlo_exp.algorithms.starts import best_starts, save_starts

    algorithms = best_starts(tuple(shape), ring, 1, own=own, count=count)
    path = save_starts(algorithms, directory / f"start_{'x'.join(map(str, shape))}_{ring}.json")
    if len(algorithms) == 1:
        return str(path), f"{algorithms[0].name} (rank {algorithms[0].rank} over " \
                          f"{algorithms[0].ring})"
    ranks = [a.rank for a in algorithms]
    return str(path), f"{len(algorithms)} built starts, ranks {min(ranks)}-{max(ranks)}"


def search(shape, ring, target, seconds, seed, lift=False, **settings) -> dict:
    """Episodes until ``target`` or ``seconds``; returns best rank, time to target, flips/s;
    with ``lift`` (Z2) also the integer lift of the best scheme, or why there is none."""
    coefficients = [0, 1] if ring == "Z2" else [-1, 0, 1]
    start = "school"
    settings.pop("label", None)
    chosen_start = settings.pop("start", None)
    with tempfile.TemporaryDirectory(prefix="flipgraph_start_") as directory:
        if chosen_start in ("catalogue", "built"):  # the agent reads the file once, here
            settings["start_from"], start = catalogue_start(
                shape, ring, Path(directory), own=chosen_start == "catalogue",
                count=settings.get("starts", 1))
        if settings.get("min_flippable"):
            start += f", min_flippable={settings['min_flippable']}"
        agent = FlipGraphAgent(TensorGame(shape, coefficients, ring=ring), seed=seed,
                               threads=1, **settings)
    started = time.perf_counter()
    flips, useless, episodes, kernel_s, cpu_s, reached, best = 0, 0, 0, 0.0, 0.0, None, None
    refused, first_reached = 0, {}  # rank -> seconds when a walk first reached it
    while time.perf_counter() - started < seconds:
        episodes += 1
        before, cpu_before = time.perf_counter(), time.thread_time()
        result = agent.run_episode()  # one thread: the kernel runs in this thread
        kernel_s += time.perf_counter() - before
        cpu_s += time.thread_time() - cpu_before
        flips += result.moves
        useless += result.metrics["useless_attempts"]
        refused += result.metrics["refused_reductions"]
        if best is None or result.rank_used < best[0]:
            best = (result.rank_used, result.factors)
            first_reached[result.rank_used] = round(time.perf_counter() - started, 1)
        if result.rank_used <= target:
            reached = time.perf_counter() - started
            break
    algorithm = Algorithm(shape, *best[1], ring)
    verified = algorithm.verify().ok
    lifted = None
    if lift and verified and ring == "Z2":
        try:
            result = lift_z2(algorithm, method="auto", restarts=10)
            lifted = (f"Z rank {result.rank}, largest coefficient "
                      f"{max(int(abs(x).max()) for x in (result.u, result.v, result.w))}")
        except LiftError as error:  # sign solve's reason; Hensel's reason
            reasons = [part.replace(f"{algorithm.name}: ", "") for part in
                       str(error).split("; ") if "modulo" in part]
            lifted = "no lift: " + " / ".join(reasons)[-240:]
    return {"shape": "x".join(map(str, shape)), "ring": ring, "seed": seed, "target": target,
            "symmetry": settings.get("symmetry", "none"), "lift": lifted, "start": start,
            "best_rank": best[0] if verified else None, "verified": verified,
            "seconds_to_target": None if reached is None else round(reached, 3),
            "budget_s": seconds, "flips": flips,
            "flips_per_s": round(flips / max(kernel_s, 1e-9)),
            "flips_per_cpu_s": round(flips / max(cpu_s, 1e-9)),
            # every walk attempts flips_per_episode flips an episode
            "attempts_per_cpu_s": round(episodes * agent.settings.walks
                                        * agent.settings.flips_per_episode / max(cpu_s, 1e-9)),
            "useless_share": round(useless / max(episodes * agent.settings.walks
                                                 * agent.settings.flips_per_episode, 1), 4),
            "refused_reductions": refused,
            # the episode's end, so up to one episode late; keys are strings in the JSON
            "first_reached": first_reached}


def kernel_speed(shape, seconds, **settings) -> dict:
    """Flip attempts and flips per CPU-second of one thread (no target: the full budget)."""
    row = search(shape, "Z2", 0, seconds, 0, **settings)
    before = (BEFORE if settings.get("symmetry", "none") == "none" else BEFORE_C3) \
        .get(row["shape"])
    return {**row, "before_attempts_per_cpu_s": before and before[0],
            "before_flips_per_cpu_s": before and before[1]}


def main(out_dir: Path, quick: bool) -> None:
    rows: dict[str, list[dict]] = {"kernel": [], "seeds_333": [], "shapes": [], "444": [],
                                   "targets": []}
    small = {"walks": 8, "flips_per_episode": 50_000, "plateau_flips": 20_000}
    # warm-up: compile (or load) the kernels outside any timing
    search((2, 2, 2), "Z2", 7, 5, 0, walks=1, flips_per_episode=10)
    search((2, 2, 2), "Z2", 7, 5, 0, walks=1, flips_per_episode=10, symmetry="c3")
    for shape, settings in (((3, 3, 3), small),
                            ((4, 4, 4), PLAIN_SETTINGS),
                            ((5, 5, 5), {**PLAIN_SETTINGS, "walks": 8}),
                            ((5, 5, 5), C3_SETTINGS)):
        rows["kernel"].append(kernel_speed(shape, 5 if quick else 15, **settings))
        print(rows["kernel"][-1], flush=True)
    if os.environ.get("FLIPGRAPH_SET", "all") == "targets":
        rows["targets"] = run_targets(quick)
        chosen = os.environ.get("FLIPGRAPH_TARGETS")  # e.g. 5x5x5-Z2-c3: its own file
        name = "flipgraph_targets" + (f"_{chosen.replace(',', '_')}" if chosen else "")
        _write(out_dir, name, quick, rows, _targets_markdown)
        return
    for seed in range(3 if quick else 10):
        rows["seeds_333"].append(search((3, 3, 3), "Z2", 23, 5 if quick else 30, seed, **small))
        print(rows["seeds_333"][-1], flush=True)
    for shape in SHAPES[:3] if quick else SHAPES:
        for ring in ("Z2", "Z"):
            target = best_known_rank(shape, ring)
            for seed in range(1 if quick else 3):
                rows["shapes"].append(search(shape, ring, target, 5 if quick else 120, seed,
                                             **small))
                print(rows["shapes"][-1], flush=True)
    # <4,4,4>: a plateau of 20k flips, then plus transitions up to 3 above the walk's best
    # (a slack of 1 stalled at 52 for 14 minutes over Z2 and Z in trials).
    big = {"walks": 16, "flips_per_episode": 100_000, "plateau_flips": 20_000, "plus_slack": 3}
    jobs = [((4, 4, 4), ring, target, budget, seed)
            for ring, target, budget in (("Z2", 47, 20 if quick else 300),
                                         ("Z", 49, 10 if quick else 300))
            for seed in range(1 if quick else 3)]
    # Two searches at a time, one per core (each is one thread, so flips/CPU-s stays per core).
    with ProcessPoolExecutor(min(2, os.cpu_count() or 1), mp_context=get_context("fork")) as pool:
        futures = [pool.submit(search, *job, **big) for job in jobs]
        for future in futures:
            rows["444"].append(future.result())
            print(rows["444"][-1], flush=True)
    rows["targets"] = run_targets(quick)
    _write(out_dir, "flipgraph", quick, rows, _markdown)


def run_targets(quick: bool) -> list[dict]:
    """Issue 26's targets: 30-minute runs (``FLIPGRAPH_BUDGET_S``), two at a time (one core
    each), seed by seed; every Z2 result lifted."""
    budget = 10 if quick else float(os.environ.get("FLIPGRAPH_BUDGET_S", 1800))
    seeds = [int(x) for x in os.environ.get("FLIPGRAPH_TARGET_SEEDS", "0,1,2").split(",")]
    chosen = os.environ.get("FLIPGRAPH_TARGETS")
    names = [target_name(shape, ring, symmetry, settings)
             for shape, ring, symmetry, _aim, settings in TARGETS]
    unknown = sorted(set(chosen.split(",")) - set(names)) if chosen else []
    if unknown:
        raise SystemExit(f"FLIPGRAPH_TARGETS: no target {', '.join(unknown)}; the targets: "
                         f"{', '.join(names)}")
    targets = [t for t, name in zip(TARGETS, names, strict=True)
               if chosen is None or name in chosen.split(",")]
    jobs = [(shape, ring, aim, seed, settings) for seed in (seeds[:1] if quick else seeds)
            for shape, ring, _symmetry, aim, settings in targets]
    rows = []
    with ProcessPoolExecutor(min(2, os.cpu_count() or 1), mp_context=get_context("fork")) as pool:
        futures = [pool.submit(search, shape, ring, aim, budget, seed, lift=ring == "Z2",
                               **settings)
                   for shape, ring, aim, seed, settings in jobs]
        for future in futures:
            rows.append(future.result())
            print(rows[-1], flush=True)
    return rows


def _write(out_dir: Path, name: str, quick: bool, rows: dict, markdown) -> None:
    meta = {"cpu": host_cpu_name(), "cores": os.cpu_count(),
            "threads_per_search": 1, "numba": numba.__version__, "numpy": np.__version__,
            "quick": quick, "load_average_at_end": os.getloadavg()[0],
            "budget_overrides": {k: v for k, v in sorted(os.environ.items())
                                 if k.startswith("FLIPGRAPH_")}}
    (out_dir / f"{name}.json").write_text(json.dumps({"meta": meta, **rows}, indent=1) + "\n")
    (out_dir / f"{name}.md").write_text(markdown(meta, rows))
    print(markdown(meta, rows))


def _seconds(value) -> str:
    return "-" if value is None else f"{value:.2f}"


def _targets_markdown(meta: dict, rows: dict[str, list[dict]]) -> str:
    """The header, the kernel speed and the issue-26 targets."""
    def number(value):
        return "-" if value is None else f"{value:,}"

    lines = [
        "# Flip-graph agent (CPU, one thread per search)", "",
        f"{meta['cpu']}, {meta['cores']} cores, numba {meta['numba']}, quick={meta['quick']}; "
        f"load average at the end {meta['load_average_at_end']:.1f} (a shared machine makes "
        "times longer, never shorter). Every rank below is exactly verified.", "",
        f"## Kernel speed over Z2 (one thread, {5 if meta['quick'] else 15} s; from the "
        "school method, c3: from the diagonal-pairs start)", "",
        "Before: the kernels of commit fc8a995 (15 s each, from the committed table of "
        "2026-12-05, on that day's machine: before over now is a speedup only where both "
        "ran on one CPU). Now: the same moves with bounded paths, the adaptive plus limit "
        "and the population (issue 26); useless: the share of attempts that changed nothing.", "",
        "| shape | symmetry | attempts/CPU-s | flips/CPU-s | useless | "
        "before: attempts/CPU-s | before: flips/CPU-s | best rank in budget |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['shape']} | {r['symmetry']} | {r['attempts_per_cpu_s']:,} | "
              f"{r['flips_per_cpu_s']:,} | {r['useless_share']:.1%} | "
              f"{number(r['before_attempts_per_cpu_s'])} | "
              f"{number(r['before_flips_per_cpu_s'])} | {r['best_rank']} |"
              for r in rows["kernel"]]
    lines += [
        "", "## Issue 26 targets (Z2 with the lift to Z of every result; Z: ternary)", "",
        "One core per search (two at a time), for the budget (30 minutes unless "
        "`FLIPGRAPH_BUDGET_S` says otherwise) or until the aim is reached; "
        "`<4,5,5>`: the issue's target is at most 76, its aim 73. The lift: "
        "`lift_z2(method=\"auto\")` (sign solve, then Hensel modulo 2^k).", "",
        "| shape | ring | symmetry | start | seed | aim | best rank | seconds to aim | "
        "best first reached at s | budget s | flips/CPU-s | useless | integer lift |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    lines += [f"| {r['shape']} | {r['ring']} | {r['symmetry']} | {_start_label(r)} | "
              f"{r['seed']} | {r['target']} | "
              f"{r['best_rank']} | {_seconds(r['seconds_to_target'])} | "
              f"{_first_reached(r)} | {r['budget_s']:g} | "
              f"{r['flips_per_cpu_s']:,} | {r['useless_share']:.1%} | {r['lift'] or '-'} |"
              for r in rows["targets"]]
    return "\n".join(lines) + "\n"


def _first_reached(row: dict) -> str:
    """Seconds into the search when its best rank was first reached ("-" in tables written
    before the search recorded it)."""
    reached = row.get("first_reached") or {}
    value = reached.get(row["best_rank"], reached.get(str(row["best_rank"])))
    return "-" if value is None else f"{value:g}"


def _start_label(row: dict) -> str:
    """The start of a target row: the catalogue's scheme, else the school method, or with
    ``c3`` the diagonal-pairs start (``agent.c3_start``'s default)."""
    start = row.get("start", "school")
    return "diagonal pairs" if start == "school" and row["symmetry"] == "c3" else start


def _markdown(meta: dict, rows: dict[str, list[dict]]) -> str:
    seeds = rows["seeds_333"]
    times = [r["seconds_to_target"] for r in seeds if r["seconds_to_target"] is not None]
    lines = [_targets_markdown(meta, rows).rstrip("\n")]
    lines += [
        "", "## <3,3,3> over Z2: school method (27) to 23", "",
        f"{len(times)} of {len(seeds)} seeds reached 23; median "
        f"{_seconds(statistics.median(times)) if times else '-'} s, max "
        f"{_seconds(max(times)) if times else '-'} s (budget {seeds[0]['budget_s']} s per seed). "
        "The published C++ code: 0.1 to 1.7 s on one core.", "",
        "| seed | best rank | seconds to 23 | flips/s (wall) | flips/CPU-s | attempts/CPU-s |",
        "|---:|---:|---:|---:|---:|---:|",
    ]
    lines += [f"| {r['seed']} | {r['best_rank']} | {_seconds(r['seconds_to_target'])} | "
              f"{r['flips_per_s']:,} | {r['flips_per_cpu_s']:,} | {r['attempts_per_cpu_s']:,} |"
              for r in seeds]
    lines += ["", "## Best known rank per shape", "",
              "| shape | ring | target | seeds reaching it | median s | max s | best rank "
              "| budget s | flips/CPU-s | attempts/CPU-s |",
              "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for row in rows["shapes"]:
        groups.setdefault((row["shape"], row["ring"]), []).append(row)
    for (shape, ring), group in groups.items():
        hit = [r["seconds_to_target"] for r in group if r["seconds_to_target"] is not None]
        lines.append(
            f"| {shape} | {ring} | {group[0]['target']} | {len(hit)} of {len(group)} | "
            f"{_seconds(statistics.median(hit)) if hit else '-'} | "
            f"{_seconds(max(hit)) if hit else '-'} | {min(r['best_rank'] for r in group)} | "
            f"{group[0]['budget_s']} | "
            f"{round(statistics.mean(r['flips_per_cpu_s'] for r in group)):,} | "
            f"{round(statistics.mean(r['attempts_per_cpu_s'] for r in group)):,} |")
    lines += ["", "## <4,4,4> from the school method (64)", "",
              "Two searches at a time, one per core; 16 walks, plateau 20k flips, plus slack 3. "
              "A search stops at its aim.", "",
              "| ring | seed | aim | best rank in budget | seconds to aim | budget s | flips | "
              "flips/s (wall) | flips/CPU-s | attempts/CPU-s |",
              "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    lines += [f"| {r['ring']} | {r['seed']} | {r['target']} | {r['best_rank']} | "
              f"{_seconds(r['seconds_to_target'])} | {r['budget_s']} | {r['flips']:,} | "
              f"{r['flips_per_s']:,} | {r['flips_per_cpu_s']:,} | {r['attempts_per_cpu_s']:,} |"
              for r in rows["444"]]
    lines += ["", "flips/s (wall) counts successful flips per second of kernel wall time on one "
              "thread; flips/CPU-s per second of CPU time that thread got (the per-core rate, "
              "less sensitive to a loaded machine). The C++ flip-graph code reports the order "
              "of 10^7 flips/s on one core. attempts/CPU-s counts every flip attempt (each walk "
              "makes flips_per_episode an episode); one whose factor has no partner is not a "
              "flip, and at low rank (above all over Z2) that is nearly every attempt, so "
              "flips/s falls as the walks improve while attempts/s does not.", ""]
    return "\n".join(lines)
