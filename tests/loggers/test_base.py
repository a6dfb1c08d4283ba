"""LoggerGroup: a failing backend is dropped with one warning and what it missed is counted."""

from __future__ import annotations

import logging

import pytest

from mlo_exp.loggers.base import BackendFailure, Logger, LoggerGroup


class Recorder(Logger):
    name = "recorder"

    def __init__(self) -> None:
        self.episodes: list[int] = []

    def log_episode(self, record):
        self.episodes.append(record["episode"])


class FailsAtEpisode(Logger):
    """A backend whose own code fails at episode 2 (a backend bug, not a W&B stand-in)."""

    name = "flaky"

    def __init__(self, background: bool = False) -> None:
        self.background = background
        self.abandoned = False

    def log_episode(self, record):
        if record["episode"] == 2:
            error = OSError("disk full")
            if self.background:  # as a background backend reports an earlier failure
                raise BackendFailure("log_new_best", error, {"log_new_best": 1,
                                                             "log_episode": 2})
            raise error

    def abandon(self):
        self.abandoned = True


@pytest.mark.parametrize("background, expected", [
    (False, "log_episode: OSError: disk full; not sent: 3 episodes, the summary"),
    (True, "log_new_best: OSError: disk full; not sent: 4 episodes, 1 new best algorithm, "
           "the summary"),
])
def test_failing_backend_is_dropped_once_and_counted(caplog, background, expected):
    caplog.set_level(logging.WARNING)
    recorder, flaky = Recorder(), FailsAtEpisode(background)
    group = LoggerGroup([recorder, flaky])
    for episode in range(1, 5):
        group.log_episode({"episode": episode})
    summary: dict = {}
    group.log_summary(summary)
    group.finish()
    assert recorder.episodes == [1, 2, 3, 4]
    assert flaky.abandoned and flaky not in group.loggers
    assert summary["logger_failures"] == {"flaky": expected}
    assert len([r for r in caplog.records if r.levelname == "WARNING"]) == 1


def test_essential_backend_failure_stops_the_run():
    class Essential(FailsAtEpisode):
        essential = True

    group = LoggerGroup([Essential()])
    group.log_episode({"episode": 1})
    with pytest.raises(OSError):
        group.log_episode({"episode": 2})

