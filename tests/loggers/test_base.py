import logging

import pytest

from mlo_exp.loggers.base import Logger, LoggerGroup
from mlo_exp.loggers.files import FilesLogger


class Recording(Logger):
    name = "recording"

    def __init__(self):
        self.episodes = []

    def log_episode(self, record):
        self.episodes.append(record["episode"])


class FailsOnSecondEpisode(Logger):
    name = "flaky"

    def log_episode(self, record):
        if record["episode"] == 2:
            raise ConnectionError("backend went away")


def test_a_failing_backend_is_dropped_with_one_warning_and_the_rest_go_on(caplog):
    recording = Recording()
    group = LoggerGroup([FailsOnSecondEpisode(), recording])
    with caplog.at_level(logging.WARNING, logger="mlo_exp"):
        for episode in (1, 2, 3):
            group.log_episode({"episode": episode})
    assert recording.episodes == [1, 2, 3]
    assert "flaky" in group.failures and "backend went away" in group.failures["flaky"]
    assert sum("flaky" in r.message for r in caplog.records) == 1
    summary = {}
    group.log_summary(summary)
    assert "flaky" in summary["logger_failures"]


def test_an_essential_logger_failure_stops_the_run(tmp_path):
    files = FilesLogger(tmp_path / "missing-dir")
    group = LoggerGroup([files])
    with pytest.raises(OSError):
        group.log_episode({"episode": 1})
