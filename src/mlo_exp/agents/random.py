"""The random baseline: every move uniform over the action set.

The action set is every ``(u, v, w)`` with entries from the coefficient set and none of the
three factors all zero (a zero factor would spend a move doing nothing). Sampling is uniform
by rejection: each factor is drawn entry-wise until it is non-zero.
"""

from __future__ import annotations

from typing import Any

import torch

from mlo_exp.agents.base import GamePlayer
from mlo_exp.config import RandomAgentConfig
from mlo_exp.env import GameState, TensorGame


class RandomAgent(GamePlayer):
    """Uniform random moves; learns nothing. The floor every agent is compared against."""

    def __init__(self, game: TensorGame, seed: int, **settings: Any) -> None:
        """``settings``: fields of :class:`~mlo_exp.config.RandomAgentConfig` (defaults there)."""
        self.settings = RandomAgentConfig(**settings)
        super().__init__(game, seed=seed, batch_size=self.settings.batch_size)

    def act(self, state: GameState, plan: Any = None) -> torch.Tensor:
        return torch.cat([self.sample_nonzero(state.batch_size, d) for d in self.game.dims], 1)
