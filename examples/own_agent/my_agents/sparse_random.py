"""A template agent: random moves with sparse factors (copy this file to start your own).

The action set is the game's: a move is a term ``(u, v, w)`` with entries from the
coefficient set. Here each entry is non-zero with probability ``density`` (its value then
uniform over the non-zero coefficients); a factor that came out all zero is drawn again, so
no move is wasted. Sparse terms are what fast algorithms are made of (Strassen's factors have
one or two non-zero entries); whether that helps a random search is for a sweep across seeds
to say (docs/own_agent.md, step 4), not this docstring.

What the framework gives an agent (``mlo_exp.agents.base``):

* ``GamePlayer``: implement :meth:`act` (actions for a batch of games); ``run_episode``
  plays ``batch_size`` games to the end and reports the best one; the trainer verifies it
  exactly, logs it, checkpoints, plots;
* ``self.game`` (shape, coefficients, ``dims``), ``self.device``, and ``self.generator``: a
  torch generator seeded from ``seed`` and saved in checkpoints (use it for every random draw
  and a run is reproducible and resumes exactly);
* ``self.report_progress(**numbers)``: progress inside a long episode, printed at most every
  10 s.

Settings come from the YAML option (``conf/agent/sparse_random.yaml``) as keyword arguments;
the dataclass below holds their defaults and checks, so a bad value (``agent.density=2``)
stops the run with one line naming it (a ``ValueError`` raised here becomes exit code 2).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from mlo_exp.agents.base import GamePlayer
from mlo_exp.env import GameState, TensorGame


@dataclass
class SparseRandomSettings:
    """The agent's settings: every default lives here (the YAML holds what differs)."""

    density: float = 0.3  # share of non-zero entries per factor, in (0, 1]
    batch_size: int = 16  # games per episode

    def __post_init__(self) -> None:
        if not 0 < self.density <= 1:
            raise ValueError(f"agent.density={self.density}; must be in (0, 1], e.g. 0.3")
        if self.batch_size < 1:
            raise ValueError(f"agent.batch_size={self.batch_size}; must be >= 1")


class SparseRandomAgent(GamePlayer):
    """Random moves whose factors have about ``density`` non-zero entries (see above)."""

    def __init__(self, game: TensorGame, seed: int, **settings: Any) -> None:
        self.settings = SparseRandomSettings(**settings)
        super().__init__(game, seed=seed, batch_size=self.settings.batch_size)
        nonzero = [c for c in game.coefficients if c != 0]
        if not nonzero:
            raise ValueError("the coefficient set has no non-zero value")
        self._nonzero = torch.tensor(nonzero, device=self.device)

    def act(self, state: GameState, plan: Any = None) -> torch.Tensor:
        """One term per game: ``(B, action_dim)``, the factors u, v, w side by side."""
        return torch.cat([self._sparse_factor(state.batch_size, d) for d in self.game.dims], 1)

    def _sparse_factor(self, count: int, length: int) -> torch.Tensor:
        rows = self._draw(count, length)
        empty = (rows == 0).all(dim=1)
        while bool(empty.any()):  # redraw the all-zero factors
            rows[empty] = self._draw(int(empty.sum()), length)
            empty = (rows == 0).all(dim=1)
        return rows

    def _draw(self, count: int, length: int) -> torch.Tensor:
        keep = torch.rand(count, length, generator=self.generator,
                          device=self.device) < self.settings.density
        pick = torch.randint(len(self._nonzero), (count, length), generator=self.generator,
                             device=self.device)
        return torch.where(keep, self._nonzero[pick], torch.zeros_like(pick).to(
            self._nonzero.dtype))
