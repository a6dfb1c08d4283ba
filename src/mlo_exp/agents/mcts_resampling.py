"""Pair resampling: the MCTS agent's search over whole sets of ``(u, v)`` pairs.

The tree search builds a decomposition move by move and rarely reaches Strassen's rank (its
trained policy prefers the school method's single-entry terms). Resampling works on whole
sets instead, on the real target: ``chains`` sets of ``rank`` pairs (moves whose ``w`` is
re-fitted to the others; drawn from the sparse prior at the start, kept across episodes).

One **step**, for every chain at once:

1. remove one random pair;
2. the state the other pairs leave: their residual with ``w`` re-fitted (least squares,
   rounded to the set), the relaxed residual (what no choice of ``w`` removes; see
   :mod:`mlo_exp.agents.pair_algebra`), the last moves;
3. ask the proposer for ``candidates`` moves at ``temperature`` given that state (the
   agent's network, or the sparse prior in the ``proposals=sparse`` control);
4. draw the new pair from the removed one and the proposals with probability
   ``softmax(beta * gain)``, ``gain`` being how much a pair shrinks ``|relaxed|^2``;
5. a proposal that leaves nothing is checked exactly (integral ``W`` in the set, terms that
   rebuild the target in integers): that chain has solved the game at ``rank`` and starts
   afresh; so does a chain after ``restart_steps`` steps.

Every draw is a training example (the state, the chosen pair, no value target), so a
learning proposer learns to propose what the selection keeps.

Statistics: ``resample_solutions`` (chains solved this call), ``resample_closest`` (the
smallest ``|relaxed|^2`` left by any option, relative to ``|T|^2``), and two measures of the
proposals' quality, comparable between proposers: ``resample_best_gain`` (the best
proposal's gain as a share of ``|relaxed|^2``, averaged over chains and steps: 1 means a
proposal completes the set) and ``resample_accept_rate`` (the share of draws that replace the
removed pair by a proposal).
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch

from mlo_exp.agents import pair_algebra
from mlo_exp.agents.mcts_moves import MoveSpace

# (residual, relaxed, history, moves played, move limit, count, temperature) -> indices
Proposer = Callable[[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor, int, int, float],
                    torch.Tensor]


class PairResampler:
    """Chains of pairs and the resampling steps on them (see the module docstring). Its state
    (``chains``, ``chain_age``) is saved by the agent."""

    def __init__(self, space: MoveSpace, target: torch.Tensor, history: int, chains: int,
                 steps: int, candidates: int, temperature: float, beta: float,
                 restart_steps: int, nonzeros: int, generator: torch.Generator,
                 progress: Callable[..., None] | None = None) -> None:
        """``progress``: called every step with ``resample_step`` and ``closest_residual``
        (the agent's ``report_progress``; it never changes state or randomness)."""
        self.space, self.target, self.history = space, target, history
        self.progress = progress
        self.count, self.steps, self.candidates = chains, steps, candidates
        self.temperature, self.beta, self.restart_steps = temperature, beta, restart_steps
        self.nonzeros, self.generator = nonzeros, generator
        self.chains: torch.Tensor | None = None  # (chains, rank, A) values, the real target
        self.chain_age = torch.zeros(chains, dtype=torch.int64, device=space.device)

    def random_chains(self, count: int, rank: int) -> torch.Tensor:
        """``count`` chains of ``rank`` moves from the sparse prior (values)."""
        moves = self.space.sparse_moves(count * rank, self.nonzeros, self.generator)
        return moves.view(count, rank, self.space.action_dim)

    def chain_states(self, others: torch.Tensor) -> dict[str, torch.Tensor]:
        """The state chains with one pair left out leave: ``others (B, L, A)`` (values).

        Returns the residual (the target minus the other terms with ``w`` re-fitted), the
        relaxed residual ``(B, X, np)``, the orthonormal basis of their pairs and the history
        (``history[:, -1]`` is the last move)."""
        space, device = self.space, self.space.device
        batch, length = others.shape[:2]
        du, dv, _ = space.dims
        target = pair_algebra.unfold(self.target)
        basis = torch.zeros(batch, len(target), length, dtype=torch.float64, device=device)
        relaxed = target.expand(batch, -1, -1).clone()
        for j in range(length):
            column = torch.full((batch,), j, device=device)
            basis, relaxed = pair_algebra.add_pair(
                basis, relaxed, column,
                pair_algebra.khatri_rao(others[:, j, :du], others[:, j, du:du + dv]))
        pairs = pair_algebra.khatri_rao(others[..., :du], others[..., du:du + dv])  # (B, L, X)
        w = pair_algebra.nearest_in_set(pair_algebra.solve_w(pairs, target), space.values)
        terms = torch.einsum("blx,blz->bxz", pairs, w.double()).round().long()
        residual = self.target[None] - terms.view(batch, *space.dims)
        history = torch.full((batch, self.history, space.action_dim), space.zero_index or 0,
                             dtype=torch.int64, device=device)
        last = min(self.history, length)
        if last:
            history[:, self.history - last:] = space.to_index(others[:, length - last:])
        return {"residual": residual, "relaxed": relaxed, "basis": basis, "history": history}

    def gains(self, basis: torch.Tensor, relaxed: torch.Tensor, moves: torch.Tensor
              ) -> torch.Tensor:
        """How much adding each pair of ``moves (B, K, A)`` lowers ``|relaxed|_F^2``
        (``-1`` for a pair already in the span)."""
        du, dv, _ = self.space.dims
        pairs = pair_algebra.khatri_rao(moves[..., :du], moves[..., du:du + dv])
        gain, in_span = pair_algebra.gains(basis, relaxed, pairs)
        return gain.masked_fill(in_span, -1.0)

    def exact_solution(self, moves: torch.Tensor) -> torch.Tensor | None:
        """``moves (L, A)`` with ``w`` re-fitted if that decomposes the target exactly."""
        du, dv, _ = self.space.dims
        terms = pair_algebra.exact_terms(moves[:, :du], moves[:, du:du + dv], self.target,
                                         self.space.values)
        return None if terms is None else torch.cat(terms, dim=1)

    def resample(self, rank: int, propose: Proposer
                 ) -> tuple[dict[int, torch.Tensor], list[dict], dict[str, float]]:
        """``steps`` steps on every chain of ``rank`` pairs. Returns the exact solutions met
        (chain -> moves on the real target, at most ``rank`` terms), the training examples
        (one batch a step: the states, the chosen pairs as ``candidates (B, 1, A)``, no value)
        and the statistics."""
        count, space, device = self.count, self.space, self.space.device
        if rank < 2 or not self.steps:
            return {}, [], {"resample_solutions": 0.0}
        if self.chains is None or self.chains.shape[1] != rank:
            self.chains = self.random_chains(count, rank)
            self.chain_age = torch.zeros(count, dtype=torch.int64, device=device)
        rows = torch.arange(count, device=device)
        scale = float((self.target.double() ** 2).sum())
        found: dict[int, torch.Tensor] = {}
        examples: list[dict] = []
        closest = math.inf
        best_gain = accepted = 0.0
        for step in range(self.steps):
            # 1-2. remove a random pair; the state the others leave
            slot = torch.randint(rank, (count,), generator=self.generator, device=device)
            keep = torch.ones(count, rank, dtype=torch.bool, device=device)
            keep[rows, slot] = False
            others = self.chains[keep].view(count, rank - 1, space.action_dim)
            state = self.chain_states(others)
            relaxed = state["relaxed"].float().view(count, *space.dims)
            played = torch.full((count,), rank - 1, device=device)
            # 3. proposals
            samples = propose(state["residual"], relaxed, state["history"], played, rank,
                              self.candidates, self.temperature)
            options = torch.cat([self.chains[rows, slot][:, None], space.values[samples]], 1)
            # 5. (checked before the draw) options that complete a set
            gain = self.gains(state["basis"], state["relaxed"], options)
            before = (state["relaxed"] ** 2).sum(dim=(1, 2))
            left = before[:, None] - gain
            closest = min(closest, float(left.min()) / scale)
            if self.progress is not None:
                self.progress(resample_step=step + 1, closest_residual=closest)
            share = gain[:, 1:].max(dim=1).values.clamp_min(0) / before.clamp_min(1e-12)
            best_gain += float(share.clamp_max(1).mean()) / self.steps
            for b, k in torch.nonzero(left <= pair_algebra.SOLVED_EPS * scale).tolist():
                if b not in found:
                    solution = self.exact_solution(torch.cat([others[b], options[b, k][None]]))
                    if solution is not None and len(solution) <= rank:
                        found[b] = solution
            # 4. the draw
            pick = torch.multinomial(torch.softmax(self.beta * gain, dim=1), 1,
                                     generator=self.generator)[:, 0]
            accepted += float((pick > 0).float().mean()) / self.steps
            chosen = space.canonical(options[rows, pick])
            self.chains[rows, slot] = chosen
            examples.append({"residual": state["residual"], "relaxed": state["relaxed"],
                             "history": state["history"], "moves": played,
                             "candidates": space.to_index(chosen)[:, None],
                             "visits": torch.ones(count, 1, device=device), "value": None})
            # restarts: solved chains and old ones
            self.chain_age += 1
            stale = (self.chain_age >= self.restart_steps) | torch.isin(
                rows, torch.tensor(sorted(found), dtype=torch.int64, device=device))
            if bool(stale.any()):
                self.chains[stale] = self.random_chains(int(stale.sum()), rank)
                self.chain_age[stale] = 0
        return found, examples, {"resample_solutions": float(len(found)),
                                 "resample_closest": closest, "resample_best_gain": best_gain,
                                 "resample_accept_rate": accepted}
