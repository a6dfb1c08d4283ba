"""The W&B process of ``logger=wandb``: every W&B call of a run happens here.

:class:`~mlo_exp.loggers.wandb.WandbLogger` starts this module as a child process
(``python -m mlo_exp.loggers.wandb_session <fd>``) and sends it the run's logging calls over
one duplex :class:`multiprocessing.connection.Connection`. A separate process, not a thread:
importing wandb, ``wandb.init`` and every ``run.log`` are Python work that would hold the
training process's GIL (``perf/logging.md`` measured 1.4x on short runs when W&B ran on a
thread); here they run on another core and the training loop only pickles a small tuple.

**Protocol** (pickled tuples; only this package's own processes are on either end):

* run -> here: ``(method, args)`` for a :class:`WandbSession` method; ``("wait", token)``;
  ``None`` to stop after the calls before it.
* here -> run: ``("info", text)`` to log; ``("started",)`` once ``wandb.init`` succeeded;
  ``("failed", method, error_type, message)`` once, when a W&B call raises;
  ``("done", token, not_sent)`` when every call before the wait is handled (``not_sent``:
  method -> calls skipped since the failure, the failed one included).

After a failure the remaining calls are counted, not made (``abandon`` and ``finish`` still
run, so the W&B run is closed). If the run's process goes away without stopping this one
(killed, crashed), the W&B run is finished with exit code 1 and this process exits. Ctrl-C
and SIGTERM are left to the run's process, which then calls ``finish``.

**Time.** ``wandb.init`` gets what is left until the run's start deadline (``init_deadline``
in the options, a ``time.monotonic()`` value) less a margin, so W&B's own error reaches the
run before the run gives up on it. Once the W&B run is closed, W&B's exit hooks (its
``teardown``, its analytics export, which can wait on an unanswering server for 10 s a
request) get at most ``EXIT_HOOKS_TIMEOUT_S``, then this process exits. The run's process
bounds all of it anyway and kills this process past its limits (see
:mod:`mlo_exp.loggers.wandb`).

This module imports only the standard library, the light :mod:`mlo_exp.loggers.records`
and wandb (in ``start``), so the process is
up in a fraction of a second.
"""

from __future__ import annotations

import atexit
import contextlib
import inspect
import os
import queue
import shutil
import signal
import sys
import threading
import time
import traceback
from collections import Counter
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from mlo_exp.loggers.records import scalars

EPISODE_TABLE_KEY = "episodes_table"
EPISODE_TABLE_COLUMNS = ["Episode", "Reward", "Residual", "Rank"]
CHECKPOINT_TABLE_KEY = "checkpoints_summary"
CHECKPOINT_TABLE_COLUMNS = ["Episode", "Step", "Run Duration (s)", "File"]
BENCHMARK_TABLE_KEY = "benchmark"
# The calls the run's process may send (anything else is refused).
METHODS = ("start", "log_episode", "log_new_best", "log_checkpoint", "log_benchmark",
           "log_summary", "finish", "abandon")
ALWAYS = ("finish", "abandon")  # made even after a failure: they close the W&B run
# Below the training process's priority once wandb.init has returned (this process and
# W&B's own service process, its child): on a busy machine training keeps the cores and W&B
# catches up in the gaps and at the end. Not before: a niced start-up waited ~10 s for a core
# on a busy 2-core machine, so W&B's clock (its runtime axis) began long after the run's.
NICENESS = 10
INIT_MARGIN_S = 2.0  # wandb.init's own timeout ends this much (at most a quarter of
#   init_timeout_s) before the run's start deadline
INIT_MIN_TIMEOUT_S = 0.5  # never less for wandb.init (the run's deadline still holds)
EXIT_HOOKS_TIMEOUT_S = 2.0  # W&B's teardown and exit hooks, once its run is closed ...
EXIT_HOOKS_NO_RUN_S = 0.5  # ... or when wandb.init failed (no run: nothing to flush)


class WandbSession:
    """One W&B run and the state behind its cumulative tables. Settings mirror
    ``WandbLoggerConfig`` (``config.py``); see :mod:`mlo_exp.loggers.wandb` for what is logged."""

    def __init__(self, send_info: Any = None) -> None:
        self.send_info = send_info or (lambda text: None)
        self.wb: Any = None  # the wandb module, imported in start()
        self.run: Any = None  # the wandb Run
        self.run_dir: Path | None = None
        self.step = 0  # last step logged (= episode); never goes back
        self.table_every_s = 10.0
        self.log_checkpoint_artifacts = True
        self.episode_table_mode = "incremental"
        self._episode_table: Any = None
        self._unflushed_rows = 0
        self._last_table_flush = float("-inf")
        self._checkpoint_rows: list[list[Any]] = []
        self._finished = False

    def start(self, run: dict[str, Any], config: dict[str, Any], chosen: dict[str, Any],
              options: dict[str, Any]) -> None:
        """``run``: run_id, run_name, run_dir and ``info`` (run.json); ``chosen``: entity,
        project, mode, group; ``options``: the logger's other settings."""
        try:
            import wandb
        except Exception as error:
            raise ImportError(f"wandb is not importable ({type(error).__name__}: {error}); "
                              "install it with `pip install wandb`") from error
        self.wb = wandb
        self.run_dir = Path(run["run_dir"])
        self.table_every_s = float(options["table_every_s"])
        self.log_checkpoint_artifacts = bool(options["log_checkpoint_artifacts"])
        self.episode_table_mode = options["episode_table"]
        system_metrics = bool(options["system_metrics"])
        settings = wandb.Settings(
            init_timeout=init_timeout(options),
            console="off",  # the run's own train.log already has the console
            x_disable_stats=not system_metrics,
            x_disable_meta=not system_metrics,
            x_disable_machine_info=not system_metrics,
            x_save_requirements=False,
            save_code=False,
            disable_git=True,
            silent=True,
        )
        self.run = wandb.init(
            id=run["run_id"],
            name=run["run_name"],
            dir=str(self.run_dir),
            config={**config, "run": run["info"]},
            tags=list(options["tags"]) or None,
            job_type=options["job_type"],
            notes=options["notes"],
            resume="allow",
            reinit="finish_previous",
            settings=settings,
            **chosen,
        )
        lower_priority()  # started at full priority: the W&B run's clock starts with the run
        self._episode_table = self._new_table(
            EPISODE_TABLE_COLUMNS, incremental=self.episode_table_mode == "incremental")
        where = f"{chosen['entity'] + '/' if chosen['entity'] else ''}{chosen['project']}"
        group = f", group {chosen['group']}" if chosen["group"] else ""
        self.send_info(f"W&B run {run['run_id']} in {where} (mode {chosen['mode']}{group}), "
                       f"files under {self.run_dir / 'wandb'}")

    def log_episode(self, record: dict[str, Any]) -> None:
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

    def log_new_best(self, rank: int, path: str, record: dict[str, Any]) -> None:
        self.step = max(self.step, int(record.get("episode", self.step)))
        self.run.log({"best/rank": rank}, step=self.step)
        for file in (Path(path), Path(path).with_suffix(".txt")):
            if file.exists():
                self._save(file)
        self.run.summary["best_rank"] = rank

    def log_checkpoint(self, event: dict[str, Any], path: str, base: str | None = None) -> None:
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
        self._save(Path(path), Path(base) if base else None)
        if self.log_checkpoint_artifacts:
            reasons = str(event.get("reason", "")).split("+")
            is_best = "best" in reasons or bool(event.get("is_best"))
            artifact = self.wb.Artifact(f"checkpoint-{self.run.id}", type="model",
                                        metadata=jsonable(event))
            artifact.add_file(str(path), name=Path(path).name)
            aliases = ["latest", f"episode-{episode}"] + (["best"] if is_best else [])
            self.run.log_artifact(artifact, aliases=aliases)

    def log_benchmark(self, rows: list[dict[str, Any]], facts: dict[str, Any]) -> None:
        columns = ["Source Run ID"]
        for row in rows:
            columns += [key for key in row if key not in columns]
        source = facts.get("run_id", self.run.id)
        data = [[row.get("Source Run ID", source) if c == "Source Run ID" else row.get(c)
                 for c in columns] for row in rows]
        table = self._new_table(columns, data=data)
        self.run.config.update({"benchmark": jsonable(facts)}, allow_val_change=True)
        self.run.log({BENCHMARK_TABLE_KEY: table}, step=self.step)

    def log_summary(self, summary: dict[str, Any]) -> None:
        self._flush_episode_table()
        self.run.summary.update({k: v for k, v in jsonable(summary).items()
                                 if k != "logger_failures"})

    def finish(self, status: str) -> None:
        if self.run is None or self._finished:
            return
        self._finished = True
        try:
            self._flush_episode_table()
            self.run.summary["status"] = status
        finally:
            self.run.finish(exit_code=0 if status == "success" else 1)

    def abandon(self) -> None:
        """Close the W&B run after a failure (exit code 1) so a sweep does not leak it."""
        if self.run is not None and not self._finished:
            self._finished = True
            self.run.finish(exit_code=1)

    # -- helpers ----------------------------------------------------------------------
    def _save(self, file: Path, base: Path | None = None) -> None:
        """Upload ``file`` now (W&B Files tab), under its path relative to ``base`` (default:
        the run dir).

        The file is hard-linked (else copied) into W&B's files folder first: ``run.save``
        then finds it there and has nothing to link, so W&B prints none of its 'Symlinked 1
        file into the W&B run directory' warnings (one per saved file otherwise)."""
        file = file.resolve()
        root = base or self.run_dir
        root = root.resolve() if root is not None else None
        folder = root if root is not None and root in file.parents else file.parent
        files_dir = Path(self.run.dir)
        target = files_dir / file.relative_to(folder)
        with contextlib.suppress(OSError):
            if not (target.exists() and target.samefile(file)):
                target.parent.mkdir(parents=True, exist_ok=True)
                with contextlib.suppress(FileNotFoundError):
                    target.unlink()
                try:
                    os.link(file, target)
                except OSError:
                    shutil.copy2(file, target)
        if target.exists():
            self.run.save(str(target), base_path=str(files_dir), policy="now")
        else:  # could not be placed: let W&B link it itself (and warn)
            self.run.save(str(file), base_path=str(folder), policy="now")

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


def init_timeout(options: dict[str, Any]) -> float:
    """``wandb.init``'s own timeout: what is left until the run's start deadline, less a
    margin for W&B to report its error, which says more than the run's own timeout."""
    timeout_s = float(options["init_timeout_s"])
    deadline = options.get("init_deadline")
    if deadline is None:
        return timeout_s
    margin = min(INIT_MARGIN_S, timeout_s / 4)
    return max(INIT_MIN_TIMEOUT_S, float(deadline) - time.monotonic() - margin)


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


# -- the process ----------------------------------------------------------------------
_GONE = object()  # the run's process closed the connection


def serve(connection: Connection) -> WandbSession:
    """Handle calls from ``connection`` in order until ``None`` (or the run's process goes);
    returns the session (its W&B run closed).

    A reader thread keeps the connection drained into a queue, so the run's process never
    blocks on a full pipe while W&B is slow (e.g. ``wandb.init`` waiting on the network)."""
    calls: queue.SimpleQueue[Any] = queue.SimpleQueue()

    def read() -> None:
        while True:
            try:
                calls.put(connection.recv())
            except (EOFError, OSError):
                calls.put(_GONE)
                return

    def reply(*message: Any) -> None:
        with contextlib.suppress(OSError):  # the run's process is gone: nobody to tell
            connection.send(message)

    threading.Thread(target=read, name="wandb-reader", daemon=True).start()
    session = WandbSession(send_info=lambda text: reply("info", text))
    failed = False
    not_sent: Counter[str] = Counter()
    try:
        while (call := calls.get()) is not None and call is not _GONE:
            method, args = call
            if method == "wait":
                reply("done", args, dict(not_sent))
                continue
            if method not in METHODS:
                raise ValueError(f"unknown W&B session call {method!r}; accepted: {METHODS}")
            if failed and method not in ALWAYS:
                not_sent[method] += 1
                continue
            try:
                getattr(session, method)(*args)
            except BaseException as error:  # any W&B error is reported; this process goes on
                if not failed:
                    failed = True
                    reply("failed", method, type(error).__name__, str(error))
                not_sent[method] += 1
            else:
                if method == "start":
                    reply("started")
    finally:
        # Gone, stopped without finish, or broken: the W&B run is closed, never leaked.
        with contextlib.suppress(Exception):
            session.abandon()
    return session


def exit_now(code: int, hooks_timeout_s: float = EXIT_HOOKS_TIMEOUT_S) -> None:
    """Tear W&B down (its service process ends), run the other exit hooks (W&B's analytics
    export, temporary files), all within ``hooks_timeout_s``, then end the process with
    ``code``. W&B's analytics export waits on an unanswering server for 10 s a request; the
    W&B run is closed by now, so nothing of the run's is lost by not waiting."""

    def tear_down() -> None:
        wandb = sys.modules.get("wandb")
        if wandb is not None:
            with contextlib.suppress(Exception):
                wandb.teardown()  # first: the analytics hook would otherwise run first
        atexit._run_exitfuncs()

    hooks = threading.Thread(target=tear_down, name="exit-hooks", daemon=True)
    hooks.start()
    hooks.join(hooks_timeout_s)
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):
            stream.flush()
    os._exit(code)


def lower_priority() -> None:
    """Raise this process's niceness by ``NICENESS`` and give W&B's service processes (our
    children, started by ``wandb.init``) the same; best effort."""
    with contextlib.suppress(OSError):
        os.nice(NICENESS)
    mine = os.getpriority(os.PRIO_PROCESS, 0)
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        with contextlib.suppress(OSError, ValueError):
            for pid in children.read_text().split():
                if os.getpriority(os.PRIO_PROCESS, int(pid)) < mine:
                    os.setpriority(os.PRIO_PROCESS, int(pid), mine)


def main() -> None:
    """Entry point of the child process: ``python -m mlo_exp.loggers.wandb_session <fd>``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the run's process handles Ctrl-C ...
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # ... and SIGTERM, then calls finish
    connection = Connection(int(sys.argv[1]))
    code, hooks_timeout_s = 0, EXIT_HOOKS_TIMEOUT_S
    try:
        session = serve(connection)
        if session.run is None:
            hooks_timeout_s = EXIT_HOOKS_NO_RUN_S
    except Exception:
        traceback.print_exc()
        code = 1
    finally:
        connection.close()
    exit_now(code, hooks_timeout_s)


if __name__ == "__main__":
    main()
