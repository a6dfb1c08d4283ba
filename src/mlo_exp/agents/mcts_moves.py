"""The move space of the MCTS agent: coefficients, canonical signs, legality, sparse moves.

A move is ``(u, v, w)`` concatenated, ``(..., A)`` with ``A = nm + mp + np`` (layout of
:mod:`mlo_exp.algorithms.tensor`), as **values** (the coefficients themselves) or as
**indices** into the sorted coefficient set (what the network reads and writes).

Two rules make a move legal and canonical: no factor is all zero, and (for a symmetric
coefficient set) the first non-zero entry of ``u`` and of ``v`` is positive: ``(u, v, w)``,
``(-u, -v, w)`` and ``(-u, v, -w)`` are the same term.

**The sparse prior** (:meth:`MoveSpace.sparse_factors`): each factor gets ``k`` non-zero
entries, ``k`` uniform in ``1..nonzeros``, at uniform positions, with uniform non-zero
values. The demonstrations are built from it, the pair-resampling chains start from it, and
``agent.proposals=sparse`` (the control without a network) proposes from it.
"""

from __future__ import annotations

import numpy as np
import torch


class MoveSpace:
    """Coefficients, block structure and sign rules of one game's moves, on one device."""

    def __init__(self, dims: tuple[int, int, int], coefficients: list[int],
                 device: torch.device) -> None:
        self.dims, self.device = dims, device
        self.action_dim = sum(dims)
        self.values = torch.tensor(coefficients, device=device)  # sorted by the game
        self.zero_index = int(torch.nonzero(self.values == 0)[0]) if 0 in coefficients else None
        self.symmetric = set(coefficients) == {-c for c in coefficients}
        starts = np.cumsum([0, *dims])
        self.block_of = [b for b in range(3) for _ in range(dims[b])]
        self.block_start = [int(starts[b]) for b in self.block_of]
        self.block_last = [t == int(starts[b + 1]) - 1 for t, b in enumerate(self.block_of)]

    def to_index(self, moves: torch.Tensor) -> torch.Tensor:
        """Values -> indices into the coefficient set."""
        return torch.searchsorted(self.values, moves.contiguous())

    def illegal(self, position: int, block_nonzero: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` bool: values forbidden at ``position`` given whether the position's factor
        already has a non-zero entry (``block_nonzero (B,)``): zero at the factor's last entry
        of an all-zero factor; a negative first non-zero entry of ``u`` or ``v``."""
        mask = torch.zeros(len(block_nonzero), len(self.values), dtype=torch.bool,
                           device=self.device)
        empty = ~block_nonzero
        if self.block_last[position] and self.zero_index is not None:
            mask[:, self.zero_index] |= empty
        if self.symmetric and self.block_of[position] < 2:
            mask[:, self.values < 0] |= empty[:, None]
        return mask

    def canonical(self, moves: torch.Tensor) -> torch.Tensor:
        """Flip signs so the first non-zero of ``u`` and of ``v`` is positive (values)."""
        if not self.symmetric:
            return moves
        u, v, w = torch.split(moves, self.dims, dim=-1)

        def first_sign(x):
            index = (x != 0).int().argmax(dim=-1, keepdim=True)
            return torch.sign(x.gather(-1, index)).clamp_min(-1).masked_fill(
                (x == 0).all(dim=-1, keepdim=True), 1)

        su, sv = first_sign(u), first_sign(v)
        return torch.cat([u * su, v * sv, w * su * sv], dim=-1)

    def sparse_factors(self, count: int, length: int, nonzeros: int,
                       generator: torch.Generator) -> torch.Tensor:
        """``(count, length)`` rows with 1..``nonzeros`` non-zero entries from the set."""
        nonzero_values = self.values[self.values != 0]
        k = torch.randint(1, min(nonzeros, length) + 1, (count, 1), generator=generator,
                          device=self.device)
        order = torch.rand((count, length), generator=generator, device=self.device).argsort(1)
        keep = order < k
        picks = nonzero_values[torch.randint(len(nonzero_values), (count, length),
                                             generator=generator, device=self.device)]
        return picks * keep

    def sparse_moves(self, count: int, nonzeros: int, generator: torch.Generator
                     ) -> torch.Tensor:
        """``(count, A)`` canonical moves from the sparse prior (values)."""
        moves = torch.cat([self.sparse_factors(count, d, nonzeros, generator)
                           for d in self.dims], dim=1)
        return self.canonical(moves)
