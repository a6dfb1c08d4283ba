"""Live and final training figures: reward, residual norm, rank used and losses, per episode.

:class:`LivePlotter` is the ``plot`` component (``conf/plot/live.yaml``), a
:class:`~mlo_exp.run.trainer.TrainerCallback`. It keeps one point per episode (x axis: the
episode count, the project's step axis) and draws three panels:

* **reward** of the episode's reported game (and the best reward so far),
* **residual norm** left at the end of that game (0 = solved; symmetric-log scale; agents
  that only play complete decompositions, ``pair_policy`` and ``flipgraph``, get a note
  saying the residual was 0 in every episode instead of an empty-looking panel),
* **rank used** (moves played) by that game, the best verified rank so far, and the best
  known rank for the shape as a dashed line,
* **losses**, for a learning agent: every metric of the episode record whose name contains
  ``loss`` (``policy_loss``, ``value_loss``, ...), a fourth panel that appears once an
  episode reported one (earlier episodes without it, e.g. pretraining, are gaps).

Per-episode points are drawn over the step lines of the bests; legends sit above their
panels (never over the newest data) and list only curves with data ('best verified' appears
once something was verified); integer quantities (ranks, integer rewards) get integer ticks.

Where it draws:

* an interactive window, refreshed as the run goes, when ``live`` is true, a display is
  available and the run is not a multirun job (parallel jobs never open windows);
* otherwise (headless runs, tests, sweeps) a PNG in the run directory, ``filename``,
  rewritten atomically every ``refresh_s`` seconds or more.

Either way the same PNG is written once more when the run ends: the final figure.

Cost: in a single run the **first live draw** comes at the end of the first episode that
ends at least ``first_draw_s`` (5 s) into the run, whatever the budget: a run shows its
figure early (a run whose first episode is long, at the end of that episode). It pays once
for importing matplotlib and building the figure (1.5-4 s measured on a loaded 2-core CPU:
2-4 % of the default 90 s run). The jobs of a multirun, which nobody watches one by one,
draw their first figure only when it fits the budget below (its cost taken as
``FIRST_DRAW_ESTIMATE_S``, so not before ~2 minutes). **Later draws** are throttled on a
budget: one happens only when ``refresh_s`` has passed since the last one *and* the time
spent in later draws plus the expected cost of this one (the last draw's cost) fits within
80 % of ``max_share`` of the time since the plotter started (the rest is headroom for the
per-episode bookkeeping and cost variance). So a run whose draws are slow is refreshed less
often; the default 90 s run gets its first draw at ~5 s and a few more after it. The final
figure is one draw at the end, not throttled. Long runs are thinned to at most
``max_points`` drawn points per curve (every k-th episode, the last one always kept). ``make
perf`` (suite ``plotting``) measures the share on real runs.

A PNG that cannot be written (disk full, read-only run directory) never stops the run: the
first failure is warned about once and later draws keep trying (a freed disk gets its figure
back); a final figure that cannot be drawn or written is a warning too, so the run's summary
is still written.
"""

from __future__ import annotations

import csv
import io
import logging
import math
import os
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from mlo_exp.config import LivePlotConfig
from mlo_exp.io import WriteError, atomic_write_bytes
from mlo_exp.loggers.base import Logger
from mlo_exp.run.trainer import RunSummary, TrainerCallback
from mlo_exp.run_context import RunContext

if TYPE_CHECKING:
    from matplotlib.figure import Figure

    from mlo_exp.run.trainer import Trainer

log = logging.getLogger("mlo_exp")

# Backends that draw into files only; with one of these there is no window to show.
# Live draws may use this fraction of the ``max_share`` budget; the rest is headroom for
# the per-episode bookkeeping and for draws that cost more than the last one did.
DRAW_BUDGET_FRACTION = 0.8
# The cost assumed for a multirun job's first draw (importing matplotlib, building the figure).
FIRST_DRAW_ESTIMATE_S = 1.5
_FILE_BACKENDS = {"agg", "cairo", "pdf", "pgf", "ps", "svg", "template",
                  "module://matplotlib_inline.backend_inline"}


def display_available() -> bool:
    """Whether a window could be shown: always on macOS/Windows, else with X11 or Wayland."""
    if sys.platform in ("darwin", "win32"):
        return True
    return bool(os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))


class LivePlotter(TrainerCallback):
    """Per-episode curves of a run, live and final (see the module docstring)."""

    def __init__(self, run: RunContext, logger: Logger | None = None,
                 first_draw_s: float = 5.0, **settings: Any) -> None:
        """``settings``: fields of :class:`~mlo_exp.config.LivePlotConfig` (defaults there);
        ``first_draw_s``: run time (s) from which the first live draw is due (``inf``: no
        live draws, only the final figure)."""
        s = self.settings = LivePlotConfig(**settings)
        self.run = run
        self.logger = logger
        self.refresh_s = float(s.refresh_s)
        self.max_share = float(s.max_share)
        self.max_points = int(s.max_points)
        self.path = Path(run.run_dir) / s.filename
        self.dpi = int(s.dpi)
        # A window only for a single run with a display; multirun jobs never open one.
        self.window = bool(s.live) and run.job_num is None and display_available()
        self.episodes: list[int] = []
        self.rewards: list[float] = []
        self.residuals: list[float] = []
        self.ranks: list[int] = []
        self.best_ranks: list[float] = []
        self.losses: dict[str, list[float]] = {}  # per loss metric, one value per episode
        self.best_known_rank: int | None = None
        self.title = run.run_name
        self.draws = 0  # live draws (the final figure not counted)
        self.draw_seconds = 0.0  # time spent in live draws
        self.first_draw_seconds = 0.0  # the first live draw (off the budget)
        self.first_draw_s = float(first_draw_s)
        self.setup_seconds = 0.0  # opening the window (window mode only)
        self.final_seconds = 0.0  # time spent on the final figure
        self._started = time.perf_counter()
        self._last_draw_at = -math.inf
        self._cost_estimate = FIRST_DRAW_ESTIMATE_S  # the last draw's cost
        self._figure: Figure | None = None
        self._pyplot: Any = None
        self._artists: dict[str, Any] = {}
        self.write_failures = 0  # PNG writes that failed (live and final)

    # -- TrainerCallback ------------------------------------------------------------------
    def on_run_start(self, trainer: Trainer) -> None:
        self.best_known_rank = trainer.best_known_rank
        if trainer.episode > 0:  # a resumed run: earlier episodes are in episodes.csv
            self._load_earlier_episodes(trainer.episode)
        if self.window:  # headless runs import matplotlib only when they first draw
            started = time.perf_counter()
            self._open_window()
            self.setup_seconds = time.perf_counter() - started

    def on_episode_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        self._append(record)
        now = time.perf_counter()
        if self._due(now):
            self._draw_live(now)

    def on_run_end(self, trainer: Trainer, summary: RunSummary) -> None:
        started = time.perf_counter()
        try:
            self._save(self._render(self._ready_figure()))
            log.info("training figure -> %s (%d live draws, %.2f s)", self.path, self.draws,
                     self.draw_seconds)
        except WriteError as error:
            self.write_failures += 1
            log.warning("plot: final figure not written: %s", error)
        except Exception as error:  # a figure must never cost the run its summary
            log.warning("plot: final figure not drawn (%s: %s)", type(error).__name__, error)
        finally:
            self.final_seconds = time.perf_counter() - started
            self._close_window()

    # -- data ------------------------------------------------------------------------------
    def _append(self, record: dict[str, Any]) -> None:
        self.episodes.append(int(record["episode"]))
        self.rewards.append(float(record["reward"]))
        self.residuals.append(float(record["residual_norm"]))
        self.ranks.append(int(record["rank_used"]))
        best = record.get("best_rank")
        self.best_ranks.append(float(best) if best not in (None, "") else math.nan)
        count = len(self.episodes)
        for key, value in record.items():
            if "loss" in key and isinstance(value, (int, float)) and not isinstance(value, bool):
                self.losses.setdefault(key, [math.nan] * (count - 1))
        for key, values in self.losses.items():
            value = record.get(key)
            values.append(float(value) if isinstance(value, (int, float)) else math.nan)

    def _load_earlier_episodes(self, up_to: int) -> None:
        path = self.run.run_dir / "episodes.csv"
        if not path.is_file():
            return
        try:
            with path.open(newline="") as handle:
                for row in csv.DictReader(handle):
                    if row.get("episode") and int(row["episode"]) <= up_to:
                        self._append(row)
        except (ValueError, KeyError, OSError) as error:
            for values in (self.episodes, self.rewards, self.residuals, self.ranks,
                           self.best_ranks):
                values.clear()
            self.losses.clear()
            log.warning("plot: could not read earlier episodes from %s (%s); the figure "
                        "starts at the resume point", path, error)

    # -- drawing ---------------------------------------------------------------------------
    def _due(self, now: float) -> bool:
        """The first draw once ``first_draw_s`` has passed; later ones when the refresh
        period passed and the draw fits the share budget (module docstring)."""
        if self.draws == 0 and self.run.job_num is None:  # on the run's clock (resumed:
            return self.run.elapsed() >= self.first_draw_s  # its whole duration)
        if now - self._last_draw_at < self.refresh_s:
            return False
        budget = DRAW_BUDGET_FRACTION * self.max_share * (now - self._started)
        later = self.draw_seconds - self.first_draw_seconds
        return self.setup_seconds + later + self._cost_estimate <= budget

    def _draw_live(self, now: float) -> None:
        figure = self._render(self._ready_figure())
        if self.window:
            figure.canvas.draw_idle()
            figure.canvas.flush_events()
        else:
            try:
                self._save(figure)
            except WriteError as error:
                self.write_failures += 1
                if self.write_failures == 1:
                    log.warning("plot: %s; training goes on (later draws try again, this "
                                "warning is not repeated)", error)
        cost = time.perf_counter() - now
        if self.draws == 0 and self.run.job_num is None:  # the early one, off the budget
            self.first_draw_seconds = cost
        self.draws += 1
        self.draw_seconds += cost
        self._last_draw_at = now
        self._cost_estimate = cost

    def _ready_figure(self) -> Figure:
        """The figure with its axes built (the first call imports matplotlib)."""
        if self._figure is None:
            self._figure = self._new_figure()
        if not self._artists or self._artists["loss_names"] != list(self.losses):
            self._build(self._figure)
        return self._figure

    def _new_figure(self) -> Figure:
        """A figure on the Agg canvas: no pyplot, no display, no global state."""
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        figure = Figure(figsize=(7.5, 7.0 + 2.0 * bool(self.losses)), dpi=self.dpi)
        FigureCanvasAgg(figure)
        return figure

    def _open_window(self) -> None:
        try:
            import matplotlib.pyplot as plt

            if plt.get_backend().lower() in _FILE_BACKENDS:
                log.info("plot: no interactive matplotlib backend (%s); writing %s instead",
                         plt.get_backend(), self.path)
                self.window = False
                return
            plt.ion()
            self._pyplot = plt
            self._figure = plt.figure(figsize=(7.5, 7.0), dpi=self.dpi)
            self._figure.canvas.manager.set_window_title(self.title)
        except Exception as error:  # a broken GUI toolkit must not stop training
            log.warning("plot: cannot open a window (%s: %s); writing %s instead",
                        type(error).__name__, error, self.path)
            self.window, self._figure = False, None

    def _close_window(self) -> None:
        if self._pyplot is not None and self._figure is not None:
            self._pyplot.close(self._figure)
            self._pyplot = None
            self._figure = None

    def _thinned(self) -> np.ndarray:
        """Indices of the points to draw: every k-th episode, at most ``max_points``."""
        count = len(self.episodes)
        stride = max(1, math.ceil(count / self.max_points))
        indices = np.arange(0, count, stride)
        if count and indices[-1] != count - 1:
            indices = np.append(indices, count - 1)
        return indices

    def _build(self, figure: Figure) -> None:
        """Axes and (empty) curves, once; each draw then only updates their data.

        Per-episode points are drawn over the 'best so far' lines (never hidden under them);
        legends sit above their panels, outside the data, and list only curves that have
        data (:meth:`_legends`)."""
        from matplotlib.ticker import MaxNLocator

        figure.clear()
        panels = 4 if self.losses else 3
        if panels == 4 and figure.get_figheight() < 9.0:
            figure.set_size_inches(figure.get_figwidth(), 9.0)
        axes = figure.subplots(panels, 1, sharex=True)
        figure.subplots_adjust(left=0.11, right=0.97, top=0.9 if panels == 4 else 0.87,
                               bottom=0.07, hspace=0.32)
        marker = {"marker": "o", "ls": "none", "ms": 3.5, "alpha": 0.75, "zorder": 3}
        best = {"lw": 1.3, "alpha": 0.8, "drawstyle": "steps-post", "zorder": 2,
                "color": "tab:orange"}
        self._artists = {
            "axes": axes,
            "reward": axes[0].plot([], [], **marker, label="episode")[0],
            "best_reward": axes[0].plot([], [], **best, label="best so far")[0],
            "residual": axes[1].plot([], [], **marker, color="tab:red")[0],
            "residual_note": axes[1].text(0.5, 0.55, "", transform=axes[1].transAxes,
                                          ha="center", va="center", color="dimgray",
                                          fontsize="small"),
            "rank": axes[2].plot([], [], **marker, label="rank used")[0],
            "best_rank": axes[2].plot([], [], **best, label="best verified")[0],
            "best_known": None,
            "title": figure.suptitle(self.title, fontsize="small"),
            "loss_names": list(self.losses),
            "losses": {name: axes[3].plot([], [], lw=1.2, label=name)[0]
                       for name in self.losses} if panels == 4 else {},
        }
        if self.best_known_rank is not None:
            self._artists["best_known"] = axes[2].axhline(
                self.best_known_rank, ls="--", color="gray", zorder=1,
                label=f"best known ({self.best_known_rank})")
        axes[1].set_yscale("symlog", linthresh=1.0)
        for axis, label in zip(axes, ("reward", "residual norm", "rank", "loss"), strict=False):
            axis.set_ylabel(label)
            axis.grid(alpha=0.3)
        axes[-1].set_xlabel("episode")
        axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
        axes[2].yaxis.set_major_locator(MaxNLocator(integer=True))


    def _legends(self) -> None:
        """A legend above each of the reward and rank panels, of the curves holding data."""
        art = self._artists
        art.update({f"loss:{name}": line for name, line in art["losses"].items()})
        panels = [(art["axes"][0], ("reward", "best_reward")),
                  (art["axes"][2], ("rank", "best_rank", "best_known"))]
        if art["losses"]:
            panels.append((art["axes"][3], tuple(f"loss:{n}" for n in art["losses"])))
        for axis, names in panels:
            handles = [art[n] for n in names if art[n] is not None and (
                n == "best_known" or np.isfinite(np.asarray(art[n].get_ydata(),
                                                            dtype=float)).any())]
            if axis.get_legend() is not None:
                axis.get_legend().remove()
            if handles:
                axis.legend(handles=handles, loc="lower right", bbox_to_anchor=(1.0, 1.0),
                            ncol=len(handles), fontsize="small", frameon=False,
                            borderaxespad=0.1, handletextpad=0.3, columnspacing=1.0)

    def _render(self, figure: Figure) -> Figure:
        """Put the (thinned) data into the curves and rescale; returns ``figure``."""
        from matplotlib.ticker import AutoLocator, MaxNLocator

        keep = self._thinned()
        episode = np.asarray(self.episodes, dtype=float)[keep]
        reward = np.asarray(self.rewards, dtype=float)
        best_reward = np.maximum.accumulate(reward)[keep] if reward.size else reward
        residual = np.asarray(self.residuals, dtype=float)[keep]
        ranks = np.asarray(self.ranks, dtype=float)[keep]
        best_ranks = np.asarray(self.best_ranks, dtype=float)[keep]
        art = self._artists
        art["reward"].set_data(episode, reward[keep])
        art["best_reward"].set_data(episode, best_reward)
        art["residual"].set_data(episode, residual)
        art["rank"].set_data(episode, ranks)
        art["best_rank"].set_data(episode, best_ranks)
        for name, line in art["losses"].items():
            line.set_data(episode, np.asarray(self.losses[name], dtype=float)[keep])
        for axis in art["axes"]:
            axis.set_autoscalex_on(True)  # an earlier draw may have fixed x (few episodes)
            axis.relim()
            axis.autoscale_view()
        reward_axis, residual_axis, rank_axis = art["axes"][:3]
        integral = reward.size > 0 and bool(np.all(np.mod(reward, 1) == 0))
        reward_axis.yaxis.set_major_locator(MaxNLocator(integer=True) if integral
                                            else AutoLocator())
        if reward.size:
            _pad_limits(reward_axis, float(reward.min()), float(reward.max()))
        residual_axis.set_ylim(0, max(1.0, float(residual.max(initial=0)) * 1.2))
        count = len(self.episodes)
        art["residual_note"].set_text(
            f"residual 0 in {'the only episode' if count == 1 else f'all {count} episodes'}: "
            "every game ended in an exact decomposition"
            if self.residuals and max(self.residuals) == 0 else "")
        if episode.size and episode.max() - episode.min() < 2:  # integer ticks need room
            rank_axis.set_xlim(episode.min() - 1, episode.max() + 1)

        rank_values = [v for v in (*ranks, *best_ranks[np.isfinite(best_ranks)],
                                   self.best_known_rank) if v is not None]
        if rank_values:
            _pad_limits(rank_axis, float(min(rank_values)), float(max(rank_values)))
        self._legends()
        art["title"].set_text(f"{self.title}\n{count} episode{'' if count == 1 else 's'}")
        return figure

    def _save(self, figure: Figure) -> None:
        """Render to PNG in memory, then write it atomically; raises :class:`WriteError`."""
        buffer = io.BytesIO()
        figure.savefig(buffer, format="png", dpi=self.dpi)
        atomic_write_bytes(self.path, buffer.getvalue())


def _pad_limits(axis: Any, low: float, high: float) -> None:
    """Y limits around [low, high] with room at both ends: at least one unit each side when
    the values span less than two (integer ticks need two integers in view)."""
    pad = 1.0 if high - low < 2 else 0.08 * (high - low)
    axis.set_ylim(low - pad, high + pad)
