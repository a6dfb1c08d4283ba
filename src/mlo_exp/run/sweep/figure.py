"""The sweep figure, ``sweep_summary.png``: best rank per run, and per target rank the
share of each setting's seeds that reached it against run time and against episodes.

Layout (top to bottom):

* left, **best rank per run** (the best known rank dashed); right, **the share of seeds
  that reached each target rank** within their budget, per setting, with its 95 % (Wilson)
  interval (one marker shape per target rank, named in the axis label);
* one row per target rank r (:func:`~mlo_exp.run.sweep.seeds.target_ranks`: the same r for
  every setting): the share of seeds at rank <= r against run time (left) and against
  episodes (right), a step curve per setting with its pointwise 95 % band (Wilson). Misses
  keep the curve below 1; the dotted line at 1/2 crosses each curve at its censored median.
  Every axis names r. One setting's time to rank 8 is never drawn beside another's time to 7;
* the reward per episode, median over each setting's seeds with its 95 % band
  (:mod:`~mlo_exp.run.sweep.curves`).

Labels show only the overrides that vary (numbers to 3 significant digits); long settings (a
search's) are named S1, S2, ... with the full text in the legend. A sweep with nothing to draw
gets a figure that says why.
"""

from __future__ import annotations

import io
import math
import textwrap
from typing import Any

import numpy as np

from mlo_exp.run.sweep.jobs import JobRow
from mlo_exp.run.sweep.labels import group_labels, shorten, varying_labels
from mlo_exp.run.sweep.seeds import (
    SeedGroup,
    TargetStats,
    curve_interval,
    group_key,
    seed_groups,
    success_curve,
)

MARKERS = ("o", "s", "^", "D")
GRID_POINTS = 200


def comparison_png(rows: list[JobRow], groups: list[SeedGroup] | None = None) -> bytes:
    """:func:`comparison_figure` as PNG bytes."""
    return figure_png(comparison_figure(rows, groups))


def figure_png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


def comparison_figure(rows: list[JobRow], groups: list[SeedGroup] | None = None) -> Any:
    """The figure described in the module docstring (a matplotlib ``Figure``, Agg canvas)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    groups = seed_groups(rows) if groups is None else groups
    figure = Figure(dpi=90)
    FigureCanvasAgg(figure)
    if not any(r.best_rank is not None or r.rewards for r in rows):
        return _nothing_to_draw(figure, rows)
    names = setting_names(groups, rows)
    targets = groups[0].targets if groups else []
    lines = max((label.count("\n") + 1 for label in names.rows), default=1)
    top = 0.8 + 0.28 * max(lines * len(rows), 2 * len(groups), 2)
    heights = [top] + [3.0] * len(targets) + [3.2 + 0.2 * len(groups)]
    figure.set_size_inches(13, sum(heights))
    grid = figure.add_gridspec(len(heights), 2, height_ratios=heights)
    colors = {g.group: f"C{i % 10}" for i, g in enumerate(groups)}

    _best_rank_panel(figure.add_subplot(grid[0, 0]), rows, names.rows, colors)
    _share_panel(figure.add_subplot(grid[0, 1]), groups, names.groups, colors)
    for index in range(len(targets)):
        time_axis = figure.add_subplot(grid[1 + index, 0])
        episode_axis = figure.add_subplot(grid[1 + index, 1])
        short = names.groups if names.numbered else names.legend  # S1, S2.. for a search
        _success_panels(time_axis, episode_axis, groups, index, colors, short)
    from mlo_exp.run.sweep.curves import draw_metric

    reward_axis = figure.add_subplot(grid[-1, :])
    draw_metric(reward_axis, "reward", runs_by_setting(rows, groups), names.legend, colors)
    reward_axis.set_title("reward per episode: median over seeds, 95% bootstrap band "
                          "(colour: setting)", fontsize="medium")
    if len(groups) > 1 and reward_axis.lines:  # below the panel: it never covers a curve
        reward_axis.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(0, -0.2),
                           ncol=1 if max(map(len, names.legend)) > 60 else 3, frameon=False)
    for axis in figure.axes:
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


class SettingNames:
    """Labels of the runs, the settings (tick labels) and the legend entries."""

    def __init__(self, rows: list[str], groups: list[str], legend: list[str],
                 numbered: bool = False) -> None:
        self.rows, self.groups, self.legend = rows, groups, legend
        self.numbered = numbered  # settings named S1, S2, ... (the legend has the text)


def setting_names(groups: list[SeedGroup], rows: list[JobRow]) -> SettingNames:
    """Labels by the overrides that vary; settings too long for a tick label (a search's)
    become S1, S2, ... with their full text in the legend."""
    labels = varying_labels(rows)
    of_groups = group_labels(groups, rows)
    legend = [label.replace("\n", " ") for label in of_groups]
    if any("\n" in label for label in of_groups):  # long settings (a search): S1, S2, ...
        keys = [g.group for g in groups]
        labels = [f"S{keys.index(group_key(r)) + 1}"
                  + (f" seed={r.seed}" if r.seed is not None else "") for r in rows]
        of_groups = [f"S{i + 1}" for i in range(len(groups))]
        legend = [f"S{i + 1}: {label}" for i, label in enumerate(legend)]
        return SettingNames(labels, of_groups, legend, numbered=True)
    return SettingNames(labels, of_groups, legend)


def _nothing_to_draw(figure: Any, rows: list[JobRow]) -> Any:
    figure.set_size_inches(10, 3)
    failed = sum(r.status == "failed" for r in rows)
    first = next((r.error for r in rows if r.error), "")
    text = (f"{len(rows)} jobs, {failed} failed; no job recorded an episode"
            if rows else "no job directories found in the sweep")
    figure.text(0.5, 0.65, text, ha="center", va="center", fontsize="large")
    if first:
        figure.text(0.5, 0.35, textwrap.fill(shorten(first, 300), 110), ha="center",
                    va="center", fontsize="small", color="tab:red")
    return figure


def _best_rank_panel(axis: Any, rows: list[JobRow], labels: list[str],
                     colors: dict[str, str]) -> None:
    from matplotlib.ticker import MaxNLocator

    positions = list(range(len(rows)))[::-1]  # the first job on top
    found = [r.best_rank for r in rows if r.best_rank is not None]
    known = sorted({r.best_known_rank for r in rows if r.best_known_rank is not None})
    ceiling = max(found + known, default=1) + 1
    floor = min(found + known, default=1) - 1
    for y, row in zip(positions, rows, strict=True):
        if row.best_rank is None:
            failed = row.status == "failed"
            axis.plot([ceiling], [y], "x" if failed else "o", mfc="none",
                      color="tab:red" if failed else "gray", ms=8)
            axis.annotate("failed" if failed else "none found", (ceiling, y), xytext=(-8, 0),
                          textcoords="offset points", ha="right", va="center",
                          color="tab:red" if failed else "gray", fontsize="small")
        else:
            axis.plot([row.best_rank], [y], "o", color=colors[group_key(row)], ms=8)
    for rank in known:
        axis.axvline(rank, ls="--", color="gray", lw=1)
    axis.set_yticks(positions, labels, fontsize="small")
    axis.set_ylim(-0.7, len(rows) - 0.3)
    axis.set_xlim(floor - 0.5, ceiling + 0.5)
    axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    known_text = f" (dashed: best known {', '.join(map(str, known))})" if known else ""
    axis.set_xlabel(f"best verified rank{known_text}")
    axis.set_title("best rank per run (lower is better)", fontsize="medium")


def _share_panel(axis: Any, groups: list[SeedGroup], labels: list[str],
                 colors: dict[str, str]) -> None:
    """Per setting and target rank: share of seeds reaching it in budget, 95 % CI."""
    positions = list(range(len(groups)))[::-1]
    targets = groups[0].targets if groups else []
    offsets = np.linspace(-0.25, 0.25, len(targets)) if len(targets) > 1 else [0.0]
    for y, group in zip(positions, groups, strict=True):
        for offset, marker, t in zip(offsets, MARKERS, group.targets, strict=False):
            axis.plot([t.share_low, t.share_high], [y + offset] * 2, color=colors[group.group],
                      lw=2, alpha=0.5)
            axis.plot([t.share], [y + offset], marker, color=colors[group.group], ms=7)
            axis.annotate(f"{t.reached}/{t.seeds}", (t.share, y + offset), xytext=(6, 2),
                          textcoords="offset points", fontsize="x-small", color="dimgray")
    axis.set_yticks(positions, labels, fontsize="small")
    axis.set_ylim(-0.7, len(groups) - 0.3)
    axis.set_xlim(-0.05, 1.1)
    ranks = ", ".join(f"{marker} rank <= {t.target_rank}" for marker, t in
                      zip(("●", "■", "▲", "◆"), targets, strict=False))
    axis.set_xlabel(f"share of seeds reaching the target rank in budget ({ranks}); "
                    "line: 95% CI")
    axis.set_title("across seeds", fontsize="medium")


def _success_panels(time_axis: Any, episode_axis: Any, groups: list[SeedGroup], index: int,
                    colors: dict[str, str], legend: list[str]) -> None:
    """Share of seeds at rank <= r against run time and against episodes (one target)."""
    from matplotlib.ticker import MaxNLocator

    first = groups[0].targets[index]
    rank = first.target_rank
    known = " (best known)" if first.best_known else ""
    for axis, values_of, unit in ((time_axis, _times, "run time (s)"),
                                  (episode_axis, _episodes, "episode")):
        end = max((_limit(g.targets[index], values_of) for g in groups), default=1.0) or 1.0
        grid = np.linspace(0.0, end, GRID_POINTS)
        for group, label in zip(groups, legend, strict=True):
            values = values_of(group.targets[index])
            grid_here = np.union1d(grid, [v for v in values if math.isfinite(v)])
            share = success_curve(values, grid_here)
            low, high = curve_interval(values, grid_here)
            color = colors[group.group]
            axis.fill_between(grid_here, low, high, step="post", color=color, alpha=0.15,
                              lw=0)
            axis.step(grid_here, share, where="post", color=color, lw=1.8, label=label)
        axis.axhline(0.5, ls=":", color="gray", lw=1)
        if axis is time_axis and index == 0 and len(groups) > 1:
            axis.legend(fontsize="x-small", loc="lower right", framealpha=0.8)
        axis.set_xlim(0, end)
        axis.set_ylim(-0.03, 1.03)
        axis.set_xlabel(unit)
        axis.set_ylabel(f"share of seeds at rank <= {rank}")
        axis.set_title(f"rank <= {rank}{known}: share of seeds vs {unit.split(' (')[0]}",
                       fontsize="medium")
    episode_axis.xaxis.set_major_locator(MaxNLocator(integer=True))


def _times(target: TargetStats) -> list[float]:
    return target.times_s


def _episodes(target: TargetStats) -> list[float]:
    return target.episodes


def _limit(target: TargetStats, values_of: Any) -> float:
    """The x extent of a panel: the budget (time) or the largest finite value seen."""
    finite = [v for v in values_of(target) if math.isfinite(v)]
    budget = target.budget_s if values_of is _times else target.budget_episodes
    return float(max([budget or 0.0, *finite], default=1.0))


def runs_by_setting(rows: list[JobRow], groups: list[SeedGroup]) -> list[list[JobRow]]:
    """The rows of each setting, in the order of ``groups``."""
    return [[r for r in rows if group_key(r) == g.group] for g in groups]
