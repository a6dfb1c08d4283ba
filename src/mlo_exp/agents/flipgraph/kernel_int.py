"""The flip-graph kernel over Z: int8 factors with coefficients bounded by ``bound``.

Used by :class:`~mlo_exp.agents.flipgraph.walks.IntWalks` when the run's ring is ``Z``; with
``bound = 1`` this is the **ternary** search (coefficients in {-1, 0, 1}, no lifting needed).
Moves and the search around them: :mod:`mlo_exp.agents.flipgraph`.

Representation, per walk ``w``: ``F[w, t, mode, :dims[mode]]`` (int8) is factor ``mode``
(0 = u over A, 1 = v over B, 2 = w over C; layout of :mod:`mlo_exp.algorithms.tensor`) of term
``t``; ``K[w, t, mode]`` a key identifying the vector up to sign (its sign-normalised entries
packed in base ``2*bound+1``), ``S[w, t, mode]`` the sign of its first non-zero entry. A flip
attempt draws a term and a mode and finds the term's partners (same key) with one integer
comparison per term. A removed term has every key ``DEAD``.

A flip ``a(x)b_i(x)c_i + s*a(x)b_j(x)c_j`` (``s``: the sign relating the shared factors)
becomes ``a(x)(b_i + sigma*s*b_j)(x)c_i + s*a(x)b_j(x)(c_j - sigma*c_i)`` with ``sigma = +-1``
drawn; a flip or merge that would leave ``|coefficient| <= bound`` is not made.
"""

from __future__ import annotations

import numpy as np
from numba import njit

DEAD = np.uint64(0xFFFFFFFFFFFFFFFF)  # key of a removed term: matches nothing
_MULT = np.uint64(0x2545F4914F6CDD1D)


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
def set_key(F, K, S, w, t, mode, dim, bound):
    """Recompute key and sign of factor ``(w, t, mode)``; return False when it is zero."""
    sign = 0
    for k in range(dim):
        if F[w, t, mode, k] != 0:
            sign = 1 if F[w, t, mode, k] > 0 else -1
            break
    if sign == 0:
        K[w, t, mode] = DEAD
        S[w, t, mode] = 0
        return False
    key = np.uint64(0)
    base = np.uint64(2 * bound + 1)
    for k in range(dim - 1, -1, -1):
        key = key * base + np.uint64(sign * F[w, t, mode, k] + bound)
    K[w, t, mode] = key
    S[w, t, mode] = sign
    return True


@njit(cache=True)
def _kill(K, w, t):
    K[w, t, 0] = DEAD
    K[w, t, 1] = DEAD
    K[w, t, 2] = DEAD


@njit(cache=True)
def _compact(F, K, S, rank, w):
    """Drop dead terms (all keys ``DEAD``), keeping the others in order."""
    out = 0
    for t in range(rank[w]):
        if K[w, t, 0] == DEAD:
            continue
        if out != t:
            F[w, out] = F[w, t]
            K[w, out] = K[w, t]
            S[w, out] = S[w, t]
        out += 1
    for t in range(out, rank[w]):
        F[w, t] = 0
        _kill(K, w, t)
        S[w, t] = 0
    rank[w] = out


@njit(cache=True)
def _reduce(F, K, S, rank, w, t, dims, bound):
    """Merge every term sharing two factors with term ``t`` into it; True if any merged."""
    merged = False
    again = True
    while again and K[w, t, 0] != DEAD:
        again = False
        for s in range(rank[w]):
            if s == t or K[w, s, 0] == DEAD:
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
            for k in range(dim):
                value = np.int64(F[w, t, other, k]) + lam * np.int64(F[w, s, other, k])
                if value > bound or value < -bound:
                    fits = False
                    break
            if not fits:
                continue
            for k in range(dim):
                F[w, t, other, k] = F[w, t, other, k] + lam * F[w, s, other, k]
            _kill(K, w, s)
            merged = True
            if not set_key(F, K, S, w, t, other, dim, bound):
                _kill(K, w, t)
                return True
            again = True
            break
    return merged


@njit(cache=True)
def flip(F, K, S, rank, rng, w, dims, bound, tmp_y, tmp_z):
    """One flip attempt on walk ``w``: 0 nothing changed, 1 flipped, 2 flipped and the rank
    went down."""
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
    sigma = np.int64(1) if _rand(rng, w, 2) == 0 else np.int64(-1)
    lam = np.int64(S[w, i, x]) * np.int64(S[w, j, x])
    # new y-factor of i: b_i + sigma*lam*b_j ; new z-factor of j: c_j - sigma*c_i
    for k in range(dy):
        value = np.int64(F[w, i, y, k]) + sigma * lam * np.int64(F[w, j, y, k])
        if value > bound or value < -bound:
            return 0
        tmp_y[k] = value
    for k in range(dz):
        value = np.int64(F[w, j, z, k]) - sigma * np.int64(F[w, i, z, k])
        if value > bound or value < -bound:
            return 0
        tmp_z[k] = value
    for k in range(dy):
        F[w, i, y, k] = tmp_y[k]
    for k in range(dz):
        F[w, j, z, k] = tmp_z[k]
    died = False
    if not set_key(F, K, S, w, i, y, dy, bound):
        _kill(K, w, i)
        died = True
    if not set_key(F, K, S, w, j, z, dz, bound):
        _kill(K, w, j)
        died = True
    if K[w, i, 0] != DEAD and _reduce(F, K, S, rank, w, i, dims, bound):
        died = True
    if K[w, j, 0] != DEAD and _reduce(F, K, S, rank, w, j, dims, bound):
        died = True
    if died:
        _compact(F, K, S, rank, w)
        return 2 if rank[w] < r else 1
    return 1


@njit(cache=True)
def plus(F, K, S, rank, rng, w, dims, bound):
    """A plus transition on walk ``w`` (rank +1); False when no valid pair was drawn.
    ``a(x)b(x)c + a'(x)b'(x)c'`` -> ``(a - a')(x)b(x)c + a'(x)b(x)c + a'(x)b'(x)c'``."""
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
            F[w, i, x, k] = F[w, i, x, k] - F[w, j, x, k]
        set_key(F, K, S, w, r, x, dim, bound)
        set_key(F, K, S, w, i, x, dim, bound)
        rank[w] = r + 1
        return True
    return False


@njit(cache=True)
def restore_best(F, K, S, rank, best_F, best_rank, w, dims, bound):
    """Walk ``w`` goes back to its best scheme (the end of a bounded path)."""
    F[w] = best_F[w]
    rank[w] = best_rank[w]
    for t in range(F.shape[1]):
        if t < rank[w]:
            for mode in range(3):
                set_key(F, K, S, w, t, mode, dims[mode], bound)
        else:
            _kill(K, w, t)
            for mode in range(3):
                S[w, t, mode] = 0


@njit(cache=True, nogil=True)
def walk_int(F, K, S, rank, rng, stall, path, slack, best_F, best_rank, counts, n_flips, dims,
             bound, plateau, plus_slack, max_slack, path_limit, capacity):
    """Every walk makes ``n_flips`` attempts; ``counts[w] = (flips, reductions, plus, useless,
    resets)``. ``stall``, ``path``, ``slack`` as in
    :func:`mlo_exp.agents.flipgraph.kernel_z2.walk_z2`; a useless attempt drew a factor without
    a partner, or a flip the bound refused."""
    width = F.shape[3]
    for w in range(F.shape[0]):
        tmp_y = np.zeros(width, dtype=np.int64)
        tmp_z = np.zeros(width, dtype=np.int64)
        flips = 0
        reductions = 0
        pluses = 0
        useless = 0
        resets = 0
        for _step in range(n_flips):
            outcome = flip(F, K, S, rank, rng, w, dims, bound, tmp_y, tmp_z)
            stall[w] += 1
            path[w] += 1
            if outcome == 0:
                useless += 1
            else:
                flips += 1
            if outcome == 2:
                reductions += 1
                stall[w] = 0
                if rank[w] < best_rank[w]:
                    best_rank[w] = rank[w]
                    path[w] = 0
                    slack[w] = plus_slack
                    best_F[w] = F[w]
                continue
            if path_limit > 0 and path[w] > path_limit:
                restore_best(F, K, S, rank, best_F, best_rank, w, dims, bound)
                slack[w] = min(slack[w] + 1, max_slack)
                path[w] = 0
                stall[w] = 0
                resets += 1
                continue
            if stall[w] <= plateau:
                continue
            stall[w] = 0
            allowed = rank[w] + 1 <= min(capacity, best_rank[w] + slack[w])
            if allowed and plus(F, K, S, rank, rng, w, dims, bound):
                pluses += 1
        counts[w, 0] = flips
        counts[w, 1] = reductions
        counts[w, 2] = pluses
        counts[w, 3] = useless
        counts[w, 4] = resets


def init_keys(F: np.ndarray, K: np.ndarray, S: np.ndarray, rank: np.ndarray, dims: np.ndarray,
              bound: int) -> None:
    """Keys and signs for every live term; dead slots get ``DEAD``."""
    K[:] = DEAD
    S[:] = 0
    for w in range(F.shape[0]):
        for t in range(int(rank[w])):
            for mode in range(3):
                set_key(F, K, S, w, t, mode, int(dims[mode]), bound)


def warm_up() -> None:
    """A tiny walk on <1,1,2>: compiles (or loads from numba's cache) this kernel."""
    F = np.zeros((1, 4, 3, 2), dtype=np.int8)
    F[0, :2, 0, 0] = 1  # u = a_11 twice; v = b_11, b_12; w = c_11, c_12
    F[0, 0, 1, 0] = F[0, 1, 1, 1] = F[0, 0, 2, 0] = F[0, 1, 2, 1] = 1
    K = np.full((1, 4, 3), DEAD, dtype=np.uint64)
    S = np.zeros((1, 4, 3), dtype=np.int8)
    rank = np.array([2])
    dims = np.array([1, 2, 2], dtype=np.int64)
    init_keys(F, K, S, rank, dims, 1)
    walk_int(F, K, S, rank, np.ones(1, dtype=np.uint64), np.zeros(1, dtype=np.int64),
             np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64), F.copy(), rank.copy(),
             np.zeros((1, 5), dtype=np.int64), 4, dims, 1, 1, 1, 2, 0, 4)
