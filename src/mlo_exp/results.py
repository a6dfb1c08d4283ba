"""Runs as data: a run, a multirun or the results registry as a pandas DataFrame.

For analysis in a notebook or a script (``docs/results.md`` has examples)::

    from mlo_exp import results
    metrics = results.load("outputs/multirun/2026-12-06/13-19-56_9e5b22")   # per episode
    runs = results.load_summaries("outputs/multirun/2026-12-06/13-19-56_9e5b22")  # per run
    bench = results.load_registry()                     # outputs/benchmarks.sqlite

Conventions (every loader):

* **Per episode** (:func:`load_run`, :func:`load_multirun`, :func:`load`): one row per
  episode of a run, every key of its ``metrics.jsonl`` a column (losses and other agent
  metrics included; an episode without a metric has NaN there), the run's identity
  (``run_id``, ``run_dir``, ``seed``, ``agent``, ``job``), its outcome from ``summary.json``
  prefixed ``final_`` (``final_best_rank``, ``final_status``, ...), its overrides as one string
  (``overrides``), without the seed (``setting``: the runs of one setting share it), and one
  column per override key (``agent.learning_rate``: ``0.001``) where no other column has
  that name. Values of override columns are parsed like YAML (``0.001`` a float).
* **Per run** (:func:`load_summaries`): one row per run of a multirun, the columns of
  ``sweep_summary.csv`` plus ``setting`` and the override columns.
* **The registry** (:func:`load_registry`): one row per algorithm and size of every stored
  benchmark (``mlo_exp.benchmark.store`` columns).

A directory that holds nothing loadable raises :class:`ResultsError` naming what was
expected; unreadable files of single runs inside a multirun are skipped (their rows are
missing), as in the sweep summary.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from mlo_exp.run.sweep.jobs import JobRow, job_dirs, read_rows
from mlo_exp.run.sweep.seeds import group_key
from mlo_exp.run_files import METRICS_JSONL

SUMMARY_FILE = "summary.json"


class ResultsError(ValueError):
    """A path that holds no run, multirun or registry."""


def load(path: str | Path) -> pd.DataFrame:
    """Per-episode metrics of whatever ``path`` is: a run directory (:func:`load_run`), a
    multirun's sweep directory (:func:`load_multirun`), or a registry file (``.sqlite``:
    :func:`load_registry`)."""
    path = Path(path).expanduser()
    if path.is_file() and path.suffix in (".sqlite", ".db"):
        return load_registry(path)
    if not path.is_dir():
        raise ResultsError(f"{path} is not a directory or a registry file. Accepted: a run "
                           "directory, a multirun's sweep directory, or benchmarks.sqlite")
    if _is_run_dir(path):
        return load_run(path)
    if job_dirs(path):
        return load_multirun(path)
    raise ResultsError(f"{path} holds no run (no {METRICS_JSONL}, {SUMMARY_FILE} or "
                       "run.json) and no multirun (no job directories)")


def load_run(run_dir: str | Path, overrides: list[str] | None = None,
             job: int | None = None) -> pd.DataFrame:
    """One run's episodes (module docstring); ``overrides``: its command-line overrides
    (default: its ``.hydra/overrides.yaml``)."""
    run_dir = Path(run_dir).expanduser()
    if not _is_run_dir(run_dir):
        raise ResultsError(f"{run_dir} is not a run directory (no {METRICS_JSONL}, "
                           f"{SUMMARY_FILE} or run.json)")
    records = _read_jsonl(run_dir / METRICS_JSONL)
    frame = pd.DataFrame.from_records(records)
    summary = _read_json(run_dir / SUMMARY_FILE)
    identity = {**_read_json(run_dir / "run.json"), **summary}
    if overrides is None:
        overrides = _read_overrides(run_dir / ".hydra" / "overrides.yaml")
    columns: dict[str, Any] = {
        "run_id": identity.get("run_id"), "run_dir": str(run_dir),
        "seed": identity.get("seed"), "agent": summary.get("agent"), "job": job,
        "overrides": " ".join(overrides),
        "setting": group_key(JobRow(job=-1, status="", override_list=list(overrides))),
    }
    columns.update({f"final_{key}": value for key, value in summary.items()
                    if not isinstance(value, (list, dict))})
    columns.update({key: value for key, value in _override_columns(overrides).items()
                    if key not in columns and key not in frame.columns})
    for key, value in columns.items():
        if key not in frame.columns or key in ("run_id", "run_dir"):
            frame[key] = value
    return frame


def load_multirun(sweep_dir: str | Path) -> pd.DataFrame:
    """Every run of a multirun, one row per episode (module docstring); jobs that ran
    ``objective.seeds`` seeds give one run per seed."""
    sweep_dir = Path(sweep_dir).expanduser()
    rows = read_rows(sweep_dir)
    if not rows:
        raise ResultsError(f"{sweep_dir} holds no job directories (none has .hydra/ or "
                           "job_status.json). Accepted: a multirun's sweep directory")
    frames = [load_run(row.run_dir, row.override_list, row.job) for row in rows
              if _is_run_dir(Path(row.run_dir))]
    frames = [frame for frame in frames if len(frame)]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def load_summaries(sweep_dir: str | Path) -> pd.DataFrame:
    """One row per run of a multirun: what ``sweep_summary.csv`` holds, read from the jobs'
    files (so it works on a sweep still running), plus ``setting`` and override columns."""
    sweep_dir = Path(sweep_dir).expanduser()
    rows = read_rows(sweep_dir)
    if not rows:
        raise ResultsError(f"{sweep_dir} holds no job directories. Accepted: a multirun's "
                           "sweep directory")
    records = []
    for row in rows:
        record = row.cells()
        record["setting"] = group_key(row)
        record.update({k: v for k, v in _override_columns(row.override_list).items()
                       if k not in record})
        records.append(record)
    return pd.DataFrame.from_records(records)


def load_registry(path: str | Path | None = None) -> pd.DataFrame:
    """The results registry (default ``$MLO_OUTPUTS/benchmarks.sqlite``), one row per
    algorithm and size of every stored benchmark, oldest first; empty when it does not
    exist yet."""
    from mlo_exp.benchmark.store import ResultsStore

    store = ResultsStore(path)
    return pd.DataFrame.from_records(store.rows())


def _is_run_dir(path: Path) -> bool:
    return any((path / name).is_file() for name in (METRICS_JSONL, SUMMARY_FILE, "run.json"))


def _read_jsonl(path: Path) -> list[dict[str, Any]]:
    records = []
    try:
        lines = path.read_text().splitlines()
    except OSError:
        return []
    for line in lines:
        try:
            record = json.loads(line)
        except ValueError:
            continue  # a torn last line of a killed run
        if isinstance(record, dict):
            records.append(record)
    return records


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _read_overrides(path: Path) -> list[str]:
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        return []
    return [str(o) for o in data] if isinstance(data, list) else []


def _override_columns(overrides: list[str]) -> dict[str, Any]:
    """``key=value`` overrides as {key: value}, values parsed like YAML (``+``/``~`` kept
    out of the key)."""
    columns = {}
    for override in overrides:
        key, sep, text = override.partition("=")
        if not sep:
            continue
        try:
            value = yaml.safe_load(text)
        except yaml.YAMLError:
            value = text
        columns[key.lstrip("+~")] = value if isinstance(value, (int, float, str, bool)) \
            or value is None else text
    return columns
