"""The flip-graph kernel over Z: int8 factors with coefficients bounded by ``bound``.

Used by :class:`~mlo_exp.agents.flipgraph.walks.IntWalks` when the run's ring is ``Z``; with
``bound = 1`` this is the **ternary** search (coefficients in {-1, 0, 1}, no lifting needed).
Moves and the search around them: :mod:`mlo_exp.agents.flipgraph`.

Representation, per walk ``w``: ``F[w, t, mode, :dims[mode]]`` (int8) is factor ``mode``
(0 = u over A, 1 = v over B, 2 = w over C; layout of :mod:`mlo_exp.algorithms.tensor`) of term
``t``; ``K[w, t, mode]`` a key identifying the vector up to sign (its sign-normalised entries
packed in base ``2*bound+1``; never 0), ``S[w, t, mode]`` the sign of its first non-zero entry.
A removed term has every key ``DEAD``. The keys are indexed like the Z2 kernel's words
(:mod:`~mlo_exp.agents.flipgraph.index`: per mode, key -> holders, and the flippable list of
keys held by two or more terms), so a flip attempt draws a partner pair in O(1); an attempt
is useless only when the list is empty or the flip would leave the bound.

A flip ``a(x)b_i(x)c_i + s*a(x)b_j(x)c_j`` (``s``: the sign relating the shared factors)
becomes ``a(x)(b_i + sigma*s*b_j)(x)c_i + s*a(x)b_j(x)(c_j - sigma*c_i)`` with ``sigma = +-1``
drawn; a flip or merge that would leave ``|coefficient| <= bound`` is not made.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mlo_exp.agents.flipgraph.index import draw_pair, insert, new_index, rand, remove, slot

DEAD = np.uint64(0xFFFFFFFFFFFFFFFF)  # key of a removed term: matches nothing


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
def rebuild(K, rank, ix, w):
    """The index and flippable list of walk ``w`` from its keys."""
    HK, HC, HH, HD, NX, D, nd = ix
    nd[w] = 0
    for m in range(3):
        for h in range(HK.shape[2]):
            HK[w, m, h] = 0
    for m in range(3):
        for t in range(rank[w]):
            insert(HK, HC, HH, HD, NX, D, nd, w, m, t, K[w, t, m])


@njit(cache=True)
def _shares_two(K, ix, w, m, t):
    """Does another holder of term ``t``'s key in mode ``m`` share a second key with it?"""
    HK, HC, HH, HD, NX, D, nd = ix
    h = slot(HK, w, m, K[w, t, m], HK.shape[2] - 1)
    s = HH[w, m, h]
    while s >= 0:
        if s != t:
            for other in range(3):
                if other != m and K[w, s, other] == K[w, t, other]:
                    return True
        s = NX[w, m, s]
    return False


@njit(cache=True)
def _rekey(F, K, S, ix, w, t, mode, dim, bound):
    """Term ``t``'s factor ``mode`` changed: its key, sign and index entry follow; False when
    the factor became zero (the term is then dead: the caller compacts and rebuilds)."""
    HK, HC, HH, HD, NX, D, nd = ix
    remove(HK, HC, HH, HD, NX, D, nd, w, mode, t, K[w, t, mode])
    if not set_key(F, K, S, w, t, mode, dim, bound):
        return False
    insert(HK, HC, HH, HD, NX, D, nd, w, mode, t, K[w, t, mode])
    return True


@njit(cache=True)
def _fits(F, w, i, j, y, z, dy, dz, sigma, lam, bound, tmp_y, tmp_z):
    """The flip's new factors in ``tmp_y``/``tmp_z``; False when one leaves the bound."""
    for k in range(dy):
        value = np.int64(F[w, i, y, k]) + sigma * lam * np.int64(F[w, j, y, k])
        if value > bound or value < -bound:
            return False
        tmp_y[k] = value
    for k in range(dz):
        value = np.int64(F[w, j, z, k]) - sigma * np.int64(F[w, i, z, k])
        if value > bound or value < -bound:
            return False
        tmp_z[k] = value
    return True


@njit(cache=True)
def flip(F, K, S, rank, ix, rng, w, dims, bound, tmp_y, tmp_z):
    """One flip attempt on walk ``w``: 0 nothing changed, 1 flipped, 2 flipped and the rank
    went down."""
    HK, HC, HH, HD, NX, D, nd = ix
    if nd[w] == 0:
        return 0
    r = rank[w]
    x, i, j = draw_pair(HC, HH, NX, D, nd, rng, w)
    y = (x + 1 + rand(rng, w, 2)) % 3
    z = 3 - x - y
    dy, dz = dims[y], dims[z]
    lam = np.int64(S[w, i, x]) * np.int64(S[w, j, x])
    # new y-factor of i: b_i + sigma*lam*b_j ; new z-factor of j: c_j - sigma*c_i; the sign
    # sigma drawn first, the other one when the first leaves the bound
    sigma = np.int64(1) if rand(rng, w, 2) == 0 else np.int64(-1)
    if not _fits(F, w, i, j, y, z, dy, dz, sigma, lam, bound, tmp_y, tmp_z):
        sigma = -sigma
        if not _fits(F, w, i, j, y, z, dy, dz, sigma, lam, bound, tmp_y, tmp_z):
            return 0
    for k in range(dy):
        F[w, i, y, k] = tmp_y[k]
    for k in range(dz):
        F[w, j, z, k] = tmp_z[k]
    alive_i = _rekey(F, K, S, ix, w, i, y, dy, bound)
    alive_j = _rekey(F, K, S, ix, w, j, z, dz, bound)
    if alive_i and alive_j and not (_shares_two(K, ix, w, y, i) or _shares_two(K, ix, w, z, j)):
        return 1
    # a term vanished, or a pair sharing two factors now shares the changed one: reduce
    if not alive_i:
        _kill(K, w, i)
    if not alive_j:
        _kill(K, w, j)
    if K[w, i, 0] != DEAD:
        _reduce(F, K, S, rank, w, i, dims, bound)
    if K[w, j, 0] != DEAD:
        _reduce(F, K, S, rank, w, j, dims, bound)
    _compact(F, K, S, rank, w)
    rebuild(K, rank, ix, w)
    return 2 if rank[w] < r else 1


@njit(cache=True)
def _sum_fits(F, w, t, s, mode, sign, dim, bound):
    """Does ``F[t, mode] + sign * F[s, mode]`` keep every coefficient within ``bound``?"""
    for k in range(dim):
        value = np.int64(F[w, t, mode, k]) + sign * np.int64(F[w, s, mode, k])
        if value > bound or value < -bound:
            return False
    return True


@njit(cache=True)
def plus(F, K, S, rank, ix, rng, w, dims, bound):
    """A plus transition on walk ``w`` (rank +1); False when no valid pair was drawn.

    Two terms that differ (up to sign) in every mode, ``a(x)b(x)c + a'(x)b'(x)c'``, become
    ``a(x)(b - b')(x)c + (a' + a)(x)b'(x)c' + a(x)b'(x)(c - c')`` (which mode plays ``a``,
    ``b``, ``c`` is drawn), if every coefficient stays within ``bound``. No two of the three
    share two factors, so no reduction undoes the transition at once (see
    :func:`~mlo_exp.agents.flipgraph.kernel_z2.plus`)."""
    r = rank[w]
    if r < 2:
        return False
    for _attempt in range(16):
        i = rand(rng, w, r)
        j = rand(rng, w, r - 1)
        if j >= i:
            j += 1
        if K[w, i, 0] == K[w, j, 0] or K[w, i, 1] == K[w, j, 1] or K[w, i, 2] == K[w, j, 2]:
            continue
        x = rand(rng, w, 3)
        y = (x + 1 + rand(rng, w, 2)) % 3
        z = 3 - x - y
        if not (_sum_fits(F, w, i, j, y, -1, dims[y], bound)
                and _sum_fits(F, w, j, i, x, 1, dims[x], bound)
                and _sum_fits(F, w, i, j, z, -1, dims[z], bound)):
            continue
        F[w, r] = F[w, i]
        for k in range(dims[y]):
            F[w, r, y, k] = F[w, j, y, k]
            F[w, i, y, k] = F[w, i, y, k] - F[w, j, y, k]
        for k in range(dims[z]):
            F[w, r, z, k] = F[w, r, z, k] - F[w, j, z, k]
        for k in range(dims[x]):
            F[w, j, x, k] = F[w, j, x, k] + F[w, i, x, k]
        for mode in range(3):
            set_key(F, K, S, w, r, mode, dims[mode], bound)
        set_key(F, K, S, w, i, y, dims[y], bound)
        set_key(F, K, S, w, j, x, dims[x], bound)
        rank[w] = r + 1
        rebuild(K, rank, ix, w)
        return True
    return False


@njit(cache=True)
def restore_best(F, K, S, rank, ix, best_F, best_rank, w, dims, bound):
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
    rebuild(K, rank, ix, w)


@njit(cache=True, nogil=True)
def walk_int(F, K, S, rank, ix, rng, stall, path, slack, best_F, best_rank, counts, n_flips, dims,
             bound, plateau, plus_slack, max_slack, path_limit, capacity):
    """Every walk makes ``n_flips`` attempts; ``counts[w] = (flips, reductions, plus, useless,
    resets)``. ``stall``, ``path``, ``slack`` as in
    :func:`mlo_exp.agents.flipgraph.kernel_z2.walk_z2`; a useless attempt drew a factor without
    a partner, or a flip the bound refused."""
    nd = ix[6]
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
            outcome = flip(F, K, S, rank, ix, rng, w, dims, bound, tmp_y, tmp_z)
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
                restore_best(F, K, S, rank, ix, best_F, best_rank, w, dims, bound)
                slack[w] = min(slack[w] + 1, max_slack)
                path[w] = 0
                stall[w] = 0
                resets += 1
                continue
            if stall[w] <= plateau and nd[w] > 0:
                continue
            stall[w] = 0
            allowed = rank[w] + 1 <= min(capacity, best_rank[w] + slack[w])
            if allowed and plus(F, K, S, rank, ix, rng, w, dims, bound):
                pluses += 1
            elif not allowed and nd[w] == 0:  # a dead end at the limit: back to the best
                restore_best(F, K, S, rank, ix, best_F, best_rank, w, dims, bound)
                slack[w] = min(slack[w] + 1, max_slack)
                path[w] = 0
                resets += 1
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
    ix = new_index(1, 4)
    rebuild(K, rank, ix, 0)
    walk_int(F, K, S, rank, ix, np.ones(1, dtype=np.uint64), np.zeros(1, dtype=np.int64),
             np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64), F.copy(), rank.copy(),
             np.zeros((1, 5), dtype=np.int64), 4, dims, 1, 1, 1, 2, 0, 4)
