"""Synthetic demonstrations for the MCTS agent: random sparse decompositions, never read.

A demonstration is a random decomposition: ``R`` terms (``R`` uniform in ``1..max_rank``)
drawn from the sparse prior of :class:`~mlo_exp.agents.mcts_moves.MoveSpace` (1 to
``nonzeros`` non-zero entries per factor), ``k < R`` of them "already played" (they make the
history and are projected out of the relaxed residual), the state is the sum of the others.
Targets: one of the remaining terms for the policy, ``-(R - k)`` for the value. With
``pool > 1`` half of each batch is the most cancelling (fewest non-zero entries of the sum
per non-zero entry of its terms) of ``pool`` times as many, sets with two terms that merge
trivially (two shared factors) or with fewer than 3 terms last.

Everything is drawn from the caller's generator: no known algorithm is involved.
"""

from __future__ import annotations

import torch

from mlo_exp.agents import pair_algebra
from mlo_exp.agents.mcts_moves import MoveSpace


class Demonstrations:
    """A generator of demonstration batches (see the module docstring)."""

    def __init__(self, space: MoveSpace, max_rank: int, nonzeros: int, pool: int,
                 history: int, generator: torch.Generator) -> None:
        self.space, self.max_rank, self.nonzeros = space, max_rank, nonzeros
        self.pool, self.history, self.generator = pool, history, generator

    def _rand(self, count: int) -> torch.Tensor:
        return torch.rand((count,), generator=self.generator, device=self.space.device)

    def random_decompositions(self, count: int
                              ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ranks ``(count,)``, canonical terms ``(count, R, A)`` (values; slots beyond the
        rank unused) and their rank-one tensors ``(count, R, *dims)``."""
        space, rank = self.space, self.max_rank
        total = torch.randint(1, rank + 1, (count,), generator=self.generator,
                              device=space.device)
        terms = torch.cat([space.sparse_factors(count * rank, d, self.nonzeros, self.generator)
                           for d in space.dims], 1)
        terms = space.canonical(terms.view(count, rank, space.action_dim))
        u, v, w = torch.split(terms, space.dims, dim=-1)
        one = u[..., :, None, None] * v[..., None, :, None] * w[..., None, None, :]
        return total, terms, one

    def _most_cancelling(self, count: int) -> tuple[torch.Tensor, ...]:
        """The ``count`` most cancelling of ``count * pool`` random decompositions."""
        rank, device = self.max_rank, self.space.device
        total, terms, one = self.random_decompositions(count * self.pool)
        slot = torch.arange(rank, device=device)[None]
        used = slot < total[:, None]
        full = (one * used[..., None, None, None]).sum(dim=1)
        size = ((one != 0).flatten(2).sum(dim=2) * used).sum(dim=1)
        score = (full != 0).flatten(1).sum(dim=1) / size.clamp_min(1)
        # Trivial cancellation (two terms sharing two factors merge) does not count.
        u, v, w = torch.split(terms, self.space.dims, dim=-1)
        same = [(f[:, :, None] == f[:, None, :]).all(dim=-1) for f in (u, v, w)]
        pair = used[:, :, None] & used[:, None, :] & ~torch.eye(rank, dtype=torch.bool,
                                                                device=device)
        merge = ((same[0] & same[1]) | (same[0] & same[2]) | (same[1] & same[2])) & pair
        score = score + merge.flatten(1).any(dim=1) + (total < 3)
        keep = score.argsort(stable=True)[:count]
        return total[keep], terms[keep], one[keep]

    def __call__(self, count: int) -> dict[str, torch.Tensor]:
        """``count`` demonstrations: the network's inputs (``residual``, ``relaxed``,
        ``history``, ``moves`` played), targets (``target`` indices, ``value``) and, for
        accuracy, every remaining term (``remaining`` indices with its ``mask``)."""
        space, rank, device = self.space, self.max_rank, self.space.device
        total, terms, one = self.random_decompositions(count)
        if self.pool > 1:  # half of them: the most cancelling of a larger pool
            half = count // 2
            p_total, p_terms, p_one = self._most_cancelling(half)
            total = torch.cat([total[: count - half], p_total])
            terms = torch.cat([terms[: count - half], p_terms])
            one = torch.cat([one[: count - half], p_one])
        played = (self._rand(count) * total).long()  # 0..total-1
        slot = torch.arange(rank, device=device)[None]
        remaining = (slot >= played[:, None]) & (slot < total[:, None])  # (count, rank)
        residual = (one * remaining[..., None, None, None]).sum(dim=1)
        total_tensor = (one * (slot < total[:, None])[..., None, None, None]).sum(dim=1)
        relaxed = total_tensor.reshape(count, -1, space.dims[2]).double()
        basis = torch.zeros(count, relaxed.shape[1], rank, dtype=torch.float64, device=device)
        du, dv, _ = space.dims
        for j in range(rank):  # project out the pairs already played
            move = terms[:, j] * (j < played)[:, None]
            column = torch.full((count,), j, device=device)
            basis, relaxed = pair_algebra.add_pair(
                basis, relaxed, column, pair_algebra.khatri_rao(move[:, :du],
                                                                move[:, du:du + dv]))
        pick = played + (self._rand(count) * (total - played)).long()  # a remaining term
        target = terms[torch.arange(count, device=device), pick]
        history = torch.full((count, self.history, space.action_dim), space.zero_index or 0,
                             dtype=torch.int64, device=device)
        for h in range(self.history):  # history[:, -1] is the last move played
            index = played - self.history + h
            valid = index >= 0
            history[valid, h] = space.to_index(terms[valid, index[valid]])
        return {"residual": residual, "history": history,
                "relaxed": relaxed.float().view(count, *space.dims),
                "moves": played, "target": space.to_index(target),
                "value": -(total - played).float(),
                "remaining": space.to_index(terms), "mask": remaining}
