"""The agent interface and the episode loop shared by game-playing agents.

An **episode**, for the trainer, is one call of :meth:`Agent.run_episode`: for the agents
here, a batch of ``batch_size`` games played to the end in parallel (then learned from). An
agent that is not a game player (a local search, say) defines its own episode as one unit of
progress, documents it, and reports an :class:`EpisodeResult` all the same.

Randomness: each agent owns a :class:`torch.Generator` seeded from the run's seed and saved
in its ``state_dict``, so a run is reproducible on the CPU and resumable.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mlo_exp.env import GameState, TensorGame

Factors = tuple[np.ndarray, np.ndarray, np.ndarray]


@dataclass
class EpisodeResult:
    """What one episode produced, reported for its best game.

    ``factors`` are the moves of that game as ``(U, V, W)`` (columns are moves, layout of
    :mod:`mlo_exp.tensor`); ``moves`` counts every move played in the episode (all games),
    which the trainer sums into the global step. ``metrics`` holds agent-specific scalars
    (losses, batch means), logged beside the standard columns.
    """

    reward: float
    residual_norm: float
    rank_used: int
    solved: bool
    factors: Factors | None
    moves: int
    games: int = 1
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Trajectory:
    """A batch of finished games: per move ``t``, the state before it, the action, the reward."""

    states: list[GameState]
    actions: list[torch.Tensor]
    rewards: list[torch.Tensor]
    final: GameState

    @property
    def returns(self) -> torch.Tensor:
        """Undiscounted return of each game, ``(B,)``."""
        return torch.stack(self.rewards).sum(dim=0)


class Agent(ABC):
    """Base class: subclasses implement :meth:`act`, and :meth:`learn` if they learn."""

    def __init__(self, game: TensorGame, seed: int = 0, batch_size: int = 16) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}; must be >= 1")
        self.game = game
        self.batch_size = int(batch_size)
        self.generator = torch.Generator(device="cpu").manual_seed(int(seed))

    @abstractmethod
    def act(self, state: GameState) -> torch.Tensor:
        """Actions ``(B, action_dim)`` for every game of ``state`` (finished ones included)."""

    def learn(self, trajectory: Trajectory) -> dict[str, float]:
        """Update from a batch of finished games; return scalar metrics. Default: nothing."""
        return {}

    def run_episode(self) -> EpisodeResult:
        """Play ``batch_size`` games to the end, learn from them, report the best one."""
        trajectory = self.play(self.game.reset(self.batch_size))
        metrics = self.learn(trajectory)
        return self.summarise(trajectory, metrics)

    def play(self, state: GameState) -> Trajectory:
        states, actions, rewards = [], [], []
        while not bool(state.done.all()):
            action = self.act(state)
            next_state, reward, _ = self.game.step(state, action)
            states.append(state)
            actions.append(action)
            rewards.append(reward)
            state = next_state
        return Trajectory(states, actions, rewards, state)

    def summarise(self, trajectory: Trajectory, metrics: dict[str, float]) -> EpisodeResult:
        final = trajectory.final
        returns = trajectory.returns if trajectory.rewards else torch.zeros(final.batch_size)
        # Best game: solved with the fewest moves, else the highest return.
        score = torch.where(final.solved, -final.moves.double() + 1e6, returns.double())
        best = int(torch.argmax(score))
        info = self.game.info(final)
        solved = bool(final.solved[best])
        metrics = {
            "mean_reward": float(returns.mean()),
            "solve_rate": float(final.solved.float().mean()),
            **metrics,
        }
        return EpisodeResult(
            reward=float(returns[best]),
            residual_norm=float(info["residual_norm"][best]),
            rank_used=int(final.moves[best]),
            solved=solved,
            factors=self.game.factors(final, best),
            moves=int(final.moves.sum()),
            games=final.batch_size,
            metrics=metrics,
        )

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: subclasses extend (networks, optimisers)."""
        return {"generator": self.generator.get_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.generator.set_state(state["generator"])

    # -- helpers for subclasses ---------------------------------------------------------
    def sample_coefficients(self, count: int, length: int) -> torch.Tensor:
        """``(count, length)`` entries drawn uniformly from the coefficient set."""
        values = torch.tensor(self.game.coefficients)
        index = torch.randint(len(values), (count, length), generator=self.generator)
        return values[index]

    def sample_nonzero(self, count: int, length: int) -> torch.Tensor:
        """Like :meth:`sample_coefficients`, but no row is all zero (uniform by rejection)."""
        rows = self.sample_coefficients(count, length)
        zero = (rows == 0).all(dim=1)
        while bool(zero.any()):
            rows[zero] = self.sample_coefficients(int(zero.sum()), length)
            zero = (rows == 0).all(dim=1)
        return rows
