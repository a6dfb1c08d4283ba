"""TensorGame: AlphaTensor's single-player game, batched on torch tensors.

* **State**: the residual tensor, shape ``(B, n*m, m*p, n*p)`` int64 (layout of
  :mod:`mlo_exp.algorithms.tensor`), starting at ``T<n,m,p>``. Over ``Z2`` entries stay in ``{0,
  1}``.
* **Action**: one rank-one term as a vector of length ``n*m + m*p + n*p``: ``u`` (over A's
  entries), then ``v`` (over B's), then ``w`` (over C's), each entry from the coefficient set.
  A move subtracts ``u (x) v (x) w`` from the residual (modulo 2 over ``Z2``).
* **Reward**: ``-1`` per move. When the move limit ``max_rank`` is reached with a non-zero
  residual, the final move also earns the **terminal penalty** ``-bound(residual)``, where
  ``bound`` is the sum over the first mode of the slices' matrix ranks (over the reals): an
  upper bound on the moves still needed over Q, as in AlphaTensor.
* **End**: a zero residual (solved) or ``max_rank`` moves. Finished games ignore further
  actions and earn 0.
* ``info`` holds ``residual_norm`` (Frobenius, float), ``rank_used`` (moves so far) and
  ``solved`` (bool), one entry per game.

The game is functional: :meth:`TensorGame.step` returns a new :class:`GameState`, so
planners can branch from any state cheaply.

**Device.** Every tensor of the game lives on ``game.device`` (``cpu``, ``cuda`` or
``cuda:N``; ``cuda`` is resolved to the current device's index, so ``tensor.device ==
game.device`` holds). A device torch cannot use here is refused with a ValueError at
construction. Actions given as tensors must already be on ``game.device`` (agents create
them there: see :mod:`mlo_exp.agents.base`); lists and NumPy arrays are accepted and moved.
Only :meth:`TensorGame.factors` hands results back to the CPU, as NumPy arrays.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace

import numpy as np
import torch

from mlo_exp.algorithms.tensor import matmul_tensor
from mlo_exp.config import EnvConfig


def resolve_device(device: str | torch.device) -> torch.device:
    """``device`` as torch resolves it (``cuda`` -> ``cuda:<current>``), or a ValueError naming
    it when torch cannot allocate there (no CUDA build, no such GPU)."""
    try:
        return torch.empty(0, device=device).device
    except (AssertionError, RuntimeError, NotImplementedError, ValueError) as error:
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0]
        gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
        accepted = "cpu" + (f", cuda or cuda:0..{gpus - 1}" if gpus else " (torch finds no GPU)")
        raise ValueError(f"device={str(device)!r} is not usable here ({reason}); "
                         f"accepted: {accepted}") from None


@dataclass(frozen=True)
class GameState:
    """A batch of ``B`` games. ``actions[b, t]`` is game ``b``'s move ``t`` (zero if unplayed)."""

    residual: torch.Tensor  # (B, nm, mp, np) int64
    moves: torch.Tensor  # (B,) int64
    done: torch.Tensor  # (B,) bool
    solved: torch.Tensor  # (B,) bool
    actions: torch.Tensor  # (B, max_rank, action_dim) int64

    @property
    def batch_size(self) -> int:
        return int(self.residual.shape[0])


class TensorGame:
    """Decompose ``T<n,m,p>`` into at most ``max_rank`` rank-one terms (see module docstring)."""

    def __init__(
        self,
        shape: tuple[int, int, int] | list[int],
        coefficients: list[int] | tuple[int, ...] | None = None,
        max_rank: int | None = None,
        ring: str | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        """``coefficients`` and ``ring`` default to :class:`~mlo_exp.config.EnvConfig`'s (the
        one source of the env's defaults)."""
        defaults = {f.name: f for f in fields(EnvConfig)}
        if coefficients is None:
            coefficients = defaults["coefficients"].default_factory()
        ring = defaults["ring"].default if ring is None else ring
        n, m, p = (int(x) for x in shape)
        self.shape = (n, m, p)
        self.ring = ring
        if ring not in ("Z", "Z2"):
            raise ValueError(f"ring={ring!r}; the game is played over Z or Z2")
        self.coefficients = tuple(sorted({int(c) for c in coefficients}))
        if not self.coefficients or all(c == 0 for c in self.coefficients):
            raise ValueError(f"coefficients={list(coefficients)}: need at least one non-zero value")
        if ring == "Z2" and not set(self.coefficients) <= {0, 1}:
            raise ValueError(
                f"coefficients={list(self.coefficients)}: over Z2 use a subset of [0, 1]")
        self.max_rank = int(max_rank) if max_rank is not None else n * m * p
        if self.max_rank < 1:
            raise ValueError(f"max_rank={max_rank}; must be >= 1")
        self.device = resolve_device(device)
        self.dims = (n * m, m * p, n * p)
        self.action_dim = sum(self.dims)
        self.target = torch.as_tensor(matmul_tensor(n, m, p), device=self.device)
        self._coefficient_tensor = torch.tensor(self.coefficients, device=self.device)

    # -- game mechanics -----------------------------------------------------------------
    def reset(self, batch_size: int = 1) -> GameState:
        """``batch_size`` fresh games, each with residual ``T<n,m,p>``."""
        device = self.device
        return GameState(
            residual=self.target.expand(batch_size, *self.dims).clone(),
            moves=torch.zeros(batch_size, dtype=torch.int64, device=device),
            done=torch.zeros(batch_size, dtype=torch.bool, device=device),
            solved=torch.zeros(batch_size, dtype=torch.bool, device=device),
            actions=torch.zeros(batch_size, self.max_rank, self.action_dim, dtype=torch.int64,
                                device=device),
        )

    def split(self, actions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Split ``(..., action_dim)`` actions into ``u``, ``v``, ``w``."""
        return tuple(torch.split(actions, self.dims, dim=-1))  # type: ignore[return-value]

    def rank_one(self, actions: torch.Tensor) -> torch.Tensor:
        """``u (x) v (x) w`` for a batch of actions: ``(B, nm, mp, np)``."""
        u, v, w = self.split(actions)
        return u[:, :, None, None] * v[:, None, :, None] * w[:, None, None, :]

    def validate(self, actions: torch.Tensor, batch_size: int) -> torch.Tensor:
        """Return ``actions`` as int64 on the game's device, or raise a clear ValueError."""
        if isinstance(actions, torch.Tensor) and actions.device != self.device:
            raise ValueError(f"actions are on {actions.device}; the game plays on {self.device}: "
                             "create them on game.device")
        actions = torch.as_tensor(actions, device=self.device)
        n, m, p = self.shape
        if actions.dim() != 2 or actions.shape != (batch_size, self.action_dim):
            raise ValueError(
                f"actions have shape {tuple(actions.shape)}; expected ({batch_size}, "
                f"{self.action_dim}): per game u ({n * m} entries of A), v ({m * p} of B), "
                f"w ({n * p} of C)"
            )
        if actions.is_floating_point() and not torch.equal(actions, actions.round()):
            raise ValueError("actions must hold integers (coefficients), got fractions")
        actions = actions.to(torch.int64)
        allowed = torch.isin(actions, self._coefficient_tensor)
        if not bool(allowed.all()):
            game, position = (int(x) for x in torch.nonzero(~allowed)[0])
            raise ValueError(
                f"action of game {game} has coefficient {int(actions[game, position])} at "
                f"position {position}; accepted coefficients: {list(self.coefficients)}"
            )
        return actions

    def step(self, state: GameState, actions: torch.Tensor) -> tuple[GameState, torch.Tensor, dict]:
        """Play one move in every unfinished game; returns ``(state, reward, info)``."""
        actions = self.validate(actions, state.batch_size)
        active = ~state.done
        term = self.rank_one(actions) * active[:, None, None, None]
        residual = state.residual - term
        if self.ring == "Z2":
            residual = residual.remainder(2)
        moves = state.moves + active.long()
        played = state.actions.clone()
        rows = torch.nonzero(active).squeeze(1)
        if rows.numel():
            played[rows, state.moves[rows]] = actions[rows]
        solved = (residual.flatten(1) == 0).all(dim=1)
        done = state.done | solved | (moves >= self.max_rank)
        reward = -active.to(torch.float32)
        failed = active & done & ~solved
        if bool(failed.any()):
            reward = reward - failed.float() * self.residual_rank_bound(residual)
        new_state = replace(state, residual=residual, moves=moves, done=done, solved=solved,
                            actions=played)
        return new_state, reward, self.info(new_state)

    def info(self, state: GameState) -> dict[str, torch.Tensor]:
        return {
            "residual_norm": state.residual.flatten(1).double().norm(dim=1),
            "rank_used": state.moves.clone(),
            "solved": state.solved.clone(),
        }

    @staticmethod
    def residual_rank_bound(residual: torch.Tensor) -> torch.Tensor:
        """Sum of the matrix ranks of the first-mode slices, per game: ``(B,)`` float."""
        return torch.linalg.matrix_rank(residual.double()).sum(dim=1).float()

    # -- results ------------------------------------------------------------------------
    def factors(self, state: GameState, game: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Game ``game``'s moves as factor matrices ``U (nm, R)``, ``V (mp, R)``, ``W (np, R)``."""
        played = state.actions[game, : int(state.moves[game])].cpu().numpy()
        u, v, w = np.split(played, np.cumsum(self.dims)[:-1], axis=1)
        return u.T.copy(), v.T.copy(), w.T.copy()
