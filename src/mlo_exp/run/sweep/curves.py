"""Learning curves across seeds: the median over a setting's seeds and its 95 % bootstrap
band, per episode, for any metric of ``metrics.jsonl`` (rewards, losses, solve rates).

Convention. x is the episode (the project's step axis). Each run's series is first smoothed
by a running mean over ``w`` episodes (``w`` = 1 for runs of up to 50 episodes, else about a
fiftieth of the longest run), so the band shows the spread between seeds, not the noise of
single episodes. At each episode the curve is the median over the seeds that reached that
episode, and the band the percentile bootstrap interval of that median (seeds resampled with
replacement, fixed generator seed). Runs stop at different episodes (a time budget): the
curve is drawn only up to the last episode reached by at least half the seeds, so its tail
never rests on one lucky long run. Long curves are thinned to at most :data:`MAX_POINTS`
drawn episodes.

``sweep_curves.png`` (written with the sweep summary, and by ``mlo-train report <sweep dir>
[--metric NAME ...]``) draws reward and the losses the runs logged
(:func:`default_metrics`), one panel each, colour per setting.
"""

from __future__ import annotations

import csv
import io
import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from mlo_exp.run.sweep.jobs import JobRow
from mlo_exp.run_files import METRICS_JSONL

MAX_POINTS = 300
RESAMPLES = 500
CONFIDENCE = 0.95
BOOTSTRAP_SEED = 0
MAX_PANELS = 4


def read_metric(run_dir: str | Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    """(episodes, values) of ``metric`` from a run's ``metrics.jsonl`` (``episodes.csv``
    where that is missing: its standard columns); records without it (or non-numeric) are
    skipped; empty arrays when neither file can be read."""
    episodes, values = [], []
    path = Path(run_dir) / METRICS_JSONL
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return _read_csv_metric(Path(run_dir) / "episodes.csv", metric)
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn last line
        value = record.get(metric)
        if isinstance(value, (int, float)) and not isinstance(value, bool) \
                and "episode" in record:
            episodes.append(int(record["episode"]))
            values.append(float(value))
    return np.asarray(episodes, dtype=int), np.asarray(values, dtype=float)


def _read_csv_metric(path: Path, metric: str) -> tuple[np.ndarray, np.ndarray]:
    episodes, values = [], []
    try:
        with path.open(newline="") as handle:
            for record in csv.DictReader(handle):
                try:
                    value, episode = float(record[metric]), int(record["episode"])
                except (KeyError, TypeError, ValueError):
                    continue
                episodes.append(episode)
                values.append(value)
    except OSError:
        pass
    return np.asarray(episodes, dtype=int), np.asarray(values, dtype=float)


def metric_names(run_dir: str | Path, records: int = 50) -> list[str]:
    """The numeric metrics of a run's first ``records`` ``metrics.jsonl`` records, in order
    of appearance (a learning agent may log its losses from its second episode on)."""
    names: dict[str, None] = {}
    try:
        with (Path(run_dir) / METRICS_JSONL).open() as handle:
            for _, line in zip(range(records), handle, strict=False):
                try:
                    record = json.loads(line)
                except ValueError:
                    break
                names.update({k: None for k, v in record.items()
                              if isinstance(v, (int, float)) and not isinstance(v, bool)})
    except OSError:
        return []
    return list(names)


def default_metrics(run_dirs: Sequence[str | Path]) -> list[str]:
    """``reward`` and every loss the runs logged (names containing ``loss``), at most
    :data:`MAX_PANELS` in all."""
    names: dict[str, None] = {"reward": None}
    for run_dir in run_dirs:
        names.update({n: None for n in metric_names(run_dir) if "loss" in n})
    return list(names)[:MAX_PANELS]


def smooth(values: np.ndarray, window: int) -> np.ndarray:
    """Running mean over the last ``window`` values (the first ones over what exists)."""
    if window <= 1 or values.size == 0:
        return values
    sums = np.cumsum(np.insert(values, 0, 0.0))
    index = np.arange(1, values.size + 1)
    start = np.maximum(index - window, 0)
    return (sums[index] - sums[start]) / (index - start)


def median_band(series: Sequence[tuple[np.ndarray, np.ndarray]],
                resamples: int = RESAMPLES, confidence: float = CONFIDENCE,
                seed: int = BOOTSTRAP_SEED) -> tuple[np.ndarray, np.ndarray, np.ndarray,
                                                     np.ndarray]:
    """Across seeds: (episodes, median, band low, band high) of ``series`` (one (episodes,
    values) pair per seed), as described in the module docstring."""
    series = [(np.asarray(e), np.asarray(v, dtype=float)) for e, v in series if len(e)]
    if not series:
        empty = np.zeros(0)
        return empty, empty, empty, empty
    longest = max(int(e.max()) for e, _ in series)
    window = 1 if longest <= 50 else max(1, round(longest / 50))
    matrix = np.full((len(series), longest), np.nan)
    for row, (episodes, values) in enumerate(series):
        matrix[row, episodes - 1] = smooth(values, window)
    present = np.isfinite(matrix).sum(axis=0)
    end = int(np.nonzero(present >= max(1, math.ceil(len(series) / 2)))[0].max()) + 1
    keep = np.unique(np.linspace(0, end - 1, min(end, MAX_POINTS)).round().astype(int))
    keep = keep[present[keep] > 0]
    data = matrix[:, keep]
    with np.errstate(all="ignore"):
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # all-NaN columns in resamples
            median = np.nanmedian(data, axis=0)
            generator = np.random.default_rng(seed)
            picks = generator.integers(0, len(series), size=(resamples, len(series)))
            medians = np.nanmedian(data[picks], axis=1)  # (resamples, points)
            alpha = (1 - confidence) / 2
            low = np.nanquantile(medians, alpha, axis=0)
            high = np.nanquantile(medians, 1 - alpha, axis=0)
    return keep + 1, median, low, high


def draw_metric(axis: Any, metric: str, runs_by_setting: Sequence[Sequence[Any]],
                labels: Sequence[str], colors: dict[str, str] | Sequence[str] | None = None
                ) -> None:
    """One panel: per setting (a list of runs: run directories or rows with ``run_dir``),
    the median of ``metric`` over its seeds and its 95 % band."""
    from matplotlib.ticker import MaxNLocator

    drawn = 0
    for index, (runs, label) in enumerate(zip(runs_by_setting, labels, strict=True)):
        series = [read_metric(_run_dir(run), metric) for run in runs]
        episodes, median, low, high = median_band(series)
        if not episodes.size:
            continue
        color = _color(colors, runs, index)
        seeds = sum(1 for e, _ in series if len(e))
        axis.fill_between(episodes, low, high, color=color, alpha=0.18, lw=0)
        plural = "s" if seeds != 1 else ""
        axis.plot(episodes, median, color=color, lw=1.6, label=f"{label} ({seeds} seed{plural})")
        drawn += 1
    axis.set_xlabel("episode")
    axis.set_ylabel(metric)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    if not drawn:
        axis.text(0.5, 0.5, f"no run logged {metric!r}", transform=axis.transAxes,
                  ha="center", va="center", color="dimgray")


def learning_curves_figure(runs_by_setting: Sequence[Sequence[Any]], labels: Sequence[str],
                           metrics: Sequence[str] | None = None) -> Any:
    """A figure with one :func:`draw_metric` panel per metric (default:
    :func:`default_metrics` of the runs)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    all_runs = [_run_dir(run) for runs in runs_by_setting for run in runs]
    metrics = list(metrics) if metrics else default_metrics(all_runs)
    figure = Figure(figsize=(11, 0.6 + 2.9 * len(metrics) + 0.2 * len(labels)), dpi=90)
    FigureCanvasAgg(figure)
    axes = figure.subplots(len(metrics), 1, squeeze=False)[:, 0]
    for axis, metric in zip(axes, metrics, strict=True):
        draw_metric(axis, metric, runs_by_setting, labels)
        axis.set_title(f"{metric}: median over seeds, 95% bootstrap band", fontsize="medium")
        axis.grid(alpha=0.3)
    if len(labels) > 1 or labels:
        handles, texts = axes[-1].get_legend_handles_labels()
        if handles:
            axes[-1].legend(handles, texts, fontsize="x-small", loc="upper left",
                            bbox_to_anchor=(0, -0.25), frameon=False,
                            ncol=1 if max(map(len, texts)) > 60 else 2)
    figure.tight_layout()
    return figure


def curves_png(rows: list[JobRow], groups: list[Any],
               metrics: Sequence[str] | None = None) -> bytes:
    """``sweep_curves.png``: :func:`learning_curves_figure` of a sweep's settings."""
    from mlo_exp.run.sweep.figure import runs_by_setting, setting_names

    names = setting_names(groups, rows)
    figure = learning_curves_figure(runs_by_setting(rows, groups), names.legend, metrics)
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def _run_dir(run: Any) -> str:
    return str(getattr(run, "run_dir", run))


def _color(colors: Any, runs: Sequence[Any], index: int) -> str:
    if isinstance(colors, dict) and runs:
        from mlo_exp.run.sweep.seeds import group_key

        first = runs[0]
        if isinstance(first, JobRow) and group_key(first) in colors:
            return colors[group_key(first)]
    if isinstance(colors, (list, tuple)):
        return colors[index % len(colors)]
    return f"C{index % 10}"
