"""The sweep summary: one table and one figure over every job of a multirun.

:class:`SweepSummaryCallback` is a Hydra callback, registered for every run in
``conf/config.yaml`` (``hydra.callbacks.sweep_summary``); it acts only in multirun mode.

* ``on_job_end`` runs in the job's own process (a joblib worker, a SLURM task) and writes
  ``job_status.json`` into the job's directory: job number, overrides, ``completed`` or
  ``failed`` and, for a failed job, the error (type, message, traceback tail).
* ``on_multirun_end`` runs in the launching process after all jobs and writes, into the sweep
  directory, ``sweep_summary.csv``, ``sweep_summary.md``, ``sweep_summary.json`` and
  ``sweep_summary.png`` (best rank per job; reward curves overlaid).

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
import csv
import io
import json
import logging
import math
import traceback
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
COLUMNS = ("job", "status", "overrides", "run_id", "best_rank", "best_known_rank", "solved",
           "episodes", "wall_time_s", "speedup", "run_dir", "error")


@dataclass
class JobRow:
    """One job of the sweep, as the summary shows it.

    ``solved``: the job found an exactly verified algorithm (``summary.json: verified``).
    ``speedup``: the largest speedup the job's benchmark stage reported, if it ran.
    ``rewards``: reward per episode, from ``episodes.csv`` (for the figure only).
    """

    job: int
    status: str
    overrides: str = ""
    run_id: str = ""
    best_rank: int | None = None
    best_known_rank: int | None = None
    solved: bool | None = None
    episodes: int | None = None
    wall_time_s: float | None = None
    speedup: float | None = None
    run_dir: str = ""
    error: str = ""
    rewards: list[float] = field(default_factory=list, repr=False)

    def cells(self) -> dict[str, Any]:
        data = asdict(self)
        data.pop("rewards")
        return data


class SweepSummaryCallback(Callback):
    """Writes per-job status files and the sweep summary (see the module docstring)."""

    def __init__(self, figure: bool = True) -> None:
        self.figure = bool(figure)
        self._sweep_dir: str | None = None
        self._written = False

    # -- in the launching process ---------------------------------------------------------
    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
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
        if job_return.status == JobStatus.FAILED:
            error = job_return._return_value  # the exception; .return_value would raise it
            record["error"] = f"{type(error).__name__}: {error}"
            record["traceback"] = "".join(traceback.format_exception(
                type(error), error, error.__traceback__)[-6:])
        try:
            atomic_write_text(job_dir / JOB_STATUS_FILE, json.dumps(record, indent=1) + "\n")
        except OSError as error:  # the summary then lists the job from its other files
            log.error("%s", error)


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


def read_job(job_dir: Path) -> JobRow:
    """Everything the summary shows for one job; problems end up in ``error``."""
    row = JobRow(job=_job_number(job_dir), status="unknown", run_dir=str(job_dir))
    problems: list[str] = []
    status = _read_json(job_dir / JOB_STATUS_FILE, problems, required=False)
    overrides = (status or {}).get("overrides")
    if overrides is None:
        overrides = _read_overrides(job_dir / ".hydra" / "overrides.yaml")
    row.overrides = " ".join(str(o) for o in overrides or [])
    run = _read_json(job_dir / "run.json", problems, required=False) or {}
    row.run_id = str(run.get("run_id", ""))
    summary = _read_json(job_dir / "summary.json", problems, required=False)
    if summary is not None:
        row.run_id = str(summary.get("run_id", row.run_id))
        row.best_rank = summary.get("best_rank")
        row.best_known_rank = summary.get("best_known_rank")
        row.solved = bool(summary.get("verified"))
        row.episodes = summary.get("episodes")
        row.wall_time_s = summary.get("wall_time_s")
    row.speedup = _best_speedup(job_dir, problems)
    row.rewards = _read_rewards(job_dir / "episodes.csv")

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


def _read_rewards(path: Path) -> list[float]:
    try:
        with path.open(newline="") as handle:
            return [float(r["reward"]) for r in csv.DictReader(handle) if r.get("reward")]
    except (OSError, ValueError, KeyError):
        return []


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


# -- writing the summary -----------------------------------------------------------------------
def write_summary(sweep_dir: Path, figure: bool = True) -> list[Path]:
    """Write ``sweep_summary.{csv,md,json,png}`` into ``sweep_dir``; returns their paths."""
    rows = [read_job(d) for d in job_dirs(sweep_dir)]
    stem = sweep_dir / SUMMARY_STEM
    paths = [
        atomic_write_text(stem.with_suffix(".csv"), to_csv(rows)),
        atomic_write_text(stem.with_suffix(".md"), to_markdown(rows, sweep_dir)),
        atomic_write_text(stem.with_suffix(".json"), json.dumps(
            {"sweep_dir": str(sweep_dir), "jobs": [r.cells() for r in rows]}, indent=1) + "\n"),
    ]
    if figure:
        paths.append(atomic_write_bytes(stem.with_suffix(".png"), comparison_png(rows)))
    return paths


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


def to_markdown(rows: list[JobRow], sweep_dir: Path) -> str:
    failed = sum(r.status == "failed" for r in rows)
    lines = [f"# Sweep summary: {sweep_dir}", "",
             f"{len(rows)} jobs, {len(rows) - failed} finished, {failed} failed.", "",
             "| job | status | overrides | run_id | best rank | best known | solved | episodes "
             "| wall time (s) | speedup |",
             "|---:|---|---|---|---:|---:|---|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r.job} | {r.status} | `{r.overrides}` | {r.run_id} | "
                     f"{_cell(r.best_rank)} | {_cell(r.best_known_rank)} | {_cell(r.solved)} | "
                     f"{_cell(r.episodes)} | {_cell(r.wall_time_s)} | {_cell(r.speedup)} |")
    errors = [r for r in rows if r.error]
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- job {r.job} ({r.status}): {r.error}" for r in errors]
    lines += ["", "solved: an exactly verified algorithm was found. speedup: the largest one the "
              "job's benchmark stage reported (empty: no benchmark ran)."]
    return "\n".join(lines) + "\n"


def comparison_png(rows: list[JobRow]) -> bytes:
    """Best rank per job (bars; failed jobs marked) and reward curves overlaid."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    figure = Figure(figsize=(11, 4.5), dpi=90)
    FigureCanvasAgg(figure)
    ranks_axis, reward_axis = figure.subplots(1, 2)
    positions = list(range(len(rows)))
    heights = [r.best_rank if r.best_rank is not None else 0 for r in rows]
    colors = ["tab:red" if r.status == "failed" else "tab:blue" for r in rows]
    ranks_axis.bar(positions, heights, color=colors)
    ranks_axis.set_xticks(positions, [str(r.job) for r in rows])
    for index, row in enumerate(rows):
        text = "failed" if row.status == "failed" else (
            "none" if row.best_rank is None else str(row.best_rank))
        ranks_axis.text(index, max(heights[index], 0) + 0.1, text, ha="center",
                        va="bottom", fontsize="small")
    known = {r.best_known_rank for r in rows if r.best_known_rank is not None}
    for rank in sorted(known):
        ranks_axis.axhline(rank, ls="--", color="gray", lw=1)
    ranks_axis.set_xlabel("job")
    ranks_axis.set_ylabel("best verified rank (dashed: best known)")
    ranks_axis.set_title("best rank per job", fontsize="medium")
    for row in rows:
        if row.rewards:
            label = f"{row.job}: {row.overrides}"[:50]
            reward_axis.plot(range(1, len(row.rewards) + 1), row.rewards, lw=1, label=label)
    reward_axis.set_xlabel("episode")
    reward_axis.set_ylabel("reward")
    reward_axis.set_title("reward per episode", fontsize="medium")
    if any(r.rewards for r in rows):
        reward_axis.legend(fontsize="x-small", loc="lower right")
    for axis in (ranks_axis, reward_axis):
        axis.grid(alpha=0.3)
    reward_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    figure.tight_layout()
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png")
    return buffer.getvalue()
