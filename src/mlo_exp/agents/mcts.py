"""AlphaTensor, scaled down: a policy-value network, sampled MCTS, demonstrations, self-play.

Read top to bottom: the network, the relaxed residual, demonstrations, changes of basis, the
search, pair resampling, learning, the episode (a batch of games searched at once, chains
resampled, then learning).

**Network** (:class:`MctsNetwork`). Input: the residual tensor (entries clipped to
``[-2, 2]``, one-hot), the relaxed residual (below), the last ``history`` moves (one-hot
coefficients) and the share of moves left. A torso MLP feeds a **value head** (the return
from this state, divided by ``value_scale``) and an **autoregressive policy head**: a move
``(u, v, w)`` is sampled one coefficient at a time (``nm + mp + np`` steps, each conditioned
on the state, the coefficients already chosen and the two tensors contracted with them:
``R x1 u`` and ``R x1 u x2 v``), so the move space (3^12 for <2,2,2>) is never enumerated.
Two rules keep samples legal and canonical: no factor is all zero, and (for a symmetric
coefficient set) the first non-zero entry of ``u`` and of ``v`` is positive (``(u, v, w)``,
``(-u, -v, w)`` and ``(-u, v, -w)`` are the same term). ``temperature`` divides the logits.

**Relaxed residual** (pair_policy's lesson: given the ``(u, v)`` pairs, the target is linear
in ``W``, ``M = S @ W.T`` with ``M`` the target unfolded to ``(nm*mp, np)``). The relaxed
residual is ``M`` minus its projection on the span of the pairs played so far: what is left
when every ``w`` is re-fitted. It is zero exactly when the pairs span the target; the search
then solves ``W`` (least squares, rounded to the coefficient set) and, if the terms rebuild
the target exactly in integers, the game is **solved** there with those moves. At the move
limit, an unsolved game's penalty is the game's own ``bound`` of the residual its moves leave
with their ``w`` re-fitted. The network and the search still choose every pair.

**Demonstrations** (:meth:`MctsAgent.demonstrations`). Random decompositions: ``R`` terms
(``R`` up to ``demo_max_rank``) with random sparse factors over the coefficient set (1 to
``demo_nonzeros`` non-zero entries per factor), ``k < R`` of them "already played" (history,
relaxed residual), the state is the sum of the others; targets: one of the remaining terms
for the policy, ``-(R - k)`` for the value. With ``demo_pool > 1`` half of each batch is the
most cancelling (fewest non-zero entries per term) of ``demo_pool`` times as many.
Generated from the generator, never read from anywhere: no known algorithm is involved.

**Change of basis.** Each game is played on ``T' = T x1 P x2 Q x3 S`` with probability
``basis_change`` (else on ``T``): ``P, Q, S`` are random signed permutations, each times up
to ``basis_shears`` elementary matrices ``I + s e_i e_j^T`` (each with probability
``basis_elementary``), so every matrix is integral with an integral inverse. A decomposition
``(u', v', w')`` of ``T'`` maps back to ``(P^-1 u', Q^-1 v', S^-1 w')`` of ``T``; it is
replayed move by move in the real :class:`TensorGame` and counts only if its coefficients are
in the game's set and the replay ends on a zero residual (the trainer verifies it again).

**Search** (sampled MCTS, AlphaZero/Sampled-MuZero style). Expanding a node evaluates the
network once: a value and ``candidates`` sampled moves (duplicates merged, prior = share of
samples). Selection by PUCT (``c_puct``), ``Q`` min-max normalised per tree, unvisited edges
valued at the parent's value; each edge stores the game's reward (``-1`` per move, the
rank-bound penalty at the move limit); backup adds rewards along the path to the leaf's
value (0 at a finished game). All ``batch_size`` games advance together: one leaf per game
per simulation, so the network runs on a batch of leaves. After ``simulations`` simulations
the move is drawn from the root's visit counts (temperature 1) and the subtree is kept.
``simulations=0``: no search, the move is the policy's first sample. A game reports the best
solution its search met (any leaf), else the moves it played.

**Pair resampling** (:meth:`MctsAgent.resample`; ``resample_steps`` steps per episode, 0
turns it off). The tree builds a decomposition move by move and rarely reaches Strassen's
rank (its trained policy prefers the school method's single-entry terms). Resampling works
on whole sets: ``chains`` sets of ``play_rank`` pairs (random sparse at the start, kept
across episodes, on the real target). A step removes one random pair from every chain and
asks the network, given the state the other pairs leave (their residual with ``w``
re-fitted, the relaxed residual, the last moves), for ``resample_candidates`` moves at
``resample_temperature``. The new pair is drawn from the removed one and the proposals with
probability ``softmax(resample_beta * gain)``, ``gain`` being how much the pair shrinks
``|relaxed residual|^2`` (the game's own distance from spanning; pair_policy's prior). A
proposal that leaves nothing is checked exactly (integral ``W`` in the set, terms rebuilding
the target): that chain has solved the game at ``play_rank`` and starts afresh; so does a
chain after ``restart_steps`` steps. Every draw is a training example (the state, the chosen
pair, no value target), so the policy learns to propose what the selection keeps. The
network is the only source of candidates: frozen at its initialisation (the
``learning_rate=0`` ablation) it proposes what an untrained network proposes. The
proposals are few (16 by default) on purpose: with many, the selection finds good pairs
among an untrained network's near-uniform samples too, and learning matters less.

**Learning.** Before the first game, ``pretrain_steps`` steps on demonstrations alone. Every
searched root becomes a training example (policy towards the visit distribution over its
candidates, estimated with one candidate drawn from it; value towards the return that
followed), kept in a replay buffer of ``buffer_size``. After each episode, ``train_steps``
Adam steps on batches of ``train_batch`` states: half fresh demonstrations, half replay.
Ablations: ``learning_rate=0`` (the network stays at its initialisation),
``demonstrations=false`` (no demonstrations, no pretraining), ``simulations=0``.

**Curriculum.** Games start with the game's move limit (the school method's rank). Once a
game solves with ``r`` moves (checked in the real game), later games get ``r - 1`` moves.

A chain's solution takes the place of an unsolved (or longer) game in the episode's replay
(chain ``c`` replaces game ``c mod batch_size``), so it reaches the trainer like any game
and is verified again there.

``EpisodeResult.metrics``: losses (policy, value; demonstration and self-play parts),
demonstration accuracy (greedy decoding hits a remaining term), search statistics,
resampling statistics (``resample_solutions``; ``resample_closest``: the smallest
``|relaxed residual|^2`` left, relative to ``|T|^2``), the current move limit and cumulative
counts of network evaluations and simulations.
Everything (network, optimiser, buffer, generator, curriculum, chains, counters) is in
:meth:`state_dict`; episodes share no other state, so a resumed run replays exactly.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from mlo_exp.agents.base import Agent, EpisodeResult, Trajectory, load_optimizer_state
from mlo_exp.config import MctsAgentConfig
from mlo_exp.env import GameState, TensorGame

_CLIP = 2  # residual entries are clipped to [-_CLIP, _CLIP] for the network's input


# -- the network ------------------------------------------------------------------------
class MctsNetwork(nn.Module):
    """State -> value and an autoregressive distribution over moves (coefficient indices)."""

    def __init__(self, dims: tuple[int, int, int], num_values: int, history: int,
                 hidden: int = 256, decoder_hidden: int = 128) -> None:
        super().__init__()
        self.dims, self.num_values, self.history = dims, num_values, history
        self.action_dim = sum(dims)
        entries = dims[0] * dims[1] * dims[2]
        in_size = entries * (2 * _CLIP + 2) + history * self.action_dim * num_values + 1
        self.torso = nn.Sequential(nn.Linear(in_size, hidden), nn.ReLU(),
                                   nn.Linear(hidden, hidden), nn.ReLU())
        self.value_head = nn.Linear(hidden, 1)
        self.context = nn.Linear(hidden, decoder_hidden)
        self.partial = nn.Linear(self.action_dim * num_values, decoder_hidden, bias=False)
        self.position = nn.Embedding(self.action_dim, decoder_hidden)
        self.contraction = nn.Linear(2 * (dims[1] * dims[2] + dims[2]), decoder_hidden,
                                     bias=False)
        self.decoder = nn.Sequential(nn.ReLU(), nn.Linear(decoder_hidden, decoder_hidden),
                                     nn.ReLU(), nn.Linear(decoder_hidden, num_values))

    def encode(self, residual: torch.Tensor, relaxed: torch.Tensor, history: torch.Tensor,
               left: torch.Tensor) -> torch.Tensor:
        """``residual (B, *dims)`` ints, ``relaxed (B, *dims)`` floats, ``history (B, H, A)``
        value indices, ``left (B,)``."""
        batch = residual.shape[0]
        state = nn.functional.one_hot(residual.flatten(1).clamp(-_CLIP, _CLIP) + _CLIP,
                                      2 * _CLIP + 1).flatten(1)
        past = nn.functional.one_hot(history, self.num_values).reshape(batch, -1)
        return torch.cat([state.float(), relaxed.flatten(1).float(), past.float(),
                          left[:, None].float()], dim=1)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Torso features -> (decoder context ``(B, D)``, value ``(B,)``)."""
        body = self.torso(features)
        return self.context(body), self.value_head(body).squeeze(1)

    def step_logits(self, context: torch.Tensor, partial: torch.Tensor,
                    position: int | torch.Tensor, contraction: torch.Tensor) -> torch.Tensor:
        """Logits over the coefficient set for one position, given the chosen prefix.

        ``contraction``: the residual contracted with the chosen part of ``u`` (``(mp*np)``)
        and of ``u`` and ``v`` (``(np)``), the bilinear features that say which ``v`` and ``w``
        fit the ``u`` chosen so far."""
        if isinstance(position, int):
            position = torch.full((context.shape[0],), position, device=context.device)
        return self.decoder(context + self.partial(partial) + self.position(position)
                            + self.contraction(contraction.clamp(-4, 4)))


# -- the agent --------------------------------------------------------------------------
class _Node:
    """One state of a search tree (one game); edges are the sampled candidate moves."""

    __slots__ = ("tree", "residual", "relaxed", "basis", "played", "history", "moves", "done",
                 "value", "actions", "prior", "visits", "value_sum", "rewards", "children")

    def __init__(self, tree, residual, relaxed, basis, played, history, done, value=0.0):
        self.tree, self.residual, self.relaxed, self.basis = tree, residual, relaxed, basis
        self.played, self.history, self.done = played, history, done  # played: (moves, A)
        self.moves = len(played)
        self.value = value
        self.actions = None  # (K, A) value indices, set on expansion
        self.prior = self.visits = self.value_sum = self.rewards = None
        self.children: list[_Node | None] = []

    def expand(self, actions: torch.Tensor, prior: np.ndarray) -> None:
        self.actions, self.prior = actions, prior
        k = len(prior)
        self.visits, self.value_sum = np.zeros(k), np.zeros(k)
        self.rewards = np.zeros(k)
        self.children = [None] * k


class MctsAgent(Agent):
    """Sampled MCTS guided by a policy-value network, trained on demonstrations and self-play."""

    def __init__(self, game: TensorGame, seed: int, **settings: Any) -> None:
        """``settings``: fields of :class:`~mlo_exp.config.MctsAgentConfig` (defaults and
        checks there)."""
        s = self.settings = MctsAgentConfig(**settings)
        super().__init__(game, seed=seed, batch_size=s.batch_size)
        if game.ring != "Z":
            raise ValueError(f"mcts plays over Z (env.ring=Z); got env.ring={game.ring!r}. "
                             "Over Z2 use agent=flipgraph (or greedy, random)")
        simulations, candidates, c_puct, history = (s.simulations, s.candidates, s.c_puct,
                                                    s.history)
        train_steps, train_batch, demonstrations = s.train_steps, s.train_batch, s.demonstrations
        buffer_size, learning_rate = s.buffer_size, s.learning_rate
        self.simulations, self.num_candidates = int(simulations), int(candidates)
        self.c_puct, self.history = float(c_puct), int(history)
        self.temperature = float(s.temperature)
        self.train_steps, self.train_batch = int(train_steps), int(train_batch)
        self.use_demonstrations = bool(demonstrations)
        # A frozen network (learning_rate=0) spends no time on updates that change nothing:
        # no pretraining, one step per episode (its losses are still reported).
        self.frozen = learning_rate == 0
        self.pretrain_steps = int(s.pretrain_steps) if demonstrations and not self.frozen else 0
        self.pretrained = 0  # demonstration-only steps done so far
        self.demo_max_rank = int(s.demo_max_rank or game.max_rank)
        self.demo_nonzeros = int(s.demo_nonzeros)
        self.demo_pool = int(s.demo_pool)
        self.basis_change, self.basis_elementary = s.basis_change, s.basis_elementary
        self.basis_shears = int(s.basis_shears)
        self.value_scale = float(s.value_scale or game.max_rank)
        self.dims, self.action_dim = game.dims, game.action_dim
        self.values = torch.tensor(game.coefficients, device=self.device)
        self.zero_index = int(torch.nonzero(self.values == 0)[0]) if 0 in game.coefficients \
            else None
        self.symmetric = set(game.coefficients) == {-c for c in game.coefficients}
        starts = np.cumsum([0, *self.dims])
        self.block_of = [b for b in range(3) for _ in range(self.dims[b])]
        self.block_start = [int(starts[b]) for b in self.block_of]
        self.block_last = [t == int(starts[b + 1]) - 1 for t, b in enumerate(self.block_of)]
        with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
            torch.manual_seed(seed)  # drawn on the CPU: the same network on every device
            network = MctsNetwork(self.dims, len(self.values), self.history, s.hidden,
                                  s.decoder_hidden)
        self.network = network.to(self.device)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=learning_rate)
        # Replay buffer of searched roots (all in state_dict).
        k, a = self.num_candidates, self.action_dim
        self.buffer = {
            "residual": torch.zeros(buffer_size, *self.dims, dtype=torch.int16, device=self.device),
            "relaxed": torch.zeros(buffer_size, *self.dims, device=self.device),
            "history": torch.zeros(buffer_size, self.history, a, dtype=torch.int64,
                                   device=self.device),
            "left": torch.zeros(buffer_size, device=self.device),
            "candidates": torch.zeros(buffer_size, k, a, dtype=torch.int64, device=self.device),
            "visits": torch.zeros(buffer_size, k, device=self.device),
            "value": torch.zeros(buffer_size, device=self.device),
            "value_weight": torch.zeros(buffer_size, device=self.device),  # 0: no return known
        }
        self.buffer_size, self.buffer_count, self.buffer_next = int(buffer_size), 0, 0
        self.play_rank = game.max_rank  # the curriculum's move limit
        self.resample_steps, self.num_chains = int(s.resample_steps), int(s.chains)
        self.resample_candidates = int(s.resample_candidates)
        self.resample_temperature, self.resample_beta = s.resample_temperature, s.resample_beta
        self.restart_steps = int(s.restart_steps)
        self.chains: torch.Tensor | None = None  # (chains, play_rank, A) values, real target
        self.chain_age = torch.zeros(self.num_chains, dtype=torch.int64, device=self.device)
        self.evaluations = 0  # network evaluations (states), cumulative
        self.simulations_done = 0  # simulations (leaves), cumulative

    def _rand(self, *shape: int) -> torch.Tensor:
        """Uniform ``[0, 1)`` floats from the agent's generator, on its device."""
        return torch.rand(shape, generator=self.generator, device=self.device)

    # -- coefficients <-> indices, legality masks ---------------------------------------
    def to_index(self, actions: torch.Tensor) -> torch.Tensor:
        return torch.searchsorted(self.values, actions.contiguous())

    def _illegal(self, position: int, block_nonzero: torch.Tensor) -> torch.Tensor:
        """``(B, C)`` bool: values forbidden at ``position`` given the prefix (see docstring)."""
        mask = torch.zeros(len(block_nonzero), len(self.values), dtype=torch.bool,
                           device=self.device)
        empty = ~block_nonzero
        if self.block_last[position] and self.zero_index is not None:
            mask[:, self.zero_index] |= empty
        if self.symmetric and self.block_of[position] < 2:
            mask[:, self.values < 0] |= empty[:, None]
        return mask

    @staticmethod
    def contract(tensors: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """``[R x1 u, R x1 u x2 v]`` for both tensors ``(..., 2, *dims)`` (the residual and the
        relaxed residual), flattened: ``(..., 2 * (mp*np + np))``."""
        first = torch.einsum("...cxyz,...x->...cyz", tensors, u)
        second = torch.einsum("...cyz,...y->...cz", first, v)
        return torch.cat([first.flatten(-2), second], dim=-1).flatten(-2)

    def sample_moves(self, context: torch.Tensor, tensors: torch.Tensor, count: int,
                     greedy: bool = False, temperature: float | None = None) -> torch.Tensor:
        """``count`` moves per state, drawn coefficient by coefficient: ``(B, count, A)``.
        ``tensors``: residual and relaxed residual, ``(B, 2, *dims)``; ``temperature``
        divides the logits (default: the agent's ``temperature``)."""
        temperature = self.temperature if temperature is None else temperature
        rows = context.repeat_interleave(count, dim=0)
        tensor = tensors.float().repeat_interleave(count, dim=0)
        n, c = rows.shape[0], len(self.values)
        partial = torch.zeros(n, self.action_dim * c, device=self.device)
        chosen = torch.zeros(n, self.action_dim, dtype=torch.int64, device=self.device)
        coefficients = torch.zeros(n, self.action_dim, device=self.device)
        block_nonzero = torch.zeros(n, dtype=torch.bool, device=self.device)
        du, dv, _ = self.dims
        for t in range(self.action_dim):
            if self.block_start[t] == t:
                block_nonzero = torch.zeros_like(block_nonzero)
            features = self.contract(tensor, coefficients[:, :du], coefficients[:, du:du + dv])
            logits = self.network.step_logits(rows, partial, t, features)
            logits = logits.masked_fill(self._illegal(t, block_nonzero), float("-inf"))
            if greedy:
                pick = logits.argmax(dim=1)
            else:  # Gumbel-max with the agent's generator (on the agent's device)
                noise = torch.rand(n, c, generator=self.generator, device=self.device)
                gumbel = -torch.log(-torch.log(noise.clamp_min(1e-12)))
                pick = (logits / temperature + gumbel).argmax(dim=1)
            chosen[:, t] = pick
            coefficients[:, t] = self.values[pick].float()
            partial[torch.arange(n, device=self.device), t * c + pick] = 1.0
            block_nonzero = block_nonzero | (self.values[pick] != 0)
        return chosen.view(-1, count, self.action_dim)

    def log_prob(self, context: torch.Tensor, tensors: torch.Tensor, actions: torch.Tensor
                 ) -> torch.Tensor:
        """Teacher-forced log-probability of ``actions (B, A)`` (value indices): ``(B,)``."""
        n, a, c = actions.shape[0], self.action_dim, len(self.values)
        onehot = nn.functional.one_hot(actions, c).float().flatten(1)  # (B, A*C)
        before = torch.tril(torch.ones(a, a, device=self.device), diagonal=-1)  # (t, s<t)
        partial = onehot[:, None, :] * before.repeat_interleave(c, dim=1)[None]  # (B, A, A*C)
        prefix = self.values[actions].float()[:, None, :] * before[None]  # (B, A, A)
        du, dv, _ = self.dims
        features = self.contract(tensors.float()[:, None], prefix[..., :du],
                                 prefix[..., du:du + dv])  # (B, A, F)
        positions = torch.arange(a, device=self.device).repeat(n)
        logits = self.network.step_logits(context.repeat_interleave(a, dim=0),
                                          partial.flatten(0, 1), positions,
                                          features.flatten(0, 1)).view(n, a, c)
        nonzero = self.values[actions] != 0
        masks = []
        for t in range(a):
            start = self.block_start[t]
            block_nonzero = nonzero[:, start:t].any(dim=1)
            masks.append(self._illegal(t, block_nonzero))
        logits = logits.masked_fill(torch.stack(masks, 1), float("-inf"))
        picked = torch.log_softmax(logits, dim=2).gather(2, actions[..., None]).squeeze(2)
        return picked.sum(dim=1)

    def canonical(self, actions: torch.Tensor) -> torch.Tensor:
        """Flip signs so the first non-zero of ``u`` and of ``v`` is positive (values)."""
        if not self.symmetric:
            return actions
        u, v, w = torch.split(actions, self.dims, dim=-1)

        def first_sign(x):
            index = (x != 0).int().argmax(dim=-1, keepdim=True)
            return torch.sign(x.gather(-1, index)).clamp_min(-1).masked_fill(
                (x == 0).all(dim=-1, keepdim=True), 1)

        su, sv = first_sign(u), first_sign(v)
        return torch.cat([u * su, v * sv, w * su * sv], dim=-1)

    # -- network evaluation ---------------------------------------------------------------
    def features(self, residual: torch.Tensor, relaxed: torch.Tensor, history: torch.Tensor,
                 moves: torch.Tensor, limit: int) -> torch.Tensor:
        left = (limit - moves).float() / self.game.max_rank
        return self.network.encode(residual, relaxed, history, left.to(self.device))

    @torch.no_grad()
    def evaluate(self, residual, relaxed, history, moves, limit, count: int | None = None,
                 temperature: float | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Values ``(B,)`` (in return units) and ``count`` (default ``candidates``) sampled
        moves ``(B, K, A)``."""
        context, value = self.network(self.features(residual, relaxed, history, moves, limit))
        self.evaluations += residual.shape[0]
        tensors = torch.stack([residual.float(), relaxed.float()], dim=1)
        return value * self.value_scale, self.sample_moves(
            context, tensors, count or self.num_candidates, temperature=temperature)

    # -- the relaxed residual ---------------------------------------------------------------
    def khatri_rao(self, actions: torch.Tensor) -> torch.Tensor:
        """``vec(u (x) v)`` of moves ``(..., A)`` (values): ``(..., nm*mp)`` float64."""
        u, v, _ = torch.split(actions, self.dims, dim=-1)
        return (u[..., :, None] * v[..., None, :]).flatten(-2).double()

    def project_out(self, basis: torch.Tensor, relaxed: torch.Tensor, column: torch.Tensor,
                    moves: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Add pairs ``moves (B, A)`` to orthonormal bases ``(B, X, R)`` at ``column (B,)``
        and project them out of the relaxed residuals ``(B, X, np)``.

        The relaxed residual is what is left of the target when every ``w`` played so far is
        re-chosen (over the reals) to fit best: zero exactly when the pairs span the target.
        """
        pair = self.khatri_rao(moves)
        perp = pair - (basis @ (basis.transpose(1, 2) @ pair[..., None]))[..., 0]
        norm = perp.norm(dim=1, keepdim=True)
        fresh = norm > 1e-6 * pair.norm(dim=1, keepdim=True).clamp_min(1e-12)
        q = torch.where(fresh, perp / norm.clamp_min(1e-12), torch.zeros_like(perp))
        basis = basis.clone()
        basis[torch.arange(len(q), device=q.device), :, column] = q
        relaxed = relaxed - q[:, :, None] * (q[:, None, :] @ relaxed)
        return basis, relaxed

    # -- demonstrations -------------------------------------------------------------------
    def _sparse_factors(self, count: int, length: int) -> torch.Tensor:
        """``(count, length)`` rows with 1..demo_nonzeros non-zero entries from the set."""
        nonzero_values = self.values[self.values != 0]
        k = torch.randint(1, min(self.demo_nonzeros, length) + 1, (count, 1),
                          generator=self.generator, device=self.device)
        order = self._rand(count, length).argsort(dim=1)
        keep = order < k
        picks = nonzero_values[torch.randint(len(nonzero_values), (count, length),
                                             generator=self.generator, device=self.device)]
        return picks * keep

    def _random_decompositions(self, count: int
                               ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Ranks ``(count,)``, canonical terms ``(count, R, A)`` (values; slots beyond the
        rank unused) and their rank-one tensors ``(count, R, *dims)``."""
        rank = self.demo_max_rank
        total = torch.randint(1, rank + 1, (count,), generator=self.generator, device=self.device)
        terms = torch.cat([self._sparse_factors(count * rank, d) for d in self.dims], 1)
        terms = self.canonical(terms.view(count, rank, self.action_dim))
        u, v, w = torch.split(terms, self.dims, dim=-1)
        one = u[..., :, None, None] * v[..., None, :, None] * w[..., None, None, :]
        return total, terms, one

    def demonstrations(self, count: int) -> dict[str, torch.Tensor]:
        """Random decompositions as training examples (see the module docstring)."""
        rank = self.demo_max_rank
        total, terms, one = self._random_decompositions(count)
        if self.demo_pool > 1:  # half of them: the most cancelling of a larger pool
            half = count // 2
            p_total, p_terms, p_one = self._random_decompositions(half * self.demo_pool)
            slot = torch.arange(rank, device=self.device)[None]
            used = slot < p_total[:, None]
            full = (p_one * used[..., None, None, None]).sum(dim=1)
            size = ((p_one != 0).flatten(2).sum(dim=2) * used).sum(dim=1)
            score = (full != 0).flatten(1).sum(dim=1) / size.clamp_min(1)
            # Trivial cancellation (two terms sharing two factors merge) does not count.
            u, v, w = torch.split(p_terms, self.dims, dim=-1)
            same = [(f[:, :, None] == f[:, None, :]).all(dim=-1) for f in (u, v, w)]
            pair = used[:, :, None] & used[:, None, :] & ~torch.eye(
                rank, dtype=torch.bool, device=self.device)
            merge = ((same[0] & same[1]) | (same[0] & same[2]) | (same[1] & same[2])) & pair
            score = score + merge.flatten(1).any(dim=1) + (p_total < 3)
            keep = score.argsort(stable=True)[:half]
            total = torch.cat([total[: count - half], p_total[keep]])
            terms = torch.cat([terms[: count - half], p_terms[keep]])
            one = torch.cat([one[: count - half], p_one[keep]])
        played = (self._rand(count) * total).long()  # 0..total-1
        slot = torch.arange(rank, device=self.device)[None]
        remaining = (slot >= played[:, None]) & (slot < total[:, None])  # (count, rank)
        residual = (one * remaining[..., None, None, None]).sum(dim=1)
        total_tensor = (one * (slot < total[:, None])[..., None, None, None]).sum(dim=1)
        relaxed = total_tensor.reshape(count, -1, self.dims[2]).double()
        basis = torch.zeros(count, relaxed.shape[1], rank, dtype=torch.float64, device=self.device)
        for j in range(rank):  # project out the pairs already played
            move = terms[:, j] * (j < played)[:, None]
            column = torch.full((count,), j, device=self.device)
            basis, relaxed = self.project_out(basis, relaxed, column,
                                            move)
        pick = played + (self._rand(count) * (total - played)).long()  # a remaining term
        target = terms[torch.arange(count, device=self.device), pick]
        zero = self.zero_index or 0
        history = torch.full((count, self.history, self.action_dim), zero, dtype=torch.int64,
                             device=self.device)
        for h in range(self.history):  # history[:, -1] is the last move played
            index = played - self.history + h
            valid = index >= 0
            history[valid, h] = self.to_index(terms[valid, index[valid]])
        return {"residual": residual, "history": history,
                "relaxed": relaxed.float().view(count, *self.dims),
                "moves": played, "target": self.to_index(target),
                "value": -(total - played).float(),
                "remaining": self.to_index(terms), "mask": remaining}

    # -- change of basis --------------------------------------------------------------------
    def _unimodular(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A random signed permutation (maybe times an elementary matrix) and its inverse."""
        perm = torch.randperm(size, generator=self.generator, device=self.device)
        signs = torch.randint(0, 2, (size,), generator=self.generator, device=self.device) * 2 - 1
        matrix = torch.zeros(size, size, dtype=torch.int64, device=self.device)
        matrix[torch.arange(size, device=self.device), perm] = signs
        inverse = matrix.T.clone()
        for _ in range(self.basis_shears):
            if size < 2 or float(self._rand(1)) >= self.basis_elementary:
                continue
            i, j = torch.randperm(size, generator=self.generator, device=self.device)[:2].tolist()
            s = int(torch.randint(0, 2, (1,), generator=self.generator, device=self.device)) * 2 - 1
            elementary = torch.eye(size, dtype=torch.int64, device=self.device)
            elementary[i, j] = s
            elementary_inverse = torch.eye(size, dtype=torch.int64, device=self.device)
            elementary_inverse[i, j] = -s
            matrix, inverse = elementary @ matrix, inverse @ elementary_inverse
        return matrix, inverse

    def random_bases(self, count: int) -> list[tuple[torch.Tensor, ...] | None]:
        """Per game: ``None`` (the real target) or ``(P, Q, S, P^-1, Q^-1, S^-1)``."""
        bases = []
        for _ in range(count):
            if float(self._rand(1)) >= self.basis_change:
                bases.append(None)
                continue
            mats = [self._unimodular(d) for d in self.dims]
            bases.append(tuple(m for m, _ in mats) + tuple(i for _, i in mats))
        return bases

    @staticmethod
    def transform(target: torch.Tensor, basis: tuple[torch.Tensor, ...]) -> torch.Tensor:
        """``T x1 P x2 Q x3 S``: a term ``u (x) v (x) w`` becomes ``Pu (x) Qv (x) Sw``."""
        p, q, s = (m.to(target.device, torch.float64) for m in basis[:3])
        out = torch.einsum("abc,ia,jb,kc->ijk", target.double(), p, q, s)
        return out.round().long()  # small integers: exact in float64 (and on CUDA)

    def map_back(self, actions: torch.Tensor, basis: tuple[torch.Tensor, ...] | None
                 ) -> torch.Tensor:
        """Moves ``(R, A)`` on the changed basis -> moves on the real target."""
        if basis is None:
            return actions
        u, v, w = torch.split(actions, self.dims, dim=-1)
        pi, qi, si = (m.to(actions.device, torch.float64) for m in basis[3:])
        back = torch.cat([u.double() @ pi.T, v.double() @ qi.T, w.double() @ si.T], dim=-1)
        return back.round().long()

    # -- the search -------------------------------------------------------------------------
    def _expand(self, nodes: list[_Node], limit: int) -> None:
        """Evaluate unfinished ``nodes`` in one batch: value and sampled candidate moves."""
        live = [node for node in nodes if not node.done]
        if not live:
            return
        residual = torch.stack([node.residual for node in live])
        relaxed = torch.stack([node.relaxed for node in live]).float().view(-1, *self.dims)
        history = torch.stack([node.history for node in live])
        moves = torch.tensor([node.moves for node in live], device=self.device)
        values, samples = self.evaluate(residual, relaxed, history, moves, limit)
        for node, value, cands in zip(live, values.tolist(), samples, strict=True):
            unique, counts = torch.unique(cands, dim=0, return_counts=True)
            node.value = value
            node.expand(unique, (counts.double() / counts.sum()).cpu().numpy())

    def _select(self, node: _Node, bounds: list[float]) -> int:
        visits = node.visits
        q = np.where(visits > 0, node.value_sum / np.maximum(visits, 1), node.value)
        low, high = bounds
        q = (q - low) / (high - low) if high > low else np.full_like(q, 0.5)
        u = self.c_puct * node.prior * math.sqrt(visits.sum() + 1) / (1 + visits)
        return int(np.argmax(q + u))

    def solve_w(self, played: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """Moves ``(L, A)`` with each ``w`` replaced by the least-squares fit of the target
        given all ``(u, v)`` pairs, rounded to the nearest coefficient (pair_policy's lesson:
        ``M = S @ W.T`` is linear in ``W``)."""
        u, v, _ = torch.split(played, self.dims, dim=-1)
        pairs = self.khatri_rao(played)  # (L, X)
        flat = target.reshape(-1, self.dims[2]).double()
        solution = torch.linalg.pinv(pairs.T) @ flat  # (L, np), least squares
        solution = torch.round(solution * 1e6) / 1e6  # stable rounding of ties
        values = self.values.double()
        w = values[(solution[..., None] - values).abs().argmin(dim=-1)].long()
        return torch.cat([u, v, w], dim=-1)

    def exact_solution(self, played: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        """``played`` with re-solved ``w`` if that decomposes ``target`` exactly (integers);
        terms whose ``w`` is zero are dropped. None otherwise."""
        moves = self.solve_w(played, target)
        moves = moves[(torch.split(moves, self.dims, dim=-1)[2] != 0).any(dim=1)]
        if len(moves) and torch.equal(self.game.rank_one(moves).sum(dim=0), target):
            return moves
        return None

    def _record(self, tree: int, moves: torch.Tensor) -> None:
        best = self._found.get(tree)
        if best is None or len(moves) < len(best):
            self._found[tree] = moves

    def _children(self, game: TensorGame, pairs: list[tuple[_Node, int]]) -> list[_Node]:
        """Play edge ``k`` from each node in one batched game step; returns the children.

        A child whose pairs span its target with an exact re-solved ``W`` is a solved
        (finished) state: the game ends there with the moves' ``w`` re-solved. A child at the
        move limit that is not solved gets the game's penalty for the residual its moves leave
        with their ``w`` re-solved (the moves it would be played with)."""
        residual = torch.stack([node.residual for node, _ in pairs])
        moves = torch.tensor([node.moves for node, _ in pairs], device=self.device)
        batch = len(pairs)
        state = GameState(residual=residual, moves=moves,
                          done=torch.zeros(batch, dtype=torch.bool, device=self.device),
                          solved=torch.zeros(batch, dtype=torch.bool, device=self.device),
                          actions=torch.zeros(batch, game.max_rank, self.action_dim,
                                              dtype=torch.int64, device=self.device))
        index = torch.stack([node.actions[k] for node, k in pairs])
        chosen = self.values[index]
        after, reward, _ = game.step(state, chosen)
        basis, relaxed = self.project_out(torch.stack([node.basis for node, _ in pairs]),
                                          torch.stack([node.relaxed for node, _ in pairs]),
                                          moves, chosen)
        scale = float((self.game.target.double() ** 2).sum())
        spanning = ((relaxed**2).sum(dim=(1, 2)) <= 1e-9 * scale).tolist()
        children = []
        for b, (node, k) in enumerate(pairs):
            history = torch.cat([node.history[1:], index[b][None]]) if self.history \
                else node.history
            played = torch.cat([node.played, chosen[b][None]])
            target = self._targets[node.tree]
            done, edge = bool(after.done[b]), float(reward[b])
            if bool(after.solved[b]):
                self._record(node.tree, played)
            elif spanning[b] or done:
                solution = self.exact_solution(played, target)
                if solution is not None:
                    self._record(node.tree, solution)
                    done, edge = True, -1.0
                elif done:  # the penalty of the residual left with re-solved w
                    left = target - self.game.rank_one(self.solve_w(played, target)).sum(dim=0)
                    edge = -1.0 - float(game.residual_rank_bound(left[None])[0])
            child = _Node(node.tree, after.residual[b], relaxed[b], basis[b], played, history,
                          done)
            node.children[k] = child
            node.rewards[k] = edge
            children.append(child)
        return children

    def search(self, game: TensorGame, roots: list[_Node]) -> None:
        """``simulations`` simulations in every tree; one batched leaf evaluation each."""
        bounds = [[math.inf, -math.inf] for _ in roots]
        for _ in range(self.simulations):
            paths, leaves = [], []
            for root in roots:
                node, path = root, []
                while True:
                    k = self._select(node, bounds[len(paths)])
                    path.append((node, k))
                    child = node.children[k]
                    if child is None:
                        leaves.append(len(paths))
                        break
                    node = child
                    if node.done:
                        break
                paths.append(path)
            if leaves:
                children = self._children(game, [paths[i][-1] for i in leaves])
                self._expand(children, game.max_rank)
            self.simulations_done += len(roots)
            for tree, path in enumerate(paths):
                last_node, last_k = path[-1]
                leaf = last_node.children[last_k]
                total = 0.0 if leaf.done else leaf.value
                for node, k in reversed(path):
                    total = node.rewards[k] + total
                    node.visits[k] += 1
                    node.value_sum[k] += total
                    low, high = bounds[tree]
                    bounds[tree] = [min(low, total), max(high, total)]

    def self_play(self) -> tuple[list[torch.Tensor], list, list[dict], dict[str, float]]:
        """Play ``batch_size`` games on (changed-basis) targets with the search."""
        game = copy.copy(self.game)
        game.max_rank = self.play_rank
        count = self.batch_size
        bases = self.random_bases(count)
        self._targets = [self.game.target if b is None else self.transform(self.game.target, b)
                         for b in bases]
        self._found: dict[int, torch.Tensor] = {}
        zero = self.zero_index or 0
        empty = torch.full((self.history, self.action_dim), zero, dtype=torch.int64,
                           device=self.device)
        x = self.dims[0] * self.dims[1]
        roots = [_Node(g, target, target.reshape(x, -1).double(),
                       torch.zeros(x, self.game.max_rank, dtype=torch.float64, device=self.device),
                       torch.zeros(0, self.action_dim, dtype=torch.int64, device=self.device),
                       empty, False) for g, target in enumerate(self._targets)]
        self._expand(roots, game.max_rank)
        rewards: list[list[float]] = [[] for _ in roots]
        examples: list[dict] = []
        depth_sum = 0.0
        while True:
            active = [g for g, root in enumerate(roots) if not root.done]
            if not active:
                break
            if self.simulations:
                self.search(game, [roots[g] for g in active])
            steps = []
            for g in active:
                root = roots[g]
                if self.simulations:
                    probs = root.visits / root.visits.sum()
                else:
                    probs = np.eye(len(root.prior))[0]  # the policy's own first sample
                noise = float(torch.rand(1, generator=self.generator, dtype=torch.float64,
                                   device=self.device))
                k = min(int(np.searchsorted(np.cumsum(probs), noise * probs.sum())),
                        len(probs) - 1)
                examples.append({"game": g, "residual": root.residual, "history": root.history,
                                 "relaxed": root.relaxed, "moves": root.moves,
                                 "candidates": root.actions,
                                 "visits": torch.as_tensor(probs if self.simulations
                                                           else root.prior).float()})
                steps.append((root, k))
                depth_sum += float(root.visits.sum()) if self.simulations else 0.0
            missing = [(root, k) for root, k in steps if root.children[k] is None]
            if missing:
                self._expand(self._children(game, missing), game.max_rank)
            for g, (root, k) in zip(active, steps, strict=True):
                rewards[g].append(float(root.rewards[k]))
                roots[g] = root.children[k]
        returns_to_go = [np.cumsum(r[::-1])[::-1] for r in rewards]
        step_of = [0] * count
        for example in examples:
            g = example["game"]
            example["value"] = float(returns_to_go[g][step_of[g]])
            step_of[g] += 1
        # Per game: the best solution its search met, else the moves it played.
        played = [self._found.get(g, root.played) for g, root in enumerate(roots)]
        stats = {"search_root_visits": depth_sum / max(len(examples), 1),
                 "play_best_return": float(max(sum(r) for r in rewards)),
                 "play_return": float(np.mean([sum(r) for r in rewards])),
                 "search_solutions": float(len(self._found))}
        return played, bases, examples, stats

    # -- pair resampling --------------------------------------------------------------------
    def _chain_states(self, others: torch.Tensor) -> dict[str, torch.Tensor]:
        """Network inputs and projections for chains with one pair left out.

        ``others (B, L, A)`` (values, the real target). Returns the residual (target minus the
        other terms with ``w`` re-fitted by least squares, rounded to the set), the relaxed
        residual ``(B, X, np)``, the orthonormal basis of their pairs and the history."""
        batch, length = others.shape[:2]
        x = self.dims[0] * self.dims[1]
        target = self.game.target
        basis = torch.zeros(batch, x, length, dtype=torch.float64, device=self.device)
        relaxed = target.reshape(x, -1).double().expand(batch, -1, -1).clone()
        for j in range(length):
            column = torch.full((batch,), j, device=self.device)
            basis, relaxed = self.project_out(basis, relaxed, column, others[:, j])
        pairs = self.khatri_rao(others)  # (B, L, X)
        fit = torch.linalg.pinv(pairs.transpose(1, 2)) @ target.reshape(x, -1).double()
        w = self.values[(fit[..., None] - self.values.double()).abs().argmin(dim=-1)]
        terms = torch.einsum("blx,blz->bxz", pairs, w.double()).round().long()
        residual = target[None] - terms.view(batch, *self.dims)
        history = torch.full((batch, self.history, self.action_dim), self.zero_index or 0,
                             dtype=torch.int64, device=self.device)
        last = min(self.history, length)
        if last:  # history[:, -1] is the last move
            history[:, self.history - last:] = self.to_index(others[:, length - last:])
        return {"residual": residual, "relaxed": relaxed, "basis": basis, "history": history}

    def _gains(self, basis: torch.Tensor, relaxed: torch.Tensor, moves: torch.Tensor
               ) -> torch.Tensor:
        """How much adding each pair of ``moves (B, K, A)`` lowers ``|relaxed|_F^2``:
        ``sum_c <s_perp, r_c>^2 / |s_perp|^2`` (``-1`` for a pair already in the span)."""
        pair = self.khatri_rao(moves)  # (B, K, X)
        perp = pair - ((pair @ basis) @ basis.transpose(1, 2))
        norm2 = (perp**2).sum(dim=-1)
        gain = ((perp @ relaxed) ** 2).sum(dim=-1) / norm2.clamp_min(1e-12)
        fresh = norm2 > 1e-6 * (pair**2).sum(dim=-1).clamp_min(1e-12)
        return torch.where(fresh, gain, torch.full_like(gain, -1.0))

    def _random_chains(self, count: int) -> torch.Tensor:
        """``count`` chains of ``play_rank`` random sparse moves (values)."""
        rows = count * self.play_rank
        moves = torch.cat([self._sparse_factors(rows, d) for d in self.dims], dim=1)
        return self.canonical(moves.view(count, self.play_rank, self.action_dim))

    def resample(self) -> tuple[dict[int, torch.Tensor], list[dict], dict[str, float]]:
        """``resample_steps`` steps of pair resampling on the chains (see the docstring).

        Returns the exact solutions met (chain -> moves on the real target, at most
        ``play_rank`` terms), the training examples (state, the chosen pair) and statistics."""
        count, rank = self.num_chains, self.play_rank
        if rank < 2 or not self.resample_steps:
            return {}, [], {"resample_solutions": 0.0}
        if self.chains is None or self.chains.shape[1] != rank:
            self.chains, self.chain_age = self._random_chains(count), torch.zeros(
                count, dtype=torch.int64, device=self.device)
        rows = torch.arange(count, device=self.device)
        target = self.game.target
        scale = float((target.double() ** 2).sum())
        found: dict[int, torch.Tensor] = {}
        examples: list[dict] = []
        closest = math.inf
        for _ in range(self.resample_steps):
            slot = torch.randint(rank, (count,), generator=self.generator, device=self.device)
            keep = torch.ones(count, rank, dtype=torch.bool, device=self.device)
            keep[rows, slot] = False
            others = self.chains[keep].view(count, rank - 1, self.action_dim)
            state = self._chain_states(others)
            relaxed = state["relaxed"].float().view(count, *self.dims)
            moves_so_far = torch.full((count,), rank - 1, device=self.device)
            _, samples = self.evaluate(state["residual"], relaxed, state["history"],
                                       moves_so_far, rank, self.resample_candidates,
                                       self.resample_temperature)
            options = torch.cat([self.chains[rows, slot][:, None], self.values[samples]], dim=1)
            gain = self._gains(state["basis"], state["relaxed"], options)
            left = (state["relaxed"] ** 2).sum(dim=(1, 2))[:, None] - gain
            closest = min(closest, float(left.min()) / scale)
            for b, k in torch.nonzero(left <= 1e-9 * scale).tolist():
                if b in found:
                    continue
                solution = self.exact_solution(torch.cat([others[b], options[b, k][None]]),
                                               target)
                if solution is not None and len(solution) <= rank:
                    found[b] = solution
            pick = torch.multinomial(torch.softmax(self.resample_beta * gain, dim=1), 1,
                                     generator=self.generator)[:, 0]
            chosen = self.canonical(options[rows, pick])
            self.chains[rows, slot] = chosen
            for b in range(count):
                examples.append({"residual": state["residual"][b], "relaxed": state["relaxed"][b],
                                 "history": state["history"][b], "moves": rank - 1,
                                 "candidates": self.to_index(chosen[b])[None],
                                 "visits": torch.ones(1), "value": None})
            self.chain_age += 1
            stale = (self.chain_age >= self.restart_steps) | torch.isin(
                rows, torch.tensor(sorted(found), dtype=torch.int64, device=self.device))
            if bool(stale.any()):
                self.chains[stale] = self._random_chains(int(stale.sum()))
                self.chain_age[stale] = 0
        stats = {"resample_solutions": float(len(found)), "resample_closest": closest}
        return found, examples, stats

    # -- replay buffer and learning ---------------------------------------------------------
    def store(self, examples: list[dict]) -> None:
        k = self.num_candidates
        for example in examples:
            i = self.buffer_next
            cands, visits = example["candidates"], example["visits"]
            pad = k - len(cands)
            buf = self.buffer
            buf["residual"][i] = example["residual"].clamp(-999, 999).to(torch.int16)
            buf["history"][i] = example["history"]
            buf["relaxed"][i] = example["relaxed"].view(*self.dims).float()
            buf["left"][i] = float(self.play_rank - example["moves"]) / self.game.max_rank
            buf["candidates"][i] = torch.cat([cands, cands[:1].expand(pad, -1)])
            buf["visits"][i] = torch.cat([visits.to(self.device),
                                          torch.zeros(pad, device=self.device)])
            known = example["value"] is not None
            buf["value"][i] = example["value"] if known else 0.0
            buf["value_weight"][i] = float(known)
            self.buffer_next = (i + 1) % self.buffer_size
            self.buffer_count = min(self.buffer_count + 1, self.buffer_size)

    def learn_step(self, demos: dict[str, torch.Tensor] | None, replay: int) -> dict[str, float]:
        """One Adam step on demonstrations and ``replay`` buffer samples."""
        metrics: dict[str, float] = {}
        losses = []
        if demos is not None:
            feats = self.features(demos["residual"], demos["relaxed"], demos["history"],
                                  demos["moves"], self.game.max_rank)
            context, value = self.network(feats)
            tensors = torch.stack([demos["residual"].float(), demos["relaxed"]], dim=1)
            demo_policy = -self.log_prob(context, tensors, demos["target"]).mean()
            demo_value = ((value - demos["value"] / self.value_scale) ** 2).mean()
            losses.append(demo_policy + demo_value)
            metrics.update(demo_policy_loss=float(demo_policy.detach()),
                           demo_value_loss=float(demo_value.detach()))
        if replay:
            pick = torch.randint(self.buffer_count, (replay,), generator=self.generator,
                                 device=self.device)
            buf = {key: value[pick] for key, value in self.buffer.items()}
            buf["residual"] = buf["residual"].long()
            feats = self.network.encode(buf["residual"], buf["relaxed"], buf["history"],
                                        buf["left"])
            context, value = self.network(feats)
            # Cross-entropy towards the visit distribution, estimated with one candidate
            # drawn from it per state (K times cheaper than scoring every candidate).
            draw = torch.multinomial(buf["visits"] + 1e-12, 1, generator=self.generator)[:, 0]
            chosen = buf["candidates"][torch.arange(replay, device=self.device), draw]
            tensors = torch.stack([buf["residual"].float(), buf["relaxed"]], dim=1)
            play_policy = -self.log_prob(context, tensors, chosen).mean()
            weight = buf["value_weight"]
            play_value = (weight * (value - buf["value"] / self.value_scale) ** 2).sum() \
                / weight.sum().clamp_min(1.0)
            losses.append(play_policy + play_value)
            metrics.update(play_policy_loss=float(play_policy.detach()),
                           play_value_loss=float(play_value.detach()))
        if losses:
            loss = sum(losses)
            self.optimizer.zero_grad()
            loss.backward()
            nn.utils.clip_grad_norm_(self.network.parameters(), 1.0)
            self.optimizer.step()
        return metrics

    def learn(self, trajectory: Trajectory | None = None) -> dict[str, float]:
        """``train_steps`` steps; per-episode means of the losses, demonstration accuracy."""
        if self.train_steps == 0:
            return {}
        half = self.train_batch // 2
        sums: dict[str, float] = {}
        steps = 1 if self.frozen else self.train_steps
        for _ in range(steps):
            demos = self.demonstrations(half if self.buffer_count else self.train_batch) \
                if self.use_demonstrations else None
            replay = min(half if demos is not None else self.train_batch, self.buffer_count)
            for key, value in self.learn_step(demos, replay).items():
                sums[key] = sums.get(key, 0.0) + value / steps
        if "demo_policy_loss" in sums or "play_policy_loss" in sums:
            sums["policy_loss"] = sums.get("demo_policy_loss", 0.0) + sums.get(
                "play_policy_loss", 0.0)
            sums["value_loss"] = sums.get("demo_value_loss", 0.0) + sums.get(
                "play_value_loss", 0.0)
        sums["demo_accuracy"] = self.demo_accuracy(64)
        return sums

    @torch.no_grad()
    def demo_accuracy(self, count: int) -> float:
        """Share of fresh demonstrations whose greedy move is one of their remaining terms."""
        demos = self.demonstrations(count)
        context, _ = self.network(self.features(demos["residual"], demos["relaxed"],
                                                demos["history"], demos["moves"],
                                                self.game.max_rank))
        tensors = torch.stack([demos["residual"].float(), demos["relaxed"]], dim=1)
        move = self.sample_moves(context, tensors, 1, greedy=True)[:, 0]  # (B, A)
        hit = (demos["remaining"] == move[:, None]).all(dim=2) & demos["mask"]
        return float(hit.any(dim=1).float().mean())

    # -- one episode --------------------------------------------------------------------------
    def pretrain(self) -> dict[str, float]:
        """Before the first game: ``pretrain_steps`` steps on demonstrations alone."""
        metrics: dict[str, float] = {}
        while self.pretrained < self.pretrain_steps:
            metrics = self.learn_step(self.demonstrations(self.train_batch), 0)
            self.pretrained += 1
        return {f"pretrain_{key}": value for key, value in metrics.items()}

    def run_episode(self) -> EpisodeResult:
        pretrain = self.pretrain()
        played, bases, examples, stats = self.self_play()
        self.store(examples)
        chain_solutions, chain_examples, chain_stats = self.resample()
        self.store(chain_examples)
        metrics = self.learn()
        # Map every game back to the real target and replay it there, move by move.
        rejected = 0
        moves = []
        for actions, basis in zip(played, bases, strict=True):
            real = self.map_back(actions, basis)
            if not bool(torch.isin(real, self.values).all()):
                rejected += 1
                real = torch.zeros_like(real)  # not a move of this game: counts as unsolved
            moves.append(real)
        # A game that did not solve (or is longer) yields its place to the solution of chain
        # g (game g mod batch_size).
        for g, solution in chain_solutions.items():
            index = g % len(moves)
            if not torch.equal(self.game.rank_one(moves[index]).sum(dim=0), self.game.target) \
                    or len(solution) < len(moves[index]):
                moves[index] = solution
        trajectory = self.replay(moves)
        final = trajectory.final
        solved = final.solved.cpu() & (final.moves.cpu() <= self.play_rank)
        metrics.update(stats)
        metrics.update(chain_stats)
        metrics.update(pretrain)
        metrics.update({"play_max_rank": float(self.play_rank),
                        "games_solved": float(solved.sum()),
                        "basis_rejected": float(rejected),
                        "network_evaluations": float(self.evaluations),
                        "simulations": float(self.simulations_done),
                        "buffer_size": float(self.buffer_count)})
        result = self.summarise(trajectory, metrics)
        if bool(solved.any()):
            self.play_rank = max(int(final.moves.cpu()[solved].min()) - 1, 1)
        return result

    def replay(self, moves: list[torch.Tensor]) -> Trajectory:
        """Play each game's moves (on the real target) in the real game, with the move limit
        of this episode's games (so an unsolved game earns the game's penalty there)."""
        game = copy.copy(self.game)
        game.max_rank = self.play_rank
        state = game.reset(len(moves))
        length = max(len(m) for m in moves)
        states, actions, rewards = [], [], []
        for t in range(length):
            action = torch.stack([m[t] if t < len(m) else torch.zeros_like(m[0])
                                  for m in moves]).to(self.device)
            after, reward, _ = game.step(state, action)
            states.append(state)
            actions.append(action)
            rewards.append(reward)
            state = after
        return Trajectory(states, actions, rewards, state)

    # -- state ----------------------------------------------------------------------------
    def state_dict(self) -> dict[str, Any]:
        return {
            **super().state_dict(),
            "network": self.network.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "buffer": {key: value.clone() for key, value in self.buffer.items()},
            "buffer_count": self.buffer_count,
            "buffer_next": self.buffer_next,
            "play_rank": self.play_rank,
            "pretrained": self.pretrained,
            "evaluations": self.evaluations,
            "simulations_done": self.simulations_done,
            "chains": None if self.chains is None else self.chains.clone(),
            "chain_age": self.chain_age.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.network.load_state_dict(state["network"])
        load_optimizer_state(self.optimizer, state["optimizer"])
        self.buffer = {key: value.clone() for key, value in state["buffer"].items()}
        self.buffer_count = int(state["buffer_count"])
        self.buffer_next = int(state["buffer_next"])
        self.play_rank = int(state["play_rank"])
        self.pretrained = int(state["pretrained"])
        self.evaluations = int(state["evaluations"])
        self.simulations_done = int(state["simulations_done"])
        self.chains = None if state["chains"] is None else state["chains"].clone()
        self.chain_age = state["chain_age"].clone()
