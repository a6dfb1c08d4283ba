"""The run's signal handler, in-process: what it does when a signal lands mid-import."""

from __future__ import annotations

import importlib.machinery
import signal
import sys
import types

from mlo_exp.signals import StopSignals


def test_a_signal_while_logging_is_being_imported_warns_on_stderr(monkeypatch, capsys):
    """CI once sent SIGTERM while ``hydra`` was importing ``logging``: the handler's
    ``logging.getLogger`` met the half-built module and raised AttributeError, a traceback
    instead of an interrupted run. The handler now writes the warning to stderr."""
    half_built = types.ModuleType("logging")
    half_built.__spec__ = importlib.machinery.ModuleSpec("logging", None)
    half_built.__spec__._initializing = True
    monkeypatch.setitem(sys.modules, "logging", half_built)
    stops = StopSignals()
    heard: list[str] = []
    stops.listen(heard.append)
    stops._handle(signal.SIGTERM, None)
    assert stops.received == "SIGTERM" and heard == ["SIGTERM"]
    assert "SIGTERM received: finishing the current episode" in capsys.readouterr().err


def test_a_signal_after_start_up_is_logged(caplog):
    stops = StopSignals()
    with caplog.at_level("WARNING", logger="mlo_exp"):
        stops._handle(signal.SIGINT, None)
    assert stops.received == "SIGINT"
    assert "SIGINT received" in caplog.text
