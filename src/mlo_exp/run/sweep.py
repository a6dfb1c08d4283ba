"""The sweep summary: one table and one figure over every job of a multirun.

:class:`SweepSummaryCallback` is a Hydra callback, registered for every run in
``conf/config.yaml`` (``hydra.callbacks.sweep_summary``); it acts only in multirun mode.

* ``on_job_end`` runs in the job's own process (a joblib worker, a SLURM task) and writes
  ``job_status.json`` into the job's directory: job number, overrides, ``completed`` or
  ``failed`` and, for a failed job, the error (type, message, traceback tail).
* ``on_multirun_end`` runs in the launching process after all jobs and writes, into the sweep
  directory, ``sweep_summary.csv``, ``sweep_summary.md``, ``sweep_summary.json`` and
  ``sweep_summary.png`` (best rank per job; time to the best rank per group of seeds; reward
  curves per group), and ``sweep_seeds.csv``: the seeds aggregate.

**Across seeds.** Jobs whose overrides differ only in ``seed`` form a group. Per group the
summary gives the share of seeds reaching the best known rank, the best rank any seed found,
and the median, quartiles (IQR) and min-max of the time each seed needed to reach that rank
(from its ``episodes.csv``: the wall time of the first episode whose best rank was at most
it), over the seeds that reached it. ``mlo-train report <sweep dir>`` writes it all again from
the jobs' files (:func:`report_main`).

**Objective.** The task function returns :func:`trial_objective` to the sweeper (Hydra's
Optuna sweeper minimises it, ``hparams_search=<name>``): per seed the time to the target rank
(``trainer.stop_at_rank``, else the best known rank) or, not reached, a penalty of
``budget * (1 + rank gap)``; the trial's value is the median over its seeds
(``objective.seeds`` runs in one job, see :func:`trial_runs`).

``hydra/launcher=slurm`` where no ``srun`` exists stops before any job with one line naming
the launcher to rehearse with instead (``submitit_local``).

Hydra skips ``on_multirun_end`` when a job failed (the sweeper re-raises the job's error
after the batch), so ``on_multirun_start`` also registers an exit hook in the launching
process that writes the summary if ``on_multirun_end`` did not: failed jobs show up as
failed, with their error, beside the others.

The summary reads only what the jobs wrote (``job_status.json``, ``run.json``,
``summary.json``, ``episodes.csv``, ``.hydra/overrides.yaml`` and, where the benchmark stage
ran, ``benchmark/benchmark.json``); a missing or unreadable file is reported in the job's row,
never fatal. All files are written atomically; each job writes only in its own directory.
"""

from __future__ import annotations

import atexit
import copy
import csv
import io
import json
import logging
import math
import shutil
import statistics
import sys
import textwrap
import traceback
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from hydra.core.utils import JobReturn, JobStatus
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from mlo_exp.io import atomic_write_bytes, atomic_write_text

log = logging.getLogger("mlo_exp")

JOB_STATUS_FILE = "job_status.json"
SUMMARY_STEM = "sweep_summary"
BENCHMARK_FILE = "benchmark/benchmark.json"
SEEDS_FILE = "sweep_seeds.csv"
COLUMNS = ("job", "status", "overrides", "seed", "run_id", "best_rank", "best_known_rank",
           "solved", "time_to_best_s", "episodes", "wall_time_s", "objective", "speedup",
           "run_dir", "error")
SEED_COLUMNS = ("group", "seeds", "failed", "best_known_rank", "reached_best_known",
                "share_best_known", "best_rank", "reached_best_rank", "median_time_s",
                "q1_time_s", "q3_time_s", "min_time_s", "max_time_s", "median_objective", "jobs")


@dataclass
class JobRow:
    """One job of the sweep, as the summary shows it.

    ``solved``: the job found an exactly verified algorithm (``summary.json: verified``).
    ``speedup``: the largest speedup the job's benchmark stage reported, if it ran.
    ``time_to_best_s``: wall time of the first episode that reached the job's best rank.
    ``objective``: what the task function returned to the sweeper (:func:`trial_objective`).
    ``rewards``, ``curve`` (wall time, best rank so far) per episode and ``override_list``:
    from ``episodes.csv`` and the overrides, for the figure and the seeds aggregate.
    """

    job: int
    status: str
    overrides: str = ""
    seed: int | None = None
    run_id: str = ""
    best_rank: int | None = None
    best_known_rank: int | None = None
    solved: bool | None = None
    time_to_best_s: float | None = None
    episodes: int | None = None
    wall_time_s: float | None = None
    objective: float | None = None
    speedup: float | None = None
    run_dir: str = ""
    error: str = ""
    rewards: list[float] = field(default_factory=list, repr=False)
    curve: list[tuple[float, int | None]] = field(default_factory=list, repr=False)
    override_list: list[str] = field(default_factory=list, repr=False)

    def cells(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("rewards", "curve", "override_list"):
            data.pop(key)
        return data

    def time_to_rank(self, rank: int | None) -> float | None:
        """Wall time of the first episode whose best rank was at most ``rank``."""
        return time_to_rank(self.curve, rank)


class SweepSummaryCallback(Callback):
    """Writes per-job status files and the sweep summary (see the module docstring)."""

    def __init__(self, figure: bool = True) -> None:
        self.figure = bool(figure)
        self._sweep_dir: str | None = None
        self._written = False

    # -- in the launching process ---------------------------------------------------------
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        refuse_slurm_off_cluster(config)
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
        self._written = True
        assert self._sweep_dir is not None
        try:
            paths = write_summary(Path(self._sweep_dir), figure=self.figure)
        except Exception as error:  # the jobs' own files stay; say what went wrong
            log.error("sweep summary could not be written in %s: %s: %s", self._sweep_dir,
                      type(error).__name__, error)
            return
        log.info("sweep summary -> %s", ", ".join(str(p) for p in paths))

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


def refuse_slurm_off_cluster(config: DictConfig) -> None:
    """``hydra/launcher=slurm`` on a machine without SLURM: one line, exit 2, no job run."""
    target = str(OmegaConf.select(config, "hydra.launcher._target_", default="") or "")
    if target.endswith("SlurmLauncher") and shutil.which("srun") is None:
        print("mlo-train: hydra/launcher=slurm needs a SLURM cluster (no `srun` on this "
              "machine); nothing was run. Rehearse the sweep here with "
              "hydra/launcher=submitit_local (or joblib)", file=sys.stderr)
        sys.exit(2)


# -- the objective a sweeper minimises ---------------------------------------------------------
def time_to_rank(curve: list[tuple[float, int | None]], rank: int | None) -> float | None:
    """Wall time of the first point of ``curve`` (wall time, best rank so far) whose best
    rank is at most ``rank``; None when it never got there."""
    if rank is None:
        return None
    return next((t for t, best in curve if best is not None and best <= rank), None)


def run_objective(best_rank: int | None, time_to_target_s: float | None, target: int,
                  budget_s: float, school_rank: int) -> float:
    """One run's value (lower is better): seconds to the target rank when it was reached,
    else ``budget_s * (1 + gap)`` with ``gap`` = best rank found minus the target (the
    school rank + 1 minus the target when nothing was found), so a miss always scores worse
    than a hit within the budget, and a near miss better than a far one."""
    if time_to_target_s is not None:
        return float(time_to_target_s)
    gap = max(1, (best_rank if best_rank is not None else school_rank + 1) - target)
    return float(budget_s) * (1 + gap)


def trial_objective(settings: Any, summaries: list[Any]) -> float | None:
    """The task function's return value: the median of :func:`run_objective` over the
    ``summaries`` (one :class:`~mlo_exp.run.trainer.RunSummary` per seed) of one job.
    ``settings`` is the job's :class:`~mlo_exp.config.RunConfig`."""
    values = []
    for summary in summaries:
        shape = list(summary.shape)
        school = shape[0] * shape[1] * shape[2]
        target = settings.trainer.stop_at_rank or summary.best_known_rank or school
        curve = _read_episodes(Path(summary.run_dir) / "episodes.csv")[1]
        budget = settings.trainer.time_limit_s or summary.wall_time_s or 1.0
        values.append(run_objective(summary.best_rank, time_to_rank(curve, target), target,
                                    budget, school))
    return float(statistics.median(values)) if values else None


def trial_runs(cfg: DictConfig, settings: Any, run_dir: Path,
               overrides: list[str]) -> Iterator[tuple[DictConfig, Any, Path, list[str]]]:
    """The runs of one job: itself when ``objective.seeds`` is 1, else one run per seed
    ``seed, seed + 1, ...`` in ``<run_dir>/seed<k>/`` (each a complete run directory), so a
    sweeper's trial is judged over several seeds. Yields (config, settings, run dir,
    overrides); raises :class:`~mlo_exp.config.ConfigError` for ``resume`` with several
    seeds."""
    from mlo_exp.config import ConfigError, validate

    count = int(settings.objective.seeds)
    if count == 1:
        yield cfg, settings, run_dir, overrides
        return
    if settings.resume:
        raise ConfigError("objective.seeds", count, "1 when resume is set (resume each seed's "
                          "run directory on its own)")
    # Each seed's own command line (its resume hint): one run, that seed.
    kept = [o for o in overrides
            if not o.lstrip("+~").startswith(("seed=", "objective.seeds="))]
    for seed in range(settings.seed, settings.seed + count):
        seed_cfg = copy.deepcopy(cfg)
        seed_cfg.seed = seed
        seed_cfg.objective.seeds = 1
        yield (seed_cfg, validate(seed_cfg), run_dir / f"seed{seed}",
               [*kept, "objective.seeds=1", f"seed={seed}"])


# -- reading the jobs --------------------------------------------------------------------------
def job_dirs(sweep_dir: Path) -> list[Path]:
    """Job directories of a sweep: those holding Hydra's ``.hydra/`` record or a
    ``job_status.json``, at any depth (``hydra.sweep.subdir`` may be overridden), in job
    order."""
    found = {p.parent.parent for p in sweep_dir.rglob("overrides.yaml")
             if p.parent.name == ".hydra"}
    found |= {p.parent for p in sweep_dir.rglob(JOB_STATUS_FILE)}
    return sorted(found, key=lambda p: (_job_number(p), str(p)))


def _job_number(job_dir: Path) -> int:
    """``hydra.job.num``: from job_status.json, the directory name, or .hydra/hydra.yaml."""
    try:
        return int(json.loads((job_dir / JOB_STATUS_FILE).read_text())["job"])
    except (OSError, ValueError, KeyError, TypeError):
        pass
    if job_dir.name.isdigit():
        return int(job_dir.name)
    try:
        return int(OmegaConf.load(job_dir / ".hydra" / "hydra.yaml").hydra.job.num)
    except Exception:
        return -1


def seed_run_dirs(job_dir: Path) -> list[Path]:
    """The per-seed run directories of a job that ran ``objective.seeds`` > 1 runs."""
    if (job_dir / "summary.json").is_file() or (job_dir / "run.json").is_file():
        return []
    found = [p for p in job_dir.glob("seed*") if p.is_dir() and p.name[4:].isdigit()]
    return sorted(found, key=lambda p: int(p.name[4:]))


def read_job_rows(job_dir: Path) -> list[JobRow]:
    """One row per run of the job: the job itself, or each of its seed runs."""
    seeds = seed_run_dirs(job_dir)
    if not seeds:
        return [read_job(job_dir)]
    rows = []
    for seed_dir in seeds:
        row = read_job(job_dir, run_dir=seed_dir)
        seed = f"seed={seed_dir.name[4:]}"
        row.override_list = [o for o in row.override_list if not o.startswith("seed=")]
        row.override_list.append(seed)  # the job's overrides (objective.seeds=N) + this seed
        row.overrides = " ".join(row.override_list)
        rows.append(row)
    return rows


def read_job(job_dir: Path, run_dir: Path | None = None) -> JobRow:
    """Everything the summary shows for one job (its run files in ``run_dir``, by default
    the job directory); problems end up in ``error``."""
    run_dir = run_dir or job_dir
    row = JobRow(job=_job_number(job_dir), status="unknown", run_dir=str(run_dir))
    problems: list[str] = []
    status = _read_json(job_dir / JOB_STATUS_FILE, problems, required=False)
    overrides = (status or {}).get("overrides")
    if overrides is None:
        overrides = _read_overrides(job_dir / ".hydra" / "overrides.yaml")
    row.override_list = [str(o) for o in overrides or []]
    row.overrides = " ".join(row.override_list)
    row.objective = (status or {}).get("objective")
    run = _read_json(run_dir / "run.json", problems, required=False) or {}
    row.run_id = str(run.get("run_id", ""))
    row.seed = run.get("seed")
    summary = _read_json(run_dir / "summary.json", problems, required=False)
    if summary is not None:
        row.run_id = str(summary.get("run_id", row.run_id))
        row.seed = summary.get("seed", row.seed)
        row.best_rank = summary.get("best_rank")
        row.best_known_rank = summary.get("best_known_rank")
        row.solved = bool(summary.get("verified"))
        row.episodes = summary.get("episodes")
        row.wall_time_s = summary.get("wall_time_s")
    if row.seed is None:
        row.seed = next((int(o.partition("=")[2]) for o in row.override_list
                         if o.startswith("seed=") and o.partition("=")[2].isdigit()), None)
    row.speedup = _best_speedup(run_dir, problems)
    row.rewards, row.curve = _read_episodes(run_dir / "episodes.csv")
    if row.best_rank is not None:
        row.time_to_best_s = row.time_to_rank(row.best_rank)

    if status is not None:
        row.status = "failed" if status.get("status") == "failed" else (
            (summary or {}).get("status", "completed"))
        if status.get("error"):
            problems.insert(0, str(status["error"]))
    elif summary is not None:
        row.status = str(summary.get("status", "completed"))
    else:
        row.status = "failed"
        problems.insert(0, "no job_status.json and no summary.json: the job crashed, was "
                           "killed, or is still running")
    row.error = "; ".join(problems)
    return row


def _read_json(path: Path, problems: list[str], required: bool) -> dict[str, Any] | None:
    if not path.is_file():
        if required:
            problems.append(f"{path.name} missing")
        return None
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as error:
        problems.append(f"{path.name} unreadable ({type(error).__name__}: {error})")
        return None
    if not isinstance(data, dict):
        problems.append(f"{path.name} is not a JSON object")
        return None
    return data


def _read_overrides(path: Path) -> list[str]:
    try:
        return [str(o) for o in OmegaConf.to_container(OmegaConf.load(path))]  # type: ignore
    except Exception:
        return []


def _read_episodes(path: Path) -> tuple[list[float], list[tuple[float, int | None]]]:
    """Rewards and (wall time, best rank so far) per episode from ``episodes.csv``."""
    rewards: list[float] = []
    curve: list[tuple[float, int | None]] = []
    try:
        with path.open(newline="") as handle:
            for record in csv.DictReader(handle):
                if record.get("reward"):
                    rewards.append(float(record["reward"]))
                if record.get("wall_time_s"):
                    best = record.get("best_rank")
                    curve.append((float(record["wall_time_s"]), int(best) if best else None))
    except (OSError, ValueError, KeyError):
        pass
    return rewards, curve


def _best_speedup(job_dir: Path, problems: list[str]) -> float | None:
    """The speedup (median over median, see :mod:`mlo_exp.benchmark.measure`) of the job's
    own algorithm at the largest benchmarked size; rows of comparison algorithms (library
    entries added with ``benchmark.compare``) do not count."""
    path = job_dir / BENCHMARK_FILE
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
        rows = [r for r in data.get("rows", []) if isinstance(r, dict)
                and isinstance(r.get("speedup"), (int, float)) and math.isfinite(r["speedup"])]
    except (OSError, ValueError, AttributeError) as error:
        problems.append(f"{BENCHMARK_FILE} unreadable ({type(error).__name__})")
        return None
    library = ("strassen", "school-", "alphatensor-")  # names of mlo_exp.algorithms.library entries
    own = [r for r in rows if not str(r.get("algorithm", "")).startswith(library)]
    if not own:
        return None
    return float(max(own, key=lambda r: r.get("size", 0))["speedup"])


# -- across seeds ------------------------------------------------------------------------------
def group_key(row: JobRow) -> str:
    """The row's overrides without its seed: rows with the same key are seeds of one setting."""
    return " ".join(o for o in row.override_list if not o.lstrip("+~").startswith("seed="))


@dataclass
class SeedGroup:
    """One setting over its seeds (the rows whose overrides differ only in ``seed``).

    ``reached_best_known`` of ``seeds`` runs found the best known rank (``share_best_known``);
    ``best_rank`` is the best any seed found, ``reached_best_rank`` how many found it, and the
    time columns are the median, quartiles and extremes of their times to it (seconds of run
    time, from ``episodes.csv``). Failed runs count as seeds that reached nothing.
    """

    group: str
    seeds: list[int | None]
    failed: int
    best_known_rank: int | None
    reached_best_known: int
    share_best_known: float | None
    best_rank: int | None
    reached_best_rank: int
    times_s: list[float]
    median_time_s: float | None
    q1_time_s: float | None
    q3_time_s: float | None
    min_time_s: float | None
    max_time_s: float | None
    median_objective: float | None
    jobs: list[int]

    def cells(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("times_s")
        return data


def seed_groups(rows: list[JobRow]) -> list[SeedGroup]:
    """The seeds aggregate: one :class:`SeedGroup` per setting, in order of first job."""
    groups: dict[str, list[JobRow]] = {}
    for row in rows:
        groups.setdefault(group_key(row), []).append(row)
    result = []
    for key, members in groups.items():
        known_ranks = {r.best_known_rank for r in members if r.best_known_rank is not None}
        known = min(known_ranks) if known_ranks else None
        ranks = [r.best_rank for r in members if r.best_rank is not None]
        best = min(ranks) if ranks else None
        reached_known = sum(1 for r in members if known is not None and r.best_rank is not None
                            and r.best_rank <= known)
        times = sorted(t for t in (r.time_to_rank(best) for r in members) if t is not None)
        reached_best = sum(1 for r in members if best is not None and r.best_rank is not None
                           and r.best_rank <= best)
        q1, q3 = _quartiles(times)
        objectives = sorted({(r.job, r.objective) for r in members if r.objective is not None})
        result.append(SeedGroup(
            group=key, seeds=[r.seed for r in members],
            failed=sum(r.status == "failed" for r in members), best_known_rank=known,
            reached_best_known=reached_known,
            share_best_known=(reached_known / len(members)) if known is not None else None,
            best_rank=best, reached_best_rank=reached_best, times_s=times,
            median_time_s=statistics.median(times) if times else None,
            q1_time_s=q1, q3_time_s=q3,
            min_time_s=times[0] if times else None, max_time_s=times[-1] if times else None,
            median_objective=(statistics.median(v for _, v in objectives)
                              if objectives else None),
            jobs=sorted({r.job for r in members})))
    return result


def _quartiles(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    if len(values) == 1:
        return values[0], values[0]
    q1, _, q3 = statistics.quantiles(values, n=4, method="inclusive")
    return q1, q3


# -- writing the summary -----------------------------------------------------------------------
def read_rows(sweep_dir: Path) -> list[JobRow]:
    """Every run of the sweep, in job order (a job with several seeds gives several rows)."""
    return [row for d in job_dirs(sweep_dir) for row in read_job_rows(d)]


def write_summary(sweep_dir: Path, figure: bool = True) -> list[Path]:
    """Write ``sweep_summary.{csv,md,json,png}`` and ``sweep_seeds.csv`` into ``sweep_dir``;
    returns their paths."""
    rows = read_rows(sweep_dir)
    groups = seed_groups(rows)
    stem = sweep_dir / SUMMARY_STEM
    paths = [
        atomic_write_text(stem.with_suffix(".csv"), to_csv(rows)),
        atomic_write_text(stem.with_suffix(".md"), to_markdown(rows, sweep_dir, groups)),
        atomic_write_text(stem.with_suffix(".json"), json.dumps(
            {"sweep_dir": str(sweep_dir), "jobs": [r.cells() for r in rows],
             "seeds": [g.cells() for g in groups],
             "search": _search_results(sweep_dir)}, indent=1) + "\n"),
    ]
    if figure:
        paths.append(atomic_write_bytes(stem.with_suffix(".png"), comparison_png(rows, groups)))
    paths.append(atomic_write_text(sweep_dir / SEEDS_FILE, seeds_csv(groups)))
    return paths


def _search_results(sweep_dir: Path) -> dict[str, Any] | None:
    """The Optuna sweeper's ``optimization_results.yaml`` (best parameters and value)."""
    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        return None
    try:
        return OmegaConf.to_container(OmegaConf.load(path))  # type: ignore[return-value]
    except Exception:
        return None


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def to_csv(rows: list[JobRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        cells = row.cells()
        writer.writerow(["" if cells[c] is None else cells[c] for c in COLUMNS])
    return buffer.getvalue()


def seeds_csv(groups: list[SeedGroup]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SEED_COLUMNS)
    for group in groups:
        cells = group.cells()
        cells["seeds"] = " ".join("" if s is None else str(s) for s in group.seeds)
        cells["jobs"] = " ".join(str(j) for j in group.jobs)
        writer.writerow(["" if cells[c] is None else cells[c] for c in SEED_COLUMNS])
    return buffer.getvalue()


def group_labels(groups: list[SeedGroup], rows: list[JobRow],
                 width: int | None = 46) -> list[str]:
    """Per setting, the overrides that tell it from the others (seed left out)."""
    if len(groups) == 1:
        return ["all jobs"]
    return varying_labels([_group_row(g, rows) for g in groups], drop_seed=True, width=width)


def shared_overrides(rows: list[JobRow]) -> str:
    """The overrides every run of the sweep has in common."""
    if not rows:
        return ""
    common = [o for o in rows[0].override_list if not o.lstrip("+~").startswith("seed=")]
    return " ".join(o for o in common if all(o in r.override_list for r in rows[1:]))


def seeds_markdown(groups: list[SeedGroup], rows: list[JobRow]) -> list[str]:
    """The "Across seeds" table (one row per setting)."""
    shared = shared_overrides(rows)
    objective = any(g.median_objective is not None for g in groups)
    lines = [f"Shared by every job: `{shared}`." if shared else "", "",
             "| setting | seeds | reached best known | best rank found "
             "| time to it (s): median | IQR | min-max |" + (" objective |" if objective else ""),
             "|---|---:|---|---:|---:|---:|---:|" + ("---:|" if objective else "")]
    for g, label in zip(groups, group_labels(groups, rows, width=None), strict=True):
        known = ("best known unknown" if g.best_known_rank is None else
                 f"{g.reached_best_known}/{len(g.seeds)} ({g.share_best_known:.0%}) "
                 f"to {g.best_known_rank}")
        found = "none" if g.best_rank is None else (
            f"{g.best_rank} ({g.reached_best_rank}/{len(g.seeds)})")
        iqr = "" if g.q1_time_s is None else f"{_cell(g.q1_time_s)}-{_cell(g.q3_time_s)}"
        spread = "" if g.min_time_s is None else f"{_cell(g.min_time_s)}-{_cell(g.max_time_s)}"
        failed = f", {g.failed} failed" if g.failed else ""
        lines.append(f"| `{label}` | {len(g.seeds)}{failed} | {known} "
                     f"| {found} | {_cell(g.median_time_s)} | {iqr} | {spread} |"
                     + (f" {_cell(g.median_objective)} |" if objective else ""))
    lines += ["", "A setting's seeds are the jobs whose overrides differ only in `seed`. Times "
              "are run time (s) until the first episode at the setting's best rank found, over "
              "the seeds that reached it; `sweep_seeds.csv` has the same numbers."
              + (" objective: what the jobs returned to the sweeper (median over the setting's "
                 "jobs)." if objective else "")]
    return lines


def to_markdown(rows: list[JobRow], sweep_dir: Path,
                groups: list[SeedGroup] | None = None) -> str:
    failed = sum(r.status == "failed" for r in rows)
    groups = seed_groups(rows) if groups is None else groups
    jobs = len({r.job for r in rows})
    runs = f"{len(rows)} runs in {jobs} jobs" if jobs != len(rows) else f"{jobs} jobs"
    lines = [f"# Sweep summary: {sweep_dir}", "",
             f"{runs}, {len(rows) - failed} finished, {failed} failed.", "",
             "## Across seeds", "", *seeds_markdown(groups, rows), "", "## Jobs", "",
             "| job | status | overrides | run_id | best rank | best known | solved "
             "| time to best (s) | episodes | wall time (s) | objective | speedup |",
             "|---:|---|---|---|---:|---:|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.job} | {r.status} | `{r.overrides}` | {r.run_id} | "
                     f"{_cell(r.best_rank)} | {_cell(r.best_known_rank)} | {_cell(r.solved)} | "
                     f"{_cell(r.time_to_best_s)} | {_cell(r.episodes)} | "
                     f"{_cell(r.wall_time_s)} | {_cell(r.objective)} | {_cell(r.speedup)} |")
    search = _search_results(sweep_dir)
    if search:
        lines += ["", "## Hyperparameter search", "",
                  f"best value {_cell(search.get('best_value'))} with "
                  + ", ".join(f"`{k}={v}`" for k, v in (search.get("best_params") or {}).items())]
    errors = [r for r in rows if r.error]
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- job {r.job} ({r.status}): {r.error}" for r in errors]
    lines += ["", "solved: an exactly verified algorithm was found. speedup: the largest one the "
              "job's benchmark stage reported (empty: no benchmark ran). objective: what the job "
              "returned to the sweeper (seconds to the target rank; a miss scores "
              "budget x (1 + rank gap))."]
    return "\n".join(lines) + "\n"


def varying_labels(rows: list[JobRow], drop_seed: bool = False,
                   width: int | None = 30) -> list[str]:
    """Per row, only the overrides that differ between rows (``job <n>`` when none do).
    In figure labels (``width`` set) a key is shown by its last part where that is unambiguous
    (``agent.learning_rate`` -> ``learning_rate``), numbers with many digits (a search's
    samples) to 3 significant digits, and the label is wrapped onto lines of ``width``."""
    def parts(row: JobRow) -> dict[str, str]:
        items = {}
        for override in row.override_list:
            key, _, value = override.partition("=")
            if not (drop_seed and key.lstrip("+~") == "seed"):
                items[key] = _short_number(value) if width else value
        return items

    split = [parts(r) for r in rows]
    keys = list(dict.fromkeys(k for items in split for k in items))
    varying = [k for k in keys if len({items.get(k) for items in split}) > 1]
    tails = [k.rsplit(".", 1)[-1] for k in varying]
    names = {k: (t if width and tails.count(t) == 1 else k)
             for k, t in zip(varying, tails, strict=True)}
    labels = []
    for row, items in zip(rows, split, strict=True):
        text = " ".join(f"{names[k]}={items[k]}" for k in varying if k in items)
        if text and width:
            text = textwrap.fill(text, width, break_long_words=True)
        labels.append(text or f"job {row.job}")
    return labels


def _short_number(value: str) -> str:
    try:
        number = float(value)
    except ValueError:
        return value
    return value if len(value) <= 6 or not math.isfinite(number) else f"{number:.3g}"


def _shorten(text: str, width: int = 46) -> str:
    return text if len(text) <= width else text[: width - 1] + "…"


def comparison_png(rows: list[JobRow], groups: list[SeedGroup] | None = None) -> bytes:
    """:func:`comparison_figure` as PNG bytes."""
    return _png(comparison_figure(rows, groups))


def comparison_figure(rows: list[JobRow], groups: list[SeedGroup] | None = None) -> Any:
    """Best rank per run (the best known rank dashed) and time to the best rank per setting
    over its seeds (a dot per seed, a bar at the median) side by side, reward curves coloured
    by setting below. Labels show only the overrides that vary. A sweep with nothing to draw
    gets a figure that says why."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    groups = seed_groups(rows) if groups is None else groups
    labels = varying_labels(rows)
    labels_of_groups = group_labels(groups, rows)
    legend_labels = [label.replace("\n", " ") for label in labels_of_groups]
    if any("\n" in label for label in labels_of_groups):  # long settings (a search): S1, S2..
        keys = [g.group for g in groups]
        labels = [f"S{keys.index(group_key(r)) + 1}"
                  + (f" seed={r.seed}" if r.seed is not None else "") for r in rows]
        labels_of_groups = [f"S{i + 1}: {label}" for i, label in enumerate(labels_of_groups)]
        legend_labels = [f"S{i + 1}: {label}" for i, label in enumerate(legend_labels)]
    lines = max((label.count("\n") + 1 for label in labels), default=1)
    group_lines = sum(label.count("\n") + 1 for label in labels_of_groups)
    top = 0.8 + 0.28 * max(lines * len(rows), group_lines, 2)
    bottom = 3.6 + (0.2 * len(groups) if len(groups) > 1 else 0)
    figure = Figure(figsize=(13, top + bottom), dpi=90)
    FigureCanvasAgg(figure)
    if not any(r.best_rank is not None or r.rewards for r in rows):
        figure.set_size_inches(10, 3)
        failed = sum(r.status == "failed" for r in rows)
        first = next((r.error for r in rows if r.error), "")
        text = (f"{len(rows)} jobs, {failed} failed; no job recorded an episode"
                if rows else "no job directories found in the sweep")
        figure.text(0.5, 0.65, text, ha="center", va="center", fontsize="large")
        if first:
            figure.text(0.5, 0.35, textwrap.fill(_shorten(first, 300), 110), ha="center",
                        va="center", fontsize="small", color="tab:red")
        return figure
    grid = figure.add_gridspec(2, 2, height_ratios=[top, bottom])
    rank_axis = figure.add_subplot(grid[0, 0])
    time_axis = figure.add_subplot(grid[0, 1])
    reward_axis = figure.add_subplot(grid[1, :])
    colors = {g.group: f"C{i % 10}" for i, g in enumerate(groups)}

    positions = list(range(len(rows)))[::-1]  # the first job on top
    found = [r.best_rank for r in rows if r.best_rank is not None]
    known = sorted({r.best_known_rank for r in rows if r.best_known_rank is not None})
    ceiling = max(found + known, default=1) + 1
    floor = min(found + known, default=1) - 1
    for y, row in zip(positions, rows, strict=True):
        if row.status == "failed" and row.best_rank is None:
            rank_axis.plot([ceiling], [y], "x", color="tab:red", ms=8)
            rank_axis.annotate("failed", (ceiling, y), xytext=(-8, 0),
                               textcoords="offset points", ha="right", va="center",
                               color="tab:red", fontsize="small")
        elif row.best_rank is None:
            rank_axis.plot([ceiling], [y], "o", mfc="none", color="gray")
            rank_axis.annotate("none found", (ceiling, y), xytext=(-8, 0),
                               textcoords="offset points", ha="right", va="center",
                               color="gray", fontsize="small")
        else:
            rank_axis.plot([row.best_rank], [y], "o", color=colors[group_key(row)], ms=8)
    for rank in known:
        rank_axis.axvline(rank, ls="--", color="gray", lw=1)
    rank_axis.set_yticks(positions, labels, fontsize="small")
    rank_axis.set_ylim(-0.7, len(rows) - 0.3)
    rank_axis.set_xlim(floor - 0.5, ceiling + 0.5)
    rank_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    known_text = f" (dashed: best known {', '.join(map(str, known))})" if known else ""
    rank_axis.set_xlabel(f"best verified rank{known_text}")
    rank_axis.set_title("best rank per run (lower is better)", fontsize="medium")

    group_positions = list(range(len(groups)))[::-1]
    for y, group in zip(group_positions, groups, strict=True):
        color = colors[group.group]
        if group.times_s:
            time_axis.plot(group.times_s, [y] * len(group.times_s), "o", color=color,
                           alpha=0.6, ms=6)
            time_axis.plot([group.median_time_s] * 2, [y - 0.3, y + 0.3], color=color, lw=2.5)
        note = ("no rank found" if group.best_rank is None else
                f"rank {group.best_rank}: {group.reached_best_rank}/{len(group.seeds)} seeds")
        if group.best_known_rank is not None:
            note += f"; best known: {group.reached_best_known}/{len(group.seeds)}"
        time_axis.annotate(note, (0, y), xytext=(4, 9), xycoords=("axes fraction", "data"),
                           textcoords="offset points", fontsize="x-small", color="dimgray")
    time_axis.set_yticks(group_positions, labels_of_groups, fontsize="small")
    time_axis.set_ylim(-0.7, len(groups) - 0.3)
    longest = max((t for g in groups for t in g.times_s), default=1.0)
    time_axis.set_xlim(0, longest * 1.15 or 1.0)
    time_axis.set_xlabel("run time to the setting's best rank (s); bar: median")
    time_axis.set_title("across seeds", fontsize="medium")

    drawn: set[str] = set()
    for row in rows:
        if row.rewards:
            key = group_key(row)
            label = None if key in drawn else legend_labels[
                [g.group for g in groups].index(key)]
            drawn.add(key)
            reward_axis.plot(range(1, len(row.rewards) + 1), row.rewards, lw=1, alpha=0.7,
                             color=colors[key], label=label)
    reward_axis.set_xlabel("episode")
    reward_axis.set_ylabel("reward")
    reward_axis.set_title("reward per episode (colour: setting)", fontsize="medium")
    reward_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    rewards = [v for r in rows for v in r.rewards]
    if rewards and all(float(v).is_integer() for v in rewards):
        reward_axis.yaxis.set_major_locator(MaxNLocator(integer=True))
        low, high = min(rewards), max(rewards)
        if high - low < 2:
            reward_axis.set_ylim(low - 1.5, high + 1.5)
    if drawn and len(groups) > 1:  # below the panel: it never covers a curve
        reward_axis.legend(fontsize="x-small", loc="upper left", bbox_to_anchor=(0, -0.2),
                           ncol=1 if max(map(len, legend_labels)) > 60 else 3,
                           frameon=False)
    for axis in (rank_axis, time_axis, reward_axis):
        axis.grid(alpha=0.3)
    figure.tight_layout()
    return figure


def _group_row(group: SeedGroup, rows: list[JobRow]) -> JobRow:
    """A stand-in row holding a group's overrides (for :func:`varying_labels`)."""
    member = next(r for r in rows if group_key(r) == group.group)
    return JobRow(job=member.job, status="", override_list=list(member.override_list))


def _png(figure: Any) -> bytes:
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", bbox_inches="tight")
    return buffer.getvalue()


# -- mlo-train report <sweep dir> --------------------------------------------------------------
REPORT_USAGE = """usage: mlo-train report <sweep dir> [--no-figure]

Write the sweep summary of a finished (or partly finished) multirun again from the files its
jobs left: sweep_summary.{md,csv,json,png} and sweep_seeds.csv in <sweep dir>, and print the
seeds aggregate (share of seeds reaching the best known rank, median, IQR and min-max of the
time to the best rank found, per setting)."""


def report_main(arguments: list[str]) -> int:
    """``mlo-train report <sweep dir>``; returns the exit code (2 for a bad argument)."""
    if not arguments or arguments[0] in ("-h", "--help"):
        print(REPORT_USAGE, file=sys.stdout if arguments else sys.stderr)
        return 0 if arguments else 2
    figure = "--no-figure" not in arguments
    names = [a for a in arguments if a != "--no-figure"]
    if len(names) != 1 or names[0].startswith("-"):
        print(f"mlo-train report: expected one sweep directory, got {' '.join(arguments)}\n"
              f"{REPORT_USAGE}", file=sys.stderr)
        return 2
    sweep_dir = Path(names[0]).expanduser()
    if not sweep_dir.is_dir():
        print(f"mlo-train report: {sweep_dir} is not a directory. Accepted: a multirun's sweep "
              "directory, e.g. outputs/multirun/<date>/<time>_<token>", file=sys.stderr)
        return 2
    if not job_dirs(sweep_dir):
        print(f"mlo-train report: no job directories in {sweep_dir} (none holds .hydra/ or "
              f"{JOB_STATUS_FILE}). Accepted: a multirun's sweep directory", file=sys.stderr)
        return 2
    try:
        paths = write_summary(sweep_dir, figure=figure)
    except OSError as error:
        print(f"mlo-train report: cannot write in {sweep_dir}: {error}", file=sys.stderr)
        return 1
    rows = read_rows(sweep_dir)
    print(f"{len(rows)} runs in {sweep_dir}\n")
    print("\n".join(seeds_markdown(seed_groups(rows), rows)))
    print("\nwritten: " + ", ".join(p.name for p in paths))
    return 0
