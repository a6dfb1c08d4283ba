"""The Hydra callback of every multirun: a status file per job, the summary at the end.

:class:`SweepSummaryCallback` is registered for every run in ``conf/config.yaml``
(``hydra.callbacks.sweep_summary``); it acts only in multirun mode.

* ``on_multirun_start`` (launching process): refuses ``hydra/launcher=slurm`` off a cluster
  (:mod:`~mlo_exp.run.sweep.slurm`), prints a search's expected duration
  (:func:`search_duration_line`), silences the Optuna sweeper's set-up noise
  (:func:`~mlo_exp.run.sweep.objective.quiet_search_setup`) and registers an exit hook
  that writes the summary if ``on_multirun_end`` does not run (Hydra skips it when a job
  failed: the sweeper re-raises the job's error after the batch), so failed jobs are listed
  with their error.
* ``on_job_end`` (each job's own process: a joblib worker, a SLURM task) writes
  ``job_status.json`` into the job's directory: job number, overrides, ``completed`` or
  ``failed`` and, for a failed job, the error (type, message, traceback tail); under a search,
  the value returned to the sweeper (``objective``).
* ``on_multirun_end`` (launching process, after all jobs) writes the summary
  (:func:`~mlo_exp.run.sweep.summary.write_summary`) and prints what a search's "best
  parameters" do not say (ties, trials that missed in every seed).
"""

from __future__ import annotations

import atexit
import json
import logging
import traceback
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mlo_exp.io import atomic_write_text
from mlo_exp.run.sweep.jobs import JOB_STATUS_FILE
from mlo_exp.run.sweep.objective import quiet_search_setup
from mlo_exp.run.sweep.slurm import refuse_slurm_off_cluster

log = logging.getLogger("mlo_exp")


class SweepSummaryCallback(Callback):
    """Writes per-job status files and the sweep summary (see the module docstring)."""

    def __init__(self, figure: bool = True) -> None:
        self.figure = bool(figure)
        self._sweep_dir: str | None = None
        self._written = False

    # -- in the launching process ---------------------------------------------------------
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        refuse_slurm_off_cluster(config)
        line = search_duration_line(config)
        if line:
            log.info("%s", line)
        quiet_search_setup(config)
        self._sweep_dir = str(config.hydra.sweep.dir)
        self._written = False
        atexit.register(self._write_if_pending)

    def on_multirun_end(self, config: DictConfig, **kwargs: Any) -> None:
        self._sweep_dir = str(config.hydra.sweep.dir)
        self._write()

    def _write_if_pending(self) -> None:
        if not self._written and self._sweep_dir is not None:
            self._write()

    def _write(self) -> None:
        from mlo_exp.run.sweep.jobs import read_rows
        from mlo_exp.run.sweep.summary import search_notes, search_results, write_summary

        self._written = True
        assert self._sweep_dir is not None
        sweep_dir = Path(self._sweep_dir)
        try:
            paths = write_summary(sweep_dir, figure=self.figure)
        except Exception as error:  # the jobs' own files stay; say what went wrong
            log.error("sweep summary could not be written in %s: %s: %s", self._sweep_dir,
                      type(error).__name__, error)
            return
        log.info("sweep summary -> %s", ", ".join(str(p) for p in paths))
        search = search_results(sweep_dir)
        for note in search_notes(read_rows(sweep_dir), search) if search else []:
            log.warning("search: %s", note)

    # -- in each job's process ------------------------------------------------------------
    def on_job_end(self, config: DictConfig, job_return: JobReturn, **kwargs: Any) -> None:
        if config.hydra.mode is None or str(config.hydra.mode.name) != "MULTIRUN":
            return
        job_dir = Path(config.hydra.runtime.output_dir)
        record: dict[str, Any] = {
            "job": int(config.hydra.job.num),
            "overrides": list(job_return.overrides or []),
            "status": "completed" if job_return.status == JobStatus.COMPLETED else "failed",
        }
        if job_return.status == JobStatus.COMPLETED and isinstance(
                job_return._return_value, (int, float)):
            record["objective"] = float(job_return._return_value)
        if job_return.status == JobStatus.FAILED:
            error = job_return._return_value  # the exception; .return_value would raise it
            record["error"] = f"{type(error).__name__}: {error}"
            record["traceback"] = "".join(traceback.format_exception(
                type(error), error, error.__traceback__)[-6:])
        try:
            atomic_write_text(job_dir / JOB_STATUS_FILE, json.dumps(record, indent=1) + "\n")
        except OSError as error:  # the summary then lists the job from its other files
            log.error("%s", error)


def search_duration_line(config: DictConfig) -> str | None:
    """For a hyperparameter search (a sweeper with ``n_trials``): trials x seeds x budget,
    divided by the trials run at once, as one line; None for other sweeps or without a time
    budget. An upper bound: runs stop early at the target rank."""
    trials = OmegaConf.select(config, "hydra.sweeper.n_trials", default=None)
    budget = OmegaConf.select(config, "trainer.time_limit_s", default=None)
    if trials is None or budget is None:
        return None
    seeds = int(OmegaConf.select(config, "objective.seeds", default=1) or 1)
    parallel = max(1, int(OmegaConf.select(config, "hydra.sweeper.n_jobs", default=1) or 1))
    total = -(-int(trials) // parallel) * seeds * float(budget)
    return (f"hyperparameter search: {trials} trials x {seeds} seed{'s' * (seeds != 1)} x up "
            f"to {float(budget):g} s each, {parallel} trial{'s' * (parallel != 1)} at a time: "
            f"up to ~{_duration(total)} (plus start-up; runs that reach the target rank stop "
            "early). Fewer: hydra.sweeper.n_trials=N, objective.seeds=N, "
            "trainer.time_limit_s=S")


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
