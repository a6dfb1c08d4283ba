"""AlphaTensor, scaled down: a policy-value network, sampled MCTS, demonstrations, self-play,
and pair resampling, with the controls that tell whether the learning pays.

The agent is five files, each read top to bottom:

* :mod:`~mlo_exp.agents.mcts_moves`: the move space (coefficients, canonical signs, legality,
  the sparse prior);
* :mod:`~mlo_exp.agents.mcts_network`: the network and its autoregressive move sampler;
* :mod:`~mlo_exp.agents.mcts_demonstrations`: synthetic demonstrations;
* :mod:`~mlo_exp.agents.mcts_resampling`: the second search, pair resampling of whole sets;
* this module: the agent (proposals, changes of basis), the tree search, learning, the
  episode and the state.

The algebra of ``(u, v)`` pairs (Khatri-Rao products, the relaxed residual, gains, the
exact solve for ``w``) is :mod:`mlo_exp.agents.pair_algebra`, shared with ``pair_policy``.

**Proposals** (``proposals``). Both searches draw their candidate moves from a proposer:
``network`` (the policy head at ``temperature``, with the value head's estimate) or
``sparse``, the control: moves from the sparse prior (1 to ``demo_nonzeros`` non-zero
entries per factor, the distribution the demonstrations teach), a value of 0, no network
evaluated, no learning; ``prior_share`` > 0 puts that share of each resampling step's
candidates from the sparse prior beside the network's. A learning claim holds only against
this control, the network frozen after the same pretraining (``freeze_after_pretraining``),
the network frozen at its initialisation (``learning_rate=0``), no demonstrations and the
tree (``simulations=32``).

**Relaxed residual** (pair_policy's lesson: given the ``(u, v)`` pairs, the target is linear
in ``W``). It is zero exactly when the pairs played span the target; the search then solves
``W`` (least squares, rounded to the coefficient set) and, if the terms rebuild the target
exactly in integers, the game is **solved** there with those moves. At the move limit, an
unsolved game's penalty is the game's own ``bound`` of the residual its moves leave with
their ``w`` re-fitted. The network and the search still choose every pair.

**Change of basis.** Each game is played on ``T' = T x1 P x2 Q x3 S`` with probability
``basis_change`` (else on ``T``): ``P, Q, S`` are random signed permutations, each times up
to ``basis_shears`` elementary matrices ``I + s e_i e_j^T`` (each with probability
``basis_elementary``), so every matrix is integral with an integral inverse. A decomposition
``(u', v', w')`` of ``T'`` maps back to ``(P^-1 u', Q^-1 v', S^-1 w')`` of ``T``; it is
replayed move by move in the real :class:`TensorGame` and counts only if its coefficients are
in the game's set and the replay ends on a zero residual (the trainer verifies it again).

**Tree search** (sampled MCTS, AlphaZero/Sampled-MuZero style). Expanding a node evaluates the
proposer once: a value and ``candidates`` sampled moves (duplicates merged, prior = share of
samples). Selection by PUCT (``c_puct``), ``Q`` min-max normalised per tree, unvisited edges
valued at the parent's value; each edge stores the game's reward (``-1`` per move, the
rank-bound penalty at the move limit); backup adds rewards along the path to the leaf's
value (0 at a finished game). All ``batch_size`` games advance together: one leaf per game
per simulation, so the network runs on a batch of leaves. After ``simulations`` simulations
the move is drawn from the root's visit counts (temperature 1) and the subtree is kept.
``simulations=0`` (the default: the tree did not beat it in ``perf/discovery_mcts.md``, issue
32): no search, the move is the proposer's one sample. A game reports the
best solution its search met (any leaf), else the moves it played.

**Pair resampling** (``resample_steps`` steps per episode, 0 turns it off): see
:mod:`~mlo_exp.agents.mcts_resampling`; ``chains`` sets of ``play_rank`` pairs, the
proposer's ``resample_candidates`` moves at ``resample_temperature``, drawn by
``softmax(resample_beta * gain)``; the network draws only ``u`` and ``v`` there (``w`` is
re-fitted; a proposal's ``w`` comes from the sparse prior). A chain's solution takes the
place of an unsolved (or longer) game in the episode's replay (chain ``c`` replaces game
``c mod batch_size``), so it reaches the trainer like any game and is verified again there.

**Learning** (``proposals=network``). Before the first game, ``pretrain_steps`` steps on
demonstrations alone. Every searched root becomes a training example (policy towards the
visit distribution over its candidates, estimated with one candidate drawn from it; value
towards the return that followed), and so does every resampling draw (the chosen pair, no
value target); they are kept in a replay buffer of ``buffer_size``. After each episode,
``train_steps`` Adam steps on batches of ``train_batch`` states: half fresh demonstrations,
half replay. ``freeze_after_pretraining``: no step after the pretraining (nothing stored).
``learning_rate=0``: no pretraining, one step per episode (it changes nothing; its losses are
reported). Network inference runs under :func:`torch.inference_mode`.

**Curriculum.** Games start with the game's move limit (the school method's rank). Once a
game solves with ``r`` moves (checked in the real game), later games get ``r - 1`` moves.

``EpisodeResult.metrics``: losses (policy, value; demonstration and self-play parts),
demonstration accuracy (greedy decoding hits a remaining term), search statistics,
resampling statistics, the current move limit and cumulative counts of network evaluations
(states the network read: proposals and values), network updates (Adam steps, pretraining
included), proposals (states given candidates, by either proposer) and simulations.
Everything (network, optimiser, buffer, generator, curriculum, chains, counters) is in
:meth:`MctsAgent.state_dict`; episodes share no other state, so a resumed run replays exactly.

Length: about 700 lines on purpose: the agent's own loop (self-play in the tree, training,
the controls) reads top to bottom in one file, as CleanRL keeps an agent; every part that
stands alone is in the four modules above.
"""

from __future__ import annotations

import copy
import math
from typing import Any

import numpy as np
import torch
from torch import nn

from mlo_exp.agents import pair_algebra
from mlo_exp.agents.base import Agent, EpisodeResult, Trajectory, load_optimizer_state
from mlo_exp.agents.mcts_demonstrations import Demonstrations
from mlo_exp.agents.mcts_moves import MoveSpace
from mlo_exp.agents.mcts_network import MctsNetwork, log_prob, sample_moves
from mlo_exp.agents.mcts_resampling import PairResampler
from mlo_exp.config import MctsAgentConfig
from mlo_exp.env import GameState, TensorGame


class _Node:
    """One state of a search tree (one game); edges are the proposed candidate moves."""

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
    """Sampled MCTS and pair resampling with a proposer (a policy-value network trained on
    demonstrations and self-play, or the sparse prior)."""

    def __init__(self, game: TensorGame, seed: int, **settings: Any) -> None:
        """``settings``: fields of :class:`~mlo_exp.config.MctsAgentConfig` (defaults and
        checks there); the agent reads them as ``self.settings.<field>``."""
        s = self.settings = MctsAgentConfig(**settings)
        super().__init__(game, seed=seed, batch_size=s.batch_size)
        if game.ring != "Z":
            raise ValueError(f"mcts plays over Z (env.ring=Z); got env.ring={game.ring!r}. "
                             "Over Z2 use agent=flipgraph (or greedy, random)")
        self.space = MoveSpace(game.dims, game.coefficients, self.device)
        self.dims, self.action_dim, self.values = game.dims, game.action_dim, self.space.values
        self.value_scale = float(s.value_scale or game.max_rank)
        # Who learns: the network, unless the proposals are the sparse prior; a frozen network
        # (learning_rate=0) spends no time on updates that change nothing: no pretraining,
        # one step per episode (its losses are still reported).
        self.uses_network = s.proposals == "network"
        self.frozen = s.learning_rate == 0
        self.pretrain_steps = s.pretrain_steps if (self.uses_network and s.demonstrations
                                                   and not self.frozen) else 0
        self.learns = self.uses_network and not s.freeze_after_pretraining
        with torch.random.fork_rng(devices=[]):  # seeded initialisation, global RNG untouched
            torch.manual_seed(seed)  # drawn on the CPU: the same network on every device
            network = MctsNetwork(self.dims, len(self.values), s.history, s.hidden,
                                  s.decoder_hidden, device="cpu")
        self.network = network.to(self.device)
        self.optimizer = torch.optim.Adam(self.network.parameters(), lr=s.learning_rate)
        self.demonstrations = Demonstrations(self.space, s.demo_max_rank or game.max_rank,
                                             s.demo_nonzeros, s.demo_pool, s.history,
                                             self.generator)
        self.resampler = PairResampler(self.space, game.target, s.history, s.chains,
                                       s.resample_steps, s.resample_candidates,
                                       s.resample_temperature, s.resample_beta,
                                       s.restart_steps, s.demo_nonzeros, self.generator,
                                       progress=self.report_progress)
        self.buffer = self._empty_buffer()  # searched roots and resampling draws
        self.buffer_count, self.buffer_next = 0, 0
        self.play_rank = game.max_rank  # the curriculum's move limit
        self.pretrained = 0  # demonstration-only steps done so far
        self.evaluations = 0  # network evaluations (states), cumulative
        self.updates = 0  # Adam steps, cumulative (pretraining included)
        self.proposals = 0  # states given candidate moves (either proposer), cumulative
        self.simulations_done = 0  # simulations (leaves), cumulative

    def _empty_buffer(self) -> dict[str, torch.Tensor]:
        size, k, a, d = (self.settings.buffer_size, self.settings.candidates, self.action_dim,
                         self.device)
        return {
            "residual": torch.zeros(size, *self.dims, dtype=torch.int16, device=d),
            "relaxed": torch.zeros(size, *self.dims, device=d),
            "history": torch.zeros(size, self.settings.history, a, dtype=torch.int64, device=d),
            "left": torch.zeros(size, device=d),
            "candidates": torch.zeros(size, k, a, dtype=torch.int64, device=d),
            "visits": torch.zeros(size, k, device=d),
            "value": torch.zeros(size, device=d),
            "value_weight": torch.zeros(size, device=d),  # 0: no return known
        }

    # -- proposals: the network or the sparse prior ----------------------------------------
    def features(self, residual: torch.Tensor, relaxed: torch.Tensor, history: torch.Tensor,
                 moves: torch.Tensor, limit: int) -> torch.Tensor:
        left = (limit - moves).float() / self.game.max_rank
        return self.network.encode(residual, relaxed, history, left.to(self.device))

    def evaluate(self, residual: torch.Tensor, relaxed: torch.Tensor, history: torch.Tensor,
                 moves: torch.Tensor, limit: int, count: int | None = None,
                 temperature: float | None = None, length: int | None = None
                 ) -> tuple[torch.Tensor, torch.Tensor]:
        """Values ``(B,)`` (in return units) and ``count`` (default ``candidates``) proposed
        moves ``(B, K, A)`` (indices) at ``temperature`` (default ``temperature``). ``length``:
        the network draws only the first ``length`` coefficients (the others: index 0; the
        sparse prior always draws whole moves)."""
        count = count or self.settings.candidates
        temperature = self.settings.temperature if temperature is None else temperature
        batch = residual.shape[0]
        self.proposals += batch
        if not self.uses_network:  # the control: the sparse prior, a value of 0
            moves = self.space.sparse_moves(batch * count, self.settings.demo_nonzeros,
                                            self.generator)
            return (torch.zeros(batch, device=self.device),
                    self.space.to_index(moves).view(batch, count, self.action_dim))
        with torch.inference_mode():
            context, value = self.network(self.features(residual, relaxed, history, moves,
                                                        limit))
            tensors = torch.stack([residual.float(), relaxed.float()], dim=1)
            samples = sample_moves(self.network, self.space, context, tensors, count,
                                   self.generator, temperature, length=length)
        self.evaluations += batch
        return value * self.value_scale, samples

    def propose(self, residual: torch.Tensor, relaxed: torch.Tensor, history: torch.Tensor,
                moves: torch.Tensor, limit: int, count: int, temperature: float
                ) -> torch.Tensor:
        """``count`` pairs per state, ``(B, count, A)`` indices (the resampler's
        :data:`~mlo_exp.agents.mcts_resampling.Proposer`). The resampler re-fits ``w``, so
        the network draws only ``u`` and ``v``; ``w`` comes from the sparse prior. With
        ``prior_share`` > 0 the last ``round(count * prior_share)`` pairs are the sparse
        prior's, beside the network's."""
        du, dv, dw = self.dims
        batch = residual.shape[0]
        prior = min(round(count * self.settings.prior_share), count - 1) \
            if self.uses_network else 0
        own = count - prior
        pairs = self.evaluate(residual, relaxed, history, moves, limit, own, temperature,
                              length=du + dv)[1]
        if not self.uses_network:  # the sparse prior's moves are whole already
            return pairs
        w = self.space.sparse_factors(batch * own, dw, self.settings.demo_nonzeros,
                                      self.generator)
        w = self.space.to_index(w).view(batch, own, dw)
        pairs = torch.cat([pairs[..., :du + dv], w], dim=2)
        if not prior:
            return pairs
        sparse = self.space.sparse_moves(batch * prior, self.settings.demo_nonzeros,
                                         self.generator)
        return torch.cat([pairs, self.space.to_index(sparse).view(batch, prior, -1)], dim=1)

    # -- change of basis --------------------------------------------------------------------
    def _rand(self) -> float:
        return float(torch.rand(1, generator=self.generator, device=self.device))

    def _unimodular(self, size: int) -> tuple[torch.Tensor, torch.Tensor]:
        """A random signed permutation (maybe times elementary matrices) and its inverse."""
        g, d = self.generator, self.device
        perm = torch.randperm(size, generator=g, device=d)
        signs = torch.randint(0, 2, (size,), generator=g, device=d) * 2 - 1
        matrix = torch.zeros(size, size, dtype=torch.int64, device=d)
        matrix[torch.arange(size, device=d), perm] = signs
        inverse = matrix.T.clone()
        for _ in range(self.settings.basis_shears):
            if size < 2 or self._rand() >= self.settings.basis_elementary:
                continue
            i, j = torch.randperm(size, generator=g, device=d)[:2].tolist()
            s = int(torch.randint(0, 2, (1,), generator=g, device=d)) * 2 - 1
            elementary = torch.eye(size, dtype=torch.int64, device=d)
            elementary[i, j] = s
            elementary_inverse = torch.eye(size, dtype=torch.int64, device=d)
            elementary_inverse[i, j] = -s
            matrix, inverse = elementary @ matrix, inverse @ elementary_inverse
        return matrix, inverse

    def random_bases(self, count: int) -> list[tuple[torch.Tensor, ...] | None]:
        """Per game: ``None`` (the real target) or ``(P, Q, S, P^-1, Q^-1, S^-1)``."""
        bases = []
        for _ in range(count):
            if self._rand() >= self.settings.basis_change:
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

    # -- the tree search --------------------------------------------------------------------
    def exact_solution(self, played: torch.Tensor, target: torch.Tensor) -> torch.Tensor | None:
        """``played (L, A)`` with ``w`` re-fitted if that decomposes ``target`` exactly
        (integers; terms whose ``w`` is zero dropped), else None."""
        du, dv, _ = self.dims
        terms = pair_algebra.exact_terms(played[:, :du], played[:, du:du + dv], target,
                                         self.values)
        return None if terms is None else torch.cat(terms, dim=1)

    def refit_w(self, played: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        """``played (L, A)`` with every ``w`` re-fitted to ``target`` (rounded to the set)."""
        u, v, _ = torch.split(played, self.dims, dim=-1)
        return torch.cat([u, v, pair_algebra.fit_w(u, v, pair_algebra.unfold(target),
                                                   self.values)], dim=-1)

    def _expand(self, nodes: list[_Node], limit: int) -> None:
        """Evaluate unfinished ``nodes`` in one batch: value and proposed candidate moves."""
        live = [node for node in nodes if not node.done]
        if not live:
            return
        residual = torch.stack([node.residual for node in live])
        relaxed = torch.stack([node.relaxed for node in live]).float().view(-1, *self.dims)
        history = torch.stack([node.history for node in live])
        moves = torch.tensor([node.moves for node in live], device=self.device)
        # Without a tree the move is the first sample: one is all a node needs.
        count = self.settings.candidates if self.settings.simulations else 1
        values, samples = self.evaluate(residual, relaxed, history, moves, limit, count)
        # Duplicates merged on the host: one transfer per expansion, not one per node.
        for node, value, cands in zip(live, values.tolist(), samples.cpu().numpy(),
                                      strict=True):
            unique, counts = np.unique(cands, axis=0, return_counts=True)
            node.value = value
            node.expand(torch.as_tensor(unique, device=self.device), counts / counts.sum())

    def _select(self, node: _Node, bounds: list[float]) -> int:
        visits = node.visits
        q = np.where(visits > 0, node.value_sum / np.maximum(visits, 1), node.value)
        low, high = bounds
        q = (q - low) / (high - low) if high > low else np.full_like(q, 0.5)
        u = self.settings.c_puct * node.prior * math.sqrt(visits.sum() + 1) / (1 + visits)
        return int(np.argmax(q + u))

    def _children(self, game: TensorGame, pairs: list[tuple[_Node, int]], targets: list,
                  found: dict[int, torch.Tensor]) -> list[_Node]:
        """Play edge ``k`` from each node in one batched game step; returns the children.

        A child whose pairs span its target with an exact re-solved ``W`` is a solved
        (finished) state: the game ends there with the moves' ``w`` re-solved. A child at the
        move limit that is not solved gets the game's penalty for the residual its moves leave
        with their ``w`` re-solved (the moves it would be played with). Solutions go to
        ``found`` (tree -> the shortest)."""
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
        du, dv, _ = self.dims
        basis, relaxed = pair_algebra.add_pair(
            torch.stack([node.basis for node, _ in pairs]),
            torch.stack([node.relaxed for node, _ in pairs]), moves,
            pair_algebra.khatri_rao(chosen[:, :du], chosen[:, du:du + dv]))
        spanning = pair_algebra.spans(relaxed, float((self.game.target.double() ** 2).sum()))
        spanning, finished, solved = (spanning.tolist(), after.done.tolist(),
                                      after.solved.tolist())
        edges = reward.tolist()

        def record(tree: int, solution: torch.Tensor) -> None:
            if tree not in found or len(solution) < len(found[tree]):
                found[tree] = solution

        children = []
        for b, (node, k) in enumerate(pairs):
            history = torch.cat([node.history[1:], index[b][None]]) if self.settings.history \
                else node.history
            played = torch.cat([node.played, chosen[b][None]])
            target = targets[node.tree]
            done, edge = finished[b], float(edges[b])
            if solved[b]:
                record(node.tree, played)
            elif spanning[b] or done:
                solution = self.exact_solution(played, target)
                if solution is not None:
                    record(node.tree, solution)
                    done, edge = True, -1.0
                elif done:  # the penalty of the residual left with re-solved w
                    left = target - self.game.rank_one(self.refit_w(played, target)).sum(dim=0)
                    edge = -1.0 - float(game.residual_rank_bound(left[None])[0])
            child = _Node(node.tree, after.residual[b], relaxed[b], basis[b], played, history,
                          done)
            node.children[k] = child
            node.rewards[k] = edge
            children.append(child)
        return children

    def search(self, game: TensorGame, roots: list[_Node], targets: list,
               found: dict[int, torch.Tensor]) -> None:
        """``simulations`` simulations in every tree; one batched leaf evaluation each."""
        bounds = [[math.inf, -math.inf] for _ in roots]
        for _ in range(self.settings.simulations):
            paths, leaves = [], []
            for root in roots:  # selection, down to an unexpanded edge or a finished game
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
            if leaves:  # expansion: one batched step and one batched evaluation
                children = self._children(game, [paths[i][-1] for i in leaves], targets, found)
                self._expand(children, game.max_rank)
            self.simulations_done += len(roots)
            self.report_progress(simulations=self.simulations_done, solutions_met=len(found))
            for tree, path in enumerate(paths):  # backup
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
        simulations = self.settings.simulations
        game = copy.copy(self.game)
        game.max_rank = self.play_rank
        count = self.batch_size
        bases = self.random_bases(count)
        targets = [self.game.target if b is None else self.transform(self.game.target, b)
                   for b in bases]
        found: dict[int, torch.Tensor] = {}
        empty = torch.full((self.settings.history, self.action_dim), self.space.zero_index or 0,
                           dtype=torch.int64, device=self.device)
        x = self.dims[0] * self.dims[1]
        roots = [_Node(g, target, pair_algebra.unfold(target),
                       torch.zeros(x, self.game.max_rank, dtype=torch.float64, device=self.device),
                       torch.zeros(0, self.action_dim, dtype=torch.int64, device=self.device),
                       empty, False) for g, target in enumerate(targets)]
        self._expand(roots, game.max_rank)
        rewards: list[list[float]] = [[] for _ in roots]
        examples: list[dict] = []
        depth_sum = 0.0
        while True:
            active = [g for g, root in enumerate(roots) if not root.done]
            if not active:
                break
            if simulations:
                self.search(game, [roots[g] for g in active], targets, found)
            steps = []
            for g in active:  # the move: drawn from the root's visits (or the first sample)
                root = roots[g]
                probs = root.visits / root.visits.sum() if simulations \
                    else np.eye(len(root.prior))[0]
                noise = float(torch.rand(1, generator=self.generator, dtype=torch.float64,
                                         device=self.device))
                k = min(int(np.searchsorted(np.cumsum(probs), noise * probs.sum())),
                        len(probs) - 1)
                examples.append({"game": g, "residual": root.residual, "history": root.history,
                                 "relaxed": root.relaxed, "moves": root.moves,
                                 "candidates": root.actions,
                                 "visits": torch.as_tensor(probs if simulations else root.prior,
                                                           device=self.device).float()})
                steps.append((root, k))
                depth_sum += float(root.visits.sum()) if simulations else 0.0
            missing = [(root, k) for root, k in steps if root.children[k] is None]
            if missing:
                self._expand(self._children(game, missing, targets, found), game.max_rank)
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
        played = [found.get(g, root.played) for g, root in enumerate(roots)]
        stats = {"search_root_visits": depth_sum / max(len(examples), 1),
                 "play_best_return": float(max(sum(r) for r in rewards)),
                 "play_return": float(np.mean([sum(r) for r in rewards])),
                 "search_solutions": float(len(found))}
        return played, bases, examples, stats

    # -- replay buffer and learning ---------------------------------------------------------
    def store(self, examples: list[dict]) -> None:
        """Batches of examples into the replay buffer (a ring), when the network learns.

        An example batch: ``residual (n, *dims)``, ``relaxed`` (``n`` tensors of the game's
        shape, any layout), ``history (n, H, A)``, ``moves (n,)`` played, ``candidates
        (n, k, A)`` with ``k <= candidates`` (padded with the first), ``visits (n, k)``
        (padded with zeros), ``value (n,)`` or None (no return known)."""
        if not self.learns:
            return
        size, k, buf = self.settings.buffer_size, self.settings.candidates, self.buffer
        for batch in examples:
            n = batch["residual"].shape[0]
            keep = slice(max(n - size, 0), n)  # a batch larger than the ring: its last rows
            index = (self.buffer_next + torch.arange(n, device=self.device)[keep]) % size
            cands, visits = batch["candidates"][keep], batch["visits"][keep]
            pad = k - cands.shape[1]
            value = batch["value"]
            rows = {"residual": batch["residual"][keep].clamp(-999, 999).to(torch.int16),
                    "history": batch["history"][keep],
                    "relaxed": batch["relaxed"][keep].reshape(-1, *self.dims).float(),
                    "left": (self.play_rank - batch["moves"][keep].to(self.device)).float()
                    / self.game.max_rank,
                    "candidates": torch.cat([cands, cands[:, :1].expand(-1, pad, -1)], dim=1),
                    "visits": torch.cat([visits.float(), torch.zeros(
                        len(index), pad, device=self.device)], dim=1),
                    "value": (torch.zeros(len(index), device=self.device) if value is None
                              else value[keep].to(self.device).float()),
                    "value_weight": torch.full((len(index),), float(value is not None),
                                               device=self.device)}
            for key, column in rows.items():
                buf[key][index] = column
            self.buffer_next = (self.buffer_next + n) % size
            self.buffer_count = min(self.buffer_count + n, size)

    def _tree_examples(self, examples: list[dict]) -> list[dict]:
        """The searched roots (one dict each) as one example batch for :meth:`store`."""
        if not examples or not self.learns:
            return []
        k = self.settings.candidates

        def padded(example: dict) -> tuple[torch.Tensor, torch.Tensor]:
            cands, visits = example["candidates"], example["visits"]
            pad = k - len(cands)
            return (torch.cat([cands, cands[:1].expand(pad, -1)]),
                    torch.cat([visits, torch.zeros(pad, device=self.device)]))

        pairs = [padded(example) for example in examples]
        return [{"residual": torch.stack([e["residual"] for e in examples]),
                 "relaxed": torch.stack([e["relaxed"] for e in examples]),
                 "history": torch.stack([e["history"] for e in examples]),
                 "moves": torch.tensor([e["moves"] for e in examples], device=self.device),
                 "candidates": torch.stack([c for c, _ in pairs]),
                 "visits": torch.stack([v for _, v in pairs]),
                 "value": torch.tensor([e["value"] for e in examples], device=self.device)}]

    def _policy_loss(self, context: torch.Tensor, residual: torch.Tensor,
                     relaxed: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        tensors = torch.stack([residual.float(), relaxed.float()], dim=1)
        return -log_prob(self.network, self.space, context, tensors, actions).mean()

    def learn_step(self, demos: dict[str, torch.Tensor] | None, replay: int) -> dict[str, float]:
        """One Adam step on demonstrations and ``replay`` buffer samples."""
        metrics: dict[str, float] = {}
        losses = []
        if demos is not None:
            feats = self.features(demos["residual"], demos["relaxed"], demos["history"],
                                  demos["moves"], self.game.max_rank)
            context, value = self.network(feats)
            demo_policy = self._policy_loss(context, demos["residual"], demos["relaxed"],
                                            demos["target"])
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
            play_policy = self._policy_loss(context, buf["residual"], buf["relaxed"], chosen)
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
            self.updates += 1
        return metrics

    def learn(self) -> dict[str, float]:
        """``train_steps`` steps (one for a frozen network, none when the network does not
        learn); per-episode means of the losses, demonstration accuracy."""
        s = self.settings
        if s.train_steps == 0 or not self.learns:
            return {}
        half = s.train_batch // 2
        sums: dict[str, float] = {}
        steps = 1 if self.frozen else s.train_steps
        for _ in range(steps):
            demos = self.demonstrations(half if self.buffer_count else s.train_batch) \
                if s.demonstrations else None
            replay = min(half if demos is not None else s.train_batch, self.buffer_count)
            for key, value in self.learn_step(demos, replay).items():
                sums[key] = sums.get(key, 0.0) + value / steps
        if "demo_policy_loss" in sums or "play_policy_loss" in sums:
            sums["policy_loss"] = sums.get("demo_policy_loss", 0.0) + sums.get(
                "play_policy_loss", 0.0)
            sums["value_loss"] = sums.get("demo_value_loss", 0.0) + sums.get(
                "play_value_loss", 0.0)
        sums["demo_accuracy"] = self.demo_accuracy(64)
        return sums

    def demo_accuracy(self, count: int) -> float:
        """Share of fresh demonstrations whose greedy move is one of their remaining terms."""
        demos = self.demonstrations(count)
        with torch.inference_mode():
            context, _ = self.network(self.features(demos["residual"], demos["relaxed"],
                                                    demos["history"], demos["moves"],
                                                    self.game.max_rank))
            tensors = torch.stack([demos["residual"].float(), demos["relaxed"]], dim=1)
            move = sample_moves(self.network, self.space, context, tensors, 1, self.generator,
                                self.settings.temperature, greedy=True)[:, 0]  # (B, A)
        hit = (demos["remaining"] == move[:, None]).all(dim=2) & demos["mask"]
        return float(hit.any(dim=1).float().mean())

    # -- one episode --------------------------------------------------------------------------
    def pretrain(self) -> dict[str, float]:
        """Before the first game: ``pretrain_steps`` steps on demonstrations alone."""
        metrics: dict[str, float] = {}
        while self.pretrained < self.pretrain_steps:
            metrics = self.learn_step(self.demonstrations(self.settings.train_batch), 0)
            self.pretrained += 1
        return {f"pretrain_{key}": value for key, value in metrics.items()}

    def run_episode(self) -> EpisodeResult:
        pretrain = self.pretrain()
        played, bases, examples, stats = self.self_play()
        self.store(self._tree_examples(examples))
        chain_solutions, chain_examples, chain_stats = self.resampler.resample(
            self.play_rank, self.propose)
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
                        "network_updates": float(self.updates),
                        "proposals": float(self.proposals),
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
        chains = self.resampler.chains
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
            "updates": self.updates,
            "proposals": self.proposals,
            "simulations_done": self.simulations_done,
            "chains": None if chains is None else chains.clone(),
            "chain_age": self.resampler.chain_age.clone(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.network.load_state_dict(state["network"])
        load_optimizer_state(self.optimizer, state["optimizer"])
        self.buffer = {key: value.to(self.device, copy=True)
                       for key, value in state["buffer"].items()}
        self.buffer_count = int(state["buffer_count"])
        self.buffer_next = int(state["buffer_next"])
        self.play_rank = int(state["play_rank"])
        self.pretrained = int(state["pretrained"])
        self.evaluations = int(state["evaluations"])
        self.updates = int(state.get("updates", 0))
        self.proposals = int(state.get("proposals", 0))
        self.simulations_done = int(state["simulations_done"])
        chains = state["chains"]
        self.resampler.chains = None if chains is None else chains.to(self.device, copy=True)
        self.resampler.chain_age = state["chain_age"].to(self.device, copy=True)
