"""The logger interface and the fan-out that keeps a run alive when a backend fails.

**Step axis.** Everything per episode is logged once, as one record, against
``step = episode`` (1-based count of finished episodes). The record also carries
``moves`` (the global move count) and ``wall_time_s`` as ordinary columns, so a plot against
either is one click away and no metric is ever logged with a second, conflicting counter.

A record (a flat ``dict``) always holds: ``run_id, episode, moves, wall_time_s, reward,
residual_norm, rank_used, solved, best_rank``, then agent-specific metrics. Events that are
not episodes (a new best, a checkpoint, the benchmark) are logged against the step of the
episode they happened in (``event["episode"]``, or the last finished episode), never against
a counter of their own; backends that need a monotonic step (W&B) never step backwards.

**Failures.** A backend that raises (in ``start`` or any later call) is dropped with one
warning; :class:`LoggerGroup` then counts what it did not receive and reports it in the
summary under ``logger_failures`` (``{name: "what failed; not sent: ..."}``).
"""

from __future__ import annotations

import contextlib
import logging
from pathlib import Path
from typing import Any

from mlo_exp.algorithms.algorithm import Algorithm
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
        """The end-of-run summary (see :class:`mlo_exp.run.trainer.RunSummary`)."""

    def finish(self, status: str = "success") -> None:
        """Always called last, also after an exception (``status`` says which)."""

    def sync(self) -> None:
        """Wait until everything logged so far is handled (backends that work in the
        background); raise :class:`BackendFailure` if some of it failed. Called before the
        summary, so the summary can say what was not sent."""

    def abandon(self) -> None:
        """Best-effort cleanup after this backend failed and was dropped (e.g. close a
        remote run so it does not leak). Errors raised here are ignored."""


class BackendFailure(Exception):
    """Raised by a backend that works in the background when it learns of an earlier
    failure: ``failed_in`` (the method that failed), ``error`` (what it raised) and
    ``not_sent`` (method -> calls that were lost, the current one included)."""

    def __init__(self, failed_in: str, error: BaseException, not_sent: dict[str, int]) -> None:
        super().__init__(f"{type(error).__name__}: {_one_line(error)}")
        self.failed_in, self.error, self.not_sent = failed_in, error, dict(not_sent)


# What a dropped backend missed, by method, in the words of the end summary.
_MISSED_WORDS = {"start": "the run start", "log_episode": "episodes",
                 "log_new_best": "new best algorithms", "log_checkpoint": "checkpoints",
                 "log_benchmark": "benchmark tables", "log_summary": "the summary"}


class LoggerGroup(Logger):
    """Calls every member; a failing non-essential member is warned about and dropped."""

    name = "group"

    def __init__(self, loggers: list[Logger]) -> None:
        self.loggers = list(loggers)
        self.failures: dict[str, str] = {}
        self.missed: dict[str, dict[str, int]] = {}  # dropped backend -> method -> calls

    def record_failure(self, name: str, method: str, error: BaseException) -> None:
        """Note (and warn once about) a backend that failed in ``method``, e.g. while it was
        being built; from now on the calls it misses are counted."""
        self.failures[name] = f"{method}: {type(error).__name__}: {_one_line(error)}"
        self.missed.setdefault(name, {})
        log.warning("logger %r failed in %s (%s: %s); the run goes on without it "
                    "(console and run files continue)", name, method, type(error).__name__,
                    _one_line(error))

    def _call(self, method: str, *args: Any) -> None:
        for missed in self.missed.values():
            missed[method] = missed.get(method, 0) + 1
        for logger in list(self.loggers):
            try:
                getattr(logger, method)(*args)
            except Exception as error:
                if logger.essential:
                    raise
                self.loggers.remove(logger)
                if isinstance(error, BackendFailure):
                    self.record_failure(logger.name, error.failed_in, error.error)
                    self.missed[logger.name].update(error.not_sent)
                else:
                    self.record_failure(logger.name, method, error)
                    self.missed[logger.name][method] = 1
                with contextlib.suppress(Exception):  # cleanup of a failed backend
                    logger.abandon()

    def not_sent(self, name: str) -> str:
        """What backend ``name`` did not receive since it failed, e.g. ``"12 episodes, the
        summary"``."""
        missed = dict(self.missed.get(name, {}))
        missed.setdefault("log_summary", 1)
        parts = []
        for method, words in _MISSED_WORDS.items():
            count = missed.get(method, 0)
            if count and method in ("log_summary", "start"):
                parts.append(words)
            elif count:
                parts.append(f"{count} {words if count > 1 else words.removesuffix('s')}")
        return ", ".join(parts)

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

    def sync(self) -> None:
        self._call("sync")

    def log_summary(self, summary: dict[str, Any]) -> None:
        self.sync()  # background failures reach the summary below
        summary.setdefault("logger_failures", {
            name: f"{failure}; not sent: {self.not_sent(name)}"
            for name, failure in self.failures.items()})
        self._call("log_summary", summary)

    def finish(self, status: str = "success") -> None:
        self._call("finish", status)


def _one_line(error: BaseException) -> str:
    """The first line of an exception's message (W&B errors carry multi-line hints)."""
    text = str(error).strip()
    return text.splitlines()[0] if text else "(no message)"
