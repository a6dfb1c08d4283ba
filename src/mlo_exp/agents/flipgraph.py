"""The flip-graph agent: random walks over decompositions of the same rank (Kauers-Moosbauer).

Not a game player: the agent keeps ``walks`` complete decompositions of ``T<n,m,p>`` and
changes them with moves that preserve the tensor exactly:

* **flip** — two terms sharing a factor (up to sign), ``a(x)b(x)c + a(x)b'(x)c'``, become
  ``a(x)(b + s*b')(x)c + a(x)b'(x)(c' - s*c)`` (``s = +-1``; over ``Z2`` additions are XORs).
  Over ``Z`` a flip that leaves the coefficient bound ``|x| <= bound`` is rejected.
* **reduction** — after a flip, a term that became zero is dropped, and two terms sharing two
  factors merge into one (``a(x)b(x)c + a(x)b(x)c' = a(x)b(x)(c + c')``): rank -1.
* **plus transition** — after ``plateau_flips`` flips without a reduction, two terms
  ``a(x)b(x)c + a'(x)b'(x)c'`` become ``(a - a')(x)b(x)c + a'(x)b(x)c + a'(x)b'(x)c'``: rank +1,
  allowed while the walk's rank stays below its best rank + ``plus_slack`` (escapes dead ends).
* **restart** — a walk whose best rank is above the agent's best after ``restart_after``
  episodes without improving is replaced by a copy of a best-rank decomposition.

**Episode** (for the trainer): one walk segment — every walk attempts ``flips_per_episode``
flips. The episode reports the best decomposition found so far (``solved=True``: every state
of a walk is a complete decomposition; the trainer still verifies it exactly before keeping
it), ``rank_used`` its rank, ``moves`` the flips done (all walks).

Representation over ``Z2`` (:mod:`mlo_exp.agents.flipgraph_kernel`): each factor is one
machine word (bit ``k`` = entry ``k``; a flip is two XORs), ``F[walk, mode, term]``; a hash
index per mode maps a factor value to the terms holding it, and a list of the values held by
two or more terms gives a flip partner in O(1), so every attempt is a flip.

Representation over ``Z``: factor vectors as int8 rows ``F[walk, term, mode, :dim]`` (mode
0/1/2 = u over A, v over B, w over C; layout of :mod:`mlo_exp.algorithms.tensor`), each with
a key ``K`` identifying the vector up to sign (its sign-normalised entries packed in base
``2*bound+1``) and the sign ``S`` of its first non-zero entry; a flip attempt draws a term and
a mode and finds its partners with one integer comparison per term.

Both kernels are compiled with numba (``nogil``; the first use in a fresh environment
compiles for ~10-30 s, said once on the log, then numba's cache loads them); walks are split
into ``threads`` chunks run by Python threads in parallel, and randomness is one xorshift64*
stream per walk, kept in :meth:`state_dict`, so a run is reproducible and resumable.

Device: the search runs on the CPU (NumPy arrays, the numba kernel) whatever the game's
device (``device=cuda`` is accepted and changes nothing); the agent never plays the game and
reports its decompositions as NumPy arrays, which the trainer verifies exactly.

Starting point: the school method (built here), or ``start_from``, a user-given algorithm file
(JSON ``mlo-exp/algorithm`` or the flip-graph text format of :mod:`mlo_exp.algorithms.formats`);
a library name there is resolved by the run (``run/experiment.resolve_start_from``), never
here.

Symmetry: ``symmetry="c3"`` builds this agent with the walks of
:class:`~mlo_exp.agents.flipgraph_c3.C3Walks` (over C3-invariant schemes of ``<n,n,n>``
modulo 2; its docstring states the convention).

Pool (one search over many jobs): with ``pool_dir`` every ``pool_every`` episodes the agent
publishes its best scheme there (verified first, ``Algorithm.save``: an atomic write, named
``rank<R>-<digest>.json``) when it improved, and restarts walks from the pool's best scheme
(read, shape/ring checked, verified again) when it beats their best and they are stalled
(``restart_after`` idle episodes), or beats this agent's best. The jobs of a Hydra multirun
(joblib, submitit) given the same ``pool_dir`` share their progress; a killed job loses
nothing the pool had. ``metrics["pool_restarts"]`` counts the walks restarted.
"""

from __future__ import annotations

import functools
import logging
import os
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
from numba import njit

from mlo_exp.agents import flipgraph_kernel as z2k
from mlo_exp.agents.base import Agent, EpisodeResult
from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.config import FlipGraphAgentConfig
from mlo_exp.env import TensorGame

log = logging.getLogger("mlo_exp")

_DEAD = np.uint64(0xFFFFFFFFFFFFFFFF)  # key of a removed term: matches nothing
_MULT = np.uint64(0x2545F4914F6CDD1D)

# --- the compiled kernel ---------------------------------------------------------------------
@njit(cache=True)
def _rand(rng, w, n):
    """Uniform integer in ``[0, n)`` from walk ``w``'s xorshift64* stream."""
    x = rng[w]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[w] = x
    high = (x * _MULT) >> np.uint64(32)  # 32 random bits; multiply-shift maps them to [0, n)
    return np.int64((high * np.uint64(n)) >> np.uint64(32))

@njit(cache=True)
def _set_key(F, K, S, w, t, mode, dim, z2, bound):
    """Recompute key and sign of factor ``(w, t, mode)``; return False when it is zero."""
    sign = 0
    for k in range(dim):
        if F[w, t, mode, k] != 0:
            sign = 1 if (z2 or F[w, t, mode, k] > 0) else -1
            break
    if sign == 0:
        K[w, t, mode] = _DEAD
        S[w, t, mode] = 0
        return False
    key = np.uint64(0)
    if z2:
        for k in range(dim):
            if F[w, t, mode, k] != 0:
                key |= np.uint64(1) << np.uint64(k)
    else:
        base = np.uint64(2 * bound + 1)
        for k in range(dim - 1, -1, -1):
            key = key * base + np.uint64(sign * F[w, t, mode, k] + bound)
    K[w, t, mode] = key
    S[w, t, mode] = sign
    return True

@njit(cache=True)
def _kill(K, w, t):
    K[w, t, 0] = _DEAD
    K[w, t, 1] = _DEAD
    K[w, t, 2] = _DEAD

@njit(cache=True)
def _compact(F, K, S, rank, w):
    """Drop dead terms (all keys ``_DEAD``), keeping the others in order."""
    out = 0
    for t in range(rank[w]):
        if K[w, t, 0] == _DEAD:
            continue
        if out != t:
            F[w, out] = F[w, t]
            K[w, out] = K[w, t]
            S[w, out] = S[w, t]
        out += 1
    rank[w] = out

@njit(cache=True)
def _reduce(F, K, S, rank, w, t, dims, z2, bound):
    """Merge every term sharing two factors with term ``t`` into it; True if any merged."""
    merged = False
    again = True
    while again and K[w, t, 0] != _DEAD:
        again = False
        for s in range(rank[w]):
            if s == t or K[w, s, 0] == _DEAD:
                continue
            equal = 0
            other = -1
            for mode in range(3):
                if K[w, s, mode] == K[w, t, mode]:
                    equal += 1
                else:
                    other = mode
            if equal < 2:
                continue
            if other < 0:
                other = 2
            # term s = lam * (factors of t in the shared modes) (x) its own `other` factor
            lam = np.int64(1)
            for mode in range(3):
                if mode != other:
                    lam *= np.int64(S[w, s, mode]) * np.int64(S[w, t, mode])
            dim = dims[other]
            fits = True
            if not z2:
                for k in range(dim):
                    value = np.int64(F[w, t, other, k]) + lam * np.int64(F[w, s, other, k])
                    if value > bound or value < -bound:
                        fits = False
                        break
            if not fits:
                continue
            for k in range(dim):
                if z2:
                    F[w, t, other, k] ^= F[w, s, other, k]
                else:
                    F[w, t, other, k] = F[w, t, other, k] + lam * F[w, s, other, k]
            _kill(K, w, s)
            merged = True
            if not _set_key(F, K, S, w, t, other, dim, z2, bound):
                _kill(K, w, t)
                return True
            again = True
            break
    return merged

@njit(cache=True)
def _flip(F, K, S, rank, rng, w, dims, z2, bound, tmp_y, tmp_z):
    """One flip attempt on walk ``w``: 0 no flip, 1 flipped, 2 flipped and rank went down."""
    r = rank[w]
    i = _rand(rng, w, r)
    x = _rand(rng, w, 3)
    key = K[w, i, x]
    count = 0
    for s in range(r):
        if K[w, s, x] == key:
            count += 1
    if count < 2:  # term i itself always matches
        return 0
    pick = _rand(rng, w, count - 1)
    j = -1
    for s in range(r):
        if s != i and K[w, s, x] == key:
            if pick == 0:
                j = s
                break
            pick -= 1
    y = (x + 1 + _rand(rng, w, 2)) % 3
    z = 3 - x - y
    dy, dz = dims[y], dims[z]
    sigma = np.int64(1) if (z2 or _rand(rng, w, 2) == 0) else np.int64(-1)
    lam = np.int64(S[w, i, x]) * np.int64(S[w, j, x])
    # new y-factor of i: b_i + sigma*lam*b_j ; new z-factor of j: c_j - sigma*c_i
    for k in range(dy):
        if z2:
            tmp_y[k] = F[w, i, y, k] ^ F[w, j, y, k]
        else:
            value = np.int64(F[w, i, y, k]) + sigma * lam * np.int64(F[w, j, y, k])
            if value > bound or value < -bound:
                return 0
            tmp_y[k] = value
    for k in range(dz):
        if z2:
            tmp_z[k] = F[w, j, z, k] ^ F[w, i, z, k]
        else:
            value = np.int64(F[w, j, z, k]) - sigma * np.int64(F[w, i, z, k])
            if value > bound or value < -bound:
                return 0
            tmp_z[k] = value
    for k in range(dy):
        F[w, i, y, k] = tmp_y[k]
    for k in range(dz):
        F[w, j, z, k] = tmp_z[k]
    died = False
    if not _set_key(F, K, S, w, i, y, dy, z2, bound):
        _kill(K, w, i)
        died = True
    if not _set_key(F, K, S, w, j, z, dz, z2, bound):
        _kill(K, w, j)
        died = True
    if K[w, i, 0] != _DEAD and _reduce(F, K, S, rank, w, i, dims, z2, bound):
        died = True
    if K[w, j, 0] != _DEAD and _reduce(F, K, S, rank, w, j, dims, z2, bound):
        died = True
    if died:
        _compact(F, K, S, rank, w)
        return 2 if rank[w] < r else 1
    return 1

@njit(cache=True)
def _plus(F, K, S, rank, rng, w, dims, z2, bound):
    """A plus transition on walk ``w`` (rank +1); False when no valid pair was drawn."""
    r = rank[w]
    if r < 2:
        return False
    for _attempt in range(16):
        i = _rand(rng, w, r)
        j = _rand(rng, w, r - 1)
        if j >= i:
            j += 1
        x = _rand(rng, w, 3)
        if K[w, i, x] == K[w, j, x]:
            continue
        dim = dims[x]
        fits = True
        if not z2:
            for k in range(dim):
                value = np.int64(F[w, i, x, k]) - np.int64(F[w, j, x, k])
                if value > bound or value < -bound:
                    fits = False
                    break
        if not fits:
            continue
        # new term r = (x-factor of j, other factors of i); term i's x-factor -= j's
        F[w, r] = F[w, i]
        K[w, r] = K[w, i]
        S[w, r] = S[w, i]
        for k in range(dim):
            F[w, r, x, k] = F[w, j, x, k]
            if z2:
                F[w, i, x, k] ^= F[w, j, x, k]
            else:
                F[w, i, x, k] = F[w, i, x, k] - F[w, j, x, k]
        _set_key(F, K, S, w, r, x, dim, z2, bound)
        _set_key(F, K, S, w, i, x, dim, z2, bound)
        rank[w] = r + 1
        return True
    return False

@njit(cache=True, nogil=True)
def _walk(F, K, S, rank, rng, stall, best_F, best_rank, counts, n_flips, dims, z2, bound,
          plateau, plus_slack, capacity):
    """Every walk attempts ``n_flips`` flips; ``counts[w] = (flips, reductions, plus)``."""
    n_walks = F.shape[0]
    width = F.shape[3]
    for w in range(n_walks):
        tmp_y = np.zeros(width, dtype=np.int64)
        tmp_z = np.zeros(width, dtype=np.int64)
        flips = 0
        reductions = 0
        pluses = 0
        for _step in range(n_flips):
            outcome = _flip(F, K, S, rank, rng, w, dims, z2, bound, tmp_y, tmp_z)
            stall[w] += 1
            if outcome > 0:
                flips += 1
            if outcome == 2:
                reductions += 1
                stall[w] = 0
                if rank[w] < best_rank[w]:
                    best_rank[w] = rank[w]
                    best_F[w] = F[w]
            elif stall[w] > plateau and rank[w] + 1 <= min(capacity, best_rank[w] + plus_slack):
                if _plus(F, K, S, rank, rng, w, dims, z2, bound):
                    pluses += 1
                stall[w] = 0
        counts[w, 0] = flips
        counts[w, 1] = reductions
        counts[w, 2] = pluses

# --- the agent -------------------------------------------------------------------------------
class FlipGraphAgent(Agent):
    """Many flip-graph random walks in parallel (see the module docstring)."""

    device_types = None  # any game device: the search itself runs on the CPU
    compute_on_cpu = True

    def __init__(self, game: TensorGame, seed: int, **settings: Any) -> None:
        """``settings``: fields of :class:`~mlo_exp.config.FlipGraphAgentConfig` (defaults
        and checks there)."""
        s = self.settings = FlipGraphAgentConfig(**settings)
        super().__init__(game, seed=seed, batch_size=s.batch_size)
        self.walks, self.flips_per_episode = s.walks, s.flips_per_episode
        self.plateau_flips, self.plus_slack = s.plateau_flips, s.plus_slack
        self.restart_after = s.restart_after
        self.threads = max(1, min(int(s.threads or os.cpu_count() or 1), self.walks))
        self.z2 = game.ring == "Z2"
        largest = max(abs(c) for c in game.coefficients)
        self.bound = 1 if self.z2 else int(s.coefficient_bound or largest)
        self.dims = np.array(game.dims, dtype=np.int64)
        if self.z2 and max(game.dims) > 64:
            raise ValueError(f"flipgraph over Z2 packs factors in 64 bits; dims {game.dims} "
                             "are too large")
        if self.bound > 127:
            raise ValueError(f"agent.coefficient_bound={self.bound}; factors are int8: "
                             "at most 127")
        if not self.z2 and max(game.dims) * np.log2(2 * self.bound + 1) > 63:
            raise ValueError(f"flipgraph over Z: factor length {max(game.dims)} with bound "
                             f"{self.bound} does not fit a 64-bit key; lower coefficient_bound")
        u, v, w = self._start(s.start_from)
        self._setup(game, u, v, w)
        self._init_index()
        self.stall = np.zeros(self.walks, dtype=np.int64)
        self.best_rank = self.rank.copy()
        self.idle = np.zeros(self.walks, dtype=np.int64)  # episodes since the walk improved
        # One xorshift stream per walk, seeded from the run seed (never zero).
        seeds = np.random.SeedSequence(int(seed)).generate_state(self.walks, dtype=np.uint64)
        self.rng = seeds | np.uint64(1)
        self.restarts = 0
        self.episodes_run = 0
        self.pool = None if s.pool_dir is None else Path(s.pool_dir).expanduser().resolve()
        self.pool_every = s.pool_every
        self.published: int | None = None  # rank last published to the pool

    def __new__(cls, *args: Any, **settings: Any) -> FlipGraphAgent:
        """``symmetry="c3"`` builds ``C3FlipGraphAgent``: this agent with the walks of
        :class:`~mlo_exp.agents.flipgraph_c3.C3Walks`."""
        if cls is FlipGraphAgent and settings.get("symmetry", "none") == "c3":
            cls = _c3_agent_class()
        return super().__new__(cls)

    def _setup(self, game: TensorGame, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> None:
        """The walks' arrays, all starting at ``(u, v, w)``."""
        compile_once("z2" if self.z2 else "z", lambda: _warm_up(self.z2))
        self.start_rank = u.shape[1]
        self.capacity = self.start_rank + max(self.plus_slack, 0) + 1
        self.rank = np.full(self.walks, self.start_rank, dtype=np.int64)
        if self.z2:  # packed words (flipgraph_kernel): F[walk, mode, term] uint64
            self.F = np.zeros((self.walks, 3, self.capacity), dtype=np.uint64)
            for mode, factor in enumerate((u, v, w)):
                self.F[:, mode, : self.start_rank] = z2k.pack(factor)
            self.index = z2k.new_index(self.walks, self.capacity)
        else:  # int8 rows with keys (the generic kernel): F[walk, term, mode, entry]
            shape = (self.walks, self.capacity, 3, int(max(game.dims)))
            self.F = np.zeros(shape, dtype=np.int8)
            for mode, factor in enumerate((u, v, w)):
                self.F[:, : self.start_rank, mode, : factor.shape[0]] = factor.T
            self.K = np.full(shape[:3], _DEAD, dtype=np.uint64)
            self.S = np.zeros(shape[:3], dtype=np.int8)
        self.best_F = self.F.copy()

    # -- starting point ------------------------------------------------------------------
    def _start(self, start_from: str | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n, m, p = self.game.shape
        if start_from is None:
            return _school(n, m, p)
        from mlo_exp.algorithms.formats import read_algorithm_file

        algorithm = read_algorithm_file(Path(start_from), shape=(n, m, p))
        where = f"agent.start_from={start_from!r}"
        if tuple(algorithm.shape) != (n, m, p):
            raise ValueError(f"{where}: algorithm is for <{','.join(map(str, algorithm.shape))}>, "
                             f"the run is for <{n},{m},{p}>")
        if algorithm.ring == "Z2" and not self.z2:
            raise ValueError(f"{where}: a Z2 algorithm cannot start a walk over Z "
                             "(lift it first: mlo-algorithms import --lift)")
        if algorithm.ring == "Q":
            raise ValueError(f"{where}: rational algorithms are not accepted; Z or Z2 only")
        check = algorithm.verify()
        if not check.ok:
            raise ValueError(f"{where}: not a valid decomposition: {check.describe()}")
        u, v, w = (np.asarray(x, dtype=np.int64) for x in (algorithm.u, algorithm.v, algorithm.w))
        if self.z2:
            u, v, w = (x % 2 for x in (u, v, w))
        elif max(int(np.abs(x).max()) for x in (u, v, w)) > self.bound:
            raise ValueError(f"{where}: coefficients exceed the bound {self.bound}; "
                             "raise agent.coefficient_bound")
        return u, v, w

    # -- one episode -------------------------------------------------------------------------
    def run_episode(self) -> EpisodeResult:
        counts = np.zeros((self.walks, 3), dtype=np.int64)
        best_before = self.best_rank.copy()
        started = time.perf_counter()
        chunks = np.array_split(np.arange(self.walks), self.threads)
        if len(chunks) == 1:
            self._walk_chunk(0, self.walks, counts)
        else:
            with ThreadPoolExecutor(len(chunks)) as pool:
                jobs = [pool.submit(self._walk_chunk, int(c[0]), int(c[-1]) + 1, counts)
                        for c in chunks if len(c)]
                for job in jobs:
                    job.result()
        seconds = time.perf_counter() - started
        improved = self.best_rank < best_before
        self.idle = np.where(improved, 0, self.idle + 1)
        restarted = self._restart_stuck_walks()
        self.episodes_run += 1
        pooled = self._share_pool() if self.pool is not None else 0
        best = int(np.argmin(self.best_rank))
        flips = int(counts[:, 0].sum())
        return EpisodeResult(
            reward=-float(self.best_rank[best]),
            residual_norm=0.0,
            rank_used=int(self.best_rank[best]),
            solved=True,
            factors=self.best_factors(best),
            moves=flips,
            games=self.walks,
            metrics={
                "mean_rank": float(self.rank.mean()),
                "min_rank": int(self.rank.min()),
                "flips_per_s": flips / max(seconds, 1e-9),
                "reductions": int(counts[:, 1].sum()),
                "plus_transitions": int(counts[:, 2].sum()),
                "restarts": restarted,
                "pool_restarts": pooled,
            },
        )

    def _init_index(self) -> None:
        """Keys and signs (Z), or the flippable lists (Z2), from ``F`` and ``rank``."""
        if self.z2:
            for w in range(self.walks):
                z2k.rebuild(self.F, self.rank, *self.index, w)
        else:
            _init_keys(self.F, self.K, self.S, self.rank, self.dims, self.z2, self.bound)

    def _walk_chunk(self, lo: int, hi: int, counts: np.ndarray) -> None:
        """Run walks ``lo..hi-1`` (views: the kernel writes the agent's arrays in place)."""
        if self.z2:
            z2k.walk_z2(self.F[lo:hi], self.rank[lo:hi], self.rng[lo:hi],
                        *(a[lo:hi] for a in self.index), self.stall[lo:hi], self.best_F[lo:hi],
                        self.best_rank[lo:hi], counts[lo:hi], self.flips_per_episode,
                        self.plateau_flips, self.plus_slack, self.capacity)
            return
        _walk(self.F[lo:hi], self.K[lo:hi], self.S[lo:hi], self.rank[lo:hi], self.rng[lo:hi],
              self.stall[lo:hi], self.best_F[lo:hi], self.best_rank[lo:hi], counts[lo:hi],
              self.flips_per_episode, self.dims, self.z2, self.bound, self.plateau_flips,
              self.plus_slack, self.capacity)

    def _restart_stuck_walks(self) -> int:
        """Replace walks idle for ``restart_after`` episodes above the best rank."""
        target = self.best_rank.min()
        leaders = np.flatnonzero(self.best_rank == target)
        stuck = np.flatnonzero((self.idle >= self.restart_after) & (self.best_rank > target))
        for w in stuck:
            source = leaders[int(self.rng[w] % np.uint64(len(leaders)))]
            self._copy_best_into(w, source)
            self.stall[w] = self.idle[w] = 0
        if len(stuck):
            self._init_index()
            self.restarts += len(stuck)
        return int(len(stuck))

    # -- the pool: one search over many jobs -------------------------------------------------
    def _share_pool(self) -> int:
        """Every ``pool_every`` episodes: publish this agent's best scheme to ``pool_dir`` when
        it improved (verified first; an atomic write), then restart walks from the pool's best
        when it is better than theirs and they are stalled (idle ``restart_after`` episodes),
        or better than this agent's best. Returns the walks restarted."""
        if self.episodes_run % self.pool_every:
            return 0
        best = int(np.argmin(self.best_rank))
        rank = int(self.best_rank[best])
        if self.published is None or rank < self.published:
            algorithm = Algorithm(self.game.shape, *self.best_factors(best), self.game.ring,
                                  {"name": f"pool-rank{rank}", "source": "flipgraph pool"})
            if algorithm.verify().ok:
                name = f"rank{rank:04d}-{algorithm.digest()[:16]}.json"
                try:
                    self.pool.mkdir(parents=True, exist_ok=True)
                    if not (self.pool / name).exists():
                        algorithm.save(self.pool / name)
                    self.published = rank
                except OSError as error:
                    log.warning("flipgraph pool: cannot publish to %s: %s", self.pool, error)
        found = self._pool_best()
        if found is None:
            return 0
        pool_rank, factors = found
        walks = np.flatnonzero((self.best_rank > pool_rank)
                               & ((self.idle >= self.restart_after)
                                  | (pool_rank < self.best_rank.min())))
        if pool_rank < self.best_rank.min():  # news: at least one walk takes it now
            walks = walks if len(walks) else np.array([int(np.argmax(self.best_rank))])
        restarted = 0
        for walk in walks:
            if self._load_walk(int(walk), *factors):
                self.stall[walk] = self.idle[walk] = 0
                restarted += 1
        if restarted:
            self._init_index()
        return restarted

    def _pool_best(self) -> tuple[int, tuple[np.ndarray, ...]] | None:
        """The lowest-rank scheme in the pool that reads, fits this run and verifies."""
        try:
            files = sorted(self.pool.glob("rank*.json"))
        except OSError:
            return None
        for path in files[:8]:
            try:
                algorithm = Algorithm.load(path)
            except (OSError, ValueError):
                continue  # half-written files never appear (atomic writes); others are skipped
            if (tuple(algorithm.shape) != tuple(self.game.shape)
                    or algorithm.ring != self.game.ring or not algorithm.verify().ok
                    or algorithm.rank > self.capacity):
                continue
            factors = tuple(np.asarray(x, dtype=np.int64) for x in
                            (algorithm.u, algorithm.v, algorithm.w))
            if not self.z2 and max(int(np.abs(f).max()) for f in factors) > self.bound:
                continue
            return algorithm.rank, factors
        return None

    def _load_walk(self, walk: int, u: np.ndarray, v: np.ndarray, w: np.ndarray) -> bool:
        """Walk ``walk`` (current and best) becomes the scheme ``(u, v, w)``; call
        :meth:`_init_index` after. False when it does not fit the walk."""
        rank = u.shape[1]
        self.F[walk] = 0
        for mode, factor in enumerate((u, v, w)):
            if self.z2:
                self.F[walk, mode, :rank] = z2k.pack(factor)
            else:
                self.F[walk, :rank, mode, : factor.shape[0]] = factor.T
        self.best_F[walk] = self.F[walk]
        self.rank[walk] = self.best_rank[walk] = rank
        return True

    def _copy_best_into(self, walk: int, source: int) -> None:
        """Walk ``walk`` (current and best) becomes walk ``source``'s best."""
        self.F[walk] = self.best_F[source]
        self.best_F[walk] = self.best_F[source]
        self.rank[walk] = self.best_rank[walk] = self.best_rank[source]

    def best_factors(self, walk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Walk ``walk``'s best decomposition as ``(U, V, W)``, columns = terms, int64."""
        return self._factors(self.best_F[walk], int(self.best_rank[walk]))

    def _factors(self, F: np.ndarray, rank: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        if self.z2:
            return tuple(z2k.unpack(F[mode, :rank], int(self.dims[mode])) for mode in range(3))
        terms = F[:rank].astype(np.int64)
        return tuple(terms[:, mode, : self.dims[mode]].T.copy() for mode in range(3))

    def current_factors(self, walk: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Walk ``walk``'s current decomposition (same layout as :meth:`best_factors`)."""
        return self._factors(self.F[walk], int(self.rank[walk]))

    # -- checkpoints ---------------------------------------------------------------------
    _STATE = ("F", "rank", "stall", "best_F", "best_rank", "idle", "rng")

    def state_dict(self) -> dict[str, Any]:
        state = super().state_dict()
        state.update({name: getattr(self, name).copy() for name in self._STATE})
        state["restarts"] = self.restarts
        if self.z2 and getattr(self, "index", None) is not None:
            # The Z2 index as it stands: its flippable-list order comes from the moves made
            # since the last rebuild, and the walks draw from that order; a rebuild on load
            # would give another order and another walk (resume would not be exact).
            state["z2_index"] = [array.copy() for array in self.index]
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        for name in self._STATE:
            value = np.asarray(state[name])
            expected = getattr(self, name)
            if value.shape != expected.shape:
                raise ValueError(f"flipgraph checkpoint: {name} has shape {value.shape}, "
                                 f"this agent needs {expected.shape} (same walks/shape?)")
            setattr(self, name, value.astype(expected.dtype).copy())
        self.restarts = int(state["restarts"])
        self._init_index()
        saved = state.get("z2_index")  # checkpoints before it: the rebuilt index
        if saved is not None and getattr(self, "index", None) is not None:
            arrays = [np.asarray(array) for array in saved]
            if [a.shape for a in arrays] != [a.shape for a in self.index]:
                raise ValueError("flipgraph checkpoint: the Z2 index has other shapes than "
                                 "this agent's (same walks/shape/plus_slack?)")
            self.index = tuple(a.astype(mine.dtype).copy()
                               for a, mine in zip(arrays, self.index, strict=True))

def _school(n: int, m: int, p: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The school method, one term ``a_ij * b_jk -> c_ik`` per ``(i, j, k)``."""
    i, j, k = (x.ravel() for x in np.meshgrid(np.arange(n), np.arange(m), np.arange(p),
                                               indexing="ij"))
    rank = n * m * p
    u = np.zeros((n * m, rank), dtype=np.int64)
    v = np.zeros((m * p, rank), dtype=np.int64)
    w = np.zeros((n * p, rank), dtype=np.int64)
    terms = np.arange(rank)
    u[i * m + j, terms] = v[j * p + k, terms] = w[i * p + k, terms] = 1
    return u, v, w

def _init_keys(F, K, S, rank, dims, z2, bound) -> None:
    """Keys and signs for every live term; dead slots get ``_DEAD``."""
    K[:] = _DEAD
    S[:] = 0
    for w in range(F.shape[0]):
        for t in range(int(rank[w])):
            for mode in range(3):
                _set_key(F, K, S, w, t, mode, int(dims[mode]), z2, bound)


@functools.cache
def _c3_agent_class() -> type:
    from mlo_exp.agents.flipgraph_c3 import C3Walks

    return type("C3FlipGraphAgent", (C3Walks, FlipGraphAgent), {"__doc__": C3Walks.__doc__})


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


def _warm_up(z2: bool) -> None:
    """A tiny walk on <1,1,2>: compiles (or loads) the kernel of the ring."""
    u, v, w = _school(1, 1, 2)
    if z2:
        F = np.zeros((1, 3, 4), dtype=np.uint64)
        for mode, factor in enumerate((u, v, w)):
            F[0, mode, :2] = z2k.pack(factor)
        rank = np.array([2])
        index = z2k.new_index(1, 4)
        z2k.rebuild(F, rank, *index, 0)
        z2k.walk_z2(F, rank, np.ones(1, dtype=np.uint64), *index,
                    np.zeros(1, dtype=np.int64), F.copy(), rank.copy(),
                    np.zeros((1, 3), dtype=np.int64), 4, 1, 1, 4)
    else:
        F = np.zeros((1, 4, 3, 2), dtype=np.int8)
        for mode, factor in enumerate((u, v, w)):
            F[0, :2, mode, : factor.shape[0]] = factor.T
        K = np.full((1, 4, 3), _DEAD, dtype=np.uint64)
        S = np.zeros((1, 4, 3), dtype=np.int8)
        rank = np.array([2])
        dims = np.array([1, 2, 2], dtype=np.int64)
        _init_keys(F, K, S, rank, dims, False, 1)
        _walk(F, K, S, rank, np.ones(1, dtype=np.uint64), np.zeros(1, dtype=np.int64),
              F.copy(), rank.copy(), np.zeros((1, 3), dtype=np.int64), 4, dims, False, 1,
              1, 1, 4)
