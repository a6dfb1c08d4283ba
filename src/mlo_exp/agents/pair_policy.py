"""An actor-critic agent over ``(u, v)`` pairs, with ``w`` chosen by exact projection.

**Why pairs.** Unfold the target as ``M = T.reshape(nm*mp, np)`` (layout of
:mod:`mlo_exp.algorithms.tensor`). Given all ``R`` pairs ``(u_r, v_r)``, the rest of a
decomposition is
a linear system: ``M = S @ W.T`` with ``S[:, r] = vec(u_r (x) v_r)`` (Khatri-Rao product).
So a set of pairs solves the game exactly when ``M``'s columns lie in ``span(S)``, and then
``W`` is the unique least-squares solution (the pairs are kept linearly independent). The
agent therefore searches over pairs only (1,600 up to sign for ``<2,2,2>`` over {-1,0,1},
instead of 3^12 full moves) and reads ``w`` off the linear system. A per-move greedy choice of
``w`` can never reach Strassen's rank 7: its terms have negative immediate gain.

**State and prior.** For a set of pairs ``P``, the state is the projected residual
``M_perp = M - Proj_span(P) M`` (``(nm*mp, np)`` floats); it is zero exactly when ``P``
spans ``M``. Adding a pair with Khatri-Rao vector ``s`` lowers ``|M_perp|_F^2`` by
``gain(s) = sum_c <s, M_perp[:, c]>^2 / |s_perp|^2`` (``s_perp``: ``s`` minus its projection
on ``span(P)``); pairs already in the span are masked out. The algebra (Khatri-Rao product,
projection, gain, the solve for ``W``) is :mod:`mlo_exp.agents.pair_algebra`, shared with
``mcts``.

**Policy and value network.** An MLP reads ``M_perp`` (scaled by ``|M|``) and outputs
``H`` query directions ``q_h``, one linear direction ``l`` and a value. A pair's logit is
``prior_weight * gain(s) + sum_h <q_h, s>^2 + <l, s>``; the network's output layer starts
at zero, so an untrained agent samples from the prior alone. The value head predicts the
game's return from the state.

**Episode** (one trainer episode). ``batch_size`` chains each hold ``target_rank`` pairs;
new chains are built move by move from the policy. A step of the planner (Gibbs-style
resampling) removes one random pair from every chain and draws its replacement from the
policy given the residual of the others. ``steps_per_episode`` steps, then every chain's
pairs, with their exact ``w``, are played as moves in the real :class:`TensorGame` (what
:class:`EpisodeResult` reports are those moves). A chain whose set does not solve the game
is completed with single-entry moves (the residual's largest fibre, so the school method's
rank is always reachable) until the game's move limit; the game's own rewards (``-1`` per
move, the rank-bound penalty at the limit) are the returns.

**Learning** (advantage-weighted actor-critic on the played sets): for every chain and one
random pair ``r`` in it, the state is the residual of the other pairs and the action is ``r``; the
policy maximises ``exp(A / temperature) * log pi(r | state)`` with advantage
``A = return - value(state)``, and the value head regresses the return.

**Curriculum.** The first episode is a warm-up without pairs: completion moves alone (one
residual fibre per move) solve the game with ``n*m*p`` moves, so every run holds a verified
algorithm from its first episode. Once a chain solves the game with ``target_rank`` moves,
the search continues one rank lower (down to 1) with freshly built chains (dropping a pair
from a solution of the school method's kind proved a poor start for Strassen's kind; seeding
half the chains that way did not help on <2,3,3> either). A chain that has not solved after
``restart_steps`` steps is rebuilt from scratch.

**Candidates.** All sign-canonical pairs when there are at most ``max_candidates`` (the
coefficient set must be symmetric for the sign reduction), else a fresh random pool per
episode: every single-entry pair plus sparse random pairs. ``max_nonzeros`` (optional) keeps
only factors with at most that many non-zero entries: a generic sparsity prior.

**State** (:meth:`PairPolicyAgent.state_dict`, so a resumed run continues exactly): the
generator, the network, the optimiser (Adam's moments and step counts), the target rank, the
chains and their ages, the step count. The episode's chains with their exact ``w`` reach
:meth:`PairPolicyAgent.act` as its ``plan`` (:class:`Chains`), not through the agent.

**Device.** Everything runs on the game's device (float64: ``cpu`` or ``cuda``). The network's
initial weights are drawn on the CPU from ``seed`` and then moved, so a seed starts the same
network on every device; the sampling uses a generator of the game's device.

The agent never sees a known decomposition of the target: it reads only ``T<n,m,p>`` (the
game's target) and the game's rewards. Over ``Z2`` the span argument does not hold, so the
agent plays over ``Z`` only.
"""

from __future__ import annotations

import copy
import itertools
import math
from typing import Any, NamedTuple

import torch
from torch import nn

from mlo_exp.agents import pair_algebra
from mlo_exp.agents.base import EpisodeResult, GamePlayer, load_optimizer_state
from mlo_exp.config import PairPolicyAgentConfig
from mlo_exp.env import GameState, TensorGame


class Chains(NamedTuple):
    """The pairs played this episode: ``u (B, R, nm)``, ``v (B, R, mp)``, exact ``w (B, R, np)``."""

    u: torch.Tensor
    v: torch.Tensor
    w: torch.Tensor

    @property
    def rank(self) -> int:
        return int(self.u.shape[1])


class PairPolicyNetwork(nn.Module):
    """Projected residual ``(B, nm*mp, np)`` -> queries ``(B, H, X)``, linear ``(B, X)``, value."""

    def __init__(self, pair_dim: int, columns: int, hidden: int, heads: int,
                 device: str | torch.device | None = None) -> None:
        """Sizes come from :class:`~mlo_exp.config.PairPolicyAgentConfig` (the one source of
        their defaults)."""
        super().__init__()
        self.pair_dim, self.heads = pair_dim, heads
        self.body = nn.Sequential(
            nn.Linear(pair_dim * columns, hidden, device=device), nn.ReLU(),
            nn.Linear(hidden, hidden, device=device), nn.ReLU(),
        )
        self.policy_head = nn.Linear(hidden, (heads + 1) * pair_dim, device=device)
        self.value_head = nn.Linear(hidden, 1, device=device)
        nn.init.zeros_(self.policy_head.weight)
        nn.init.zeros_(self.policy_head.bias)

    def forward(self, residual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.body(residual.flatten(1))
        out = self.policy_head(features).view(-1, self.heads + 1, self.pair_dim)
        return out[:, : self.heads], out[:, self.heads], self.value_head(features).squeeze(1)


class PairPolicyAgent(GamePlayer):
    """Policy + value network over ``(u, v)`` pairs; ``w`` by exact linear solve."""

    def __init__(self, game: TensorGame, seed: int, **settings: Any) -> None:
        """``settings``: fields of :class:`~mlo_exp.config.PairPolicyAgentConfig` (defaults
        and checks there)."""
        s = self.settings = PairPolicyAgentConfig(**settings)
        super().__init__(game, seed=seed, batch_size=s.batch_size)
        if game.ring != "Z":
            raise ValueError(f"pair_policy plays over Z (env.ring=Z); got env.ring={game.ring!r}. "
                             "Over Z2 use agent=flipgraph (or greedy, random)")
        self.dim_u, self.dim_v, self.dim_w = game.dims
        self.pair_dim = self.dim_u * self.dim_v
        self.target = game.target.reshape(self.pair_dim, self.dim_w).double()
        self.target_norm2 = float((self.target**2).sum())
        self.values = torch.tensor(game.coefficients, dtype=torch.float64, device=self.device)
        self.symmetric = set(game.coefficients) == {-c for c in game.coefficients}
        with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
            torch.manual_seed(seed)  # drawn on the CPU: the same network on every device
            network = PairPolicyNetwork(self.pair_dim, self.dim_w, s.hidden, s.heads, device="cpu")
        self.network = network.double().to(self.device)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=s.learning_rate)
        self.enumerated = self._enumerate_pairs()
        # Search state (all saved in state_dict). Target rank 0 is the warm-up episode.
        self.target_rank = 0
        self.chain_u: torch.Tensor | None = None  # (B, R, dim_u) int64
        self.chain_v: torch.Tensor | None = None  # (B, R, dim_v) int64
        self.chain_age = torch.zeros(self.batch_size, dtype=torch.int64, device=self.device)
        self.total_steps = 0

    # -- candidate pairs ----------------------------------------------------------------
    def _vectors(self, length: int) -> torch.Tensor:
        vectors = torch.tensor(list(itertools.product(self.game.coefficients, repeat=length)),
                               device=self.device)
        nonzeros = (vectors != 0).sum(dim=1)
        vectors = vectors[(nonzeros > 0) & (nonzeros <= (self.settings.max_nonzeros or length))]
        if self.symmetric:  # (u, v, w) ~ (-u, -v, w) ~ (-u, v, -w): first non-zero entry > 0
            rows = torch.arange(len(vectors), device=self.device)
            first = vectors[rows, (vectors != 0).int().argmax(dim=1)]
            vectors = vectors[first > 0]
        return vectors

    def _enumerate_pairs(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """All (canonical) non-zero pairs, or None when there are more than max_candidates."""
        nonzero = len(self.game.coefficients) - (0 in self.game.coefficients)
        scale = 2 if self.symmetric else 1

        def count(length: int) -> int:
            top = min(self.settings.max_nonzeros or length, length)
            return sum(math.comb(length, k) * nonzero**k for k in range(1, top + 1)) // scale

        if count(self.dim_u) * count(self.dim_v) > self.settings.max_candidates:
            return None
        us, vs = self._vectors(self.dim_u), self._vectors(self.dim_v)
        return us.repeat_interleave(len(vs), 0), vs.repeat(len(us), 1)

    def _sparse_random(self, count: int, length: int) -> torch.Tensor:
        density = torch.rand(count, 1, generator=self.generator, device=self.device) * 0.5 + 0.1
        mask = torch.rand(count, length, generator=self.generator, device=self.device) < density
        if self.settings.max_nonzeros is not None:  # keep the first max_nonzeros chosen entries
            mask &= mask.cumsum(dim=1) <= self.settings.max_nonzeros
        rows = self.sample_nonzero(count, length) * mask
        empty = (rows == 0).all(dim=1)
        single = torch.zeros(int(empty.sum()), length, dtype=torch.int64, device=self.device)
        spot = torch.randint(length, (len(single),), generator=self.generator, device=self.device)
        rows_single = torch.arange(len(single), device=self.device)
        single[rows_single, spot] = self.sample_nonzero(len(single), 1)[:, 0]
        rows[empty] = single
        return rows

    def candidate_pairs(self) -> tuple[torch.Tensor, torch.Tensor]:
        """``(U (K, dim_u), V (K, dim_v))``: the pairs a move may be drawn from this episode."""
        if self.enumerated is not None:
            return self.enumerated
        one = 1 if 1 in self.game.coefficients else next(c for c in self.game.coefficients if c)
        eye_u = torch.eye(self.dim_u, dtype=torch.int64, device=self.device) * one
        eye_v = torch.eye(self.dim_v, dtype=torch.int64, device=self.device) * one
        unit_u, unit_v = eye_u.repeat_interleave(self.dim_v, 0), eye_v.repeat(self.dim_u, 1)
        extra = max(self.settings.max_candidates - len(unit_u), 0)
        return (torch.cat([unit_u, self._sparse_random(extra, self.dim_u)]),
                torch.cat([unit_v, self._sparse_random(extra, self.dim_v)]))

    khatri_rao = staticmethod(pair_algebra.khatri_rao)

    # -- projections and the policy (the algebra: mlo_exp.agents.pair_algebra) ------------
    def project(self, pairs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Orthonormal basis ``(B, X, k)`` of the pairs ``(B, k, X)`` and ``M_perp (B, X, np)``."""
        return pair_algebra.project(pairs, self.target)

    def logits(self, basis: torch.Tensor, residual: torch.Tensor, candidates: torch.Tensor
               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Logits ``(B, K)`` over ``candidates (K, X)``, the prior gains and the value ``(B,)``."""
        gain, in_span = pair_algebra.gains(basis, residual, candidates)
        queries, linear, value = self.network(residual / self.target_norm2**0.5)
        learned = (torch.einsum("bhx,kx->bhk", queries, candidates) ** 2).sum(dim=1)
        learned = learned + torch.einsum("bx,kx->bk", linear, candidates)
        logits = self.settings.prior_weight * gain + learned
        return logits.masked_fill(in_span, float("-inf")), gain, value

    @torch.no_grad()
    def _sample(self, pairs: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        basis, residual = self.project(pairs)
        logits, _, _ = self.logits(basis, residual, candidates)
        return torch.multinomial(torch.softmax(logits, dim=1), 1, generator=self.generator)[:, 0]

    # -- the search ---------------------------------------------------------------------
    def _build_chains(self, count: int, pool: tuple[torch.Tensor, torch.Tensor]
                      ) -> tuple[torch.Tensor, torch.Tensor]:
        """``count`` new chains of ``target_rank`` independent pairs, drawn move by move."""
        cand_u, cand_v = pool
        candidates = self.khatri_rao(cand_u, cand_v)
        chosen: list[torch.Tensor] = []
        for _ in range(self.target_rank):
            pairs = (candidates[torch.stack(chosen, 1)] if chosen
                     else torch.zeros(count, 0, self.pair_dim, dtype=torch.float64,
                                      device=self.device))
            chosen.append(self._sample(pairs, candidates))
        index = torch.stack(chosen, 1)
        return cand_u[index], cand_v[index]

    def _spanning(self, pairs: torch.Tensor) -> torch.Tensor:
        """``(B,)`` bool: the chain's pairs span ``M`` (float test; the replay decides)."""
        _, residual = self.project(pairs)
        return pair_algebra.spans(residual, self.target_norm2)

    def _admissible(self, chains: torch.Tensor) -> torch.Tensor:
        """For spanning chains (indices): is the solved ``W`` integral and in the set?"""
        solution = self._solve_w(self.chain_u[chains], self.chain_v[chains])
        return pair_algebra.integral_in_set(solution, self.values)

    def search(self, pool: tuple[torch.Tensor, torch.Tensor]) -> None:
        """``steps_per_episode`` resampling steps on every chain (solved chains stay put)."""
        cand_u, cand_v = pool
        candidates = self.khatri_rao(cand_u, cand_v)
        batch, rank = self.batch_size, self.target_rank
        if self.chain_u is None:
            self.chain_u, self.chain_v = self._build_chains(batch, pool)
            self.chain_age.zero_()
        rows = torch.arange(batch, device=self.device)
        for _ in range(self.settings.steps_per_episode):
            pairs = self.khatri_rao(self.chain_u, self.chain_v)
            spanning = torch.nonzero(self._spanning(pairs))[:, 0]
            if spanning.numel():
                admissible = self._admissible(spanning)
                if bool(admissible.any()):
                    break  # a chain solves the game at target_rank: play it
                self.chain_age[spanning] = self.settings.restart_steps  # W not admissible: rebuild
            position = torch.randint(rank, (batch,), generator=self.generator, device=self.device)
            keep = torch.ones(batch, rank, dtype=torch.bool, device=self.device)
            keep[rows, position] = False
            others = pairs[keep].view(batch, rank - 1, self.pair_dim)
            choice = self._sample(others, candidates)
            self.chain_u[rows, position] = cand_u[choice]
            self.chain_v[rows, position] = cand_v[choice]
            self.chain_age += 1
            self.total_steps += 1
            stale = self.chain_age >= self.settings.restart_steps
            if bool(stale.any()):
                fresh_u, fresh_v = self._build_chains(int(stale.sum()), pool)
                self.chain_u[stale], self.chain_v[stale] = fresh_u, fresh_v
                self.chain_age[stale] = 0

    def exact_w(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``W (B, R, np)`` for chains ``u``, ``v`` from the linear system, rounded to the
        nearest coefficient.

        When a chain's pairs span ``M`` and the least-squares solution is integral with
        entries in the coefficient set, this is the exact ``W`` (the game's replay checks it
        exactly, in integers); otherwise it is the nearest admissible approximation.
        """
        return pair_algebra.nearest_in_set(self._solve_w(u, v), self.values).long()

    def _solve_w(self, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Least-squares ``W (B, R, np)`` of ``M = S @ W.T`` for chains of pairs ``u``, ``v``."""
        return pair_algebra.solve_w(self.khatri_rao(u, v), self.target)

    # -- playing the chains in the TensorGame --------------------------------------------
    def plan_episode(self) -> Chains:
        """The chains to play now, with their exact ``w`` (none in the warm-up episode)."""
        if self.target_rank == 0:
            return Chains(*(torch.zeros(self.batch_size, 0, dim, dtype=torch.int64,
                                        device=self.device)
                            for dim in (self.dim_u, self.dim_v, self.dim_w)))
        return Chains(self.chain_u, self.chain_v, self.exact_w(self.chain_u, self.chain_v))

    def act(self, state: GameState, plan: Chains | None = None) -> torch.Tensor:
        """Move ``t`` of game ``b``: chain ``b``'s pair ``t`` with its ``w``, then completion.

        ``plan``: the episode's :class:`Chains` (by default :meth:`plan_episode` now)."""
        if plan is None:
            plan = self.plan_episode()
        batch = state.batch_size
        moves = state.moves
        rank = plan.rank
        index = moves.clamp(max=max(rank - 1, 0))
        rows = torch.arange(batch, device=self.device)
        actions = torch.cat([plan.u[rows, index], plan.v[rows, index],
                             plan.w[rows, index]], dim=1) if rank else None
        completion = self._completion_moves(state.residual)
        if actions is None:
            return completion
        beyond = moves >= rank
        actions[beyond] = completion[beyond]
        return actions

    def _completion_moves(self, residual: torch.Tensor) -> torch.Tensor:
        """Single-entry moves ``e_a (x) e_b (x) w`` removing the residual's largest fibre."""
        batch = residual.shape[0]
        fibres = residual.reshape(batch, self.pair_dim, self.dim_w).double()
        best = (fibres**2).sum(dim=2).argmax(dim=1)
        w_float = fibres[torch.arange(batch, device=self.device), best]
        w = self.values[(w_float[..., None] - self.values).abs().argmin(dim=-1)].long()
        one = 1 if 1 in self.game.coefficients else next(c for c in self.game.coefficients if c)
        rows = torch.arange(batch, device=self.device)
        u = torch.zeros(batch, self.dim_u, dtype=torch.int64, device=self.device)
        v = torch.zeros(batch, self.dim_v, dtype=torch.int64, device=self.device)
        u[rows, best // self.dim_v] = one
        v[rows, best % self.dim_v] = one
        return torch.cat([u, v, w], dim=1)

    def run_episode(self) -> EpisodeResult:
        pool = self.candidate_pairs()
        if self.target_rank:  # (the warm-up episode plays completion moves only)
            self.search(pool)
        chains = self.plan_episode()
        trajectory = self.play(self.game.reset(self.batch_size), chains)
        metrics = self.learn_from_chains(chains, trajectory.returns.double(), pool)
        final = trajectory.final
        limit = self.target_rank if self.target_rank else self.game.max_rank
        solved_at_target = final.solved & (final.moves <= limit)
        metrics.update({"target_rank": float(self.target_rank),
                        "chains_solved": float(solved_at_target.sum()),
                        "search_steps": float(self.total_steps)})
        result = self.summarise(trajectory, metrics)
        if bool(solved_at_target.any()):
            self._lower_target(int(final.moves[solved_at_target].min()))
        return result

    def _lower_target(self, solved_rank: int) -> None:
        """Continue one rank below ``solved_rank`` with freshly built chains."""
        self.target_rank = max(solved_rank - 1, 1)
        self.chain_u = self.chain_v = None
        self.chain_age.zero_()

    # -- learning -----------------------------------------------------------------------
    def learn_from_chains(self, chains: Chains, returns: torch.Tensor,
                          pool: tuple[torch.Tensor, torch.Tensor]) -> dict[str, float]:
        """One advantage-weighted actor-critic update on every (chain, pair) of this episode."""
        batch, rank = self.batch_size, chains.rank
        if rank < 2 or self.optimizer.param_groups[0]["lr"] == 0:
            return {}
        pairs = self.khatri_rao(chains.u, chains.v)  # (B, R, X)
        rows = torch.arange(batch, device=self.device)
        position = torch.randint(rank, (batch,), generator=self.generator, device=self.device)
        keep = torch.ones(batch, rank, dtype=torch.bool, device=self.device)
        keep[rows, position] = False
        with torch.no_grad():
            basis, residual = self.project(pairs[keep].view(batch, rank - 1, self.pair_dim))
        pool_vectors = self.khatri_rao(*pool)
        # a random share keeps the update cheap
        if len(pool_vectors) > self.settings.learn_candidates:
            pick = torch.randperm(len(pool_vectors), generator=self.generator,
                                  device=self.device)
            pool_vectors = pool_vectors[pick[: self.settings.learn_candidates]]
        candidates = torch.cat([pool_vectors, pairs[rows, position]])
        action = len(pool_vectors) + rows
        logits, _, value = self.logits(basis, residual, candidates)
        log_prob = torch.log_softmax(logits, dim=1)[rows, action]
        target = returns / self.game.max_rank
        advantage = (target - value).detach()
        weight = torch.exp((advantage / self.settings.advantage_temperature).clamp(max=5.0))
        policy_loss = -(weight * log_prob).mean()
        value_loss = ((value - target) ** 2).mean()
        self.optimizer.zero_grad()
        (policy_loss + value_loss).backward()
        nn.utils.clip_grad_norm_(self.network.parameters(), 1.0)
        self.optimizer.step()
        return {"policy_loss": float(policy_loss.detach()),
                "value_loss": float(value_loss.detach())}

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        """A snapshot (copies, not views of the live tensors) of everything later episodes
        depend on; see the module docstring."""
        return {
            **super().state_dict(),
            "network": {k: v.detach().clone() for k, v in self.network.state_dict().items()},
            "optimizer": copy.deepcopy(self.optimizer.state_dict()),
            "target_rank": self.target_rank,
            "chain_u": None if self.chain_u is None else self.chain_u.clone(),
            "chain_v": None if self.chain_v is None else self.chain_v.clone(),
            "chain_age": self.chain_age.clone(),
            "total_steps": self.total_steps,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Inverse of :meth:`state_dict`; tensors move to this agent's device. Search keys an
        older checkpoint lacks take a fresh agent's values."""
        super().load_state_dict(state)
        self.network.load_state_dict(state["network"])
        load_optimizer_state(self.optimizer, state["optimizer"])
        self.target_rank = int(state.get("target_rank", 0))

        def chain(name: str) -> torch.Tensor | None:
            value = state.get(name)
            return None if value is None else value.to(self.device, copy=True)

        self.chain_u, self.chain_v = chain("chain_u"), chain("chain_v")
        age = chain("chain_age")
        self.chain_age = age if age is not None else torch.zeros_like(self.chain_age)
        self.total_steps = int(state.get("total_steps", 0))

