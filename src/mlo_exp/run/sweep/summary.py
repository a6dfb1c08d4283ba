"""Writing a sweep's summary: ``sweep_summary.{csv,md,json,png}``, ``sweep_seeds.csv`` and
``sweep_curves.png`` in the sweep directory (all atomically).

* ``sweep_summary.csv``: one row per run (:data:`COLUMNS`).
* ``sweep_seeds.csv``: one row per setting and target rank (:data:`SEED_COLUMNS`; see
  :mod:`~mlo_exp.run.sweep.seeds` for what each number means; ``inf`` = not reached).
* ``sweep_summary.md``: the same as tables, the across-seeds table first, then the jobs, a
  hyperparameter search's result (ties and trials that missed in every seed said plainly)
  and errors.
* ``sweep_summary.json``: everything above, machine-readable.
* ``sweep_summary.png`` (:mod:`~mlo_exp.run.sweep.figure`) and ``sweep_curves.png``
  (:mod:`~mlo_exp.run.sweep.curves`): the figures.
"""

from __future__ import annotations

import csv
import io
import json
import math
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

from mlo_exp.io import atomic_write_bytes, atomic_write_text
from mlo_exp.run.sweep.jobs import JobRow, read_rows
from mlo_exp.run.sweep.labels import group_labels, shared_overrides, short_override
from mlo_exp.run.sweep.seeds import SeedGroup, TargetStats, group_key, seed_groups

SUMMARY_STEM = "sweep_summary"
SEEDS_FILE = "sweep_seeds.csv"
CURVES_FILE = "sweep_curves.png"
COLUMNS = ("job", "status", "overrides", "seed", "run_id", "best_rank", "best_known_rank",
           "solved", "time_to_best_s", "episodes", "wall_time_s", "budget_s", "objective",
           "speedup", "run_dir", "error")
SEED_COLUMNS = ("group", "target_rank", "best_known", "seeds", "failed", "reached", "share",
                "share_low", "share_high", "median_time_s", "median_time_low_s",
                "median_time_high_s", "median_episodes", "budget_s", "best_rank",
                "reached_best_rank", "median_objective", "jobs")


def write_summary(sweep_dir: Path, figure: bool = True,
                  metrics: list[str] | None = None) -> list[Path]:
    """Write the summary files into ``sweep_dir``; returns their paths. ``figure``: also
    the two PNGs; ``metrics``: the learning curves drawn (default: reward and the losses the
    runs logged, :func:`~mlo_exp.run.sweep.curves.default_metrics`)."""
    rows = read_rows(sweep_dir)
    groups = seed_groups(rows)
    stem = sweep_dir / SUMMARY_STEM
    search = search_results(sweep_dir)
    paths = [
        atomic_write_text(stem.with_suffix(".csv"), to_csv(rows)),
        atomic_write_text(stem.with_suffix(".md"), to_markdown(rows, sweep_dir, groups)),
        atomic_write_text(stem.with_suffix(".json"), json.dumps(
            {"sweep_dir": str(sweep_dir), "jobs": [r.cells() for r in rows],
             "seeds": [g.cells() for g in groups], "search": search,
             "search_notes": search_notes(rows, search)}, indent=1, default=_json_value)
            + "\n"),
    ]
    if figure:
        from mlo_exp.run.sweep.curves import curves_png
        from mlo_exp.run.sweep.figure import comparison_png

        paths.append(atomic_write_bytes(stem.with_suffix(".png"), comparison_png(rows, groups)))
        paths.append(atomic_write_bytes(sweep_dir / CURVES_FILE,
                                        curves_png(rows, groups, metrics)))
    paths.append(atomic_write_text(sweep_dir / SEEDS_FILE, seeds_csv(groups)))
    return paths


def search_results(sweep_dir: Path) -> dict[str, Any] | None:
    """The Optuna sweeper's ``optimization_results.yaml`` (best parameters and value)."""
    path = sweep_dir / "optimization_results.yaml"
    if not path.is_file():
        return None
    try:
        return OmegaConf.to_container(OmegaConf.load(path))  # type: ignore[return-value]
    except Exception:
        return None


def search_notes(rows: list[JobRow], search: dict[str, Any] | None) -> list[str]:
    """What a search's "best parameters" do not say: trials tied at the best value, and
    trials (all of them, or the best) in which every seed missed the target rank."""
    if search is None:
        return []
    notes = []
    trials: dict[int, list[JobRow]] = {}
    for row in rows:
        trials.setdefault(row.job, []).append(row)
    best = search.get("best_value")
    values = {job: members[0].objective for job, members in trials.items()
              if members[0].objective is not None}
    if isinstance(best, (int, float)):
        tied = sorted(job for job, value in values.items()
                      if math.isclose(value, best, rel_tol=1e-9, abs_tol=1e-9))
        if len(tied) > 1:
            notes.append(f"{len(tied)} trials tied at the best value {_cell(float(best))} "
                         f"(jobs {', '.join(map(str, tied))}); the sweeper reports one of them: "
                         "the data do not prefer its parameters over the others'.")
    missed = sorted(job for job, members in trials.items() if _all_missed(members))
    if trials and len(missed) == len(trials):
        notes.append(f"Every trial missed the target rank in every seed ({len(trials)} trials): "
                     "the values are penalties (budget x (1 + rank gap)), the 'best parameters' "
                     "only came closest. Give the runs more time (trainer.time_limit_s) or "
                     "aim lower (trainer.stop_at_rank).")
    elif missed and isinstance(best, (int, float)) and any(
            math.isclose(values.get(job, math.nan), best) for job in missed):
        notes.append("The best trial missed the target rank in every seed: its value is a "
                     "penalty (budget x (1 + rank gap)).")
    return notes


def _all_missed(members: list[JobRow]) -> bool:
    """No seed of a trial reached its target (the best known rank)."""
    return all(r.best_known_rank is None or r.time_to_rank(r.best_known_rank) is None
               for r in members)


def to_csv(rows: list[JobRow]) -> str:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(COLUMNS)
    for row in rows:
        cells = row.cells()
        writer.writerow(["" if cells[c] is None else cells[c] for c in COLUMNS])
    return buffer.getvalue()


def seeds_csv(groups: list[SeedGroup]) -> str:
    """One row per setting and target rank; misses give ``inf`` medians, never blanks."""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(SEED_COLUMNS)
    for group in groups:
        for target in group.targets:
            cells = {**group.cells(), **target.cells()}
            cells["failed"] = group.failed
            cells["jobs"] = " ".join(str(j) for j in group.jobs)
            writer.writerow(["" if cells[c] is None else _csv_value(cells[c])
                             for c in SEED_COLUMNS])
    return buffer.getvalue()


def _csv_value(value: Any) -> Any:
    if isinstance(value, float) and math.isfinite(value):
        return round(value, 6)
    return value


def _json_value(value: Any) -> Any:
    return str(value)


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        if not math.isfinite(value):
            return str(value)
        return f"{value:.3g}" if abs(value) < 1000 else f"{value:.0f}"
    return str(value)


def _seconds(value: float, budget: float | None) -> str:
    """A censored time: the number, or ``> budget`` when it was not reached."""
    if math.isfinite(value):
        return _cell(float(value))
    return f"> {_cell(float(budget))}" if budget is not None else "not reached"


def _share(t: TargetStats) -> str:
    return (f"{t.reached}/{t.seeds} = {t.share:.0%} "
            f"[{t.share_low:.0%}, {t.share_high:.0%}]")


def _median_time(t: TargetStats) -> str:
    if math.isnan(t.median_time_s):
        return ""
    text = _seconds(t.median_time_s, t.budget_s)
    interval = (f" [{_seconds(t.median_time_low_s, t.budget_s)}, "
                f"{_seconds(t.median_time_high_s, t.budget_s)}]")
    return text + interval


def _median_episodes(t: TargetStats) -> str:
    if math.isnan(t.median_episodes):
        return ""
    return _cell(int(t.median_episodes)) if math.isfinite(t.median_episodes) else "not reached"


def seeds_markdown(groups: list[SeedGroup], rows: list[JobRow]) -> list[str]:
    """The "Across seeds" tables: per target rank, one row per setting (shares with 95 %
    Wilson intervals; medians, misses counted, with bootstrap intervals), then the best rank
    each setting's seeds found."""
    shared = shared_overrides(rows)
    labels = group_labels(groups, rows, width=None)
    lines = [f"Shared by every job: `{shared}`." if shared else ""]
    targets = [t for t in (groups[0].targets if groups else [])]
    for index, target in enumerate(targets):
        rank = target.target_rank
        name = f"Rank {rank}" + (" (the best known rank)" if target.best_known else "")
        lines += ["", f"**{name}**", "",
                  f"| setting | seeds reaching rank {rank} [95% CI] "
                  f"| median time to rank {rank} (s) [95% CI] "
                  f"| median episodes to rank {rank} |",
                  "|---|---|---|---:|"]
        for group, label in zip(groups, labels, strict=True):
            t = group.targets[index]
            failed = f" ({group.failed} failed)" if group.failed else ""
            lines.append(f"| `{label}`{failed} | {_share(t)} | {_median_time(t)} "
                         f"| {_median_episodes(t)} |")
    objective = any(g.median_objective is not None for g in groups)
    lines += ["", "**Best rank found**", "",
              "| setting | seeds | best rank (seeds at it) | per seed |"
              + (" objective |" if objective else ""),
              "|---|---:|---|---|" + ("---:|" if objective else "")]
    for group, label in zip(groups, labels, strict=True):
        found = "none" if group.best_rank is None else (
            f"{group.best_rank} ({group.reached_best_rank}/{len(group.seeds)})")
        per_seed = " ".join("-" if r is None else str(r) for r in group.ranks)
        lines.append(f"| `{label}` | {len(group.seeds)} | {found} | {per_seed} |"
                     + (f" {_cell(group.median_objective)} |" if objective else ""))
    lines += ["", "A setting's seeds are the runs whose overrides differ only in `seed`; every "
              "setting is measured at the same target ranks. A seed reaches rank r at the run "
              "time (s) of its first episode with a verified rank <= r. Seeds that never did "
              "are misses: they stay in the share, and the median time is the time by which "
              "half the seeds had reached r (`> budget` when fewer than half did), never the "
              "median of the successes alone. Intervals (95%): Wilson score intervals "
              "for shares, percentile bootstrap over seeds (2000 resamples) for medians; with "
              "3-5 seeds they are wide, as they should be. "
              "`sweep_seeds.csv` has the same numbers (`inf`: not reached)."
              + (" objective: what the jobs returned to the sweeper (median over the "
                 "setting's jobs)." if objective else "")]
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
        overrides = " ".join(short_override(o) for o in r.override_list)
        lines.append(f"| {r.job} | {r.status} | `{overrides}` | {r.run_id} | "
                     f"{_cell(r.best_rank)} | {_cell(r.best_known_rank)} | {_cell(r.solved)} | "
                     f"{_cell(r.time_to_best_s)} | {_cell(r.episodes)} | "
                     f"{_cell(r.wall_time_s)} | {_cell(r.objective)} | {_cell(r.speedup)} |")
    search = search_results(sweep_dir)
    if search:
        params = ", ".join(f"`{short_override(f'{k}={v}')}`"
                           for k, v in (search.get("best_params") or {}).items())
        lines += ["", "## Hyperparameter search", "",
                  f"best value {_cell(search.get('best_value'))} with {params}"]
        lines += [f"- {note}" for note in search_notes(rows, search)]
    errors = [r for r in rows if r.error]
    if errors:
        lines += ["", "## Errors", ""]
        lines += [f"- job {r.job} ({r.status}): {r.error}" for r in errors]
    lines += ["", "solved: an exactly verified algorithm was found. speedup: the one the job's "
              "benchmark stage reported for its own algorithm at the largest size (empty: no "
              "benchmark ran, or the run found only the school rank). objective: what the job "
              "returned to a sweeper (only under a search: seconds to the target rank; a miss "
              "scores budget x (1 + rank gap))."]
    return "\n".join(lines) + "\n"


def group_of(row: JobRow, groups: list[SeedGroup]) -> int:
    """Index of the row's setting in ``groups``."""
    return [g.group for g in groups].index(group_key(row))
