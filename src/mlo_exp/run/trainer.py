"""The episode loop: play, log, keep the best exactly verified algorithm, summarise.

Components that act around the loop (checkpointing, live plots, the benchmark stage) are
:class:`TrainerCallback` objects; the trainer calls them in the order given.
"""

from __future__ import annotations

import json
import logging
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from mlo_exp.agents.base import Agent, EpisodeResult
from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.config import TrainerConfig
from mlo_exp.env import TensorGame
from mlo_exp.io import atomic_write_text
from mlo_exp.loggers.base import Logger
from mlo_exp.run.progress import EpisodeProgress
from mlo_exp.run_context import RunContext
from mlo_exp.signals import StopSignals

log = logging.getLogger("mlo_exp")


class TrainerCallback:
    """Hooks around the episode loop; every method is optional."""

    def on_run_start(self, trainer: Trainer) -> None:
        """Before the first episode (a resume restores state here)."""

    def on_episode_end(self, trainer: Trainer, record: dict[str, Any]) -> None:
        """After each episode has been logged."""

    def on_new_best(self, trainer: Trainer, algorithm: Algorithm, path: Path) -> None:
        """After a new best algorithm was verified and written."""

    def on_run_end(self, trainer: Trainer, summary: RunSummary) -> None:
        """After the loop, before the summary is logged (the summary may be extended)."""


@dataclass
class RunSummary:
    """What a run achieved; written to ``summary.json`` and printed at the end."""

    run_id: str
    run_name: str
    run_dir: str
    shape: list[int]
    ring: str
    agent: str
    seed: int
    episodes: int
    moves: int
    wall_time_s: float
    best_rank: int | None
    verified: bool
    best_known_rank: int | None
    algorithm_path: str | None
    stop_reason: str
    status: str = "success"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


class Trainer:
    """Runs episodes until a budget ends; see :class:`mlo_exp.config.TrainerConfig`."""

    def __init__(
        self,
        game: TensorGame,
        agent: Agent,
        logger: Logger,
        run: RunContext,
        config: TrainerConfig,
        callbacks: list[TrainerCallback] | None = None,
        best_known_rank: int | None = None,
        signals: StopSignals | None = None,
    ) -> None:
        self.game, self.agent, self.logger, self.run = game, agent, logger, run
        # The run's SIGINT/SIGTERM record (mlo_exp.signals); a private one when none is given.
        self.signals = signals if signals is not None else StopSignals()
        self.config = config
        self.callbacks = list(callbacks or [])
        self.best_known_rank = best_known_rank
        self.stop_at_rank = config.stop_at_rank if config.stop_at_rank else best_known_rank
        self.episode = 0  # finished episodes
        self.moves = 0  # global move count
        self.best: Algorithm | None = None
        self.stop_reason: str | None = None
        # What the agent reports inside an episode (Agent.report_progress), rate-limited.
        self.progress = EpisodeProgress(self)
        agent.progress_callback = self.progress

    @property
    def best_rank(self) -> int | None:
        return self.best.rank if self.best is not None else None

    @property
    def algorithm_path(self) -> Path:
        return self.run.run_dir / "algorithm.json"

    def request_stop(self, reason: str) -> None:
        """Ask the loop to stop after the current episode (signal handlers use this)."""
        self.stop_reason = reason

    def fit(self) -> RunSummary:
        """Run the loop and return the summary (written to ``summary.json``).

        Budgets are checked between episodes (an episode is never cut short): the run stops
        at the first of ``stop_at_rank`` reached, ``episodes`` played, ``time_limit_s``
        elapsed, a signal, or a failed write (status ``failed``, stop reason
        ``write_failed``: the disk is full or the run directory not writable)."""
        status = "success"
        self.signals.finishing(False)
        try:
            self.signals.listen(lambda name: self.request_stop(f"signal_{name}"))
            for callback in self.callbacks:
                callback.on_run_start(self)
            while self.stop_reason is None:
                self.stop_reason = self._budget_exhausted()
                if self.stop_reason is None:
                    self._run_one_episode()
        except KeyboardInterrupt:
            self.stop_reason = self.stop_reason or "interrupted"
            status = "interrupted"
        except OSError as error:
            log.error("cannot write %s (%s); the run stops, the files written before are "
                      "intact", getattr(error, "filename", None) or "a run file",
                      error.strerror or error)
            self.stop_reason, status = "write_failed", "failed"
        self.signals.finishing()
        if self.signals.received is not None and status == "success":
            status = "interrupted"
        summary = self._summary(status)
        try:
            for callback in self.callbacks:
                callback.on_run_end(self, summary)
        except KeyboardInterrupt:  # a second signal while a component ends the run
            summary.status = "interrupted"
        if self.signals.received is not None and summary.status == "success":
            summary.status = "interrupted"  # a signal while the components ended the run
        data = summary.to_dict()
        self.logger.log_summary(data)  # a LoggerGroup adds logger_failures to it
        try:
            atomic_write_text(self.run.run_dir / "summary.json",
                              json.dumps(data, indent=1) + "\n")
        except OSError as error:
            log.error("cannot write %s (%s)", self.run.run_dir / "summary.json",
                      error.strerror or error)
            summary.status = "failed"
        return summary

    def _budget_exhausted(self) -> str | None:
        if self.stop_at_rank is not None and self.best_rank is not None \
                and self.best_rank <= self.stop_at_rank:
            return "target_rank"
        if self.config.episodes is not None and self.episode >= self.config.episodes:
            return "episodes"
        if self.config.time_limit_s is not None and self.run.elapsed() >= self.config.time_limit_s:
            return "time_limit"
        return None

    def _run_one_episode(self) -> None:
        self.progress.start_episode(self.episode + 1)
        result = self.agent.run_episode()
        self.episode += 1
        self.moves += result.moves
        if result.solved and (self.best_rank is None or result.rank_used < self.best_rank):
            self._accept_candidate(result)
        record = self._record(result)
        self.logger.log_episode(record)
        for callback in self.callbacks:
            callback.on_episode_end(self, record)

    def _record(self, result: EpisodeResult) -> dict[str, Any]:
        return {
            "run_id": self.run.run_id,
            "episode": self.episode,
            "moves": self.moves,
            "wall_time_s": round(self.run.elapsed(), 3),
            "reward": result.reward,
            "residual_norm": result.residual_norm,
            "rank_used": result.rank_used,
            "solved": result.solved,
            "best_rank": self.best_rank,
            **result.metrics,
        }

    def _accept_candidate(self, result: EpisodeResult) -> None:
        """Keep a solved game's factors only after exact verification."""
        assert result.factors is not None
        u, v, w = result.factors
        algorithm = Algorithm(
            self.game.shape, u, v, w, self.game.ring,
            {
                "name": f"{self.run.run_name}-rank{result.rank_used}",
                "source": "discovered",
                "run_id": self.run.run_id,
                "agent": type(self.agent).__name__,
                "seed": self.run.seed,
                "episode": self.episode,
                "found_after_s": round(self.run.elapsed(), 3),
            },
        )
        check = algorithm.verify()
        if not check.ok:
            log.warning("episode %d: game reported solved but exact verification failed: %s",
                        self.episode, check.describe())
            return
        algorithm.provenance["verified"] = f"exact over {algorithm.ring}"
        self.best = algorithm
        self.save_best()
        log.info("episode %d: new best rank %d, exactly verified over %s -> %s",
                 self.episode, algorithm.rank, algorithm.ring, self.algorithm_path)
        record = {"run_id": self.run.run_id, "episode": self.episode, "rank": algorithm.rank}
        self.logger.log_new_best(algorithm, self.algorithm_path, record)
        for callback in self.callbacks:
            callback.on_new_best(self, algorithm, self.algorithm_path)

    def save_best(self) -> None:
        """Write ``algorithm.json`` and ``algorithm.txt`` (formulas) atomically."""
        assert self.best is not None
        self.best.save(self.algorithm_path)
        header = f"# run_id {self.run.run_id}\n# {self.best.name}\n"
        atomic_write_text(self.algorithm_path.with_suffix(".txt"),
                          header + self.best.formulas() + "\n")

    def _summary(self, status: str) -> RunSummary:
        return RunSummary(
            run_id=self.run.run_id,
            run_name=self.run.run_name,
            run_dir=str(self.run.run_dir),
            shape=list(self.game.shape),
            ring=self.game.ring,
            agent=type(self.agent).__name__,
            seed=self.run.seed,
            episodes=self.episode,
            moves=self.moves,
            wall_time_s=round(self.run.elapsed(), 3),
            best_rank=self.best_rank,
            verified=self.best is not None,
            best_known_rank=self.best_known_rank,
            algorithm_path=str(self.algorithm_path) if self.best is not None else None,
            stop_reason=self.stop_reason or "episodes",
            status=status,
        )

    # -- resume support ------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """Loop state: counters, elapsed time and the best algorithm (as its JSON dict)."""
        return {
            "episode": self.episode,
            "moves": self.moves,
            "run_duration_s": self.run.elapsed(),
            "best": self.best.to_dict() if self.best is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.episode = int(state["episode"])
        self.moves = int(state["moves"])
        self.best = Algorithm.from_dict(state["best"], "checkpoint") if state["best"] else None
