"""Benchmark rows as a console table, a logger table and PNG plots.

Rows are those of :mod:`mlo_exp.benchmark.measure` (times in seconds, sizes ``N`` of square
``N x N`` products). Plots: ``latency.png`` (median seconds, min-max as error bars, against
``N``, log-log, one line per algorithm plus the plain product) and ``speedup.png``
(baseline median / algorithm median against ``N``; 1.0 dashed).
"""

from __future__ import annotations

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
        "dtype": row.get("dtype"),
        "Backend": row.get("backend"),
        "Device": row.get("device"),
        "Median (s)": row.get("median_s"),
        "Min (s)": row.get("min_s"),
        "Max (s)": row.get("max_s"),
        "TFLOP/s": row.get("tflops"),
        "Baseline median (s)": row.get("baseline_median_s"),
        "Speedup": row.get("speedup"),
        "Speedup (min/min)": row.get("speedup_of_min"),
        "Relative error": row.get("relative_error"),
    } for row in rows]


def format_table(rows: list[dict[str, Any]], title: str | None = None) -> str:
    """A fixed-width console table; the device line says what ran it (CPU or GPU)."""
    lines = [title] if title else []
    devices = sorted({f"{row['backend']} on {row['device']} ({row.get('math_mode', '')})"
                      for row in rows})
    lines += [f"device: {device}" for device in devices]
    header = (f"{'algorithm':<22} {'shape':<9} {'R':>3} {'L':>2} {'N':>6} {'dtype':<7} "
              f"{'median s':>9} {'min s':>8} {'max s':>8} {'TFLOP/s':>8} {'plain s':>9} "
              f"{'speedup':>7} {'min/min':>7} {'rel.err':>8}")
    lines += [header, "-" * len(header)]
    for row in rows:
        lines.append(
            f"{_short(row['algorithm'], 22):<22} {row['algorithm_shape']:<9} {row['rank']:>3} "
            f"{row['levels']:>2} {row['size']:>6} {row['dtype']:<7} {row['median_s']:>9.4f} "
            f"{row['min_s']:>8.4f} {row['max_s']:>8.4f} {row['tflops']:>8.3f} "
            f"{row['baseline_median_s']:>9.4f} {row['speedup']:>6.3f}x "
            f"{row.get('speedup_of_min', float('nan')):>6.3f}x "
            f"{row['relative_error']:>8.1e}")
    return "\n".join(lines)


def format_comparison(rows: list[dict[str, Any]]) -> str:
    """Past results side by side: one line per (algorithm, levels, dtype, device, N), one
    speedup column per benchmark (oldest first)."""
    benchmarks: list[str] = []
    cells: dict[tuple, dict[str, float]] = defaultdict(dict)
    for row in rows:
        if row["benchmark_id"] not in benchmarks:
            benchmarks.append(row["benchmark_id"])
        key = (row["algorithm"], row["levels"], row["dtype"], row["backend"], row["device"],
               row["size"])
        cells[key][row["benchmark_id"]] = row["speedup"]
    header = f"{'algorithm':<22} {'L':>2} {'dtype':<7} {'backend':<6} {'N':>6} " + " ".join(
        f"{b[-12:]:>12}" for b in benchmarks)
    lines = [header, "-" * len(header)]
    for key in sorted(cells, key=lambda k: (k[0], k[1], k[2], k[3], k[4], k[5])):
        algorithm, levels, dtype, backend, _device, size = key
        values = " ".join(f"{cells[key][b]:>11.3f}x" if b in cells[key] else f"{'':>12}"
                          for b in benchmarks)
        lines.append(f"{_short(algorithm, 22):<22} {levels:>2} {dtype:<7} {backend:<6} "
                     f"{size:>6} {values}")
    devices = sorted({f"{row['backend']}: {row['device']}" for row in rows})
    return "\n".join(lines + [f"devices: {'; '.join(devices)}"])


def plot(rows: list[dict[str, Any]], out_dir: str | Path) -> list[Path]:
    """Write ``latency.png`` and ``speedup.png`` into ``out_dir``; returns their paths.
    A directory or file that cannot be written raises :class:`mlo_exp.io.WriteError`."""
    out_dir = ensure_directory(out_dir)
    series: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        series[f"{row['algorithm']} L{row['levels']} {row['dtype']}"].append(row)
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
        axes.errorbar(sizes, medians, yerr=spread, marker="o", capsize=3, label=label)
        for r in points:
            baselines[r["dtype"]].append(r)
    for dtype, points in baselines.items():
        by_size: dict[int, list[float]] = defaultdict(list)
        for r in points:
            by_size[r["size"]].append(r["baseline_median_s"])
        sizes = sorted(by_size)
        axes.plot(sizes, [min(by_size[s]) for s in sizes], "k--", marker="x",
                  label=f"plain matmul {dtype}")
    _size_ticks(axes, rows)
    axes.set(yscale="log", xlabel="N (N x N times N x N)",
             ylabel="median seconds", title=f"Latency\n{_short(device, 90)}")
    axes.legend(fontsize=8)
    paths.append(_save(figure, out_dir / "latency.png"))

    figure, axes = _new_axes()
    for label, points in series.items():
        points = sorted(points, key=lambda r: r["size"])
        axes.plot([r["size"] for r in points], [r["speedup"] for r in points], marker="o",
                  label=label)
    axes.axhline(1.0, color="k", linestyle="--", linewidth=1)
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
