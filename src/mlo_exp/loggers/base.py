"""The logger interface and the fan-out that keeps a run alive when a backend fails.

**Step axis.** Everything per episode is logged once, as one record, against
``step = episode`` (1-based count of finished episodes). The record also carries
``moves`` (the global move count) and ``wall_time_s`` as ordinary columns, so a plot against
either is one click away and no metric is ever logged with a second, conflicting counter.

A record (a flat ``dict``) always holds: ``run_id, episode, moves, wall_time_s, reward,
residual_norm, rank_used, solved, best_rank``, then agent-specific metrics.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from mlo_exp.algorithm import Algorithm
from mlo_exp.run_context import RunContext

log = logging.getLogger("mlo_exp")

EPISODE_COLUMNS = ("run_id", "episode", "moves", "wall_time_s", "reward", "residual_norm",
                   "rank_used", "solved", "best_rank")


class Logger:
    """A logging backend. Every method has a no-op default; override what you record.

    ``essential`` backends (the run files) may raise and stop the run; any other backend's
    exception is caught by :class:`LoggerGroup`, which warns once and drops that backend.
    """

    name = "logger"
    essential = False

    def start(self, run: RunContext, config: dict[str, Any]) -> None:
        """Called once before the first episode with the resolved config."""

    def log_episode(self, record: dict[str, Any]) -> None:
        """One finished episode (see the module docstring for the record's keys)."""

    def log_new_best(self, algorithm: Algorithm, path: Path, record: dict[str, Any]) -> None:
        """A new best algorithm, verified exactly and saved at ``path``."""

    def log_checkpoint(self, event: dict[str, Any], path: Path) -> None:
        """A checkpoint was written at ``path``. ``event`` holds at least ``episode``,
        ``step`` (global moves), ``run_duration_s``, ``reason`` and ``file``."""

    def log_benchmark(self, rows: list[dict[str, Any]], facts: dict[str, Any]) -> None:
        """Benchmark results: ``rows`` (one per algorithm and size, each with a
        ``Source Run ID``) and ``facts`` (run_id, device, library versions) for the run config."""

    def log_summary(self, summary: dict[str, Any]) -> None:
        """The end-of-run summary (see :class:`mlo_exp.trainer.RunSummary`)."""

    def finish(self, status: str = "success") -> None:
        """Always called last, also after an exception (``status`` says which)."""


class LoggerGroup(Logger):
    """Calls every member; a failing non-essential member is warned about and dropped."""

    name = "group"

    def __init__(self, loggers: list[Logger]) -> None:
        self.loggers = list(loggers)
        self.failures: dict[str, str] = {}

    def _call(self, method: str, *args: Any) -> None:
        for logger in list(self.loggers):
            try:
                getattr(logger, method)(*args)
            except Exception as error:
                if logger.essential:
                    raise
                self.loggers.remove(logger)
                self.failures[logger.name] = f"{method}: {type(error).__name__}: {error}"
                log.warning("logger %r failed in %s (%s: %s); the run goes on without it",
                            logger.name, method, type(error).__name__, error)

    def start(self, run: RunContext, config: dict[str, Any]) -> None:
        self._call("start", run, config)

    def log_episode(self, record: dict[str, Any]) -> None:
        self._call("log_episode", record)

    def log_new_best(self, algorithm: Algorithm, path: Path, record: dict[str, Any]) -> None:
        self._call("log_new_best", algorithm, path, record)

    def log_checkpoint(self, event: dict[str, Any], path: Path) -> None:
        self._call("log_checkpoint", event, path)

    def log_benchmark(self, rows: list[dict[str, Any]], facts: dict[str, Any]) -> None:
        self._call("log_benchmark", rows, facts)

    def log_summary(self, summary: dict[str, Any]) -> None:
        summary.setdefault("logger_failures", dict(self.failures))
        self._call("log_summary", summary)

    def finish(self, status: str = "success") -> None:
        self._call("finish", status)
