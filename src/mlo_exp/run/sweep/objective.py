"""The objective a hyperparameter search minimises, and the per-seed runs of one trial.

Only a search needs it: :func:`objective_wanted` says whether the launching sweeper reads
the task's return value (any sweeper but Hydra's basic one, e.g. ``hparams_search=<name>``,
Hydra's Optuna sweeper). A plain run or a plain multirun does not compute it.

Per seed the value is the time to the target rank (``trainer.stop_at_rank``, else the best
known rank) or, not reached, a penalty of ``budget * (1 + rank gap)``
(:func:`run_objective`); the trial's value is the median over its seeds (``objective.seeds``
runs in one job, :func:`trial_runs`).
"""

from __future__ import annotations

import copy
import logging
import statistics
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from mlo_exp.run.sweep.jobs import read_episodes, time_to_rank

BASIC_SWEEPER = "hydra._internal.core_plugins.basic_sweeper.BasicSweeper"


def objective_wanted(hydra_config: Any) -> bool:
    """Whether the run's return value is read by a sweeper: a multirun whose sweeper is not
    Hydra's basic one (``hparams_search`` puts the Optuna sweeper in charge)."""
    mode = OmegaConf.select(hydra_config, "mode", default=None)
    if mode is None or str(getattr(mode, "name", mode)) != "MULTIRUN":
        return False
    target = OmegaConf.select(hydra_config, "sweeper._target_", default=None)
    return target is not None and str(target) != BASIC_SWEEPER


def quiet_search_setup(config: Any) -> None:
    """Under Hydra's Optuna sweeper: silence what its libraries print while it sets up
    (alembic's seven "setup plugin" lines, Optuna's "A new study created"); the sweeper's own
    lines (study name, sampler, best value) stay. Call before the sweeper is built."""
    target = str(OmegaConf.select(config, "hydra.sweeper._target_", default="") or "")
    if "optuna" not in target.lower():
        return
    logging.getLogger("alembic").setLevel(logging.WARNING)
    try:
        import optuna
    except ImportError:  # the sweeper will say so itself
        return
    optuna.logging.set_verbosity(optuna.logging.WARNING)


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
    """The task function's return value under a search: the median of
    :func:`run_objective` over the ``summaries`` (one
    :class:`~mlo_exp.run.trainer.RunSummary` per seed) of one job. ``settings`` is the job's
    :class:`~mlo_exp.config.RunConfig`."""
    values = []
    for summary in summaries:
        shape = list(summary.shape)
        school = shape[0] * shape[1] * shape[2]
        target = settings.trainer.stop_at_rank or summary.best_known_rank or school
        curve = read_episodes(Path(summary.run_dir) / "episodes.csv")[1]
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
