"""Sweeps (multiruns): the Hydra callback, a search's objective, and the summary over seeds.

One job per module:

* :mod:`~mlo_exp.run.sweep.callback`: :class:`SweepSummaryCallback`, the Hydra callback of
  every run (``conf/config.yaml``: ``hydra.callbacks.sweep_summary``), active in multiruns;
* :mod:`~mlo_exp.run.sweep.slurm`: ``hydra/launcher=slurm`` refused off a cluster;
* :mod:`~mlo_exp.run.sweep.objective`: what a hyperparameter search minimises, computed only
  when a sweeper reads it, and the per-seed runs of a trial (``objective.seeds``);
* :mod:`~mlo_exp.run.sweep.jobs`: reading the jobs' files into rows;
* :mod:`~mlo_exp.run.sweep.seeds`: statistics across seeds (shares of seeds at each target
  rank against time and episodes, censored medians, bootstrap intervals);
* :mod:`~mlo_exp.run.sweep.labels`: readable names of runs and settings;
* :mod:`~mlo_exp.run.sweep.summary`: the summary files; :mod:`~mlo_exp.run.sweep.figure`
  and :mod:`~mlo_exp.run.sweep.curves`: the figures;
* :mod:`~mlo_exp.run.sweep.report`: ``mlo-train report <sweep dir>``.

The names other modules use are re-exported here. Importing this package stays light (no
matplotlib): Hydra builds the callback at the start of every run.
"""

from mlo_exp.run.sweep.callback import SweepSummaryCallback
from mlo_exp.run.sweep.jobs import JobRow, job_dirs, read_job, read_rows, time_to_rank
from mlo_exp.run.sweep.objective import (
    objective_wanted,
    run_objective,
    trial_objective,
    trial_runs,
)
from mlo_exp.run.sweep.report import report_main
from mlo_exp.run.sweep.seeds import SeedGroup, seed_groups
from mlo_exp.run.sweep.slurm import refuse_slurm_off_cluster
from mlo_exp.run.sweep.summary import write_summary


def comparison_figure(*args, **kwargs):  # noqa: ANN002, ANN003, ANN201
    """:func:`mlo_exp.run.sweep.figure.comparison_figure` (imported on use: matplotlib)."""
    from mlo_exp.run.sweep.figure import comparison_figure as draw

    return draw(*args, **kwargs)


__all__ = [
    "JobRow", "SeedGroup", "SweepSummaryCallback", "comparison_figure", "job_dirs",
    "objective_wanted", "read_job", "read_rows", "refuse_slurm_off_cluster", "report_main",
    "run_objective", "seed_groups", "time_to_rank", "trial_objective", "trial_runs",
    "write_summary",
]
