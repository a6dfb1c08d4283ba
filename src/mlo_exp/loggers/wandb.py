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

**In the background.** Every W&B call (import, ``wandb.init``, logging, uploads, finish)
runs on one worker thread, in order; the training loop only puts work on a queue, so neither
W&B's start-up nor a slow network stalls training (``perf/logging.md`` measures the rest).
``sync`` (called before the summary) and ``finish`` wait for the queue, at most
``finish_timeout_s`` seconds.

**Failures** (wandb not importable, no API key, an init timeout, a network error, any later
exception) stop the worker's W&B calls; the next call from the run raises
:class:`~mlo_exp.loggers.base.BackendFailure` naming where it failed and what was not sent.
:class:`~mlo_exp.loggers.base.LoggerGroup` warns once, drops this backend (calling
:meth:`WandbLogger.abandon`, which closes the W&B run) and the run goes on with the console
and the run files. ``finish`` is always called (``experiment.run`` calls it in a ``finally``),
so sweep jobs never leak W&B runs.
"""

from __future__ import annotations

import inspect
import os
import queue
import shutil
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from mlo_exp.algorithm import Algorithm
from mlo_exp.loggers.base import BackendFailure, Logger, log
from mlo_exp.run_context import RunContext

EPISODE_TABLE_KEY = "episodes_table"
EPISODE_TABLE_COLUMNS = ["Episode", "Reward", "Residual", "Rank"]
CHECKPOINT_TABLE_KEY = "checkpoints_summary"
CHECKPOINT_TABLE_COLUMNS = ["Episode", "Step", "Run Duration (s)", "File"]
BENCHMARK_TABLE_KEY = "benchmark"
DEFAULT_PROJECT = "mlo-exp"
MODES = ("online", "offline", "disabled")
ABANDON_TIMEOUT_S = 10.0  # closing a W&B run after a failure: never wait long


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
        self.tags = list(tags or [])
        self.job_type = job_type
        self.notes = notes
        self.mode = mode
        self.init_timeout_s = float(init_timeout_s)
        self.table_every_s = float(table_every_s)
        self.log_checkpoint_artifacts = bool(log_checkpoint_artifacts)
        self.system_metrics = bool(system_metrics)
        self.wb: Any = None  # the wandb module, imported in start()
        self.run: Any = None  # the wandb Run
        self.run_dir: Path | None = None
        self.step = 0  # last step logged (= episode)
        self._episode_table: Any = None
        self._unflushed_rows = 0
        self._last_table_flush = float("-inf")
        self._checkpoint_rows: list[list[Any]] = []
        self._finished = False
        self.finish_timeout_s = float(finish_timeout_s)
        self.episode_table = episode_table  # "incremental", or "full" for W&B servers < 0.70
        # The worker thread and what it shares with the run's thread (see module docstring).
        self._jobs: queue.SimpleQueue[tuple[str, Callable[[], None], bool] | None] = \
            queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._failure: tuple[str, BaseException] | None = None
        self._not_sent: Counter[str] = Counter()
        self._closed = False  # finish or abandon was queued

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

    # -- the Logger interface: queue the work, report earlier failures -------------------
    def start(self, run: RunContext, config: dict[str, Any]) -> None:
        chosen = self.resolved_settings(run)  # bad settings fail here, at once
        self.run_dir = Path(run.run_dir)  # set now: log_checkpoint stages files against it
        self._worker = threading.Thread(target=self._work, name="wandb-logger", daemon=True)
        self._worker.start()
        self._submit("start", lambda: self._start_now(run, config, chosen))

    def log_episode(self, record: dict[str, Any]) -> None:
        record = dict(record)
        self._submit("log_episode", lambda: self._log_episode_now(record))

    def log_new_best(self, algorithm: Algorithm, path: Path, record: dict[str, Any]) -> None:
        record = dict(record)
        self._submit("log_new_best", lambda: self._log_new_best_now(algorithm, path, record))

    def log_checkpoint(self, event: dict[str, Any], path: Path) -> None:
        event = dict(event)
        staged, base = self._stage(Path(path))
        self._submit("log_checkpoint", lambda: self._log_checkpoint_now(event, staged, base))

    def _stage(self, path: Path) -> tuple[Path, Path | None]:
        """Hard-link (or copy) a checkpoint where pruning cannot reach it before the upload.

        Uploads run on the worker thread, possibly seconds later (W&B may still be starting),
        by when the checkpoint manager may have deleted the file. The link costs no space
        while the checkpoint itself exists. Returns the staged file and the folder its
        Files-tab name is relative to (the file keeps its path relative to the run dir)."""
        if self.run_dir is None or not path.is_file():
            return path, None  # nothing to protect: W&B reports the problem itself
        run_dir = self.run_dir.resolve()
        resolved = path.resolve()
        relative = resolved.relative_to(run_dir) if run_dir in resolved.parents else Path(path.name)
        base = run_dir / "wandb" / "checkpoint-staging"
        staged = base / relative
        staged.parent.mkdir(parents=True, exist_ok=True)
        staged.unlink(missing_ok=True)
        try:
            os.link(resolved, staged)
        except OSError:
            shutil.copy2(resolved, staged)
        return staged, base

    def log_benchmark(self, rows: list[dict[str, Any]], facts: dict[str, Any]) -> None:
        rows, facts = [dict(r) for r in rows], dict(facts)
        self._submit("log_benchmark", lambda: self._log_benchmark_now(rows, facts))

    def sync(self) -> None:
        if self._worker is not None and not self._closed:
            self._wait("sync")
        self._raise_if_failed(None)

    def log_summary(self, summary: dict[str, Any]) -> None:
        summary = dict(summary)
        self._submit("log_summary", lambda: self._log_summary_now(summary))

    def finish(self, status: str = "success") -> None:
        if self._worker is None or self._closed:
            return
        self._raise_if_failed("finish")
        self._closed = True
        self._submit("finish", lambda: self._finish_now(status), always=True)
        self._wait("finish", stop=True)
        self._raise_if_failed(None)

    def abandon(self) -> None:
        """Close the W&B run after a failure (so a sweep does not leak it), then stop."""
        if self._worker is None or self._closed:
            return
        self._closed = True
        self._submit("abandon", self._abandon_now, always=True)
        self._wait("abandon", stop=True, timeout_s=min(ABANDON_TIMEOUT_S, self.finish_timeout_s))

    # -- the worker ---------------------------------------------------------------------
    def _submit(self, method: str, job: Callable[[], None], always: bool = False) -> None:
        if not always:
            self._raise_if_failed(method)
        self._jobs.put((method, job, always))

    def _raise_if_failed(self, method: str | None) -> None:
        if self._failure is not None:
            failed_in, error = self._failure
            not_sent = Counter(self._not_sent)
            if method is not None:
                not_sent[method] += 1
            raise BackendFailure(failed_in, error, dict(not_sent))

    def _wait(self, what: str, stop: bool = False, timeout_s: float | None = None) -> None:
        """Wait for the jobs queued so far (and end the worker when ``stop``)."""
        timeout_s = self.finish_timeout_s if timeout_s is None else timeout_s
        done = threading.Event()
        self._jobs.put(("wait", done.set, True))
        if stop:
            self._jobs.put(None)
        if not done.wait(timeout_s):
            raise TimeoutError(f"W&B did not get through the queued work within "
                               f"{timeout_s:.0f} s ({what}; about {self._jobs.qsize()} calls "
                               "still queued); logger.finish_timeout_s sets the limit")

    def _work(self) -> None:
        while (item := self._jobs.get()) is not None:
            method, job, always = item
            if self._failure is not None and not always:
                self._not_sent[method] += 1
                continue
            try:
                job()
            except BaseException as error:  # the worker must outlive any W&B error
                if self._failure is None:
                    self._failure = (method, error)
                self._not_sent[method] += 1

    # -- the W&B calls, run on the worker thread ---------------------------------------
    def _start_now(self, run: RunContext, config: dict[str, Any],
                   chosen: dict[str, Any]) -> None:
        try:
            import wandb
        except Exception as error:
            raise ImportError(f"wandb is not importable ({type(error).__name__}: {error}); "
                              "install it with `pip install wandb`") from error
        self.wb = wandb
        self.run_dir = Path(run.run_dir)
        settings = wandb.Settings(
            init_timeout=self.init_timeout_s,
            console="off",  # the run's own train.log already has the console
            x_disable_stats=not self.system_metrics,
            x_disable_meta=not self.system_metrics,
            x_disable_machine_info=not self.system_metrics,
            x_save_requirements=False,
            save_code=False,
            disable_git=True,
            silent=True,
        )
        self.run = wandb.init(
            id=run.run_id,
            name=run.run_name,
            dir=str(self.run_dir),
            config={**config, "run": run.to_dict()},
            tags=self.tags or None,
            job_type=self.job_type,
            notes=self.notes,
            resume="allow",
            reinit="finish_previous",
            settings=settings,
            **chosen,
        )
        self._episode_table = self._new_table(
            EPISODE_TABLE_COLUMNS, incremental=self.episode_table == "incremental")
        where = f"{chosen['entity'] + '/' if chosen['entity'] else ''}{chosen['project']}"
        log.info("W&B run %s in %s (mode %s%s), files under %s", run.run_id, where,
                 chosen["mode"], f", group {chosen['group']}" if chosen["group"] else "",
                 self.run_dir / "wandb")

    def _log_episode_now(self, record: dict[str, Any]) -> None:
        episode = int(record["episode"])
        self.step = max(self.step, episode)
        data = scalars(record)
        self._episode_table.add_data(episode, float(record["reward"]),
                                     float(record["residual_norm"]), int(record["rank_used"]))
        self._unflushed_rows += 1
        now = time.monotonic()
        if now - self._last_table_flush >= self.table_every_s:
            data[EPISODE_TABLE_KEY] = self._table_to_log()
            self._last_table_flush = now
        self.run.log(data, step=self.step)

    def _log_new_best_now(self, algorithm: Algorithm, path: Path, record: dict[str, Any]) -> None:
        self.step = max(self.step, int(record.get("episode", self.step)))
        self.run.log({"best/rank": algorithm.rank}, step=self.step)
        for file in (Path(path), Path(path).with_suffix(".txt")):
            if file.exists():
                self._save(file)
        self.run.summary["best_rank"] = algorithm.rank

    def _log_checkpoint_now(self, event: dict[str, Any], path: Path,
                            base: Path | None = None) -> None:
        episode = int(event["episode"])
        self.step = max(self.step, episode)
        duration = float(event["run_duration_s"])
        file_name = str(event.get("file") or Path(path).name)
        self._checkpoint_rows.append([episode, int(event["step"]), round(duration, 3),
                                      file_name])
        table = self._new_table(CHECKPOINT_TABLE_COLUMNS, data=self._checkpoint_rows)
        self.run.log({"checkpoint/episode": episode, "checkpoint/step": int(event["step"]),
                      "checkpoint/run_duration_s": duration, CHECKPOINT_TABLE_KEY: table},
                     step=self.step)
        self._save(Path(path), base)
        if self.log_checkpoint_artifacts:
            reasons = str(event.get("reason", "")).split("+")
            is_best = "best" in reasons or bool(event.get("is_best"))
            artifact = self.wb.Artifact(f"checkpoint-{self.run.id}", type="model",
                                        metadata=jsonable(event))
            artifact.add_file(str(path), name=Path(path).name)
            aliases = ["latest", f"episode-{episode}"] + (["best"] if is_best else [])
            self.run.log_artifact(artifact, aliases=aliases)

    def _log_benchmark_now(self, rows: list[dict[str, Any]], facts: dict[str, Any]) -> None:
        columns = ["Source Run ID"]
        for row in rows:
            columns += [key for key in row if key not in columns]
        source = facts.get("run_id", self.run.id)
        data = [[row.get("Source Run ID", source) if c == "Source Run ID" else row.get(c)
                 for c in columns] for row in rows]
        table = self._new_table(columns, data=data)
        self.run.config.update({"benchmark": jsonable(facts)}, allow_val_change=True)
        self.run.log({BENCHMARK_TABLE_KEY: table}, step=self.step)

    def _log_summary_now(self, summary: dict[str, Any]) -> None:
        self._flush_episode_table()
        self.run.summary.update({k: v for k, v in jsonable(summary).items()
                                 if k != "logger_failures"})

    def _finish_now(self, status: str) -> None:
        if self.run is None or self._finished:
            return
        self._finished = True
        try:
            self._flush_episode_table()
            self.run.summary["status"] = status
        finally:
            self.run.finish(exit_code=0 if status == "success" else 1)

    def _abandon_now(self) -> None:
        if self.run is not None and not self._finished:
            self._finished = True
            self.run.finish(exit_code=1)

    # -- helpers ----------------------------------------------------------------------
    def _save(self, file: Path, base: Path | None = None) -> None:
        """Upload ``file`` now (W&B Files tab), under its path relative to ``base`` (default:
        the run dir)."""
        file = file.resolve()
        run_dir = (base or self.run_dir).resolve() if (base or self.run_dir) else None
        base = run_dir if run_dir is not None and run_dir in file.parents else file.parent
        self.run.save(str(file), base_path=str(base), policy="now")

    def _flush_episode_table(self) -> None:
        if self._episode_table is not None and self._unflushed_rows:
            self.run.log({EPISODE_TABLE_KEY: self._table_to_log()}, step=self.step)
            self._last_table_flush = time.monotonic()

    def _table_to_log(self) -> Any:
        """The episode table to log now: the incremental table itself, or (old wandb) a
        fresh table holding every row so far."""
        self._unflushed_rows = 0
        if getattr(self._episode_table, "log_mode", None) == "INCREMENTAL":
            return self._episode_table
        return self.wb.Table(columns=EPISODE_TABLE_COLUMNS, data=list(self._episode_table.data))

    def _new_table(self, columns: list[str], data: list[list[Any]] | None = None,
                   incremental: bool = False) -> Any:
        table_args = inspect.signature(self.wb.Table).parameters
        kwargs: dict[str, Any] = {"columns": list(columns), "data": [list(r) for r in data or []]}
        if incremental and "log_mode" in table_args:
            kwargs["log_mode"] = "INCREMENTAL"
        return self.wb.Table(**kwargs)


def scalars(record: dict[str, Any]) -> dict[str, float | int]:
    """The numeric values of a record (bools as 0/1; ``None`` and strings left out)."""
    data: dict[str, float | int] = {}
    for key, value in record.items():
        if isinstance(value, bool):
            data[key] = int(value)
        elif isinstance(value, (int, float)):
            data[key] = value
    return data


def jsonable(data: dict[str, Any]) -> dict[str, Any]:
    """``data`` with values W&B's config/summary accept (paths and others as strings)."""
    clean: dict[str, Any] = {}
    for key, value in data.items():
        if isinstance(value, dict):
            clean[key] = jsonable(value)
        elif value is None or isinstance(value, (bool, int, float, str, list)):
            clean[key] = value
        else:
            clean[key] = str(value)
    return clean
