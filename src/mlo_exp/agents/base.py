"""The agent interface and the episode loop shared by game-playing agents.

An **episode**, for the trainer, is one call of :meth:`Agent.run_episode`: for the agents
here, a batch of ``batch_size`` games played to the end in parallel (then learned from). An
agent that is not a game player (a local search, say) defines its own episode as one unit of
progress, documents it, and reports an :class:`EpisodeResult` all the same.

Randomness: each agent owns a :class:`torch.Generator` seeded from the run's seed and saved
in its ``state_dict``, so a run is reproducible on the CPU and resumable.

**State.** ``state_dict`` holds everything that influences later episodes (a resumed run
replays the uninterrupted one exactly on the CPU). What an episode prepares for its games
(candidate moves, planned chains) is not kept on the agent between :meth:`Agent.run_episode`
and :meth:`Agent.act`: :meth:`Agent.plan_episode` returns it and :meth:`Agent.play` hands it
to every :meth:`Agent.act` call as ``plan``.

**Device.** A game-playing agent computes on the game's device (``game.device``, also
``agent.device``): every tensor it creates is made there (factories name ``device=``) and
its generator is a generator of that device, so it can feed the sampling functions there.
Device types an agent cannot use (``device_types``) are refused with a ValueError at
construction. An agent that is not a game player and computes elsewhere (the flip-graph
search, NumPy on the CPU) sets ``device_types = None`` and ``compute_on_cpu = True``.
"""

from __future__ import annotations

import hashlib
import logging
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from mlo_exp.env import GameState, TensorGame

Factors = tuple[np.ndarray, np.ndarray, np.ndarray]

log = logging.getLogger("mlo_exp")


@dataclass
class EpisodeResult:
    """What one episode produced, reported for its best game.

    ``factors`` are the moves of that game as ``(U, V, W)`` (columns are moves, layout of
    :mod:`mlo_exp.algorithms.tensor`); ``moves`` counts every move played in the episode (all
    games),
    which the trainer sums into the global step. ``metrics`` holds agent-specific scalars
    (losses, batch means), logged beside the standard columns.
    """

    reward: float
    residual_norm: float
    rank_used: int
    solved: bool
    factors: Factors | None
    moves: int
    games: int = 1
    metrics: dict[str, float] = field(default_factory=dict)


@dataclass
class Trajectory:
    """A batch of finished games: per move ``t``, the state before it, the action, the reward."""

    states: list[GameState]
    actions: list[torch.Tensor]
    rewards: list[torch.Tensor]
    final: GameState

    @property
    def returns(self) -> torch.Tensor:
        """Undiscounted return of each game, ``(B,)``."""
        return torch.stack(self.rewards).sum(dim=0)


class Agent(ABC):
    """What the trainer drives: :meth:`run_episode`, and :meth:`state_dict` /
    :meth:`load_state_dict` for exact resume. Two kinds: episode-level searches subclass this
    directly (``flipgraph``: an episode is a walk segment) and move-level players subclass
    :class:`GamePlayer`."""

    #: Device types the agent can compute on (``None``: any; see ``compute_on_cpu``).
    device_types: tuple[str, ...] | None = ("cpu", "cuda")
    #: True for agents that compute on the CPU whatever the game's device (not game players).
    compute_on_cpu: bool = False
    #: Where :meth:`report_progress` goes; the trainer sets it (None: nowhere).
    progress_callback: Callable[[dict[str, Any]], None] | None = None

    def __init__(self, game: TensorGame, seed: int, batch_size: int) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size={batch_size}; must be >= 1")
        if self.device_types is not None and game.device.type not in self.device_types:
            raise ValueError(f"{type(self).__name__} computes on {' or '.join(self.device_types)}"
                             f"; the game's device is {game.device}")
        self.game = game
        self.device = torch.device("cpu") if self.compute_on_cpu else game.device
        self.batch_size = int(batch_size)
        self.generator = torch.Generator(device=self.device).manual_seed(int(seed))
        self._coefficient_values = torch.tensor(game.coefficients, device=self.device)

    @abstractmethod
    def run_episode(self) -> EpisodeResult:
        """One unit of progress (for a game player: a batch of games, then learning); the
        best decomposition it produced, in the original basis, for the trainer to verify."""

    def report_progress(self, **values: Any) -> None:
        """Progress inside a long episode, e.g. ``report_progress(simulations=n,
        best_so_far=r)``: passed to ``progress_callback`` (the trainer prints at most one
        line every 10 s, :mod:`mlo_exp.run.progress`). Cheap: call it as often as you like;
        it never changes the agent's state or randomness."""
        if self.progress_callback is not None:
            self.progress_callback(values)

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue exactly: subclasses extend (networks, optimisers)."""
        return {"generator": self.generator.get_state(),
                "generator_device": self.generator.device.type}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        saved = state["generator"]
        kind = state.get("generator_device", "cpu")  # checkpoints before it: CPU generators
        if kind == self.generator.device.type:
            self.generator.set_state(saved)
            return
        # A generator of another device type (a GPU run resumed on the CPU, say) has another
        # state format: continue reproducibly from a seed derived from it, not exactly.
        seed = int.from_bytes(hashlib.sha256(saved.numpy().tobytes()).digest()[:8], "little")
        log.warning("the checkpoint's random generator was a %s generator; this agent computes "
                    "on %s: it continues from a seed derived from it (the run goes on, but not "
                    "as it would have on %s)", kind, self.device, kind)
        self.generator.manual_seed(seed)

    def summarise(self, trajectory: Trajectory, metrics: dict[str, float]) -> EpisodeResult:
        """The episode's result from a batch of finished games: its best game (solved with the
        fewest moves, else the highest return) and the batch's mean reward and solve rate."""
        final = trajectory.final
        returns = (trajectory.returns if trajectory.rewards
                   else torch.zeros(final.batch_size, device=final.moves.device))
        # Best game: solved with the fewest moves, else the highest return.
        score = torch.where(final.solved, -final.moves.double() + 1e6, returns.double())
        best = int(torch.argmax(score))
        info = self.game.info(final)
        solved = bool(final.solved[best])
        metrics = {
            "mean_reward": float(returns.mean()),
            "solve_rate": float(final.solved.float().mean()),
            **metrics,
        }
        return EpisodeResult(
            reward=float(returns[best]),
            residual_norm=float(info["residual_norm"][best]),
            rank_used=int(final.moves[best]),
            solved=solved,
            factors=self.game.factors(final, best),
            moves=int(final.moves.sum()),
            games=final.batch_size,
            metrics=metrics,
        )

    # -- helpers for subclasses ---------------------------------------------------------
    def sample_coefficients(self, count: int, length: int) -> torch.Tensor:
        """``(count, length)`` entries drawn uniformly from the coefficient set."""
        values = self._coefficient_values
        index = torch.randint(len(values), (count, length), generator=self.generator,
                              device=self.device)
        return values[index]

    def sample_nonzero(self, count: int, length: int) -> torch.Tensor:
        """Like :meth:`sample_coefficients`, but no row is all zero (uniform by rejection)."""
        rows = self.sample_coefficients(count, length)
        zero = (rows == 0).all(dim=1)
        while bool(zero.any()):
            rows[zero] = self.sample_coefficients(int(zero.sum()), length)
            zero = (rows == 0).all(dim=1)
        return rows


class GamePlayer(Agent):
    """An agent that plays the game move by move: implements :meth:`act` (and
    :meth:`plan_episode`, :meth:`learn` if it needs them); an episode is ``batch_size`` games
    played to the end, learned from, and summarised by its best game."""

    @abstractmethod
    def act(self, state: GameState, plan: Any = None) -> torch.Tensor:
        """Actions ``(B, action_dim)`` for every game of ``state`` (finished ones included).

        ``plan`` is what :meth:`plan_episode` prepared for this episode's games (``None`` for
        agents that prepare nothing); :meth:`play` passes it to every call.
        """

    def plan_episode(self) -> Any:
        """What this episode's games are played with (drawn once per episode); default None."""
        return None

    def learn(self, trajectory: Trajectory) -> dict[str, float]:
        """Update from a batch of finished games; return scalar metrics. Default: nothing."""
        return {}

    def run_episode(self) -> EpisodeResult:
        """Play ``batch_size`` games to the end, learn from them, report the best one."""
        plan = self.plan_episode()
        trajectory = self.play(self.game.reset(self.batch_size), plan)
        metrics = self.learn(trajectory)
        return self.summarise(trajectory, metrics)

    def play(self, state: GameState, plan: Any = None) -> Trajectory:
        """Play every game of ``state`` to its end, ``plan`` handed to each :meth:`act`."""
        states, actions, rewards = [], [], []
        while not bool(state.done.all()):
            action = self.act(state, plan)
            next_state, reward, _ = self.game.step(state, action)
            states.append(state)
            actions.append(action)
            rewards.append(reward)
            state = next_state
        return Trajectory(states, actions, rewards, state)


def load_optimizer_state(optimizer: torch.optim.Optimizer, state: dict[str, Any]) -> None:
    """``optimizer.load_state_dict(state)`` for a state read back from a checkpoint.

    ``torch.optim`` keys ``state["state"]`` by parameter index (an int). A checkpoint holds
    them as strings (``"0"``: :func:`mlo_exp.run.checkpoint.to_plain` makes every dict key a
    string), and ``Optimizer.load_state_dict`` silently keeps such entries apart from the
    parameters: Adam would restart its moments and step counts, and a resumed run would leave
    the uninterrupted one at the next update. The keys become ints again here, and state that
    still matches no parameter is refused with a ValueError.
    """
    per_parameter = {int(k) if isinstance(k, str) and k.isdigit() else k: v
                     for k, v in state["state"].items()}
    optimizer.load_state_dict({**state, "state": per_parameter})
    stray = [key for key in optimizer.state if not isinstance(key, torch.Tensor)]
    if stray:
        raise ValueError(f"optimizer state for unknown parameters {stray[:4]}")
