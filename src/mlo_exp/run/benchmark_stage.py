"""The benchmark stage at the end of ``mlo-train``: the run's best verified algorithm, timed.

Built by :func:`mlo_exp.run.experiment.build_components` from the ``benchmark`` config group
(``instantiate(node, run=..., logger=...)``; settings: :class:`mlo_exp.config.BenchmarkConfig`).
At ``on_run_end`` it benchmarks ``trainer.best`` (plus any ``compare`` library algorithms)
under the run's own ``run_id`` (``benchmark_id = source_run_id = run_id``) and writes:

* ``<run_dir>/benchmark/benchmark.json``: ``{"status", "facts", "rows"}`` (atomic write);
* ``<run_dir>/benchmark/latency.png`` and ``speedup.png``;
* the rows appended to the results registry (``<outputs>/benchmarks.sqlite``);
* through the logger, the table (with ``Source Run ID``) and the facts;
* the console table in the run's log (each scheme beside its classical control, with 95%
  intervals, the arithmetic bound and a warning when the host was loaded), the break-even
  size of each scheme (the size from which it beats the plain product, or "not within the
  measured sizes") and a reading of the result at the largest size (a run whose result has
  classical rank is labelled so: its speedup measures the executor, not an algorithm).

A run without a verified algorithm, or an interrupted run, is skipped with one line. A
signal during the stage stops it at once (``benchmark.json`` status ``interrupted``, the
run's summary ``interrupted``). A refused algorithm or a failing benchmark is logged as an
error (one line) and recorded in ``benchmark.json``; it never loses the run's own results
(the summary is still written), and a failing one (a full disk, a crash) marks the run
``failed``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from pathlib import Path
from typing import Any

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.benchmark.backend import cuda_unavailable_reason, select_backend
from mlo_exp.benchmark.measure import (
    BenchmarkRefused,
    Identity,
    benchmark_algorithm,
    facts,
    note_recent_work,
)
from mlo_exp.benchmark.report import (
    break_even,
    display_rows,
    format_break_even,
    format_table,
    interpret,
    plot,
)
from mlo_exp.benchmark.schemes import resolve_scheme
from mlo_exp.benchmark.stats import host_load
from mlo_exp.benchmark.store import ResultsStore
from mlo_exp.config import BenchmarkConfig, ConfigError
from mlo_exp.io import atomic_write_text
from mlo_exp.loggers.base import Logger
from mlo_exp.run.trainer import RunSummary, Trainer, TrainerCallback
from mlo_exp.run_context import RunContext
from mlo_exp.signals import StopSignals

log = logging.getLogger("mlo_exp")


class BenchmarkStage(TrainerCallback):
    """See the module docstring; keyword settings are those of ``BenchmarkConfig``."""

    def __init__(self, run: RunContext, logger: Logger, **settings: Any) -> None:
        """Raises :class:`ConfigError` for a ``compare`` name the library lacks (or one only
        correct modulo 2) and for ``backend=cupy`` where CuPy finds no CUDA device."""
        self.run = run
        self.logger = logger
        self.settings = self.check(**settings)
        self.out_dir = Path(run.run_dir) / "benchmark"

    @staticmethod
    def check(**settings: Any) -> BenchmarkConfig:
        """The settings, checked where the schema cannot: ``compare`` names the library
        knows (real-valued ones) and a CUDA device for ``backend=cupy``; else
        :class:`ConfigError`. ``mlo_exp.run.experiment`` calls this before a run writes."""
        config = BenchmarkConfig(**settings)
        for index, name in enumerate(config.compare):
            if not _real_library_algorithm(name):
                raise ConfigError(f"benchmark.compare[{index}]", name,
                                  "strassen, school-NxMxP or alphatensor-NxMxP")
        if config.backend == "cupy":
            reason = cuda_unavailable_reason()
            if reason is not None:
                raise ConfigError("benchmark.backend", "cupy",
                                  f"numpy or auto here, because {reason}")
        if config.allow_tf32 and config.backend != "cupy" and cuda_unavailable_reason():
            raise ConfigError("benchmark.allow_tf32", True,
                              "false here: TF32 needs CuPy on a CUDA device, and NumPy "
                              "always computes fp32 in full precision")
        return config

    def on_run_end(self, trainer: Trainer, summary: RunSummary) -> None:
        if summary.status == "interrupted":
            log.info("benchmark: skipped, the run was interrupted")
            return
        best = trainer.best
        if best is None:
            log.info("benchmark: skipped, the run found no exactly verified algorithm")
            return
        if best.ring == "Z2":
            log.info("benchmark: skipped, the best algorithm is only correct modulo 2 "
                     "(not a real-valued product)")
            return
        signals = getattr(trainer, "signals", None) or StopSignals()
        try:
            # A signal stops the stage at once (it has no episode to finish).
            with signals.interrupting():
                self.benchmark([best, *(resolve_scheme(name)
                                        for name in self.settings.compare)])
        except BenchmarkRefused as error:
            log.error("benchmark: %s", error)
            self._write({"status": "refused", "reason": str(error)})
        except KeyboardInterrupt:
            log.warning("benchmark: interrupted by %s; the run's own results are kept",
                        signals.received or "a signal")
            summary.status = "interrupted"
            if signals.received:
                summary.stop_reason = f"signal_{signals.received}"
            self._write({"status": "interrupted"})
        except OSError as error:  # a full disk, an unwritable registry: one line, no trace
            log.error("benchmark: %s; the run's own results are kept, the run is marked "
                      "failed", error)
            summary.status = "failed"
            self._write({"status": "failed", "reason": str(error)})
        except Exception as error:  # the run's results must survive a failing benchmark
            log.error("benchmark: failed (%s: %s); the run's own results are kept, the run "
                      "is marked failed", type(error).__name__, _first_line(error))
            log.debug("benchmark failure", exc_info=True)
            summary.status = "failed"
            self._write({"status": "failed", "reason": f"{type(error).__name__}: {error}"})

    def benchmark(self, algorithms: list[Algorithm]) -> list[dict[str, Any]]:
        """Benchmark ``algorithms`` under this run's id and record the results."""
        settings = self.settings
        backend = select_backend(settings.backend, settings.allow_tf32)
        load_before = host_load()
        note_recent_work()  # the run's own training is still in the 1-min load average
        run_id = self.run.run_id
        rows: list[dict[str, Any]] = []
        for algorithm in algorithms:
            identity = Identity(run_id, run_id, algorithm.provenance.get("run_id"))
            rows += benchmark_algorithm(
                algorithm, backend, identity, settings.sizes, settings.dtype, settings.levels,
                settings.warmup, settings.repeats, settings.strategy, seed=self.run.seed,
                plan=settings.plan, chain=settings.chain)
        run_facts = facts(backend, Identity(run_id, run_id, run_id), _settings_dict(settings),
                          load_before=load_before)
        for row in rows:
            row["git_commit"] = run_facts["git_commit"]
        reading = interpret(rows)
        self._write({"status": "success", "facts": run_facts, "rows": rows,
                     "break_even": break_even(rows), "reading": reading})
        plot(rows, self.out_dir)
        if settings.registry:
            store = ResultsStore()
            store.append(rows)
            log.info("benchmark: %d rows appended to %s", len(rows), store.path)
        log.info("benchmark (run_id %s):\n%s\n%s", run_id, format_table(rows),
                 format_break_even(rows))
        log.info("benchmark: %s", reading)
        self.logger.log_benchmark(display_rows(rows), run_facts)
        return rows

    def _write(self, payload: dict[str, Any]) -> Path | None:
        """Write ``benchmark.json``; a write that fails is logged, never raised (the run's
        summary comes after this stage). When a failure or an interruption cannot be
        written, an earlier ``benchmark.json`` of this stage (a success written before the
        registry or the plots failed) is removed: it would claim what did not happen."""
        payload = {"run_id": self.run.run_id, **payload}
        path = self.out_dir / "benchmark.json"
        try:
            return atomic_write_text(path, json.dumps(payload, indent=1, default=str) + "\n")
        except OSError as error:
            log.error("benchmark: %s", error)
            if payload.get("status") != "success":
                with contextlib.suppress(OSError):
                    path.unlink(missing_ok=True)
            return None


def _first_line(error: BaseException) -> str:
    text = str(error).strip()
    return text.splitlines()[0] if text else type(error).__name__


def _real_library_algorithm(name: str) -> bool:
    try:
        return resolve_scheme(name).ring != "Z2"
    except KeyError:
        return False


def _settings_dict(settings: BenchmarkConfig) -> dict[str, Any]:
    return {key: value for key, value in vars(settings).items() if not key.startswith("_")}
