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
and, when the command line names the run directory (``hydra.run.dir=DIR``), that
directory's lock: a second launch into a running run's directory is refused before it can
touch a file there, and a launch into a directory that already holds a run writes its Hydra
record under ``DIR/.hydra/launch-<time>-<pid>/`` instead of over the run's own ``.hydra/``.
"""

from __future__ import annotations

import sys

from mlo_exp.signals import RUN_SIGNALS  # first: the signals are the run's from here on

if sys.argv and sys.argv[0].rsplit("/", 1)[-1] == "mlo-train":  # the console script only
    RUN_SIGNALS.install()

import datetime as dt  # noqa: E402
import os  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402


def main() -> None:
    """The ``mlo-train`` console script (see the module docstring); ``mlo-train report <sweep
    dir>`` writes a multirun's summary again (:func:`mlo_exp.run.sweep.report_main`)."""
    RUN_SIGNALS.install()
    if sys.argv[1:2] == ["report"]:
        from mlo_exp.run.sweep import report_main

        RUN_SIGNALS.uninstall()  # no run: Ctrl-C simply stops the report
        sys.exit(report_main(sys.argv[2:]))
    try:
        _check_output_dir_writable(sys.argv[1:])
        _lock_named_run_dir(sys.argv[1:])
        _entry_point()()
    except SystemExit as exit_:
        if exit_.code == 1:  # Hydra refused an override: name the keys that exist
            _hint_unknown_keys(sys.argv[1:])
        raise
    except KeyboardInterrupt:
        print("mlo-train: interrupted during start-up; no run was started", file=sys.stderr)
        sys.exit(1)
    except ValueError as error:  # Hydra's own command-line checks (e.g. -m with --cfg)
        print(f"mlo-train: {error}", file=sys.stderr)
        sys.exit(1)
    finally:
        RUN_SIGNALS.ignore()  # the run's work is done: a signal now cannot kill the exit


def _check_output_dir_writable(arguments: list[str]) -> None:
    """Refuse to start (exit 1) when the run directory named on the command line, else the
    outputs root, cannot be written: Hydra would fail writing its record there."""
    from mlo_exp.run_files import check_writable, explicit_run_dir, outputs_root

    named = explicit_run_dir(arguments)
    directory = Path(named).expanduser() if named is not None else outputs_root()
    try:
        check_writable(directory)
    except OSError as error:
        print(f"mlo-train: {error}; nothing was run. Accepted: a writable hydra.run.dir or "
              "MLO_OUTPUTS (the outputs root)", file=sys.stderr)
        sys.exit(1)


def _lock_named_run_dir(arguments: list[str]) -> None:
    """Take the lock of a run directory named on the command line before Hydra writes there
    (refused: exit 2), and keep Hydra's record of this launch off an existing run's."""
    from mlo_exp.run_files import HYDRA_DIR, RunLock, explicit_run_dir

    if "-m" in arguments or "--multirun" in arguments:
        return
    named = explicit_run_dir(arguments)
    if named is None:
        return
    run_dir = Path(named).expanduser()
    try:
        _LAUNCH["existed"] = (run_dir, run_dir.is_dir() and any(run_dir.iterdir()))
        log_file = run_dir / "train.log"
        _LAUNCH["train_log"] = (log_file,
                                log_file.stat().st_size if log_file.is_file() else None)
        _LAUNCH["started"] = (run_dir, dt.datetime.now().timestamp())
    except OSError:
        _LAUNCH.clear()  # unreadable: the lock below or Hydra reports it
    lock = RunLock(run_dir)
    if not lock.acquire():
        print(f"mlo-train: run directory {run_dir} is in use by another process "
              f"(pid {lock.holder() or '?'}); nothing there was touched. Wait for it to end, "
              "or choose another hydra.run.dir", file=sys.stderr)
        sys.exit(2)
    if (run_dir / HYDRA_DIR).is_dir():
        stamp = f"{dt.datetime.now():%Y%m%d-%H%M%S}-{os.getpid()}"
        sys.argv.append(f"hydra.output_subdir={HYDRA_DIR}/launch-{stamp}")


def _entry_point() -> Callable[[], None]:
    """The Hydra-decorated task (imported here, after the signals are taken)."""
    import hydra
    from hydra.core.hydra_config import HydraConfig
    from omegaconf import DictConfig

    from mlo_exp.config import ConfigError, config_dir, validate
    from mlo_exp.run import experiment
    from mlo_exp.run.checkpoint import CheckpointError
    from mlo_exp.run.sweep.objective import objective_wanted, trial_objective, trial_runs
    from mlo_exp.run_files import explicit_run_dir

    _register_help_resolver(config_dir())

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
            _refuse(run_dir, f"invalid configuration: {error}", hydra_cfg.output_subdir)
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
            _refuse(run_dir, f"cannot resume: {error}" if settings.resume else str(error),
                    hydra_cfg.output_subdir)
        except ConfigError as error:  # a setting the agent refused
            if multirun:
                raise
            _refuse(run_dir, f"invalid configuration: {error}", hydra_cfg.output_subdir)
        except (MemoryError, RuntimeError) as error:  # sizes the checks could not foresee
            if isinstance(error, RuntimeError) and "allocate memory" not in str(error):
                raise  # torch's allocation failure is a RuntimeError; others are bugs
            from mlo_exp.config import available_memory_bytes

            available = available_memory_bytes()
            detail = str(error).strip().split("DefaultCPUAllocator: ")[-1].splitlines()
            _refuse(run_dir, f"out of memory ({type(error).__name__}: "
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


# What each config group sets, for `mlo-train --help` (conf/hydra/help/mlo_train.yaml).
HELP_GROUPS = {
    "env": "the game: shape, coefficients, ring (Z or Z2), max_rank",
    "agent": "who plays (agent.<key>=... for its settings)",
    "trainer": "budgets: episodes, time_limit_s, stop_at_rank",
    "logger": "console (always on) plus a dashboard",
    "checkpoint": "checkpoints for resume (none: off)",
    "plot": "training.png, live or at the end (none: off)",
    "benchmark": "time the best algorithm after the run (none: off)",
    "experiment": "bundles of the above for one shape",
    "hparams_search": "a hyperparameter search; with -m (Optuna)",
}


def _register_help_resolver(conf: Path) -> None:
    """``${mlo_help_groups:}``: the selectable groups of ``conf/`` and their options, the
    default first (schemas and Hydra's own groups left out)."""
    import textwrap

    from omegaconf import OmegaConf

    def groups() -> str:
        defaults = {}
        for line in (conf / "config.yaml").read_text().splitlines():
            key, _, value = line.strip().removeprefix("- ").partition(":")
            if value.strip() and " " not in key:
                defaults[key] = value.split("#")[0].strip()
        lines = []
        names = [g for g in HELP_GROUPS if (conf / g).is_dir()]
        names += sorted(d.name for d in conf.iterdir()
                        if d.is_dir() and d.name not in HELP_GROUPS and d.name != "hydra")
        for name in names:
            options = sorted(p.stem for p in (conf / name).glob("*.yaml"))
            default = defaults.get(name)
            if default in options:
                options.remove(default)
                options.insert(0, f"{default} (default)")
            lines.append(textwrap.fill(f"{name}: {', '.join(options)}", 92,
                                       initial_indent="  ", subsequent_indent="      "))
            if name in HELP_GROUPS:
                lines.append(f"      {HELP_GROUPS[name]}")
        return "\n".join(lines)

    OmegaConf.register_new_resolver("mlo_help_groups", groups, replace=True)


def _hint_unknown_keys(arguments: list[str]) -> None:
    """After Hydra refused an override such as ``trainer.bogus=1`` (it names the key but not
    the valid ones, and suggests ``+``, which the schema refuses too): one line per unknown
    key with the keys its node has. Plain ``key=value`` and ``group.key=value`` only."""
    try:
        for override in arguments:
            key, equals, _ = override.partition("=")
            if not equals or key.startswith(("+", "~", "hydra", "-")) or "/" in key:
                continue
            parts = key.split(".")
            if len(parts) > 2:
                continue
            known = _schema_keys(parts[0] if len(parts) == 2 else None, arguments)
            if known is not None and parts[-1] not in known:
                where = f"{parts[0]} has" if len(parts) == 2 else "the config has"
                print(f"mlo-train: {where} no key {parts[-1]!r}; its keys are "
                      f"{', '.join(sorted(known))}", file=sys.stderr)
    except Exception:  # a hint only: never in the way of Hydra's own message
        return


def _schema_keys(group: str | None, arguments: list[str]) -> set[str] | None:
    """The keys of a config node as its schema defines them: the run's (``group`` None), a
    fixed node's (``env``, ``trainer``, ``objective``), or the chosen option's of a group."""
    import dataclasses

    from hydra.core.config_store import ConfigStore
    from omegaconf import OmegaConf

    from mlo_exp import config
    from mlo_exp.config import config_dir

    fields = {f.name: f for f in dataclasses.fields(config.RunConfig)}
    if group is None:
        return set(fields)
    if group not in fields:
        return None
    kind = fields[group].type
    fixed = {"env": config.EnvConfig, "trainer": config.TrainerConfig,
             "objective": config.ObjectiveConfig}
    if group in fixed:
        return {f.name for f in dataclasses.fields(fixed[group]) if not f.name.startswith("_")}
    if "Any" not in str(kind):
        return None
    chosen = next((a.partition("=")[2] for a in arguments if a.startswith(f"{group}=")), None)
    if chosen is None:
        defaults = OmegaConf.load(config_dir() / "config.yaml").defaults
        chosen = next((str(d[group]) for d in defaults if OmegaConf.is_dict(d) and group in d),
                      None)
    option = config_dir() / group / f"{chosen}.yaml"
    if chosen is None or not option.is_file():
        return None
    node = ConfigStore.instance().load(f"schema/{group}/{chosen}.yaml").node
    keys = {k for k in node if not str(k).startswith("_")}
    keys |= {k for k in OmegaConf.load(option) if not str(k).startswith("_")
             and k != "defaults"}
    return keys


# What a launch into a directory named on the command line found there: ``train_log``:
# (path, size before this launch, None when it did not exist); ``existed``: (the directory,
# whether it held anything before this launch); ``started``: (the directory, launch time).
_LAUNCH: dict[str, tuple[Path, Any]] = {}


def _refuse(run_dir: Path, message: str, hydra_subdir: str | None = None) -> None:
    """Refuse the launch (exit 2): remove what it added to ``run_dir`` (an unused run dir,
    its own Hydra record, the lines it appended to an existing run's ``train.log``)."""
    import contextlib
    import logging

    from mlo_exp.run_files import discard_unused_run_dir

    run_json = run_dir / "run.json"
    ran = run_json.is_file() and run_json.stat().st_mtime >= _LAUNCH.get("started", (0, 0))[1]
    if "train_log" in _LAUNCH and not ran and \
            _LAUNCH["train_log"][0].parent.resolve() == run_dir.resolve():
        # Refused before this launch's run began: its log lines go (the run's log is kept).
        log_file, size = _LAUNCH["train_log"]
        logging.shutdown()  # Hydra's file handler: flushed and closed before the cut
        with contextlib.suppress(OSError):
            if size is None:
                log_file.unlink(missing_ok=True)
            else:
                os.truncate(log_file, size)
    named, existed = _LAUNCH.get("existed", (None, False))
    existed = existed and named is not None and named.resolve() == run_dir.resolve()
    discard_unused_run_dir(run_dir, hydra_subdir, existed_before=existed)
    print(f"mlo-train: {message}", file=sys.stderr)
    sys.exit(2)


if __name__ == "__main__":
    main()
