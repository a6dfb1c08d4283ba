"""Progress inside an episode: what an agent with long episodes reports, on the console.

An agent calls :meth:`mlo_exp.agents.base.Agent.report_progress` with a few numbers (search
steps, best so far, ...) as often as it likes; the trainer hands it an
:class:`EpisodeProgress`, which prints at most one line every ``every_s`` seconds (10 s),
and none in the first ``every_s`` seconds of an episode (short episodes stay silent: the
per-episode line says it all)::

    episode 1 in progress: 20 s in  simulations 1200  best_return -9  | 21s of 45s

The line goes to the ``mlo_exp`` logger at INFO, like the per-episode lines.
"""

from __future__ import annotations

import logging
import time
from typing import Any

log = logging.getLogger("mlo_exp")

PROGRESS_EVERY_S = 10.0


class EpisodeProgress:
    """The rate-limited progress line of the episode being played (module docstring)."""

    def __init__(self, trainer: Any, every_s: float = PROGRESS_EVERY_S) -> None:
        self.trainer = trainer
        self.every_s = float(every_s)
        self.lines = 0  # lines printed (all episodes)
        self._episode = 0
        self._started = time.monotonic()
        self._last_line = self._started

    def start_episode(self, episode: int) -> None:
        """The trainer calls this before each episode (``episode``: its number)."""
        self._episode = episode
        self._started = self._last_line = time.monotonic()

    def __call__(self, values: dict[str, Any]) -> None:
        now = time.monotonic()
        if now - self._last_line < self.every_s:
            return
        self._last_line = now
        self.lines += 1
        shown = "  ".join(f"{key} {_number(value)}" for key, value in values.items())
        limit = self.trainer.config.time_limit_s
        budget = (f"  | {self.trainer.run.elapsed():.0f}s of {limit:g}s" if limit else "")
        log.info("episode %d in progress: %.0f s in  %s%s", self._episode,
                 now - self._started, shown, budget)


def _number(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)
