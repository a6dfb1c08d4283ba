"""The MCTS agent's policy-value network and its autoregressive move sampler.

**Input** (:meth:`MctsNetwork.encode`): the residual tensor (entries clipped to ``[-2, 2]``,
one-hot), the relaxed residual (:mod:`mlo_exp.agents.pair_algebra`'s projected residual, as a
tensor of the game's shape), the last ``history`` moves (one-hot coefficient indices) and the
share of moves left. A torso MLP feeds a **value head** (the return from this state, divided
by the agent's ``value_scale``) and a decoder context.

**Policy** (:func:`sample_moves`, :func:`log_prob`): a move ``(u, v, w)`` is drawn one
coefficient at a time (``A = nm + mp + np`` steps), each step conditioned on the state, the
coefficients already chosen and the two tensors contracted with them (``R x1 u`` and
``R x1 u x2 v``, for the residual and the relaxed residual: the bilinear features that say
which ``v`` and ``w`` fit the ``u`` chosen so far), so the move space (3^12 for <2,2,2>) is
never enumerated. The legality rules of :class:`~mlo_exp.agents.mcts_moves.MoveSpace` mask
each step; ``temperature`` divides the logits. Sampling uses the Gumbel-max trick with the
caller's generator, on the caller's device.
"""

from __future__ import annotations

import torch
from torch import nn

from mlo_exp.agents.mcts_moves import MoveSpace

_CLIP = 2  # residual entries are clipped to [-_CLIP, _CLIP] for the network's input


class MctsNetwork(nn.Module):
    """State -> value and an autoregressive distribution over moves (coefficient indices)."""

    def __init__(self, dims: tuple[int, int, int], num_values: int, history: int,
                 hidden: int, decoder_hidden: int,
                 device: str | torch.device | None = None) -> None:
        """Sizes come from :class:`~mlo_exp.config.MctsAgentConfig` (the one source of their
        defaults)."""
        super().__init__()
        self.dims, self.num_values, self.history = dims, num_values, history
        self.action_dim = sum(dims)
        entries = dims[0] * dims[1] * dims[2]
        in_size = entries * (2 * _CLIP + 2) + history * self.action_dim * num_values + 1
        d = {"device": device}
        self.torso = nn.Sequential(nn.Linear(in_size, hidden, **d), nn.ReLU(),
                                   nn.Linear(hidden, hidden, **d), nn.ReLU())
        self.value_head = nn.Linear(hidden, 1, **d)
        self.context = nn.Linear(hidden, decoder_hidden, **d)
        self.partial = nn.Linear(self.action_dim * num_values, decoder_hidden, bias=False, **d)
        self.position = nn.Embedding(self.action_dim, decoder_hidden, **d)
        self.contraction = nn.Linear(2 * (dims[1] * dims[2] + dims[2]), decoder_hidden,
                                     bias=False, **d)
        self.decoder = nn.Sequential(nn.ReLU(), nn.Linear(decoder_hidden, decoder_hidden, **d),
                                     nn.ReLU(), nn.Linear(decoder_hidden, num_values, **d))

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
        """Logits over the coefficient set for one position, given the chosen prefix
        (``partial``: the prefix one-hot, ``(B, A*C)``; ``contraction``: see :func:`contract`)."""
        if isinstance(position, int):
            position = torch.full((context.shape[0],), position, device=context.device)
        return self.decoder(context + self.partial(partial) + self.position(position)
                            + self.contraction(contraction.clamp(-4, 4)))


def contract(tensors: torch.Tensor, u: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """``[R x1 u, R x1 u x2 v]`` for both tensors ``(..., 2, *dims)`` (the residual and the
    relaxed residual), flattened: ``(..., 2 * (mp*np + np))``."""
    first = torch.einsum("...cxyz,...x->...cyz", tensors, u)
    second = torch.einsum("...cyz,...y->...cz", first, v)
    return torch.cat([first.flatten(-2), second], dim=-1).flatten(-2)


def sample_moves(network: MctsNetwork, space: MoveSpace, context: torch.Tensor,
                 tensors: torch.Tensor, count: int, generator: torch.Generator,
                 temperature: float, greedy: bool = False, length: int | None = None
                 ) -> torch.Tensor:
    """``count`` moves per state, drawn coefficient by coefficient: ``(B, count, A)``
    indices. ``tensors``: residual and relaxed residual, ``(B, 2, *dims)``. ``length``: draw
    only the first ``length`` coefficients (e.g. ``u`` and ``v`` when ``w`` is re-fitted
    anyway); the others are returned as index 0 for the caller to fill.

    The same distribution as :meth:`MctsNetwork.step_logits` on the whole prefix (what
    :func:`log_prob` scores), computed incrementally: the prefix's one-hot term adds one
    column of ``partial``'s weight per step, and the contractions ``R x1 u`` (while ``u`` is
    chosen) and ``R x1 u x2 v`` (while ``v`` is) add one slice per step; ``w``'s steps reuse
    the contraction term."""
    device = context.device
    du, dv, _ = space.dims
    n_states, c, a = context.shape[0], len(space.values), space.action_dim
    n = n_states * count
    tensor = tensors.float().repeat_interleave(count, dim=0)  # (n, 2, x, y, z)
    # context + the prefix's one-hot term, kept as one running sum
    hidden = context.repeat_interleave(count, dim=0).clone()
    partial_weight = network.partial.weight.T  # (A*C, D)
    first = torch.zeros(n, 2, *tensor.shape[3:], device=device)  # R x1 u: (n, 2, y, z)
    second = torch.zeros(n, 2, tensor.shape[4], device=device)  # R x1 u x2 v: (n, 2, z)
    empty_masks = [space.illegal(t, torch.zeros(1, dtype=torch.bool, device=device))[0]
                   for t in range(a)]  # (C,) per position: what an all-zero factor forbids
    chosen = torch.zeros(n, a, dtype=torch.int64, device=device)
    block_nonzero = torch.zeros(n, dtype=torch.bool, device=device)
    contraction = None
    for t in range(a if length is None else length):
        if space.block_start[t] == t:
            block_nonzero = torch.zeros_like(block_nonzero)
        if t <= du + dv:  # the contraction term changes while u and v are chosen
            features = torch.cat([first.flatten(2), second], dim=-1).flatten(1)
            contraction = network.contraction(features.clamp(-4, 4))
        position = network.position.weight[t]
        logits = network.decoder(hidden + position + contraction)
        logits = logits.masked_fill((~block_nonzero)[:, None] & empty_masks[t], float("-inf"))
        if greedy:
            pick = logits.argmax(dim=1)
        else:  # Gumbel-max with the caller's generator (on the caller's device)
            noise = torch.rand(n, c, generator=generator, device=device)
            gumbel = -torch.log(-torch.log(noise.clamp_min(1e-12)))
            pick = (logits / temperature + gumbel).argmax(dim=1)
        chosen[:, t] = pick
        value = space.values[pick]
        coefficient = value.float()
        hidden = hidden + partial_weight[t * c + pick]
        if t < du:
            first = first + coefficient[:, None, None, None] * tensor[:, :, t]
        elif t < du + dv:
            second = second + coefficient[:, None, None] * first[:, :, t - du]
        block_nonzero = block_nonzero | (value != 0)
    return chosen.view(-1, count, a)


def log_prob(network: MctsNetwork, space: MoveSpace, context: torch.Tensor,
             tensors: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
    """Teacher-forced log-probability of ``actions (B, A)`` (indices): ``(B,)``."""
    device = context.device
    n, a, c = actions.shape[0], space.action_dim, len(space.values)
    onehot = nn.functional.one_hot(actions, c).float().flatten(1)  # (B, A*C)
    before = torch.tril(torch.ones(a, a, device=device), diagonal=-1)  # (t, s<t)
    partial = onehot[:, None, :] * before.repeat_interleave(c, dim=1)[None]  # (B, A, A*C)
    prefix = space.values[actions].float()[:, None, :] * before[None]  # (B, A, A)
    du, dv, _ = space.dims
    features = contract(tensors.float()[:, None], prefix[..., :du],
                        prefix[..., du:du + dv])  # (B, A, F)
    positions = torch.arange(a, device=device).repeat(n)
    logits = network.step_logits(context.repeat_interleave(a, dim=0), partial.flatten(0, 1),
                                 positions, features.flatten(0, 1)).view(n, a, c)
    nonzero = space.values[actions] != 0
    masks = []
    for t in range(a):
        block_nonzero = nonzero[:, space.block_start[t]:t].any(dim=1)
        masks.append(space.illegal(t, block_nonzero))
    logits = logits.masked_fill(torch.stack(masks, 1), float("-inf"))
    picked = torch.log_softmax(logits, dim=2).gather(2, actions[..., None]).squeeze(2)
    return picked.sum(dim=1)
