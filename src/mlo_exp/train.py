"""``mlo-train``: the Hydra entry point. Compose, validate, run, summarise; nothing else.

``mlo-train report <sweep dir>`` writes a multirun's summary again (no Hydra, no run);
``mlo-train --help`` is ``conf/hydra/help/mlo_train.yaml``. The task function returns the
run's objective when a sweeper reads it (``hparams_search``, Optuna; None otherwise):
:func:`mlo_exp.run.sweep.trial_objective`, seconds to the target rank, median over
``objective.seeds`` runs.

Exit codes: 0 on success (also when the run was interrupted and saved), 1 for Hydra's own
composition errors (unknown option, wrong type, unknown key), for a run that failed (a
checkpoint or a run file could not be written: full disk, read-only directory) and for a
run interrupted during start-up, 2 for invalid values, a run directory in use or holding
another run, and a checkpoint that cannot be resumed (missing, corrupt, unsafe, or for
another shape or agent). In a multirun an invalid value fails that job only (Hydra exits 1
after all jobs ran).

Before Hydra writes anything, :func:`main` takes the run's signals (:mod:`mlo_exp.signals`)
and the lock of a run directory named on the command line (:mod:`mlo_exp.run.launch`, which
also undoes what a refused launch added); the ``--help`` group list and the hints after a
refused override come from :mod:`mlo_exp.run.command_line`.
"""

from __future__ import annotations

import sys

from mlo_exp.signals import RUN_SIGNALS  # first: the signals are the run's from here on

if sys.argv and sys.argv[0].rsplit("/", 1)[-1] == "mlo-train":  # the console script only
    RUN_SIGNALS.install()

from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

from mlo_exp.run import launch  # noqa: E402  (the standard library only: no torch, no Hydra)


def main() -> None:
    """The ``mlo-train`` console script (see the module docstring); ``mlo-train report <sweep
    dir>`` writes a multirun's summary again (:func:`mlo_exp.run.sweep.report_main`)."""
    RUN_SIGNALS.install()
    if sys.argv[1:2] == ["report"]:
        from mlo_exp.run.sweep import report_main

        RUN_SIGNALS.uninstall()  # no run: Ctrl-C simply stops the report
        sys.exit(report_main(sys.argv[2:]))
    try:
        launch.check_output_dir_writable(sys.argv[1:])
        launch.lock_named_run_dir(sys.argv[1:])
        _entry_point()()
    except SystemExit as exit_:
        if exit_.code == 1:  # Hydra refused an override: name the keys that exist
            from mlo_exp.run import command_line

            command_line.hint_unknown_keys(sys.argv[1:])
        raise
    except KeyboardInterrupt:
        print("mlo-train: interrupted during start-up; no run was started", file=sys.stderr)
        sys.exit(1)
    except ValueError as error:  # Hydra's own command-line checks (e.g. -m with --cfg)
        print(f"mlo-train: {error}", file=sys.stderr)
        sys.exit(1)
    finally:
        RUN_SIGNALS.ignore()  # the run's work is done: a signal now cannot kill the exit


def _entry_point() -> Callable[[], None]:
    """The Hydra-decorated task (imported here, after the signals are taken)."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig

    from mlo_exp.config import ConfigError, config_dir, validate
    from mlo_exp.run import command_line, experiment
    from mlo_exp.run.checkpoint import CheckpointError
    from mlo_exp.run.sweep.objective import objective_wanted, trial_objective, trial_runs
    from mlo_exp.run_files import explicit_run_dir

    command_line.register_help_resolver(config_dir())

    @hydra.main(version_base="1.3", config_path=str(config_dir()), config_name="config")
    def task(cfg: DictConfig) -> float | None:
        hydra_cfg = HydraConfig.get()
        run_dir = Path(hydra_cfg.runtime.output_dir)
        multirun = hydra_cfg.mode.name == "MULTIRUN"
        try:
            settings = validate(cfg)
        except ConfigError as error:
            if multirun:
                # Hydra records the job as failed, the other jobs go on, and the sweep
                # summary lists this job with the error (see mlo_exp.run.sweep).
                raise
            launch.refuse(run_dir, f"invalid configuration: {error}", hydra_cfg.output_subdir)
        job_num = hydra_cfg.job.num if multirun else None
        explicit = not multirun and explicit_run_dir(list(hydra_cfg.overrides.hydra)) is not None
        summaries = []
        try:
            for run_cfg, run_settings, one_dir, overrides in trial_runs(
                    cfg, settings, run_dir, list(hydra_cfg.overrides.task)):
                summary = experiment.run(run_cfg, run_settings, one_dir, job_num, overrides,
                                         explicit_dir=explicit and one_dir == run_dir)
                summaries.append(summary)
                if summary.status != "success":
                    break
        except CheckpointError as error:
            launch.refuse(run_dir, f"cannot resume: {error}" if settings.resume else str(error),
                    hydra_cfg.output_subdir)
        except ConfigError as error:  # a setting the agent refused
            if multirun:
                raise
            launch.refuse(run_dir, f"invalid configuration: {error}", hydra_cfg.output_subdir)
        except (MemoryError, RuntimeError) as error:  # sizes the checks could not foresee
            if isinstance(error, RuntimeError) and "allocate memory" not in str(error):
                raise  # torch's allocation failure is a RuntimeError; others are bugs
            from mlo_exp.config import available_memory_bytes

            available = available_memory_bytes()
            detail = str(error).strip().split("DefaultCPUAllocator: ")[-1].splitlines()
            launch.refuse(run_dir, f"out of memory ({type(error).__name__}: "
                    f"{detail[0] if detail else 'no detail'}); a setting asks for more memory "
                    f"than this machine has"
                    f"{f' ({available / 2**30:.3g} GiB available)' if available else ''}. "
                    "Accepted: smaller env.shape, agent.batch_size, agent.walks or "
                    "benchmark.sizes; the files written before are intact",
                    hydra_cfg.output_subdir)
        except OSError as error:
            print(f"mlo-train: cannot write {error.filename or run_dir}: "
                  f"{error.strerror or error}; the files written before are intact",
                  file=sys.stderr)
            sys.exit(1)
        if summary.status == "failed":
            sys.exit(1)
        # What a sweeper minimises (hparams_search): seconds to the target rank, median over
        # objective.seeds runs; a miss scores budget * (1 + rank gap) (run/sweep/objective.py).
        # Plain runs and plain multiruns have no reader for it: not computed.
        return trial_objective(settings, summaries) if objective_wanted(hydra_cfg) else None

    return task


if __name__ == "__main__":
    main()
