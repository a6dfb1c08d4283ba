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
training process's CPU or GIL (``perf/logging.md`` measures what is left). ``sync`` (called
before the summary) and ``finish`` wait for the calls sent so far, at most
``finish_timeout_s`` seconds. If the run's process is killed, the child closes the W&B run
(exit code 1) on its own.

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

from mlo_exp.algorithm import Algorithm
from mlo_exp.loggers.base import BackendFailure, Logger, log
from mlo_exp.run_context import RunContext

DEFAULT_PROJECT = "mlo-exp"
MODES = ("online", "offline", "disabled")
ABANDON_TIMEOUT_S = 10.0  # closing a W&B run after a failure: never wait long
EXIT_TIMEOUT_S = 30.0  # the child's own shutdown after its last call was handled
SOURCE_ROOT = Path(__file__).resolve().parents[2]  # the folder holding mlo_exp/


class WandbLogger(Logger):
    """See the module docstring. Settings mirror ``WandbLoggerConfig`` in ``config.py``."""

    name = "wandb"

    def __init__(
        self,
        entity: str | None = None,
        project: str | None = None,
        group: str | None = None,
        tags: list[str] | None = None,
        job_type: str = "train",
        notes: str | None = None,
        mode: str | None = None,
        init_timeout_s: float = 60.0,
        table_every_s: float = 10.0,
        log_checkpoint_artifacts: bool = True,
        system_metrics: bool = False,
        finish_timeout_s: float = 120.0,
        episode_table: str = "incremental",
    ) -> None:
        self.entity = entity
        self.project = project
        self.group = group
        self.mode = mode
        self.finish_timeout_s = float(finish_timeout_s)
        # What the W&B process needs besides the run and the resolved entity/project/mode.
        self.options = {
            "tags": list(tags or []), "job_type": job_type, "notes": notes,
            "init_timeout_s": float(init_timeout_s), "table_every_s": float(table_every_s),
            "log_checkpoint_artifacts": bool(log_checkpoint_artifacts),
            "system_metrics": bool(system_metrics),
            "episode_table": episode_table,  # "incremental", or "full" for W&B servers < 0.70
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
        self._spawn()
        run_info = {"run_id": run.run_id, "run_name": run.run_name,
                    "run_dir": str(self.run_dir), "info": run.to_dict()}
        self._submit("start", run_info, config, chosen, self.options)

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
            self._wait("sync")
        self._raise_if_failed(None)

    def log_summary(self, summary: dict[str, Any]) -> None:
        self._submit("log_summary", summary)

    def finish(self, status: str = "success") -> None:
        if self._process is None or self._closed:
            return
        self._raise_if_failed("finish")
        self._closed = True
        self._submit("finish", status, always=True)
        try:
            self._wait("finish", stop=True)
        finally:
            self._end_process(EXIT_TIMEOUT_S)
        self._raise_if_failed(None)

    def abandon(self) -> None:
        """Close the W&B run after a failure (so a sweep does not leak it), then stop."""
        if self._process is None or self._closed:
            return
        self._closed = True
        timeout_s = min(ABANDON_TIMEOUT_S, self.finish_timeout_s)
        self._submit("abandon", always=True)
        try:
            self._wait("abandon", stop=True, timeout_s=timeout_s)
        finally:
            self._end_process(timeout_s)

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
        if not always:
            self._receive(0.0)
            self._raise_if_failed(method)
        try:
            self._connection.send((method, args))
        except (OSError, ValueError) as error:  # the W&B process is gone
            self._process_gone(method, error)
            if not always:
                self._raise_if_failed(None)

    def _receive(self, timeout_s: float, token: int | None = None) -> bool:
        """Handle what the W&B process sent, waiting up to ``timeout_s`` for more; returns
        True once the reply to wait ``token`` arrived."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                if not self._connection.poll(max(0.0, deadline - time.monotonic())):
                    return False
                message = self._connection.recv()
            except (EOFError, OSError) as error:
                self._process_gone("a call", error)
                return False
            kind = message[0]
            if kind == "info":
                log.info("%s", message[1])
            elif kind == "failed":
                _, method, error_type, text = message
                self._failure = (method, remote_error(error_type, text))
            elif kind == "done":
                self._not_sent = Counter(message[2])
                if message[1] == token:
                    return True

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
            with contextlib.suppress(TimeoutError):
                self._wait("count", timeout_s=min(ABANDON_TIMEOUT_S, self.finish_timeout_s))
        failed_in, error = self._failure
        not_sent = Counter(self._not_sent)
        if method is not None:
            not_sent[method] += 1
        raise BackendFailure(failed_in, error, dict(not_sent))

    def _wait(self, what: str, stop: bool = False, timeout_s: float | None = None) -> None:
        """Wait until the W&B process handled the calls sent so far (and let it end when
        ``stop``)."""
        timeout_s = self.finish_timeout_s if timeout_s is None else timeout_s
        token = next(self._tokens)
        try:
            self._connection.send(("wait", token))
            if stop:
                self._connection.send(None)
        except (OSError, ValueError) as error:
            self._process_gone(what, error)
            return
        if not self._receive(timeout_s, token) and self._failure is None:
            raise TimeoutError(f"W&B did not get through the calls sent to it within "
                               f"{timeout_s:.0f} s ({what}); logger.finish_timeout_s sets "
                               "the limit")

    def _end_process(self, timeout_s: float) -> None:
        """Let the W&B process exit (it was told to stop), killing it after ``timeout_s``."""
        if self._process is None:
            return
        try:
            self._process.wait(timeout_s)
        except subprocess.TimeoutExpired:
            log.warning("the W&B process did not exit within %.0f s; killed", timeout_s)
            self._process.kill()
            self._process.wait()
        finally:
            self._connection.close()


def remote_error(error_type: str, message: str) -> Exception:
    """An exception that reads like the one raised in the W&B process (its type name and
    message); the original object is not sent across."""
    return type(error_type, (RuntimeError,), {"__module__": "wandb"})(message)
