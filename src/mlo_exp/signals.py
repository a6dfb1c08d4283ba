"""SIGINT and SIGTERM belong to the run, whatever components it has.

``mlo-train`` installs :data:`RUN_SIGNALS` as its first act, so a signal that arrives during
start-up (composing, building the agent, starting the loggers) is remembered instead of
killing the process. The first signal asks the run to stop after the current episode: the
trainer sees :attr:`StopSignals.received` before every episode, ends with status
``interrupted`` and writes ``summary.json`` (the checkpoint manager, when there is one,
saves a final checkpoint with reason ``signal``). A second signal during the episodes
stops at once: it raises :class:`KeyboardInterrupt` in the main thread, which the trainer
turns into the same status. After the episodes (:meth:`StopSignals.finishing`) a second
signal is only recorded: each stage of the run's end stops on the first by itself.

Inside :meth:`StopSignals.interrupting` (a stage that cannot stop "after the current
episode", such as the benchmark stage), the first signal already interrupts at once.
Once the run's work is done (its summary written), :meth:`StopSignals.ignore` makes the
process ignore both signals, so one arriving while the interpreter shuts down (when Python
has given the signals back to the kernel's default, which kills with exit 143) cannot turn
a finished run into a killed process.

Handlers can only be installed from the main thread; elsewhere (a sweep launcher running
jobs on threads) installing is a no-op and the process' own handling applies. This module
imports only ``signal`` and ``threading`` at first (``logging`` when a signal comes), so
``mlo-train`` installs its handlers a few milliseconds after the interpreter starts; a
signal before that (the interpreter's own start, tens of milliseconds) still ends the
process with the kernel's default, before anything was written.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from typing import Any

HANDLED = (signal.SIGINT, signal.SIGTERM)


class StopSignals:
    """Remembers the first SIGINT/SIGTERM and tells listeners; a second one interrupts."""

    def __init__(self) -> None:
        self.received: str | None = None
        self._previous: dict[int, Any] = {}
        self._listeners: list[Callable[[str], None]] = []
        self._interrupt_at_once = False
        self._finishing = False

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

    def ignore(self) -> None:
        """Ignore SIGINT and SIGTERM from now on (the run's work is done: see the module
        docstring); a no-op off the main thread."""
        if threading.current_thread() is not threading.main_thread():
            return
        for signum in HANDLED:
            signal.signal(signum, signal.SIG_IGN)
        self._previous.clear()

    @contextlib.contextmanager
    def interrupting(self) -> Iterator[None]:
        """Inside the block, the first signal raises :class:`KeyboardInterrupt` at once (it
        is still recorded in :attr:`received`); a signal received before the block raises
        it on entry."""
        if self.received is not None:
            raise KeyboardInterrupt
        before, self._interrupt_at_once = self._interrupt_at_once, True
        try:
            yield
        finally:
            self._interrupt_at_once = before

    def finishing(self, finishing: bool = True) -> None:
        """The episodes are over: from now on a repeated signal is only recorded (the end
        of the run, its checkpoint, benchmark, W&B and summary, stops on the first signal
        by itself, within seconds), so the summary is still written. ``False``: episodes
        again (a next run in the same process)."""
        self._finishing = finishing

    def reset(self) -> None:
        """Forget a received signal (a new run in the same process starts clean)."""
        self.received = None
        self._finishing = False

    def listen(self, callback: Callable[[str], None]) -> None:
        """Call ``callback(signal name)`` on the first signal (at once if one came already)."""
        self._listeners.append(callback)
        if self.received is not None:
            callback(self.received)

    def _handle(self, signum: int, frame: Any) -> None:
        name = signal.Signals(signum).name
        first = self.received is None
        if first:
            self.received = name
        if self._interrupt_at_once:
            if first:
                self._tell(name)
            raise KeyboardInterrupt
        if not first:
            if self._finishing:
                return  # the run's end is under way, and each end stage is bounded
            raise KeyboardInterrupt
        _warn(f"{name} received: finishing the current episode, saving, then stopping (send "
              "it again to stop at once)")
        self._tell(name)

    def _tell(self, name: str) -> None:
        for callback in self._listeners:
            callback(name)


def _warn(message: str) -> None:
    """Log ``message`` as a warning of ``mlo_exp``, or write it to stderr when the signal
    came while ``logging`` was being imported (a partially initialised module cannot be
    used from the handler). The handler never raises on its own account."""
    try:
        module = sys.modules.get("logging")
        if module is None:
            import logging as module
        if not getattr(module.__spec__, "_initializing", False):
            module.getLogger("mlo_exp").warning(message)
            return
    except Exception:
        pass
    sys.stderr.write(f"WARNING {message}\n")


RUN_SIGNALS = StopSignals()
