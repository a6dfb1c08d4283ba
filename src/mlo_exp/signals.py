"""SIGINT and SIGTERM belong to the run, whatever components it has.

``mlo-train`` installs :data:`RUN_SIGNALS` as its first act, so a signal that arrives during
start-up (composing, building the agent, starting the loggers) is remembered instead of
killing the process. The first signal asks the run to stop after the current episode: the
trainer sees :attr:`StopSignals.received` before every episode, ends with status
``interrupted`` and writes ``summary.json`` (the checkpoint manager, when there is one,
saves a final checkpoint with reason ``signal``). A second signal stops at once: it raises
:class:`KeyboardInterrupt` in the main thread, which the trainer turns into the same status.

Handlers can only be installed from the main thread; elsewhere (a sweep launcher running
jobs on threads) installing is a no-op and the process' own handling applies.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

log = logging.getLogger("mlo_exp")

HANDLED = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Remembers the first SIGINT/SIGTERM and tells listeners; a second one interrupts."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}
        self._listeners: list[Callable[[str], None]] = []

    @property
    def installed(self) -> bool:
        return bool(self._previous)

    def install(self) -> None:
        """Take over SIGINT and SIGTERM (idempotent; a no-op off the main thread)."""
        if self.installed or threading.current_thread() is not threading.main_thread():
            return
        for signum in HANDLED:
            self._previous[signum] = signal.signal(signum, self._handle)

    def uninstall(self) -> None:
        """Give the signals back to the handlers that were there before :meth:`install`."""
        for signum, previous in self._previous.items():
            signal.signal(signum, previous)
        self._previous.clear()
        self._listeners.clear()

    def reset(self) -> None:
        """Forget a received signal (a new run in the same process starts clean)."""
        self.received = None

    def listen(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(signal name)`` on the first signal (at once if one came already)."""
        self._listeners.append(callback)
        if self.received is not None:
            callback(self.received)

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        if self.received is not None:
            raise KeyboardInterrupt
        self.received = name
        log.warning("%s received: finishing the current episode, saving, then stopping "
                    "(send it again to stop at once)", name)
        for callback in self._listeners:
            callback(name)


RUN_SIGNALS = StopSignals()
