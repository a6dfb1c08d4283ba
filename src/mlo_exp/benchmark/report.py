"""Benchmark rows as a console table, a logger table and PNG plots.

Rows are those of :mod:`mlo_exp.benchmark.measure` (times in seconds, sizes ``N`` of square
``N x N`` products, or the largest side of a rectangular ``problem``). Plots:
``latency.png`` (median seconds, min-max as error bars, against ``N``, log-log, one line per
algorithm plus the plain product) and ``speedup.png`` (baseline median / algorithm median
against ``N``; 1.0 dashed).

Every summary is of medians: a row's speedup is the median of the plain product's times
over the median of the algorithm's, shown with its 95% bootstrap interval and verdict
(``faster``, ``slower``, ``no difference``: see :mod:`mlo_exp.benchmark.stats`); each row
is followed by its classical control's row, and carries the speedup over that control and
the arithmetic bound (flagged ``!`` when above it; :data:`READING` says how to read them).
Rows repeated at one size (the registry, a sweep) are summarised by the median of their
speedups. Break-even (:func:`break_even`): per scheme (algorithm, levels, strategy, plan),
device, dtype and problem aspect, the size from which the scheme beats the plain product
(interval above 1.0) at every larger measured size, interpolated linearly in ``log N``
between the last size where it did not and the next, or "not within the measured sizes".
"""

from __future__ import annotations

import math
import statistics
from collections import defaultdict
from pathlib import Path
from typing import Any

from mlo_exp.io import atomic_write_bytes, ensure_directory


def display_rows(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Rows with readable column names, as logged (``Source Run ID`` included)."""
    return [{
        "Run ID": row.get("run_id"),
        "Source Run ID": row.get("source_run_id") or "",
        "Benchmark ID": row.get("benchmark_id"),
        "Algorithm": row.get("algorithm"),
        "Shape": row.get("algorithm_shape"),
        "Rank": row.get("rank"),
        "Levels": row.get("levels"),
        "N": row.get("size"),
        "Problem": _problem(row),
        "Strategy": row.get("strategy"),
        "Additions": row.get("additions"),
        "Additions (term by term)": row.get("additions_naive"),
        "dtype": row.get("dtype"),
        "Backend": row.get("backend"),
        "Device": row.get("device"),
        "Median (s)": row.get("median_s"),
        "Min (s)": row.get("min_s"),
        "Max (s)": row.get("max_s"),
        "TFLOP/s": row.get("tflops"),
        "Baseline median (s)": row.get("baseline_median_s"),
        "Speedup": row.get("speedup"),
        "Speedup 95% CI": _interval_text(row.get("speedup_ci")),
        "Verdict": row.get("speedup_verdict"),
        "Control": row.get("control") or ("itself (classical rank)" if row.get("classical")
                                          else None),
        "Control median (s)": row.get("control_median_s"),
        "Speedup over control": row.get("speedup_over_control"),
        "Speedup over control 95% CI": _interval_text(row.get("speedup_over_control_ci")),
        "Bound": row.get("bound"),
        "Above bound": row.get("above_bound"),
        "Additions share": row.get("additions_share"),
        "Rounds": row.get("repeats"),
        "Host load (1 min)": row.get("host_load_1min"),
        "Relative error": row.get("relative_error"),
    } for row in rows]


def _interval_text(interval: list[float] | None) -> str:
    return "" if not interval else f"[{interval[0]:.3f}, {interval[1]:.3f}]"


def format_table(rows: list[dict[str, Any]], title: str | None = None) -> str:
    """A fixed-width console table; the device line says what ran it (CPU or GPU). Each
    scheme's row is followed by its classical control's row (``control school-NxMxP``);
    speedups carry their 95% interval and verdict; warnings (a loaded machine, a speedup
    over the control above the arithmetic bound) follow the table."""
    lines = [title] if title else []
    devices = sorted({f"{row['backend']} on {row['device']} ({row.get('math_mode', '')})"
                      for row in rows})
    lines += [f"device: {device}" for device in devices]
    header = (f"{'algorithm':<26} {'R':>3} {'setting':<16} {'adds':>9} {'problem':>17} "
              f"{'dtype':<7} {'n':>2} {'median s':>9} {'plain s':>9} "
              f"{'vs plain [95% CI]':<27} {'vs control [95% CI]':<27} {'bound':>6} "
              f"{'add%':>4} {'rel.err':>8}")
    lines += [header, "-" * len(header)]
    for row in rows:
        setting = setting_label(row)
        lines.append(
            f"{_short(display_name(row['algorithm']), 26):<26} {row['rank']:>3} "
            f"{_short(setting, 16):<16} {_additions(row):>9} {_problem(row):>17} {row['dtype']:<7} "
            f"{row.get('repeats', 0):>2} {row['median_s']:>9.4f} "
            f"{row['baseline_median_s']:>9.4f} {speedup_cell(row, 'speedup', True):<27} "
            f"{_control_cell(row):<27} {_bound(row):>6} "
            f"{_share(row.get('additions_share')):>4} {row['relative_error']:>8.1e}")
        if row.get("control_median_s") is not None:
            lines.append(
                f"{_short('  control ' + str(row['control']), 26):<26} "
                f"{row.get('control_rank', ''):>3} {_short(setting, 16):<16} {'':>9} "
                f"{'':>17} {'':<7} {'':>2} {row['control_median_s']:>9.4f} "
                f"{row['baseline_median_s']:>9.4f} "
                f"{speedup_cell(row, 'control_speedup', True):<27} {'':<27} {'':>6} "
                f"{_share(row.get('control_additions_share')):>4} "
                f"{row.get('control_relative_error', float('nan')):>8.1e}")
    lines += warnings(rows)
    return "\n".join(lines)


READING = ("How to read: 'vs plain' is the plain product's median time over the scheme's, "
           "'vs control' the same over the school scheme of the same block shape run by the "
           "same executor, so it isolates what the scheme's saved multiplications buy; it "
           "cannot honestly exceed 'bound' ((n*m*p/rank)^levels), and a row above it is "
           "flagged (!). Brackets are 95% bootstrap intervals over the timed rounds (n); "
           "'no difference' means the interval holds 1.0.")


def speedup_cell(row: dict[str, Any], key: str, short: bool = False) -> str:
    """``1.104x [1.08,1.13] faster`` (rows without an interval: the point value only);
    ``short``: ``no diff`` for ``no difference``."""
    value = row.get(key)
    if value is None:
        return "-"
    interval = row.get(f"{key}_ci")
    verdict = row.get(f"{key}_verdict") or ""
    if not interval:
        return f"{value:.3f}x {verdict}".strip()
    if short and verdict == "no difference":
        verdict = "no diff"
    return f"{value:.3f}x [{interval[0]:.2f},{interval[1]:.2f}] {verdict}"


def _control_cell(row: dict[str, Any]) -> str:
    if row.get("classical"):
        return "classical rank (itself)"
    cell = speedup_cell(row, "speedup_over_control", True)
    return f"{cell} !" if row.get("above_bound") else cell


def _bound(row: dict[str, Any]) -> str:
    return "-" if row.get("bound") is None else f"{row['bound']:.3f}"


def _share(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:.0f}%"


def warnings(rows: list[dict[str, Any]]) -> list[str]:
    """Lines under a table: a loaded machine, speedups above their bound, school-method
    results."""
    lines = []
    loaded = [row for row in rows if row.get("loaded")]
    if loaded:
        worst = max(float(row.get("host_load_1min") or 0) for row in loaded)
        lines.append(f"WARNING: loaded machine: {len(loaded)} of {len(rows)} row(s) started "
                     f"with other work on the host (1-min load average up to {worst:g}); "
                     "their times and speedups are unreliable: rerun on a quiet machine")
    for row in rows:
        if row.get("above_bound"):
            lines.append(f"! {display_name(row['algorithm'])} L{row['levels']} at "
                         f"{_problem(row)}: {row['speedup_over_control']:.3f}x over its "
                         f"control is above the arithmetic bound {row['bound']:.3f}x: noise "
                         "or blocks that run faster per flop, not the algorithm alone")
    for name in dict.fromkeys(row["algorithm"] for row in rows if row.get("classical")):
        lines.append(f"{display_name(name)} has classical rank (the school method or worse): "
                     "it saves no multiplication, so its speedup measures the executor only")
    return lines


def _additions(row: dict[str, Any]) -> str:
    """``after/before`` block additions per level (``-`` for rows from older versions)."""
    if row.get("additions") is None:
        return "-"
    return f"{row['additions']}/{row.get('additions_naive', '?')}"


def _problem(row: dict[str, Any]) -> str:
    return str(row.get("problem") or f"{row['size']}x{row['size']}x{row['size']}")


def _aspect(row: dict[str, Any]) -> tuple[float, ...]:
    dims = [int(x) for x in _problem(row).split("x")]
    return tuple(round(d / max(dims), 3) for d in dims)


def display_name(name: str) -> str:
    """A short name that still tells runs apart: an algorithm a run found is named after the
    run (``matmul2x2x2__pairpolicy__s0__20261201-124854-e06b33b0-rank7``), shown as
    ``pairpolicy s0 e06b33b0 r7`` (agent, seed, the run_id's random part, rank); library
    names stay as they are."""
    parts = str(name).split("__")
    if len(parts) < 4:
        return str(name)
    run_id, _, rank = parts[-1].rpartition("-rank")
    tail = run_id.rsplit("-", 1)[-1] if run_id else parts[-1]
    return " ".join([*parts[1:-2], parts[-2], tail, f"r{rank}" if rank.isdigit() else ""]).strip()


def scheme_label(row: dict[str, Any]) -> str:
    """``strassen L1 stream`` (+ ``naive`` when the sums are term by term, + ``numpy sums``
    when the CPU sums were not fused)."""
    return f"{display_name(row['algorithm'])} {setting_label(row)}".strip()


def setting_label(row: dict[str, Any]) -> str:
    """``L1 stream`` plus what differs from the defaults (plan, sums)."""
    plan = "" if row.get("plan", "reduced") == "reduced" else f" {row['plan']}"
    sums = "" if row.get("sums", "fused") == "fused" else f" {row['sums']} sums"
    return f"L{row['levels']} {row.get('strategy', '')}{plan}{sums}".strip()


def break_even(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One entry per scheme, device, dtype and problem aspect (module docstring):
    ``size`` (interpolated, or the smallest measured size when it already wins there, or
    None), ``status`` (``crossed``, ``wins_from_smallest``, ``not_within``), the measured
    ``sizes`` and median ``speedups``, and ``text``."""
    groups: dict[tuple, dict[int, list[float]]] = defaultdict(lambda: defaultdict(list))
    verdicts: dict[tuple, dict[int, list[str | None]]] = defaultdict(lambda: defaultdict(list))
    labels: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        key = (scheme_label(row), row.get("backend"), row.get("device"), row.get("dtype"),
               row.get("math_mode"), _aspect(row))
        groups[key][int(row["size"])].append(float(row["speedup"]))
        verdicts[key][int(row["size"])].append(row.get("speedup_verdict"))
        labels[key] = row
    results = []
    for key, by_size in groups.items():
        sizes = sorted(by_size)
        speedups = [statistics.median(by_size[size]) for size in sizes]
        row = labels[key]
        wins = [_wins(speedups[i], verdicts[key][size]) for i, size in enumerate(sizes)]
        winning_from = None  # the first index from which every later size wins
        for index in range(len(sizes) - 1, -1, -1):
            if wins[index]:
                winning_from = index
            else:
                break
        if winning_from is None:
            status, size = "not_within", None
            text = (f"not within the measured sizes (up to N={sizes[-1]}: "
                    f"{speedups[-1]:.2f}x there{_verdict_note(verdicts[key][sizes[-1]])})")
        elif winning_from == 0:
            status, size = "wins_from_smallest", float(sizes[0])
            text = f"beats the plain product from the smallest measured size, N={sizes[0]}"
        else:
            lo, hi = winning_from - 1, winning_from
            s1, s2 = speedups[lo], speedups[hi]
            fraction = min(1.0, max(0.0, (1.0 - s1) / (s2 - s1))) if s2 != s1 else 0.0
            size = math.exp(math.log(sizes[lo]) + fraction
                            * (math.log(sizes[hi]) - math.log(sizes[lo])))
            status = "crossed"
            text = (f"beats the plain product from N ~ {size:.0f} (interpolated between "
                    f"{sizes[lo]}: {s1:.2f}x and {sizes[hi]}: {s2:.2f}x)")
        aspect = key[5]
        shape = "" if len(set(aspect)) == 1 else \
            " for N1:N2:N3 = " + ":".join(f"{x:g}" for x in aspect)
        results.append({"scheme": key[0], "algorithm": row["algorithm"],
                        "levels": row["levels"], "strategy": row.get("strategy"),
                        "backend": key[1], "device": key[2], "dtype": key[3],
                        "aspect": list(aspect), "status": status, "size": size,
                        "sizes": sizes, "speedups": speedups,
                        "text": f"{key[0]}{shape} on {key[1]} ({key[3]}): {text}"})
    return results


def _verdict_note(verdicts: list[str | None]) -> str:
    known = [v for v in verdicts if v is not None]
    return f", {known[-1]}" if known else ""


def _wins(speedup: float, verdicts: list[str | None]) -> bool:
    """A size is won when its interval lies above 1.0 (every row there says ``faster``);
    rows from versions without intervals: a median speedup of at least 1.0."""
    known = [v for v in verdicts if v is not None]
    if known:
        return all(v == "faster" for v in known)
    return speedup >= 1.0


def side_by_side(rows: list[dict[str, Any]], key: str = "speedup") -> str:
    """A Markdown table: one line per algorithm and problem, one speedup column per setting
    (levels, strategy, TF32, plan); medians where a cell holds several rows. ``key``:
    ``speedup`` (over the plain product) or ``speedup_over_control``."""
    def column(row: dict[str, Any]) -> str:
        tf32 = " TF32" if "TF32 allowed" in str(row.get("math_mode", "")) else ""
        plan = "" if row.get("plan", "reduced") == "reduced" else f" {row['plan']}"
        sums = "" if row.get("sums", "fused") == "fused" else f" {row['sums']} sums"
        return f"L{row['levels']} {row.get('strategy', '')}{tf32}{plan}{sums}"

    columns = list(dict.fromkeys(column(row) for row in rows))
    cells: dict[tuple[str, str], dict[str, list[float]]] = defaultdict(lambda: defaultdict(list))
    for row in rows:
        if row.get(key) is not None:
            cells[(row["algorithm"], _problem(row))][column(row)].append(row[key])
    lines = ["| algorithm | problem | " + " | ".join(columns) + " |",
             "|---|---|" + "---:|" * len(columns)]
    for (algorithm, problem), values in cells.items():
        shown = [f"{statistics.median(values[c]):.3f}x" if c in values else "" for c in columns]
        lines.append(f"| {algorithm} | {problem} | " + " | ".join(shown) + " |")
    return "\n".join(lines)


def format_break_even(rows: list[dict[str, Any]]) -> str:
    """The break-even lines of :func:`break_even`, one per scheme and device."""
    entries = break_even(rows)
    return "\n".join(["break-even against the plain product (medians; a size counts as won "
                      "only when its 95% interval is above 1.0):"]
                     + [f"  {entry['text']}" for entry in entries])


def interpret(rows: list[dict[str, Any]]) -> str:
    """A few sentences reading the result for the user (the stage prints them): the
    break-even (a size counts as won only when its interval is above 1.0), then each scheme
    at its largest measured size with its interval and verdict (never a maximum over sizes,
    which picks the luckiest noise), what it gains over its classical control, and a label
    for a scheme of classical rank."""
    if not rows:
        return "No benchmark rows to read."
    on_gpu = any(row.get("backend") == "cupy" for row in rows)
    device = "this GPU" if on_gpu else "this CPU"
    largest = max(int(row["size"]) for row in rows)
    classical = {scheme_label(row) for row in rows if row.get("classical")}
    winners = [entry for entry in break_even(rows)
               if entry["status"] != "not_within" and entry["scheme"] not in classical]
    if not winners:
        if on_gpu:
            expected = ("on a GPU a fast scheme needs N of many thousands before the saved "
                        "products outweigh the extra kernels")
        else:
            expected = ("expected: a fast scheme saves block multiplications but pays for "
                        "block additions and memory traffic, and on a CPU the plain product "
                        "wins below N of a few thousand (perf/benchmark.md has the larger "
                        "sizes)")
        sentences = [f"On {device} no scheme beat the plain product at N <= {largest}; this "
                     f"is {expected}; it says nothing against the algorithm, which is "
                     "exactly verified."]
    else:
        first = min(winners, key=lambda entry: entry["size"])
        sentences = [f"On {device} {first['scheme']} beats the plain product from N ~ "
                     f"{first['size']:.0f}; below that the plain product is faster or no "
                     "different."]
    for label in dict.fromkeys(scheme_label(row) for row in rows):
        row = max((r for r in rows if scheme_label(r) == label), key=lambda r: int(r["size"]))
        text = f"At {_problem(row)} {label}: {speedup_cell(row, 'speedup')} over the plain product"
        if row.get("classical"):
            text += (" (classical rank, the school method: it cannot save a multiplication, "
                     "so this measures the executor, not an algorithm)")
        elif row.get("speedup_over_control") is not None:
            text += (f", {speedup_cell(row, 'speedup_over_control')} over its classical "
                     f"control {row['control']} (bound {row['bound']:.3f}x"
                     f"{'; above it, so noise' if row.get('above_bound') else ''})")
        sentences.append(text + ".")
    if any(row.get("loaded") for row in rows):
        sentences.append("The machine was loaded while timing: read these as rough.")
    return " ".join(sentences)


COMPARISON_COLUMNS = 5  # benchmark columns in format_comparison


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """Past results side by side: one line per (algorithm, levels, dtype, device, N), one
    speedup column per benchmark (oldest first)."""
    benchmarks: list[str] = []
    cells: dict[tuple, dict[str, list[float]]] = defaultdict(dict)
    for row in rows:
        if row["benchmark_id"] not in benchmarks:
            benchmarks.append(row["benchmark_id"])
        key = (scheme_label(row), row["dtype"], row["backend"], row["device"], _problem(row))
        cells[key].setdefault(row["benchmark_id"], []).append(row["speedup"])
    left_out = benchmarks[:-COMPARISON_COLUMNS]
    benchmarks = benchmarks[-COMPARISON_COLUMNS:]  # the newest: the table stays < 135 wide
    header = f"{'scheme':<32} {'dtype':<7} {'backend':<6} {'problem':>17} " + " ".join(
        f"{b[-12:]:>12}" for b in benchmarks)
    lines = [header, "-" * len(header)]
    for key in sorted(cells, key=lambda k: (k[0], k[1], k[2], k[3],
                                            [int(x) for x in k[4].split("x")])):
        label, dtype, backend, _device, problem = key
        values = " ".join(f"{statistics.median(cells[key][b]):>11.3f}x" if b in cells[key]
                          else f"{'':>12}" for b in benchmarks)
        lines.append(f"{_short(label, 32):<32} {dtype:<7} {backend:<6} {problem:>17} {values}")
    devices = sorted({f"{row['backend']}: {row['device']}" for row in rows})
    notes = [f"devices: {'; '.join(devices)}"]
    if left_out:
        notes.append(f"({len(left_out)} older benchmark(s) left out; see them with --last or "
                     "--benchmark-id)")
    return "\n".join(lines + notes)


def plot(rows: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """Write ``latency.png`` and ``speedup.png`` into ``out_dir``; returns their paths.
    A directory or file that cannot be written raises :class:`mlo_exp.io.WriteError`."""
    out_dir = ensure_directory(out_dir)
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        series[f"{scheme_label(row)} {row['dtype']}"].append(row)
    device = "; ".join(sorted({f"{r['backend']}: {r['device']}" for r in rows}))
    paths = []

    figure, axes = _new_axes()
    baselines: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for label, points in series.items():
        points = sorted(points, key=lambda r: r["size"])
        sizes = [r["size"] for r in points]
        medians = [r["median_s"] for r in points]
        spread = [[r["median_s"] - r["min_s"] for r in points],
                  [r["max_s"] - r["median_s"] for r in points]]
        axes.errorbar(sizes, medians, yerr=spread, marker="o", capsize=3,
                      label=_short(label, 48))
        for r in points:
            baselines[r["dtype"]].append(r)
    for dtype, points in baselines.items():
        by_size: dict[int, list[float]] = defaultdict(list)
        for r in points:
            by_size[r["size"]].append(r["baseline_median_s"])
        sizes = sorted(by_size)
        axes.plot(sizes, [statistics.median(by_size[s]) for s in sizes], "k--", marker="x",
                  label=f"plain matmul {dtype} (median)")
    _size_ticks(axes, rows)
    axes.set(yscale="log", xlabel="N (N x N times N x N)",
             ylabel="seconds (median; bars: min to max of the repeats)",
             title=f"Latency\n{_short(device, 90)}")
    axes.legend(fontsize=8)
    paths.append(_save(figure, out_dir / "latency.png"))

    figure, axes = _new_axes()
    for label, points in series.items():
        points = sorted(points, key=lambda r: r["size"])
        axes.plot([r["size"] for r in points], [r["speedup"] for r in points], marker="o",
                  label=_short(label, 48))
    axes.axhline(1.0, color="k", linestyle="--", linewidth=1,
                 label="1.0x: as fast as plain matmul")
    _size_ticks(axes, rows)
    axes.set(xlabel="N", ylabel="speedup over plain matmul (median/median)",
             title=f"Speedup\n{_short(device, 90)}")
    axes.legend(fontsize=8)
    paths.append(_save(figure, out_dir / "speedup.png"))
    return paths


def _new_axes() -> tuple[Any, Any]:
    """A figure outside pyplot: no global backend switch (a live plot window may be open),
    and matplotlib is imported only when a plot is drawn."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(7, 4.5))
    return figure, figure.add_subplot()


def _size_ticks(axes: Any, rows: list[dict[str, Any]]) -> None:
    """Log-scaled size axis labelled with the measured sizes."""
    sizes = sorted({row["size"] for row in rows})
    axes.set_xscale("log")
    axes.set_xticks(sizes)
    axes.set_xticklabels([str(size) for size in sizes])
    axes.minorticks_off()


def _save(figure: Any, path: Path) -> Path:
    import io

    buffer = io.BytesIO()
    figure.tight_layout()
    figure.savefig(buffer, format="png", dpi=110)
    return atomic_write_bytes(path, buffer.getvalue())


def _short(text: str, width: int) -> str:
    text = str(text)
    return text if len(text) <= width else text[: width - 1] + "…"
