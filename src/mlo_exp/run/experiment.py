"""Build one run from a composed config and run it: game, agent, logger, components, trainer.

``train.py`` (the Hydra entry point) calls :func:`run`; tests call it too, with configs from
the compose API. Component groups (``checkpoint``, ``plot``, ``benchmark``) are
instantiated generically: an option whose ``_target_`` is null is switched off; any other
option is a :class:`~mlo_exp.run.trainer.TrainerCallback` built with ``run=`` and ``logger=``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import torch
from hydra.errors import InstantiationException
from hydra.utils import get_class, instantiate
from omegaconf import DictConfig, OmegaConf, open_dict

from mlo_exp.agents.base import Agent
from mlo_exp.algorithms.reference import best_known_rank
from mlo_exp.config import ConfigError, RunConfig
from mlo_exp.env import TensorGame
from mlo_exp.loggers.base import Logger, LoggerGroup
from mlo_exp.loggers.console import ConsoleLogger
from mlo_exp.loggers.files import FilesLogger
from mlo_exp.loggers.many import ManyLoggers, backend_name, build_backend
from mlo_exp.run import resume
from mlo_exp.run.checkpoint import CheckpointError, restore
from mlo_exp.run.trainer import RunSummary, Trainer, TrainerCallback
from mlo_exp.run_context import RunContext, seed_everything
from mlo_exp.run_files import RunLock, holds_a_run
from mlo_exp.signals import RUN_SIGNALS

log = logging.getLogger("mlo_exp")

COMPONENT_GROUPS = ("checkpoint", "plot", "benchmark")


def build_game(settings: RunConfig) -> TensorGame:
    env = settings.env
    return TensorGame(env.shape, env.coefficients, env.max_rank, env.ring, settings.device)


def build_agent(cfg: DictConfig, game: TensorGame, seed: int) -> Agent:
    """The configured agent; a setting it refuses (a ValueError, e.g. a ring it cannot play)
    becomes a :class:`ConfigError` naming the agent and its reason."""
    try:
        return instantiate(cfg.agent, game=game, seed=seed, _convert_="all")
    except InstantiationException as error:
        if isinstance(error.__cause__, ValueError):
            name = str(cfg.agent._target_).rsplit(".", 1)[-1]
            raise ConfigError("agent", name, str(error.__cause__)) from None
        raise


def resolve_start_from(cfg: DictConfig, run_dir: Path) -> None:
    """``agent.start_from`` naming a library or catalogue algorithm (``strassen``,
    ``alphatensor-4x4x4-z2``, ``best-4x4x4``...; ``auto`` and ``built``:
    :mod:`mlo_exp.algorithms.starts`) rather than a file: written, verified, to
    ``<run dir>/start_from.json``, whose path the agent gets (agents never read the library);
    with ``agent.starts`` > 1, ``auto`` and ``built`` write that many starts to the folder
    ``<run dir>/start_from/``. The run's config keeps the name. An unknown name is a
    ConfigError."""
    name = cfg.agent.get("start_from") if "agent" in cfg else None
    if not name or Path(str(name)).expanduser().exists():  # a file, or a folder of starts
        return
    from mlo_exp.algorithms.library import lookup

    try:
        if str(name) in ("auto", "built"):
            algorithms = _auto_starts(cfg, own=str(name) == "auto")
        else:
            algorithms = [lookup(str(name))]
    except (KeyError, ValueError) as error:
        message = error.args[0] if error.args else str(error)
        raise ConfigError("agent.start_from", name, "an algorithm file, a library name, auto "
                          f"or built ({message})") from None
    from mlo_exp.algorithms.starts import save_starts

    path = save_starts(algorithms, run_dir / "start_from.json")
    with open_dict(cfg):
        cfg.agent.start_from = str(path)
    for algorithm in algorithms:
        log.info("agent.start_from=%s: %s, rank %d over %s, written to %s", name,
                 algorithm.name, algorithm.rank, algorithm.ring, path)


def _auto_starts(cfg: DictConfig, own: bool) -> list:
    """``agent.start_from=auto`` (``own``) or ``built`` (not the shape's own scheme): the
    ``agent.starts`` best of :func:`mlo_exp.algorithms.starts.best_starts` for the run's shape,
    ring and coefficient bound."""
    from mlo_exp.algorithms.starts import best_starts

    shape = tuple(int(x) for x in cfg.env.shape)
    ring = str(cfg.env.ring)
    bound = cfg.agent.get("coefficient_bound") or max(abs(int(c)) for c in cfg.env.coefficients)
    return best_starts(shape, ring, int(bound), own=own, count=int(cfg.agent.get("starts", 1)))


def build_logger(cfg: DictConfig, run: RunContext) -> LoggerGroup:
    """The run files, the console, and the configured backend(s) (``logger=many`` gives
    several). A backend that cannot be built is warned about and left out, never fatal."""
    group = LoggerGroup([FilesLogger(run.run_dir)])
    backends: list[Logger] = []
    try:
        backend = build_backend(cfg.logger)
    except Exception as error:
        group.record_failure(backend_name(cfg.logger), "setup", error)
    else:
        if isinstance(backend, ManyLoggers):
            backends = backend.loggers
            group.failures.update(backend.failures)
            group.missed.update(backend.missed)
        else:
            backends = [backend]
    if not any(isinstance(member, ConsoleLogger) for member in backends):
        group.loggers.append(ConsoleLogger())
    group.loggers.extend(backends)
    return group


def check_components(cfg: DictConfig) -> None:
    """Run each configured component's own ``check(**settings)`` (where its class has one),
    so settings only it can judge are refused before the run writes a file."""
    for group in COMPONENT_GROUPS:
        node = cfg.get(group)
        if node is not None and node.get("_target_"):
            component = get_class(str(node._target_))
            if hasattr(component, "check"):
                settings = OmegaConf.to_container(node, resolve=True)
                settings.pop("_target_")  # type: ignore[union-attr]
                component.check(**settings)  # type: ignore[arg-type]


def build_components(cfg: DictConfig, run: RunContext, logger: Logger) -> list[TrainerCallback]:
    components = []
    for group in COMPONENT_GROUPS:
        node = cfg.get(group)
        if node is not None and node.get("_target_"):
            # run/logger are passed to the partial, not to instantiate: instantiate would
            # turn the RunContext dataclass into a config node (and instantiate the
            # `_target_`s inside run.config).
            factory = instantiate(node, _partial_=True, _convert_="all")
            components.append(factory(run=run, logger=logger))
    return components


def run_name_parts(settings: RunConfig, cfg: DictConfig) -> list[str]:
    shape = "x".join(str(x) for x in settings.env.shape)
    agent = str(cfg.agent._target_).rsplit(".", 1)[-1].removesuffix("Agent").lower()
    parts = [f"{settings.env.name}{shape}{'-z2' if settings.env.ring == 'Z2' else ''}", agent]
    return parts + ([settings.tag] if settings.tag else [])


def run(cfg: DictConfig, settings: RunConfig, run_dir: Path, job_num: int | None = None,
        overrides: list[str] | None = None, explicit_dir: bool = False) -> RunSummary:
    """Run one experiment in ``run_dir`` (or continue the run ``resume`` names); returns its
    summary. ``explicit_dir``: ``run_dir`` was named on the command line (``hydra.run.dir``),
    so ``resume=auto`` means that directory. Raises
    :class:`~mlo_exp.run.checkpoint.CheckpointError` for a bad ``resume`` and for a new run in a
    directory that holds another run or that another process holds; nothing of that run is
    touched."""
    installed_here = not RUN_SIGNALS.installed
    RUN_SIGNALS.install()
    try:
        return _locked_run(cfg, settings, run_dir, job_num, overrides, explicit_dir)
    finally:
        if installed_here:
            RUN_SIGNALS.uninstall()


def _locked_run(cfg: DictConfig, settings: RunConfig, run_dir: Path, job_num: int | None,
                overrides: list[str] | None, explicit_dir: bool) -> RunSummary:
    resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore
    point = (resume.resolve(settings.resume, run_dir, resolved, explicit_dir)
             if settings.resume else None)
    if point is not None:
        lock = point.lock
        resume.adopt_run_dir(point, run_dir)
        run = point.run_context()
    else:
        lock = RunLock(run_dir)
        if not lock.acquire():
            raise CheckpointError(f"run directory {run_dir} is in use by another process "
                                  f"(pid {lock.holder() or '?'}); nothing there was touched")
        if holds_a_run(run_dir):
            lock.release()
            raise CheckpointError(
                f"run directory {run_dir} already holds a run; nothing there was touched. "
                "Accepted: a new or empty hydra.run.dir, or resume=auto to continue that run")
        run = RunContext.create(run_dir, settings.seed, run_name_parts(settings, cfg), job_num,
                                overrides)
    try:
        if point is not None:
            dropped = resume.trim_run_files(run.run_dir, point.episode)
            log.info("resuming run %s from %s (episode %d, %.1f s of run time; %d metric rows "
                     "after it dropped, they are played again)", run.run_id, point.path,
                     point.episode, run.time_offset_s, dropped)
        return _run(cfg, settings, run, resolved, overrides, point,
                    run_dir if explicit_dir else None)
    finally:
        lock.release()


def _run(cfg: DictConfig, settings: RunConfig, run: RunContext, resolved: dict[str, Any],
         overrides: list[str] | None, point: resume.ResumePoint | None,
         named_dir: Path | None) -> RunSummary:
    run.config = resolved
    log.info("run_id %s", run.run_id)
    seed_everything(settings.seed)
    if settings.threads is not None:
        torch.set_num_threads(settings.threads)  # process-wide: the run's, not an agent's
    game = build_game(settings)
    resolve_start_from(cfg, run.run_dir)
    agent = build_agent(cfg, game, settings.seed)  # refused settings stop before any file
    check_components(cfg)
    log.info("resume with: %s", resume.resume_command(list(overrides or []), run.run_id,
                                                      named_dir))
    run.write()
    logger = build_logger(cfg, run)
    status = "failed"
    try:
        known = best_known_rank(settings.env.shape, settings.env.ring)
        logger.start(run, {"run_id": run.run_id, "best_known_rank": known, **resolved})
        trainer = Trainer(game, agent, logger, run, settings.trainer,
                          build_components(cfg, run, logger), known, RUN_SIGNALS)
        if point is not None:
            restore(trainer, point.payload, point.path)
        summary = trainer.fit()
        status = summary.status
        return summary
    finally:
        logger.finish(status)
