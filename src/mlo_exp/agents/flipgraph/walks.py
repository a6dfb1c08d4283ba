"""The walks' arrays and the kernel that moves them, one class per representation.

:func:`make_walks` is the factory: ``symmetry="c3"`` gives :class:`C3Walks` (C3-invariant
schemes of ``<n,n,n>`` modulo 2, :mod:`~mlo_exp.agents.flipgraph.c3`), ring ``Z2``
:class:`Z2Walks` (packed words, :mod:`~mlo_exp.agents.flipgraph.kernel_z2`), ring ``Z``
:class:`IntWalks` (int8 rows, :mod:`~mlo_exp.agents.flipgraph.kernel_int`; ternary with bound 1).

Every class keeps, per walk: its current scheme and its best one, ``rank``/``best_rank``, and
the counters of the search (``stall``, ``path``, ``slack``: see
:func:`~mlo_exp.agents.flipgraph.kernel_z2.walk_z2`) and an xorshift64* stream ``rng``. The
agent sees schemes only as factors ``(U, V, W)`` (int64, columns = terms, layout of
:mod:`mlo_exp.algorithms.tensor`). Indexes (hash tables, keys, expansions) are functions of the
scheme arrays: :meth:`Walks.rebuild` recomputes them, so a checkpoint holds the schemes and the
counters only and a resumed run replays exactly.
"""

from __future__ import annotations

import logging
import threading
from abc import ABC, abstractmethod
from typing import Any

import numpy as np

from mlo_exp.agents.flipgraph import c3, kernel_int, kernel_z2
from mlo_exp.agents.flipgraph.index import new_index
from mlo_exp.agents.flipgraph.start import Factors, read_starts, school
from mlo_exp.config import FlipGraphAgentConfig
from mlo_exp.env import TensorGame

log = logging.getLogger("mlo_exp")

COUNTS = ("flips", "reductions", "plus_transitions", "useless_attempts", "path_resets",
          "refused_reductions")


class Walks(ABC):
    """``count`` walks over decompositions of one tensor, all starting at ``start``."""

    #: Array attributes saved by :meth:`state_dict` (the schemes and the counters).
    state_names: tuple[str, ...] = ("rank", "best_rank", "stall", "path", "slack", "rng")

    def __init__(self, game: TensorGame, settings: FlipGraphAgentConfig, start: Factors,
                 seeds: np.ndarray) -> None:
        self.game, self.settings = game, settings
        self.count = len(seeds)
        self.rng = seeds.copy()
        self.stall = np.zeros(self.count, dtype=np.int64)
        self.path = np.zeros(self.count, dtype=np.int64)
        self.slack = np.full(self.count, settings.plus_slack, dtype=np.int64)
        #: reductions to a rank >= this may be refused (``agent.min_flippable``); the agent
        #: sets it to its record's rank before every episode
        self.floor = 1 << 62
        self._setup(start)
        self.best_rank = self.rank.copy()
        self.rebuild()

    @abstractmethod
    def _setup(self, start: Factors) -> None:
        """The scheme arrays, every walk at ``start``; sets ``rank``, ``start_rank``,
        ``capacity``."""

    @abstractmethod
    def rebuild(self) -> None:
        """The index of every walk, from its scheme arrays."""

    @abstractmethod
    def advance(self, lo: int, hi: int, counts: np.ndarray) -> None:
        """Walks ``lo..hi-1`` make ``flips_per_episode`` attempts each (``counts[w]``: the
        :data:`COUNTS`); views of the arrays, so the kernel writes them in place."""

    @abstractmethod
    def best_factors(self, walk: int) -> Factors:
        """Walk ``walk``'s best decomposition."""

    @abstractmethod
    def current_factors(self, walk: int) -> Factors:
        """Walk ``walk``'s current decomposition."""

    @abstractmethod
    def load(self, walk: int, factors: Factors) -> bool:
        """Walk ``walk`` (current and best) becomes the scheme ``factors``; False when it is
        not a state of these walks (too many terms, not invariant). Call :meth:`rebuild`
        after."""

    def reset_counters(self, walk: int) -> None:
        """A walk that starts afresh: no stall, a new path, the first plus limit."""
        self.stall[walk] = self.path[walk] = 0
        self.slack[walk] = self.settings.plus_slack

    def _limits(self) -> tuple[int, int, int, int, int]:
        s = self.settings
        return (s.flips_per_episode, s.plateau_flips, s.plus_slack, s.max_plus_slack,
                s.path_flips)

    def state_dict(self) -> dict[str, np.ndarray]:
        return {name: getattr(self, name).copy() for name in self.state_names}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for name in self.state_names:
            value = np.asarray(state[name])
            expected = getattr(self, name)
            if value.shape != expected.shape:
                raise ValueError(f"flipgraph checkpoint: {name} has shape {value.shape}, "
                                 f"this agent needs {expected.shape} (same walks/shape?)")
            setattr(self, name, value.astype(expected.dtype).copy())
        self.rebuild()


class Z2Walks(Walks):
    """Packed words over Z2 (:mod:`~mlo_exp.agents.flipgraph.kernel_z2`): ``F[walk, mode,
    term]`` uint64, bit ``k`` = entry ``k``."""

    state_names = Walks.state_names + ("F", "best_F")

    def _setup(self, start: Factors) -> None:
        compile_once("z2", kernel_z2.warm_up)
        if max(self.game.dims) > 64:
            raise ValueError(f"flipgraph over Z2 packs factors in 64 bits; dims {self.game.dims} "
                             "are too large")
        self.start_rank = start[0].shape[1]
        self.capacity = self.start_rank + self.settings.max_plus_slack + 1
        self.rank = np.full(self.count, self.start_rank, dtype=np.int64)
        self.F = np.zeros((self.count, 3, self.capacity), dtype=np.uint64)
        for mode, factor in enumerate(start):
            self.F[:, mode, : self.start_rank] = kernel_z2.pack(factor)
        self.best_F = self.F.copy()
        self.scratch = np.zeros_like(self.F)  # a scheme per walk, before a refused reduction
        self.index = new_index(self.count, self.capacity)

    def rebuild(self) -> None:
        for walk in range(self.count):
            kernel_z2.rebuild(self.F, self.rank, *self.index, walk)

    def advance(self, lo: int, hi: int, counts: np.ndarray, stop_below: int = 0) -> None:
        """As :meth:`Walks.advance`; a walk whose rank falls below ``stop_below`` stops there
        for this call (0: never)."""
        part = slice(lo, hi)
        kernel_z2.walk_z2(self.F[part], self.rank[part], self.rng[part],
                          *(a[part] for a in self.index), self.stall[part], self.path[part],
                          self.slack[part], self.best_F[part], self.best_rank[part],
                          counts[part], *self._limits(), self.capacity, self.scratch[part],
                          self.floor, self.settings.min_flippable, stop_below)

    def _factors(self, F: np.ndarray, rank: int) -> Factors:
        return tuple(kernel_z2.unpack(F[mode, :rank], self.game.dims[mode]) for mode in range(3))

    def best_factors(self, walk: int) -> Factors:
        return self._factors(self.best_F[walk], int(self.best_rank[walk]))

    def current_factors(self, walk: int) -> Factors:
        return self._factors(self.F[walk], int(self.rank[walk]))

    def load(self, walk: int, factors: Factors) -> bool:
        rank = factors[0].shape[1]
        if rank > self.capacity:
            return False
        self.F[walk] = 0
        for mode, factor in enumerate(factors):
            self.F[walk, mode, :rank] = kernel_z2.pack(factor)
        self.best_F[walk] = self.F[walk]
        self.rank[walk] = self.best_rank[walk] = rank
        return True


class IntWalks(Walks):
    """int8 rows over Z (:mod:`~mlo_exp.agents.flipgraph.kernel_int`): ``F[walk, term, mode,
    entry]``, coefficients within ``bound`` (``agent.coefficient_bound``, else the env's); keys
    ``K``, signs ``S`` and the keys' hash ``index`` follow from ``F``."""

    state_names = Walks.state_names + ("F", "best_F")

    def _setup(self, start: Factors) -> None:
        compile_once("z", kernel_int.warm_up)
        self.bound = bound_of(self.game, self.settings)
        self.dims = np.array(self.game.dims, dtype=np.int64)
        self.start_rank = start[0].shape[1]
        self.capacity = self.start_rank + self.settings.max_plus_slack + 1
        self.rank = np.full(self.count, self.start_rank, dtype=np.int64)
        shape = (self.count, self.capacity, 3, int(max(self.game.dims)))
        self.F = np.zeros(shape, dtype=np.int8)
        for mode, factor in enumerate(start):
            self.F[:, : self.start_rank, mode, : factor.shape[0]] = factor.T
        self.best_F = self.F.copy()
        self.K = np.full(shape[:3], kernel_int.DEAD, dtype=np.uint64)
        self.S = np.zeros(shape[:3], dtype=np.int8)
        self.index = new_index(self.count, self.capacity)

    def rebuild(self) -> None:
        kernel_int.init_keys(self.F, self.K, self.S, self.rank, self.dims, self.bound)
        for walk in range(self.count):
            kernel_int.rebuild(self.K, self.rank, self.index, walk)

    def advance(self, lo: int, hi: int, counts: np.ndarray) -> None:
        part = slice(lo, hi)
        flips, plateau, plus_slack, max_slack, path_limit = self._limits()
        index = tuple(a[part] for a in self.index)
        kernel_int.walk_int(self.F[part], self.K[part], self.S[part], self.rank[part], index,
                            self.rng[part], self.stall[part], self.path[part],
                            self.slack[part], self.best_F[part], self.best_rank[part],
                            counts[part], flips, self.dims, self.bound, plateau, plus_slack,
                            max_slack, path_limit, self.capacity)

    def _factors(self, F: np.ndarray, rank: int) -> Factors:
        terms = F[:rank].astype(np.int64)
        return tuple(terms[:, mode, : self.dims[mode]].T.copy() for mode in range(3))

    def best_factors(self, walk: int) -> Factors:
        return self._factors(self.best_F[walk], int(self.best_rank[walk]))

    def current_factors(self, walk: int) -> Factors:
        return self._factors(self.F[walk], int(self.rank[walk]))

    def load(self, walk: int, factors: Factors) -> bool:
        rank = factors[0].shape[1]
        if rank > self.capacity or max(int(np.abs(f).max()) for f in factors) > self.bound:
            return False
        self.F[walk] = 0
        for mode, factor in enumerate(factors):
            self.F[walk, :rank, mode, : factor.shape[0]] = factor.T
        self.best_F[walk] = self.F[walk]
        self.rank[walk] = self.best_rank[walk] = rank
        return True


class C3Walks(Walks):
    """C3-invariant schemes of ``<n,n,n>`` modulo 2 (:mod:`~mlo_exp.agents.flipgraph.c3`):
    orbit representatives ``R[walk, mode, orbit]``, fixed terms' ``a`` in ``FX[walk, :s]``,
    ``q`` orbits and ``s`` fixed terms; rank ``3q + s``; ``X`` the expansion of ``R`` and
    ``index`` its hash index (:mod:`~mlo_exp.agents.flipgraph.index`)."""

    state_names = Walks.state_names + ("R", "FX", "q", "s", "best_R", "best_FX", "best_q",
                                       "best_s")

    def _setup(self, start: Factors) -> None:
        n, m, p = self.game.shape
        if not (n == m == p) or self.game.ring != "Z2":
            raise ValueError(f"agent.symmetry=c3 needs a square shape over Z2; the run is "
                             f"<{n},{m},{p}> over {self.game.ring}")
        if n * n > 64:
            raise ValueError(f"agent.symmetry=c3: <{n},{n},{n}> factors do not fit 64 bits")
        self.n = n
        compile_once("c3", c3.warm_up)
        reps, fixed = c3.orbits(*start, n)
        self.start_rank = 3 * len(reps) + len(fixed)
        extra = self.settings.max_plus_slack // 3 + 1
        self.orbit_capacity = len(reps) + extra
        self.capacity = self.start_rank + 3 * extra
        self.R = np.zeros((self.count, 3, self.orbit_capacity), dtype=np.uint64)
        for o, term in enumerate(reps):
            self.R[:, :, o] = np.array(term, dtype=np.uint64)
        self.FX = np.zeros((self.count, len(fixed) + len(reps) + 1), dtype=np.uint64)
        self.FX[:, : len(fixed)] = np.array(fixed, dtype=np.uint64)
        self.q = np.full(self.count, len(reps), dtype=np.int64)
        self.s = np.full(self.count, len(fixed), dtype=np.int64)
        self.rank = 3 * self.q + self.s
        self.best_R, self.best_FX = self.R.copy(), self.FX.copy()
        self.best_q, self.best_s = self.q.copy(), self.s.copy()
        self.X = np.zeros((self.count, 3, 3 * self.orbit_capacity), dtype=np.uint64)
        self.index = new_index(self.count, 3 * self.orbit_capacity)
        log.info("flipgraph c3: %d orbits of three terms + %d fixed terms (rank %d)",
                 len(reps), len(fixed), self.start_rank)

    def rebuild(self) -> None:
        for walk in range(self.count):
            c3.rebuild_c3(self.R, self.X, self.q, self.index, walk, self.n)

    def advance(self, lo: int, hi: int, counts: np.ndarray) -> None:
        part = slice(lo, hi)
        index = tuple(a[part] for a in self.index)
        c3.walk_c3(self.R[part], self.X[part], self.FX[part], self.q[part], self.s[part],
                   index, self.rng[part], self.stall[part], self.path[part], self.slack[part],
                   self.best_R[part], self.best_FX[part], self.best_q[part],
                   self.best_s[part], self.rank[part], self.best_rank[part], counts[part],
                   *self._limits(), self.orbit_capacity,
                   c3.PAIR_DRAWS[self.settings.pair_draw], self.n)

    def _factors(self, R: np.ndarray, FX: np.ndarray, q: int, s: int) -> Factors:
        return c3.expand_to_factors(R, FX, int(q), int(s), self.n)

    def best_factors(self, walk: int) -> Factors:
        return self._factors(self.best_R[walk], self.best_FX[walk], self.best_q[walk],
                             self.best_s[walk])

    def current_factors(self, walk: int) -> Factors:
        return self._factors(self.R[walk], self.FX[walk], self.q[walk], self.s[walk])

    def load(self, walk: int, factors: Factors) -> bool:
        try:
            reps, fixed = c3.orbits(*factors, self.n)
        except ValueError:
            return False  # not C3-invariant: not a state of these walks
        if len(reps) > self.orbit_capacity or len(fixed) > self.FX.shape[1]:
            return False
        self.R[walk] = self.FX[walk] = 0
        if reps:
            self.R[walk, :, : len(reps)] = np.array(reps, dtype=np.uint64).T
        self.FX[walk, : len(fixed)] = np.array(fixed, dtype=np.uint64)
        self.q[walk], self.s[walk] = len(reps), len(fixed)
        for name in ("R", "FX", "q", "s"):
            getattr(self, f"best_{name}")[walk] = getattr(self, name)[walk]
        self.rank[walk] = self.best_rank[walk] = 3 * len(reps) + len(fixed)
        return True


def bound_of(game: TensorGame, settings: FlipGraphAgentConfig) -> int:
    """The coefficient bound of integer walks: ``agent.coefficient_bound``, else the env's
    largest coefficient (1 over Z2)."""
    if game.ring == "Z2":
        return 1
    return int(settings.coefficient_bound or max(abs(c) for c in game.coefficients))


def start_schemes(game: TensorGame, settings: FlipGraphAgentConfig) -> list[Factors]:
    """Where the walks start: ``agent.start_from`` (a file, or a folder of them: walk ``w``
    starts from the ``w mod k``-th of its ``k`` schemes), else for ``symmetry=c3`` with
    ``c3_start=pairs`` the diagonal-pairs scheme, else the school method."""
    if settings.start_from is not None:
        return read_starts(settings.start_from, game.shape, game.ring, bound_of(game, settings))
    n, m, p = game.shape
    if settings.symmetry == "c3" and settings.c3_start == "pairs" and n == m == p:
        return [c3.diagonal_pairs_start(n)]
    return [school(n, m, p)]


def make_walks(game: TensorGame, settings: FlipGraphAgentConfig, seeds: np.ndarray) -> Walks:
    """The walks for the run's ring and ``agent.symmetry`` (module docstring), spread over
    their starts (:func:`start_schemes`)."""
    bound = bound_of(game, settings)
    if bound > 127:
        raise ValueError(f"agent.coefficient_bound={bound}; factors are int8: at most 127")
    if game.ring != "Z2" and max(game.dims) * np.log2(2 * bound + 1) > 63:
        raise ValueError(f"flipgraph over Z: factor length {max(game.dims)} with bound "
                         f"{bound} does not fit a 64-bit key; lower coefficient_bound")
    if settings.min_flippable and (game.ring != "Z2" or settings.symmetry != "none"):
        raise ValueError(f"agent.min_flippable={settings.min_flippable} refuses reductions of "
                         f"Z2 walks without symmetry; the run is over {game.ring} with "
                         f"symmetry={settings.symmetry}: set agent.min_flippable=0")
    starts = start_schemes(game, settings)
    if len(starts) > len(seeds):
        raise ValueError(f"agent.start_from={settings.start_from!r}: {len(starts)} starts for "
                         f"{len(seeds)} walks; accepted: at most one start per walk (raise "
                         "agent.walks or remove files)")
    largest = max(starts, key=lambda start: start[0].shape[1])  # sizes the arrays
    kind = C3Walks if settings.symmetry == "c3" else Z2Walks if game.ring == "Z2" else IntWalks
    walks = kind(game, settings, largest, seeds)
    if len(starts) > 1:
        for walk in range(walks.count):
            if not walks.load(walk, starts[walk % len(starts)]):
                raise ValueError(f"agent.start_from={settings.start_from!r}: start "
                                 f"{walk % len(starts)} does not fit these walks "
                                 f"(not C3-invariant, or more terms than the largest start)")
        walks.rebuild()
    return walks


_COMPILED: set[str] = set()


def compile_once(key: str, warm_up: Any) -> None:
    """Run ``warm_up()`` (a tiny walk: numba compiles, or loads from its cache) once per
    process and ``key``; when that takes more than half a second, say so once."""
    if key in _COMPILED:
        return
    timer = threading.Timer(0.5, log.info, ["compiling the flip-graph kernel (first use, "
                                            "~10-30 s; cached after)"])
    timer.daemon = True
    timer.start()
    try:
        warm_up()
    finally:
        timer.cancel()
    _COMPILED.add(key)
