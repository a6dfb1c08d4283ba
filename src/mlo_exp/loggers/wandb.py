"""Weights & Biases backend (``logger=wandb``): metrics, cumulative tables, files, artifacts.

**Identity.** The W&B run id is the run's ``run_id``; the W&B run name is ``run_name``
(env, agent, seed, run_id); the whole resolved config is the W&B config. ``entity`` (a user or a
team), ``project`` and ``mode`` fall back to ``WANDB_ENTITY``, ``WANDB_PROJECT`` and
``WANDB_MODE`` when the config leaves them null (project then defaults to ``mlo-exp``, mode to
``online``). In a multirun (``run.job_num`` set) the W&B group is the sweep directory's name
unless ``group`` is set, so a sweep reads as one group. W&B's own files go inside the run
directory (``<run_dir>/wandb/``).

**Step axis.** Everything is logged with ``step = episode`` (see :mod:`.base`); events that
are not episodes use the episode they happened in, and never a step below one already logged.

**What is logged.**

* per episode: the record's numeric values (``episode``, ``moves``, ``wall_time_s``,
  ``reward``, ``residual_norm``, ``rank_used``, ``solved``, ``best_rank``, agent metrics);
* ``episodes_table``: ONE cumulative table (Episode, Reward, Residual, Rank) in W&B's
  ``INCREMENTAL`` table mode: every flush (at most every ``table_every_s`` seconds, and at the
  end) adds the rows since the last one and the W&B UI shows all rows so far. With
  ``episode_table="full"`` (W&B servers older than 0.70) or a wandb without incremental
  tables, each flush logs a fresh table with every row so far under the same key;
* a new best: ``best/rank`` and the saved ``algorithm.json``/``.txt`` (Files tab);
* a checkpoint: ``checkpoint/{episode,step,run_duration_s}``, the cumulative
  ``checkpoints_summary`` table (Episode, Step, Run Duration (s), File), the file itself
  (Files tab) and a versioned ``model`` Artifact ``checkpoint-<run_id>`` with aliases
  ``latest``, ``episode-<n>`` and ``best`` (when ``event["reason"] == "best"`` or
  ``event["is_best"]``);
* the benchmark: a ``benchmark`` table (with a ``Source Run ID`` column) and the facts under
  ``benchmark`` in the run config, so runs can be filtered by GPU or CuPy version;
* the end summary: ``run.summary``.

**In its own process.** Every W&B call (import, ``wandb.init``, logging, uploads, finish)
runs in a child process, in order (:mod:`.wandb_session`); the training loop only sends it a
small pickled tuple, so neither W&B's start-up, its Python work nor a slow network takes the
training process's CPU or GIL (``perf/logging.md`` measures what is left). If the run's
process is killed, the child closes the W&B run (exit code 1) on its own.

**What W&B may cost the run, at most** (a server that accepts connections but never answers
included):

* the start: ``init_timeout_s``, counted from ``start``. The W&B process gives ``wandb.init``
  what is left of it after importing wandb (less a margin, so W&B's own error, which says
  more, usually comes first); if W&B has still not started by then, it has failed
  (``TimeoutError``): its process is killed at once (it is stuck in ``wandb.init``, with no
  W&B run to close). Nothing waits for the start before ``sync``: during training the
  deadline is only checked, so the run usually pays nothing for it;
* the end: ``sync`` (before the summary), ``log_summary`` and ``finish`` in a row share ONE
  budget of ``finish_timeout_s`` for the W&B process to get through everything sent to it
  (uploads included). Past it W&B has failed (``TimeoutError``) and its process is killed.
  Once the W&B run is closed, the process gets what is left of the budget, at least
  ``EXIT_GRACE_S``, to exit (it bounds its own exit hooks: ``EXIT_HOOKS_TIMEOUT_S`` in
  :mod:`.wandb_session`), then it is killed, silently;
* after a failure (:meth:`WandbLogger.abandon`): closing the W&B run (exit code 1) and the
  process's exit within ``min(ABANDON_TIMEOUT_S, finish_timeout_s)``, then it is killed;
  when W&B never started there is no W&B run to close: only the exit, within
  ``EXIT_GRACE_S``.

So a run with an unreachable or silent W&B server loses at most about ``START_AT_END_S`` +
``EXIT_GRACE_S`` to W&B beyond its own time (a W&B still not started when the run ends gets
``START_AT_END_S`` more, within ``init_timeout_s`` from the start), and a W&B that hangs
later at most ``finish_timeout_s`` (+ ``EXIT_GRACE_S``) at the end; each failure is warned
about once (by the group), never again for the process being killed. Once the run got
SIGINT or SIGTERM (:mod:`mlo_exp.signals`), the waits on W&B from then on end
``SIGNAL_GRACE_S`` after the first of them began (waits poll in ``POLL_SLICE_S`` slices to
see a signal): the W&B process is then killed, as past any other deadline.

**Failures** (wandb not importable, no API key, an init timeout, a network error, any later
exception, the child process dying) stop the W&B calls; the next call from the run raises
:class:`~mlo_exp.loggers.base.BackendFailure` naming where it failed and what was not sent.
:class:`~mlo_exp.loggers.base.LoggerGroup` warns once, drops this backend (calling
:meth:`WandbLogger.abandon`, which closes the W&B run) and the run goes on with the console
and the run files. ``finish`` is always called (``experiment.run`` calls it in a ``finally``),
so sweep jobs never leak W&B runs.
"""

from __future__ import annotations

import contextlib
import itertools
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path
from typing import Any

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.config import WandbLoggerConfig
from mlo_exp.loggers.base import BackendFailure, Logger, log
from mlo_exp.run_context import RunContext
from mlo_exp.signals import RUN_SIGNALS

DEFAULT_PROJECT = "mlo-exp"
MODES = ("online", "offline", "disabled")
ABANDON_TIMEOUT_S = 10.0  # closing a W&B run after a failure: never wait long
START_AT_END_S = 5.0  # a W&B that has not started when the run ends gets this much more
SIGNAL_GRACE_S = 5.0  # after SIGINT/SIGTERM, waits on W&B end this long after they begin
POLL_SLICE_S = 0.25  # waits poll in slices this long, to see a signal
EXIT_GRACE_S = 4.0  # the W&B process's own exit once its last call was handled (it bounds
#   its exit hooks to EXIT_HOOKS_TIMEOUT_S = 2 s, see wandb_session)
# Calls that end the run: a sync followed only by these is the end of the run, and they
# share its finish_timeout_s budget.
END_CALLS = ("log_summary", "finish", "abandon")
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding mlo_exp/


class WandbLogger(Logger):
    """See the module docstring."""

    name = "wandb"

    def __init__(self, **settings: Any) -> None:
        """``settings``: fields of :class:`~mlo_exp.config.WandbLoggerConfig` (defaults and
        checks there)."""
        s = self.settings = WandbLoggerConfig(**settings)
        self.entity = s.entity
        self.project = s.project
        self.group = s.group
        self.mode = s.mode
        self.init_timeout_s = float(s.init_timeout_s)
        self.finish_timeout_s = float(s.finish_timeout_s)
        # What the W&B process needs besides the run and the resolved entity/project/mode.
        self.options = {
            "tags": list(s.tags or []), "job_type": s.job_type, "notes": s.notes,
            "init_timeout_s": float(s.init_timeout_s), "table_every_s": float(s.table_every_s),
            "log_checkpoint_artifacts": bool(s.log_checkpoint_artifacts),
            "system_metrics": bool(s.system_metrics),
            "episode_table": s.episode_table,  # "incremental", or "full" for servers < 0.70
        }
        self.run_dir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None
        self._connection: Any = None  # multiprocessing Connection to the W&B process
        self._tokens = itertools.count()
        self._failure: tuple[str, BaseException] | None = None
        self._failure_counted = False  # not_sent is complete for the failure
        self._not_sent: Counter[str] = Counter()
        self._closed = False  # finish or abandon was sent
        self._staged = 0  # checkpoints staged for upload so far
        self._started = False  # the W&B process said wandb.init succeeded
        self._start_by = float("inf")  # time.monotonic() by which W&B must have started
        self._end_by: float | None = None  # deadline of the run's end (sync, summary, finish)
        self._sent: Counter[str] = Counter()  # calls sent to the W&B process, by method
        self._handled: Counter[str] = Counter()  # of those, known handled (a wait came back)
        self._waits: dict[int, Counter[str]] = {}  # wait token -> calls sent before it
        self._signal_by: float | None = None  # waits end by then: the run got a signal
        self._start_cut_at_end = False  # _start_by was brought forward by the run's end

    # -- settings ---------------------------------------------------------------------
    def resolved_settings(self, run: RunContext) -> dict[str, Any]:
        """Entity, project, mode and group after the environment fallbacks."""
        mode = self.mode or os.environ.get("WANDB_MODE") or "online"
        if mode not in MODES:
            raise ValueError(f"W&B mode {mode!r} is invalid; accepted: {', '.join(MODES)} "
                             "(logger.mode or WANDB_MODE)")
        group = self.group
        if group is None and run.job_num is not None:
            sweep_dir = Path(run.run_dir).parent
            group = f"{sweep_dir.parent.name}_{sweep_dir.name}"
        return {
            "entity": self.entity or os.environ.get("WANDB_ENTITY") or None,
            "project": self.project or os.environ.get("WANDB_PROJECT") or DEFAULT_PROJECT,
            "mode": mode,
            "group": group,
        }

    # -- the Logger interface: send the call, report earlier failures --------------------
    def start(self, run: RunContext, config: dict[str, Any]) -> None:
        chosen = self.resolved_settings(run)  # bad settings fail here, at once
        self.run_dir = Path(run.run_dir)  # set now: log_checkpoint stages files against it
        # time.monotonic() is one clock for every process of the machine: the W&B process
        # sizes wandb.init's own timeout from this deadline.
        self._start_by = time.monotonic() + self.init_timeout_s
        self._spawn()
        run_info = {"run_id": run.run_id, "run_name": run.run_name,
                    "run_dir": str(self.run_dir), "info": run.to_dict()}
        self._submit("start", run_info, config, chosen,
                     {**self.options, "init_deadline": self._start_by})

    def log_episode(self, record: dict[str, Any]) -> None:
        self._submit("log_episode", record)

    def log_new_best(self, algorithm: Algorithm, path: Path, record: dict[str, Any]) -> None:
        self._submit("log_new_best", algorithm.rank, str(path), record)

    def log_checkpoint(self, event: dict[str, Any], path: Path) -> None:
        staged, base = self._stage(Path(path))
        self._submit("log_checkpoint", event, str(staged), str(base) if base else None)

    def _stage(self, path: Path) -> tuple[Path, Path | None]:
        """Hard-link (or copy) a checkpoint where pruning cannot reach it before the upload.

        Uploads happen in the W&B process, possibly seconds later (W&B may still be starting),
        by when the checkpoint manager may have deleted the file. The link costs no space
        while the checkpoint itself exists; W&B's Files tab links to it, so it stays (an
        offline run uploads it at ``wandb sync``). Returns the staged file and the folder its
        Files-tab name is relative to (the file keeps its path relative to the run dir)."""
        if self.run_dir is None or not path.is_file():
            return path, None  # nothing to protect: W&B reports the problem itself
        run_dir = self.run_dir.resolve()
        resolved = path.resolve()
        relative = resolved.relative_to(run_dir) if run_dir in resolved.parents else Path(path.name)
        # A folder per upload: a checkpoint saved twice under one name (e.g. periodic, then at
        # the end) never replaces a staged file the W&B process may be reading.
        self._staged += 1
        base = run_dir / "wandb" / "checkpoint-staging" / f"{self._staged:06d}"
        staged = base / relative
        staged.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(resolved, staged)
        except OSError:
            shutil.copy2(resolved, staged)
        return staged, base

    def log_benchmark(self, rows: list[dict[str, Any]], facts: dict[str, Any]) -> None:
        self._submit("log_benchmark", rows, facts)

    def sync(self) -> None:
        if self._process is not None and not self._closed:
            if self._end_by is None:  # the end of the run, unless more calls follow
                self._end_by = time.monotonic() + self.finish_timeout_s
            at_end = time.monotonic() + START_AT_END_S
            if not self._started and at_end < self._start_by:
                # The run is over: W&B gets a few seconds more to start, not its whole
                # init_timeout_s (a silent server would cost the run that much).
                self._start_by, self._start_cut_at_end = at_end, True
            self._wait("sync", self._end_by)
        self._raise_if_failed(None)

    def log_summary(self, summary: dict[str, Any]) -> None:
        self._submit("log_summary", summary)

    def finish(self, status: str = "success") -> None:
        if self._process is None or self._closed:
            return
        self._raise_if_failed("finish")
        self._closed = True
        deadline = self._end_by or time.monotonic() + self.finish_timeout_s
        self._submit("finish", status, always=True)
        closed = False
        try:
            closed = self._wait("finish", deadline, stop=True)
        finally:
            self._end_process(deadline if closed else 0.0)
        self._raise_if_failed(None)

    def abandon(self) -> None:
        """Close the W&B run after a failure (so a sweep does not leak it), then stop; see
        the module docstring for how long this may take."""
        if self._process is None or self._closed:
            return
        self._closed = True
        if self._process.poll() is not None:  # gone (or killed after a timeout)
            self._end_process(0.0)
            return
        if self._failure is not None and not self._started:
            # wandb.init failed: there is no W&B run to close, only the process to stop.
            with contextlib.suppress(OSError, ValueError):
                self._connection.send(None)
            self._end_process(time.monotonic())
            return
        deadline = time.monotonic() + min(ABANDON_TIMEOUT_S, self.finish_timeout_s)
        self._submit("abandon", always=True)
        closed = False
        try:
            closed = self._wait("abandon", deadline, stop=True)
        finally:
            self._end_process(deadline if closed else 0.0)

    # -- the W&B process -----------------------------------------------------------------
    def _spawn(self) -> None:
        """Start ``python -m mlo_exp.loggers.wandb_session`` with one end of a duplex pipe."""
        ours, theirs = multiprocessing.Pipe(duplex=True)
        env = dict(os.environ)
        # After the user's own entries, so theirs still win (as they do in this process).
        env["PYTHONPATH"] = os.pathsep.join(
            [*filter(None, [env.get("PYTHONPATH")]), str(SOURCE_ROOT)])
        try:
            self._process = subprocess.Popen(
                [sys.executable, "-m", "mlo_exp.loggers.wandb_session", str(theirs.fileno())],
                pass_fds=(theirs.fileno(),), env=env, stdin=subprocess.DEVNULL)
        finally:
            theirs.close()
        self._connection = ours

    def _submit(self, method: str, *args: Any, always: bool = False) -> None:
        if method not in END_CALLS:
            self._end_by = None  # the run goes on: the last sync was not its end
        if not always:
            self._receive(0.0)
            self._raise_if_failed(method)
        try:
            self._connection.send((method, args))
        except (OSError, ValueError) as error:  # the W&B process is gone
            self._process_gone(method, error)
            if not always:
                self._raise_if_failed(None)
        else:
            self._sent[method] += 1

    def _receive(self, deadline: float, token: int | None = None) -> bool:
        """Handle what the W&B process sent, waiting until ``deadline`` (``time.monotonic()``)
        for more, but never past the start deadline while W&B has not started; returns True
        once the reply to wait ``token`` arrived."""
        while True:
            waiting_for_start = not self._started and self._failure is None
            until = min(deadline, self._start_by) if waiting_for_start else deadline
            until = min(until, self._signal_deadline(blocking=until > time.monotonic()))
            if self._connection.closed:
                return False
            try:
                # In slices: a signal that arrives meanwhile shortens the wait.
                left = until - time.monotonic()
                if not self._connection.poll(max(0.0, min(left, POLL_SLICE_S))):
                    if left > POLL_SLICE_S:
                        continue
                    if waiting_for_start and time.monotonic() >= self._start_by:
                        within = (f"{START_AT_END_S:g} s of the run's end"
                                  if self._start_cut_at_end else
                                  f"{self.init_timeout_s:g} s (logger.init_timeout_s)")
                        self._fail("start", TimeoutError(
                            f"W&B did not start within {within}; is its server reachable "
                            "and answering?"))
                    elif self._signal_by is not None and time.monotonic() >= self._signal_by \
                            and self._failure is None:
                        self._fail("a call", TimeoutError(
                            f"stopped waiting for W&B {SIGNAL_GRACE_S:g} s after "
                            f"{RUN_SIGNALS.received}"))
                    return False
                message = self._connection.recv()
            except (EOFError, OSError) as error:
                self._process_gone("a call", error)
                return False
            kind = message[0]
            if kind == "info":
                log.info("%s", message[1])
            elif kind == "started":
                self._started = True
            elif kind == "failed":
                _, method, error_type, text = message
                self._failure = (method, remote_error(error_type, text))
            elif kind == "done":
                self._not_sent = Counter(message[2])
                self._handled = self._waits.pop(message[1], self._handled)
                if message[1] == token:
                    return True

    def _signal_deadline(self, blocking: bool = True) -> float:
        """``SIGNAL_GRACE_S`` after the first wait on W&B that follows the run's first
        SIGINT/SIGTERM (inf before): a signal ends every wait on W&B within seconds."""
        if self._signal_by is None and RUN_SIGNALS.received is not None and blocking:
            self._signal_by = time.monotonic() + SIGNAL_GRACE_S
        return self._signal_by if self._signal_by is not None else float("inf")

    def _fail(self, method: str, error: BaseException) -> None:
        """W&B failed on this side (a deadline passed): whatever was sent and not known to be
        handled counts as not sent, and the W&B process, stuck, is killed at once."""
        self._failure = (method, error)
        self._not_sent = self._sent - self._handled
        self._failure_counted = True
        self._end_process(0.0)

    def _process_gone(self, method: str, error: BaseException) -> None:
        if self._failure is None:
            code = self._process.poll() if self._process is not None else None
            self._failure = (method, RuntimeError(
                f"the W&B process exited (code {code}; {type(error).__name__})"))
            self._failure_counted = True  # nothing more will be counted

    def _raise_if_failed(self, method: str | None) -> None:
        if self._failure is None:
            return
        if not self._failure_counted and not self._closed:
            # Count the calls already on their way when the failure happened.
            self._failure_counted = True
            self._wait("count", time.monotonic() + min(ABANDON_TIMEOUT_S, self.finish_timeout_s))
        failed_in, error = self._failure
        not_sent = Counter(self._not_sent)
        if method is not None:
            not_sent[method] += 1
        raise BackendFailure(failed_in, error, dict(not_sent))

    def _wait(self, what: str, deadline: float, stop: bool = False) -> bool:
        """Wait until ``deadline`` for the W&B process to handle the calls sent so far (and
        let it end when ``stop``); True if it did. Past the deadline W&B has failed (unless
        it already had) and its process is killed."""
        token = next(self._tokens)
        try:
            self._connection.send(("wait", token))
            self._waits[token] = Counter(self._sent)
            if stop:
                self._connection.send(None)
        except (OSError, ValueError) as error:
            self._process_gone(what, error)
            return False
        if self._receive(deadline, token):
            return True
        if self._failure is None:
            limit = "" if what == "abandon" else "; logger.finish_timeout_s sets the limit"
            self._fail(what, TimeoutError(
                f"W&B did not get through the calls sent to it in time ({what}{limit})"))
        return False

    def _end_process(self, deadline: float) -> None:
        """Wait for the W&B process to exit (it was told to stop) until ``deadline``, but at
        least ``EXIT_GRACE_S``, then kill it; ``deadline`` 0 kills it at once (it is stuck)."""
        process = self._process
        if process is None:
            return
        try:
            if process.poll() is None and deadline > 0:
                timeout_s = max(deadline - time.monotonic(), EXIT_GRACE_S)
                if RUN_SIGNALS.received is not None:  # a signal: seconds, not more
                    timeout_s = max(0.0, min(timeout_s, self._signal_deadline()
                                             - time.monotonic()))
                try:
                    process.wait(timeout_s)
                except subprocess.TimeoutExpired:
                    log.info("the W&B process did not exit within %.0f s; killed", timeout_s)
            if process.poll() is None:
                process.kill()
                process.wait()
        finally:
            self._connection.close()


def remote_error(error_type: str, message: str) -> Exception:
    """An exception that reads like the one raised in the W&B process (its type name and
    message); the original object is not sent across."""
    return type(error_type, (RuntimeError,), {"__module__": "wandb"})(message)
