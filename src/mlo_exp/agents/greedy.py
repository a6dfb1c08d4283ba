"""The greedy baseline: each move is the term that shrinks the residual the most.

For a candidate pair ``(u, v)`` with ``s = u (x) v`` (flattened over A x B), the best ``w`` is
found exactly, coordinate by coordinate: choosing ``w_c`` changes the squared residual norm
by ``-(2 w_c <R[:, :, c], s> - w_c^2 |s|^2)``, so each ``w_c`` independently takes the
coefficient with the largest gain. Over ``Z2`` (residual and factors in {0,1}) the same
formula counts the ones removed. The move is the candidate with the largest total gain; ties
are broken at random.

Candidates: every pair of non-zero ``u``, ``v`` when there are at most ``max_candidates``
pairs; otherwise all single-entry pairs (so one entry of the residual can always be removed,
and the school method is always reachable) plus random pairs drawn afresh each episode
(:meth:`GreedyAgent.plan_episode`; the episode's candidates reach :meth:`GreedyAgent.act` as
its ``plan``). Everything is computed on the game's device.
"""

from __future__ import annotations

import itertools
from typing import Any, NamedTuple

import torch

from mlo_exp.agents.base import GamePlayer
from mlo_exp.config import GreedyAgentConfig
from mlo_exp.env import GameState, TensorGame


class Candidates(NamedTuple):
    """One episode's candidate pairs ``u (K, nm)``, ``v (K, mp)`` and ``vec(u (x) v)``."""

    u: torch.Tensor
    v: torch.Tensor
    khatri_rao: torch.Tensor  # (K, nm*mp) float64


class GreedyAgent(GamePlayer):
    """Steepest descent on the residual norm; finds the school method's rank on small shapes."""

    def __init__(self, game: TensorGame, seed: int, **settings: Any) -> None:
        """``settings``: fields of :class:`~mlo_exp.config.GreedyAgentConfig` (defaults there)."""
        self.settings = GreedyAgentConfig(**settings)
        super().__init__(game, seed=seed, batch_size=self.settings.batch_size)
        self._values = torch.tensor(game.coefficients, dtype=torch.float64, device=self.device)
        self._enumerated = self._enumerate_pairs()

    def _enumerate_pairs(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        dim_u, dim_v, _ = self.game.dims
        nonzero = len(self.game.coefficients) - (0 in self.game.coefficients)
        count_u = len(self.game.coefficients) ** dim_u - (0 in self.game.coefficients)
        count_v = len(self.game.coefficients) ** dim_v - (0 in self.game.coefficients)
        if nonzero == 0 or count_u * count_v > self.settings.max_candidates:
            return None
        us, vs = self._all_vectors(dim_u), self._all_vectors(dim_v)
        return us.repeat_interleave(len(vs), 0), vs.repeat(len(us), 1)

    def _all_vectors(self, length: int) -> torch.Tensor:
        vectors = torch.tensor(list(itertools.product(self.game.coefficients, repeat=length)),
                               device=self.device)
        return vectors[(vectors != 0).any(dim=1)]

    def _candidate_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        if self._enumerated is not None:
            return self._enumerated
        dim_u, dim_v, _ = self.game.dims
        one = 1 if 1 in self.game.coefficients else next(c for c in self.game.coefficients if c)
        eye_u = torch.eye(dim_u, dtype=torch.int64, device=self.device) * one
        eye_v = torch.eye(dim_v, dtype=torch.int64, device=self.device) * one
        unit_u, unit_v = eye_u.repeat_interleave(dim_v, 0), eye_v.repeat(dim_u, 1)
        extra = max(self.settings.max_candidates - len(unit_u), 0)
        random_u = self.sample_nonzero(extra, dim_u)
        random_v = self.sample_nonzero(extra, dim_v)
        return torch.cat([unit_u, random_u]), torch.cat([unit_v, random_v])

    def plan_episode(self) -> Candidates:
        """This episode's candidates (random ones drawn now when enumeration is too large)."""
        u, v = self._candidate_pairs()
        return Candidates(u, v, (u[:, :, None] * v[:, None, :]).flatten(1).double())

    def act(self, state: GameState, plan: Candidates | None = None) -> torch.Tensor:
        if plan is None:  # a single call outside an episode: draw candidates for it
            plan = self.plan_episode()
        batch = state.batch_size
        dim_u, dim_v, dim_w = self.game.dims
        residual = state.residual.reshape(batch, dim_u * dim_v, dim_w).double()
        s = plan.khatri_rao
        overlap = torch.einsum("kx,bxc->bkc", s, residual)  # <R[:, :, c], s_k>
        norm2 = (s * s).sum(dim=1)[None, :, None]
        values = self._values[:, None, None, None]
        gains = 2 * values * overlap[None] - values**2 * norm2[None]  # (F, B, K, C)
        best_gain, best_index = gains.max(dim=0)
        w = self._values[best_index]  # (B, K, C)
        total = best_gain.sum(dim=2)
        total = total.masked_fill((w == 0).all(dim=2), float("-inf"))
        noise = torch.rand(total.shape, generator=self.generator, dtype=torch.float64,
                           device=self.device) * 1e-3
        choice = torch.argmax(total + noise, dim=1)  # (B,)
        rows = torch.arange(batch, device=self.device)
        return torch.cat([plan.u[choice], plan.v[choice], w[rows, choice].long()], dim=1)
