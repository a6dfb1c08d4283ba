"""Build one run from a composed config and run it: game, agent, logger, components, trainer.

``train.py`` (the Hydra entry point) calls :func:`run`; tests call it too, with configs from
the compose API. Component groups (``checkpoint``, ``plot``, ``benchmark``) are
instantiated generically: an option whose ``_target_`` is null is switched off; any other
option is a :class:`~mlo_exp.trainer.TrainerCallback` built with ``run=`` and ``logger=``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from hydra.utils import instantiate
from omegaconf import DictConfig, OmegaConf

from mlo_exp.agents.base import Agent
from mlo_exp.config import RunConfig
from mlo_exp.env import TensorGame
from mlo_exp.loggers.base import Logger, LoggerGroup
from mlo_exp.loggers.console import ConsoleLogger
from mlo_exp.loggers.files import FilesLogger
from mlo_exp.reference import best_known_rank
from mlo_exp.run_context import RunContext, seed_everything
from mlo_exp.trainer import RunSummary, Trainer, TrainerCallback

log = logging.getLogger("mlo_exp")

COMPONENT_GROUPS = ("checkpoint", "plot", "benchmark")


def build_game(settings: RunConfig) -> TensorGame:
    env = settings.env
    return TensorGame(env.shape, env.coefficients, env.max_rank, env.ring, settings.device)


def build_agent(cfg: DictConfig, game: TensorGame, seed: int) -> Agent:
    return instantiate(cfg.agent, game=game, seed=seed, _convert_="all")


def build_logger(cfg: DictConfig, run: RunContext) -> LoggerGroup:
    """The run files, the console, and the configured backend (when it is not the console)."""
    backend: Logger = instantiate(cfg.logger, _convert_="all")
    members: list[Logger] = [FilesLogger(run.run_dir)]
    if not isinstance(backend, ConsoleLogger):
        members.append(ConsoleLogger())
    members.append(backend)
    return LoggerGroup(members)


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
        overrides: list[str] | None = None) -> RunSummary:
    """Run one experiment in ``run_dir``; returns its summary."""
    run_dir.mkdir(parents=True, exist_ok=True)
    run = RunContext.create(run_dir, settings.seed, run_name_parts(settings, cfg), job_num,
                            overrides)
    log.info("run_id %s", run.run_id)
    run.write()
    seed_everything(settings.seed)
    game = build_game(settings)
    agent = build_agent(cfg, game, settings.seed)
    logger = build_logger(cfg, run)
    status = "failed"
    try:
        resolved: dict[str, Any] = OmegaConf.to_container(cfg, resolve=True)  # type: ignore
        logger.start(run, {"run_id": run.run_id, **resolved})
        trainer = Trainer(game, agent, logger, run, settings.trainer,
                          build_components(cfg, run, logger),
                          best_known_rank(settings.env.shape, settings.env.ring))
        summary = trainer.fit()
        status = summary.status
        return summary
    finally:
        logger.finish(status)
