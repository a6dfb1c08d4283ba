"""Reading the jobs of a multirun: one :class:`JobRow` per run, from the files it left.

A sweep directory holds one directory per job (``hydra.sweep.subdir``, ``<job.num>`` by
default). A job is one run, or, with ``objective.seeds`` > 1, one run per seed in
``<job dir>/seed<k>/`` (:func:`~mlo_exp.run.sweep.objective.trial_runs`). The reader uses only
what the jobs wrote: ``job_status.json`` (:mod:`~mlo_exp.run.sweep.callback`), ``run.json``,
``summary.json``, ``episodes.csv``, ``.hydra/overrides.yaml`` and ``.hydra/config.yaml``
(the budget) and, where the benchmark stage ran, ``benchmark/benchmark.json``. A missing or
unreadable file ends up in the row's ``error``; it is never fatal.

**Curves.** ``JobRow.curve`` holds one :class:`CurvePoint` per episode: the wall time (s of
run time), the best verified rank so far (None before the first) and the episode number.
"""

from __future__ import annotations

import csv
import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from omegaconf import OmegaConf

JOB_STATUS_FILE = "job_status.json"
BENCHMARK_FILE = "benchmark/benchmark.json"


class CurvePoint(NamedTuple):
    """One episode of a run: its end in run time (s), the best rank so far, its number."""

    wall_time_s: float
    best_rank: int | None
    episode: int | None = None


@dataclass
class JobRow:
    """One run of the sweep, as the summary shows it.

    ``solved``: the job found an exactly verified algorithm (``summary.json: verified``).
    ``speedup``: the speedup the job's own algorithm reached at the largest benchmarked size
    (empty when no benchmark ran, and when the run found nothing better than the school
    method: a school-rank run's "speedup" is timing noise).
    ``time_to_best_s``: wall time of the first episode that reached the job's best rank.
    ``objective``: what the task function returned to a sweeper (only under a search,
    :func:`~mlo_exp.run.sweep.objective.trial_objective`).
    ``budget_s``: the run's ``trainer.time_limit_s`` (None: no time limit, or unknown).
    ``rewards``, ``curve`` and ``override_list``: from ``episodes.csv`` and the overrides, for
    the figure and the seeds aggregate.
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
    budget_s: float | None = None
    objective: float | None = None
    speedup: float | None = None
    run_dir: str = ""
    error: str = ""
    rewards: list[float] = field(default_factory=list, repr=False)
    curve: list[CurvePoint] = field(default_factory=list, repr=False)
    override_list: list[str] = field(default_factory=list, repr=False)

    def cells(self) -> dict[str, Any]:
        data = asdict(self)
        for key in ("rewards", "curve", "override_list"):
            data.pop(key)
        return data

    def time_to_rank(self, rank: int | None) -> float | None:
        """Wall time of the first episode whose best rank was at most ``rank``."""
        return time_to_rank(self.curve, rank)

    def episodes_to_rank(self, rank: int | None) -> int | None:
        """The first episode whose best rank was at most ``rank`` (None: never)."""
        if rank is None:
            return None
        return next((p[2] for p in self.curve
                     if p[1] is not None and p[1] <= rank and len(p) > 2), None)

    @property
    def observed_s(self) -> float | None:
        """How long the run was watched: its wall time, else the last episode's end."""
        if self.wall_time_s is not None:
            return float(self.wall_time_s)
        return self.curve[-1][0] if self.curve else None


def time_to_rank(curve: list[Any], rank: int | None) -> float | None:
    """Wall time of the first point of ``curve`` ((wall time, best rank so far, ...) per
    episode) whose best rank is at most ``rank``; None when it never got there."""
    if rank is None:
        return None
    return next((p[0] for p in curve if p[1] is not None and p[1] <= rank), None)


def job_dirs(sweep_dir: Path) -> list[Path]:
    """Job directories of a sweep: those holding Hydra's ``.hydra/`` record or a
    ``job_status.json``, at any depth (``hydra.sweep.subdir`` may be overridden), in job
    order. Per-seed run directories of a job (``seed<k>/``) are not jobs."""
    found = {p.parent.parent for p in sweep_dir.rglob("overrides.yaml")
             if p.parent.name == ".hydra"}
    found |= {p.parent for p in sweep_dir.rglob(JOB_STATUS_FILE)}
    found = {p for p in found if not (_is_seed_dir(p) and p.parent in found)}
    return sorted(found, key=lambda p: (_job_number(p), str(p)))


def _is_seed_dir(path: Path) -> bool:
    return path.name.startswith("seed") and path.name[4:].isdigit()


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


def read_rows(sweep_dir: Path) -> list[JobRow]:
    """Every run of the sweep, in job order (a job with several seeds gives several rows)."""
    return [row for d in job_dirs(sweep_dir) for row in read_job_rows(d)]


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
    row.budget_s = _read_budget(job_dir / ".hydra" / "config.yaml")
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
    row.rewards, row.curve = read_episodes(run_dir / "episodes.csv")
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


def read_episodes(path: Path) -> tuple[list[float], list[CurvePoint]]:
    """Rewards and one :class:`CurvePoint` per episode from ``episodes.csv`` (empty lists
    when the file is missing or unreadable)."""
    rewards: list[float] = []
    curve: list[CurvePoint] = []
    try:
        with path.open(newline="") as handle:
            for record in csv.DictReader(handle):
                if record.get("reward"):
                    rewards.append(float(record["reward"]))
                if record.get("wall_time_s"):
                    best = record.get("best_rank")
                    episode = record.get("episode")
                    curve.append(CurvePoint(float(record["wall_time_s"]),
                                            int(best) if best else None,
                                            int(episode) if episode else len(curve) + 1))
    except (OSError, ValueError, KeyError):
        pass
    return rewards, curve


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


def _read_budget(path: Path) -> float | None:
    """``trainer.time_limit_s`` of the job's composed config (None: none or unreadable)."""
    try:
        value = OmegaConf.select(OmegaConf.load(path), "trainer.time_limit_s", default=None)
        return None if value is None else float(value)
    except Exception:
        return None


def _best_speedup(job_dir: Path, problems: list[str]) -> float | None:
    """The speedup (median over median, see :mod:`mlo_exp.benchmark.measure`) of the job's
    own algorithm at the largest benchmarked size. Rows of comparison algorithms (library
    entries added with ``benchmark.compare``) do not count, and neither does a run whose
    algorithm has the school rank (m*n*p products): it is the school method, and its
    "speedup" is noise."""
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
    if not own or _is_school_rank(job_dir):
        return None
    return float(max(own, key=lambda r: r.get("size", 0))["speedup"])


def _is_school_rank(run_dir: Path) -> bool:
    """Whether the run's best rank is the school rank m*n*p (nothing better was found)."""
    try:
        summary = json.loads((run_dir / "summary.json").read_text())
        m, n, p = summary["shape"]
        return summary.get("best_rank") is not None and int(summary["best_rank"]) >= m * n * p
    except (OSError, ValueError, KeyError, TypeError):
        return False
