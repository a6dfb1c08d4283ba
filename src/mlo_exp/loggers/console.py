"""Console progress: a progress bar on a terminal, episode lines at a steady rate, a summary.

Lines go through Python logging (logger ``mlo_exp``), so Hydra copies them into the run's
log file. The bar is drawn on stderr only when stderr is a terminal.

Each episode line ends with the budget left (:func:`budget_left`): episodes played of
``trainer.episodes``, run time of ``trainer.time_limit_s`` and an estimate of the time left
(whichever budget ends first), and the target rank (``trainer.stop_at_rank``, else the best
known rank) next to the best so far, e.g.
``episode 40/500  ...  best 8 (target 7)  12.0s  | 8% of episodes, 12s of 90s, ~78s left``.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from mlo_exp.config import ConsoleLoggerConfig
from mlo_exp.loggers.base import Logger, log
from mlo_exp.run_context import RunContext


class ConsoleLogger(Logger):
    name = "console"

    def __init__(self, **settings: Any) -> None:
        """``settings``: fields of :class:`~mlo_exp.config.ConsoleLoggerConfig` (defaults
        there)."""
        self.settings = ConsoleLoggerConfig(**settings)
        self.print_every_s = float(self.settings.print_every_s)
        self.progress_bar = bool(self.settings.progress_bar) and sys.stderr.isatty()
        self._last_print = float("-inf")
        self._total: int | None = None
        self._time_limit: float | None = None
        self._target: int | None = None
        self._start_episode = 0
        self._start_time = 0.0
        self._recent: list[dict[str, Any]] = []

    def start(self, run: RunContext, config: dict[str, Any]) -> None:
        trainer = config.get("trainer") or {}
        self._total = trainer.get("episodes")
        self._time_limit = trainer.get("time_limit_s")
        self._target = trainer.get("stop_at_rank") or config.get("best_known_rank")
        log.info("run %s  dir %s", run.run_name, run.run_dir)

    def log_episode(self, record: dict[str, Any]) -> None:
        if not self._recent:  # the first episode of this process (a resume starts later)
            self._start_episode = int(record["episode"]) - 1
            self._start_time = float(record["wall_time_s"])
        self._recent = (self._recent + [record])[-5:]
        now = time.monotonic()
        if self.progress_bar:
            self._draw_bar(record)
        if now - self._last_print >= self.print_every_s:
            self._last_print = now
            if self.progress_bar:
                sys.stderr.write("\r\033[K")
            episode = f"{record['episode']}/{self._total}" if self._total else record["episode"]
            target = f" (target {self._target})" if self._target is not None else ""
            log.info(
                "episode %s  reward %.1f  residual %.3g  rank %s%s  best %s%s  %.1fs  | %s",
                episode, record["reward"], record["residual_norm"],
                record["rank_used"], " solved" if record["solved"] else "",
                record["best_rank"] if record["best_rank"] is not None else "-", target,
                record["wall_time_s"],
                budget_left(int(record["episode"]), float(record["wall_time_s"]), self._total,
                            self._time_limit, self._start_episode, self._start_time),
            )

    def _draw_bar(self, record: dict[str, Any]) -> None:
        total = self._total or record["episode"]
        done = min(record["episode"] / max(total, 1), 1.0)
        width = 30
        bar = "#" * int(done * width) + "-" * (width - int(done * width))
        best = record["best_rank"] if record["best_rank"] is not None else "-"
        sys.stderr.write(f"\r[{bar}] {record['episode']}/{total}  best rank {best}  "
                         f"{record['wall_time_s']:.0f}s")
        sys.stderr.flush()

    def log_summary(self, summary: dict[str, Any]) -> None:
        if self.progress_bar:
            sys.stderr.write("\r\033[K")
            sys.stderr.flush()
        if self._recent:
            log.info("last episodes:\n%s", format_table(self._recent))
        log.info("summary:\n%s", format_summary(summary))


def budget_left(episode: int, elapsed_s: float, episodes: int | None,
                time_limit_s: float | None, start_episode: int = 0,
                start_time_s: float = 0.0) -> str:
    """Progress towards the run's budgets, e.g. ``8% of episodes, 12s of 90s, ~78s left``.
    The estimate is the sooner of the time limit and the episodes left at the pace since
    ``start_episode`` (the first episode of this process)."""
    parts = []
    left: list[float] = []
    if episodes:
        parts.append(f"{min(episode / episodes, 1.0):.0%} of episodes")
        played = episode - start_episode
        if played > 0 and elapsed_s > start_time_s:
            left.append((episodes - episode) * (elapsed_s - start_time_s) / played)
    if time_limit_s:
        parts.append(f"{elapsed_s:.0f}s of {time_limit_s:.0f}s")
        left.append(time_limit_s - elapsed_s)
    if left:
        parts.append(f"~{max(0.0, min(left)):.0f}s left")
    return ", ".join(parts) or "no budget set"


def format_table(records: list[dict[str, Any]]) -> str:
    """A compact fixed-width table: Episode, Reward, Residual, Rank, Solved."""
    lines = [f"{'Episode':>8} {'Reward':>8} {'Residual':>10} {'Rank':>5} {'Solved':>6}"]
    for r in records:
        lines.append(f"{r['episode']:>8} {r['reward']:>8.1f} {r['residual_norm']:>10.4g} "
                     f"{r['rank_used']:>5} {'yes' if r['solved'] else 'no':>6}")
    return "\n".join(lines)


STOP_REASONS = {
    "target_rank": "the target rank (trainer.stop_at_rank, else the best known rank)",
    "episodes": "the episode budget (trainer.episodes)",
    "time_limit": "the time limit (trainer.time_limit_s; checked between episodes)",
    "checkpoint_failed": "a checkpoint that could not be written (see the error above)",
    "write_failed": "a run file that could not be written (see the error above)",
    "interrupted": "an interrupt",
}


def describe_stop(reason: str | None) -> str:
    """What ended a run, in words (``summary.json`` keeps the short ``stop_reason``)."""
    if reason and reason.startswith("signal_"):
        return f"{reason.removeprefix('signal_')} (a signal)"
    return STOP_REASONS.get(reason or "", reason or "-")


def format_summary(summary: dict[str, Any]) -> str:
    """The end-of-run block every run prints."""
    best = summary.get("best_rank")
    known = summary.get("best_known_rank")
    shape = ",".join(str(x) for x in summary.get("shape", []))
    rows = [
        ("run_id", summary.get("run_id")),
        ("shape", f"<{shape}> over {summary.get('ring')}"),
        ("best rank", "none found" if best is None else best),
        ("exactly verified", "yes" if summary.get("verified") else "no"),
        ("best known rank", known if known is not None else "unknown"),
        ("episodes", summary.get("episodes")),
        ("stopped by", describe_stop(summary.get("stop_reason"))),
        ("wall time", f"{summary.get('wall_time_s', 0.0):.1f} s"),
        ("algorithm", summary.get("algorithm_path") or "-"),
        ("run dir", summary.get("run_dir")),
    ]
    for name, failure in sorted((summary.get("logger_failures") or {}).items()):
        rows.append(("not logged by", f"{name} ({failure})"))
    width = max(len(k) for k, _ in rows)
    return "\n".join(f"  {key:<{width}}  {value}" for key, value in rows)
