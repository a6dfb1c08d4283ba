"""The flip-graph agent: walks, restarts and the pool, one episode at a time.

**Episode** (for the trainer): one walk segment — every walk makes ``flips_per_episode`` flip
attempts (:meth:`Walks.advance`), then stalled walks restart from the population and the pool is
shared. The episode reports the best decomposition found so far (``solved=True``: every state
of a walk is a complete decomposition; the trainer still verifies it exactly before keeping
it), ``rank_used`` its rank, ``moves`` the flips made (all walks). The moves and the search:
:mod:`mlo_exp.agents.flipgraph`.

Threads: walks are split into ``threads`` chunks run by Python threads (the kernels release
the GIL). Randomness: one xorshift64* stream per walk, seeded from the run seed and kept in
:meth:`state_dict` with the walks and the population, so a run is reproducible and a resumed
run replays the uninterrupted one exactly (indexes are rebuilt from the schemes after every
episode and after loading, so they never differ between the two).

Device: the search runs on the CPU (NumPy arrays, numba kernels) whatever the game's device
(``device=cuda`` is accepted and changes nothing); the trainer verifies every reported scheme
exactly.
"""

from __future__ import annotations

import logging
import os
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

from mlo_exp.agents.base import Agent, EpisodeResult
from mlo_exp.agents.flipgraph import projection
from mlo_exp.agents.flipgraph.population import JobPool, Population, is_dead_end
from mlo_exp.agents.flipgraph.walks import COUNTS, Walks, bound_of, make_walks
from mlo_exp.config import FlipGraphAgentConfig
from mlo_exp.env import TensorGame

log = logging.getLogger("mlo_exp")


class FlipGraphAgent(Agent):
    """Many flip-graph random walks (see :mod:`mlo_exp.agents.flipgraph`)."""

    device_types = None  # any game device: the search itself runs on the CPU
    compute_on_cpu = True

    def __init__(self, game: TensorGame, seed: int, **settings: Any) -> None:
        """``settings``: fields of :class:`~mlo_exp.config.FlipGraphAgentConfig` (defaults
        and checks there)."""
        self.settings = s = FlipGraphAgentConfig(**settings)
        super().__init__(game, seed=seed, batch_size=s.batch_size)
        self.threads = max(1, min(int(s.threads or os.cpu_count() or 1), s.walks))
        seeds = np.random.SeedSequence(int(seed)).generate_state(s.walks, dtype=np.uint64)
        walked = game if s.project_from is None else TensorGame(
            projection.larger_shape(game.shape, s.project_from), game.coefficients,
            ring=game.ring)
        self.walks: Walks = make_walks(walked, s, seeds | np.uint64(1))  # xorshift: never 0
        self.projected: tuple[np.ndarray, ...] | None = None  # best restriction (project_from)
        self.record: tuple[np.ndarray, ...] | None = None  # the lowest-rank scheme any walk had
        self._keep_record()
        self.idle = np.zeros(s.walks, dtype=np.int64)  # episodes since the walk improved
        self.population = Population(s.population, game.ring)
        self.restarts = 0
        self.episodes_run = 0
        self.pool = None if s.pool_dir is None else JobPool(
            Path(s.pool_dir).expanduser().resolve(), walked.shape, game.ring,
            bound_of(game, s), self.walks.capacity)

    # -- one episode -------------------------------------------------------------------------
    def run_episode(self) -> EpisodeResult:
        walks = self.walks
        counts = np.zeros((self.settings.walks, len(COUNTS)), dtype=np.int64)
        best_before = walks.best_rank.copy()
        walks.floor = int(self.record[0].shape[1])
        started = time.perf_counter()
        chunks = [c for c in np.array_split(np.arange(self.settings.walks), self.threads)
                  if len(c)]
        if len(chunks) == 1:
            walks.advance(0, self.settings.walks, counts)
        else:
            with ThreadPoolExecutor(len(chunks)) as pool:
                for job in [pool.submit(walks.advance, int(c[0]), int(c[-1]) + 1, counts)
                            for c in chunks]:
                    job.result()
        seconds = time.perf_counter() - started
        walks.rebuild()  # indexes as a function of the schemes: resume replays exactly
        self.idle = np.where(walks.best_rank < best_before, 0, self.idle + 1)
        self._keep_record()
        self._remember_frontier()
        restarted = self._restart_stalled_walks()
        self.episodes_run += 1
        pooled = self._share_pool() if self.pool is not None else 0
        self._keep_record()  # a scheme from the pool
        best = int(np.argmin(walks.best_rank))
        total = counts.sum(axis=0)
        attempts = self.settings.walks * self.settings.flips_per_episode
        factors = self.record
        if self.settings.project_from is not None:
            factors = self._project()
        return EpisodeResult(
            reward=-float(factors[0].shape[1]),
            residual_norm=0.0,
            rank_used=int(factors[0].shape[1]),
            solved=True,
            factors=factors,
            moves=int(total[0]),
            games=self.settings.walks,
            metrics={
                "mean_rank": float(walks.rank.mean()),
                "min_rank": int(walks.rank.min()),
                "flips_per_s": float(total[0]) / max(seconds, 1e-9),
                "attempts_per_s": attempts / max(seconds, 1e-9),
                "useless_share": float(total[3]) / attempts,
                **{name: int(value) for name, value in zip(COUNTS[1:], total[1:], strict=True)},
                "mean_plus_limit": float(walks.slack.mean()),
                "population": self.population.count(int(walks.best_rank[best])),
                "restarts": restarted,
                "pool_restarts": pooled,
                "walk_rank": int(walks.best_rank[best]),
            },
        )

    def _project(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The lowest-rank restriction (any slice dropped) to the run's shape of any walk's
        current or best scheme so far (``agent.project_from``;
        :mod:`~mlo_exp.agents.flipgraph.projection`)."""
        for walk in range(self.settings.walks):
            for factors in (self.walks.best_factors(walk), self.walks.current_factors(walk)):
                small = projection.best_restriction(factors, self.game.shape,
                                                    self.settings.project_from)
                if self.projected is None or small[0].shape[1] < self.projected[0].shape[1]:
                    self.projected = small
        return self.projected

    def _keep_record(self) -> None:
        """The lowest-rank scheme any walk has had (the first found, on ties): what an episode
        reports, kept apart from the walks because a walk whose best is a dead end restarts
        elsewhere."""
        walk = int(np.argmin(self.walks.best_rank))
        if self.record is None or self.walks.best_rank[walk] < self.record[0].shape[1]:
            self.record = self.walks.best_factors(walk)

    def _remember_frontier(self) -> None:
        """Offer every walk's best scheme, and its current one when it is at its best rank, to
        the population (distinct schemes of the two lowest ranks)."""
        for walk in range(self.settings.walks):
            self.population.add(self.walks.best_factors(walk))
            if self.walks.rank[walk] == self.walks.best_rank[walk]:
                self.population.add(self.walks.current_factors(walk))

    def _restart_stalled_walks(self) -> int:
        """Walks idle for ``restart_after`` episodes whose best rank is above the frontier
        (the population's best rank), and walks whose best scheme is a dead end (no flip
        leaves it: the walk could only bounce between it and one plus transition above it),
        restart from the population's least-used scheme of the frontier rank. Other walks at
        the frontier are never restarted: their bounded paths (``path_flips``) bring them back
        to their own best, which keeps the frontier's schemes apart."""
        frontier = self.population.best_rank
        if frontier is None:
            return 0
        ring = self.walks.game.ring
        dead = np.array([is_dead_end(self.walks.best_factors(walk), ring)
                         for walk in range(self.settings.walks)])
        stalled = np.flatnonzero(((self.idle >= self.settings.restart_after)
                                  & (self.walks.best_rank > frontier)) | dead)
        restarted = 0
        for walk in stalled:
            factors = self.population.pick(frontier)
            if factors is None or not self.walks.load(int(walk), factors):
                continue
            self.walks.reset_counters(int(walk))
            self.idle[walk] = 0
            restarted += 1
        if restarted:
            self.walks.rebuild()
            self.restarts += restarted
        return restarted

    # -- the pool: one search over many jobs -------------------------------------------------
    def _share_pool(self) -> int:
        """Every ``pool_every`` episodes: publish this agent's best when it improved, then
        restart walks from the pool's best when it is better than theirs and they are
        stalled, or better than this agent's best (then at least one walk takes it)."""
        if self.episodes_run % self.settings.pool_every:
            return 0
        walks = self.walks
        self.pool.publish(walks.best_factors(int(np.argmin(walks.best_rank))))
        found = self.pool.best()
        if found is None:
            return 0
        pool_rank, factors = found
        news = pool_rank < walks.best_rank.min()
        targets = np.flatnonzero((walks.best_rank > pool_rank)
                                 & ((self.idle >= self.settings.restart_after) | news))
        if news and not len(targets):
            targets = np.array([int(np.argmax(walks.best_rank))])
        restarted = 0
        for walk in targets:
            if walks.load(int(walk), factors):
                walks.reset_counters(int(walk))
                self.idle[walk] = 0
                restarted += 1
        if restarted:
            walks.rebuild()
            self.population.add(factors)
        return restarted

    # -- what the trainer and the tests read ----------------------------------------------
    def best_factors(self, walk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Walk ``walk``'s best decomposition as ``(U, V, W)``, columns = terms, int64."""
        return self.walks.best_factors(walk)

    def current_factors(self, walk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Walk ``walk``'s current decomposition (same layout as :meth:`best_factors`)."""
        return self.walks.current_factors(walk)

    # -- checkpoints ---------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update({"walks": self.walks.state_dict(), "idle": self.idle.copy(),
                      "population": self.population.state_dict(),
                      "restarts": self.restarts, "episodes_run": self.episodes_run,
                      "projected": [] if self.projected is None else list(self.projected),
                      "record": list(self.record),
                      "published": -1 if self.pool is None or self.pool.published is None
                      else self.pool.published})
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.walks.load_state_dict(state["walks"])
        idle = np.asarray(state["idle"])
        if idle.shape != self.idle.shape:
            raise ValueError(f"flipgraph checkpoint: idle has shape {idle.shape}, this agent "
                             f"needs {self.idle.shape} (same walks?)")
        self.idle = idle.astype(np.int64).copy()
        self.population.load_state_dict(state["population"])
        self.restarts = int(state["restarts"])
        self.episodes_run = int(state["episodes_run"])
        record = state.get("record") or []  # absent from checkpoints of before the record
        self.record = tuple(np.asarray(f, dtype=np.int64) for f in record) or None
        self._keep_record()
        projected = state.get("projected") or []
        self.projected = tuple(np.asarray(f, dtype=np.int64) for f in projected) or None
        if self.pool is not None and int(state["published"]) >= 0:
            self.pool.published = int(state["published"])
