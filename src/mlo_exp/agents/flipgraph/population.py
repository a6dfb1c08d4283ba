"""Distinct schemes at the frontier: the population walks restart from, and the pool of jobs.

**Population** (one agent): up to ``size`` distinct schemes of the best rank found so far (and
of the rank above it, for a search that has just descended), keyed by :func:`scheme_key`.
Walks that stall restart from the scheme the fewest walks started from, so restarts spread the
walks over the frontier instead of copying one leader into every walk. A **dead end** (no two
terms share a factor, :func:`is_dead_end`: no flip leaves it, e.g. Strassen's algorithm applied
twice for ``<4,4,4>``) is never kept: a walk restarted there could only make plus transitions
and fall straight back. Its entries are part of the agent's checkpoint (exact resume).

**Pool** (one search over many jobs, ``agent.pool_dir``): verified schemes written as
``rank<R>-<digest>.json`` (atomic writes: ``Algorithm.save``); a job reads the best that fits
its run (shape, ring, verified again). Half-written files never appear; unreadable ones are
skipped.
"""

from __future__ import annotations

import hashlib
import logging
from pathlib import Path

import numpy as np

from mlo_exp.agents.flipgraph.start import Factors
from mlo_exp.algorithms.algorithm import Algorithm

log = logging.getLogger("mlo_exp")


def _make_leading_positive(columns: np.ndarray) -> np.ndarray:
    """Multiply every column of ``columns`` (in place) by the sign of its first non-zero
    entry; returns those signs (1 for a zero column)."""
    first = np.argmax(columns != 0, axis=0)
    sign = np.sign(columns[first, np.arange(columns.shape[1])])
    sign[sign == 0] = 1
    columns *= sign
    return sign


def scheme_key(factors: Factors, ring: str) -> str:
    """A digest that two schemes share exactly when they have the same terms in any order
    (over Z a term's sign convention is fixed first: the first non-zero entries of ``u`` and
    ``v`` positive, the signs moved into ``w``)."""
    u, v, w = (np.array(f, dtype=np.int64) for f in factors)  # copies: signs change below
    if ring == "Z2":
        u, v, w = u % 2, v % 2, w % 2
    else:
        for f in (u, v):
            w = w * _make_leading_positive(f)
    terms = np.concatenate([u, v, w]).T
    order = np.lexsort(terms.T[::-1])
    return hashlib.blake2b(np.ascontiguousarray(terms[order]).tobytes(),
                           digest_size=12).hexdigest()


def is_dead_end(factors: Factors, ring: str) -> bool:
    """True when no flip is possible: no two terms share a factor in any mode (over Z up to
    sign, as the integer kernel flips)."""
    for factor in factors:
        columns = np.array(factor, dtype=np.int64)
        if ring == "Z2":
            columns %= 2
        else:
            _make_leading_positive(columns)
        terms = np.ascontiguousarray(columns.T)  # one row per term: a set finds repeats
        if len({term.tobytes() for term in terms}) < terms.shape[0]:
            return False
    return True


class Population:
    """Distinct schemes of the two lowest ranks seen, at most ``size`` per rank."""

    def __init__(self, size: int, ring: str) -> None:
        self.size, self.ring = size, ring
        self.entries: dict[str, tuple[int, Factors]] = {}  # key -> (rank, factors)
        self.starts: dict[str, int] = {}  # key -> walks started from it

    @property
    def best_rank(self) -> int | None:
        return min((rank for rank, _ in self.entries.values()), default=None)

    def add(self, factors: Factors) -> bool:
        """Keep ``factors`` if it is new, of the best rank or the one above, not a dead end,
        and there is room at its rank; True when kept."""
        rank = factors[0].shape[1]
        best = self.best_rank
        if best is not None and rank > best + 1:
            return False
        if is_dead_end(factors, self.ring):
            return False
        key = scheme_key(factors, self.ring)
        if key in self.entries:
            return False
        if sum(1 for r, _ in self.entries.values() if r == rank) >= self.size:
            return False
        self.entries[key] = (rank, tuple(np.asarray(f, dtype=np.int8) for f in factors))
        if best is None or rank < best:  # a new frontier: drop what is now two ranks above
            self.entries = {k: e for k, e in self.entries.items() if e[0] <= rank + 1}
            self.starts = {k: n for k, n in self.starts.items() if k in self.entries}
        return True

    def pick(self, rank: int) -> Factors | None:
        """The scheme of ``rank`` the fewest walks started from (the first kept, on ties);
        counted as one more start."""
        keys = [k for k, (r, _) in self.entries.items() if r == rank]
        if not keys:
            return None
        key = min(keys, key=lambda k: self.starts.get(k, 0))
        self.starts[key] = self.starts.get(key, 0) + 1
        return tuple(f.astype(np.int64) for f in self.entries[key][1])

    def count(self, rank: int) -> int:
        return sum(1 for r, _ in self.entries.values() if r == rank)

    def state_dict(self) -> dict:
        keys = list(self.entries)
        return {"keys": keys, "ranks": [self.entries[k][0] for k in keys],
                "factors": [self.entries[k][1] for k in keys],
                "starts": [self.starts.get(k, 0) for k in keys]}

    def load_state_dict(self, state: dict) -> None:
        self.entries = {k: (int(r), tuple(np.asarray(f, dtype=np.int8) for f in fs))
                        for k, r, fs in zip(state["keys"], state["ranks"], state["factors"],
                                            strict=True)}
        self.starts = {k: int(n) for k, n in zip(state["keys"], state["starts"], strict=True)
                       if n}


class JobPool:
    """The folder ``pool_dir`` shared by the jobs of one search (module docstring)."""

    def __init__(self, folder: Path, shape: tuple[int, int, int], ring: str, bound: int,
                 capacity: int) -> None:
        self.folder, self.shape, self.ring = folder, tuple(shape), ring
        self.bound, self.capacity = bound, capacity
        self.published: int | None = None  # rank last published

    def publish(self, factors: Factors) -> None:
        """Write ``factors`` when it beats what this job published (verified first)."""
        rank = factors[0].shape[1]
        if self.published is not None and rank >= self.published:
            return
        algorithm = Algorithm(self.shape, *factors, self.ring,
                              {"name": f"pool-rank{rank}", "source": "flipgraph pool"})
        if not algorithm.verify().ok:
            return
        name = f"rank{rank:04d}-{algorithm.digest()[:16]}.json"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            if not (self.folder / name).exists():
                algorithm.save(self.folder / name)
            self.published = rank
        except OSError as error:
            log.warning("flipgraph pool: cannot publish to %s: %s", self.folder, error)

    def best(self) -> tuple[int, Factors] | None:
        """The lowest-rank scheme in the pool that reads, fits this run and verifies."""
        try:
            files = sorted(self.folder.glob("rank*.json"))
        except OSError:
            return None
        for path in files[:8]:
            try:
                algorithm = Algorithm.load(path)
            except (OSError, ValueError):
                continue
            if (tuple(algorithm.shape) != self.shape or algorithm.ring != self.ring
                    or algorithm.rank > self.capacity or not algorithm.verify().ok):
                continue
            factors = tuple(np.asarray(x, dtype=np.int64) for x in
                            (algorithm.u, algorithm.v, algorithm.w))
            if self.ring != "Z2" and max(int(np.abs(f).max()) for f in factors) > self.bound:
                continue
            return algorithm.rank, factors
        return None
