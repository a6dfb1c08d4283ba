"""The flip-graph kernel over Z2: factors packed in machine words, O(1) partner sampling.

Used by :class:`~mlo_exp.agents.flipgraph.walks.Z2Walks` when the run's ring is ``Z2`` (the
integer walks use :mod:`~mlo_exp.agents.flipgraph.kernel_int`). Moves and their meaning, and the
search around them (bounded paths, the adaptive plus limit): :mod:`mlo_exp.agents.flipgraph`.

Representation, per walk ``w``:

* ``P[w, mode, t]`` (uint64): factor ``mode`` (0 = u over A, 1 = v over B, 2 = w over C;
  layout of :mod:`mlo_exp.algorithms.tensor`) of term ``t`` as a bit set, bit ``k`` = entry
  ``k``. A flip is two XORs; a mode's values are contiguous, so a scan is a tight loop.
  Terms ``0 .. rank[w]-1`` are live; a removed term is marked by ``P[w, 0, t] == 0``.
* an **index** per mode (:mod:`~mlo_exp.agents.flipgraph.index`): a hash table from factor
  value to its holders (count and a linked list of terms), and the **flippable list** of
  every ``(mode, value)`` held by two or more live terms. A flip attempt draws one entry of
  that list and two of its holders (O(1)), so every attempt is a flip while the list is not
  empty. A flip changes one factor of each of the two
  terms: two removals and two insertions in the index, O(1) each. Only after a reduction or a
  plus transition (rare) is the index rebuilt from scratch.

Invariant checked by the tests: after every move the walk is an exact decomposition modulo 2
and the index and the flippable list match the factors.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mlo_exp.agents.flipgraph.index import draw_pair, insert, new_index, rand, remove
from mlo_exp.agents.flipgraph.index import slot as _slot

_ZERO = np.uint64(0)  # compare uint64 with uint64: numba turns uint64 vs int64 into floats
GROUP_LIMIT = 12  # reductions of three or more terms look at this many holders of a value


@njit(cache=True, _nrt=False)
def rebuild(P, rank, HK, HC, HH, HD, NX, D, nd, w):
    """The index and flippable list of walk ``w`` from scratch."""
    nd[w] = 0
    for m in range(3):
        for h in range(HK.shape[2]):
            HK[w, m, h] = 0
    for m in range(3):
        for t in range(rank[w]):
            insert(HK, HC, HH, HD, NX, D, nd, w, m, t, P[w, m, t])


@njit(cache=True, _nrt=False)
def _compact(P, rank, w):
    """Drop removed terms (``P[w, 0, t] == 0``), keeping the others in order."""
    out = 0
    for t in range(rank[w]):
        if P[w, 0, t] == _ZERO:
            continue
        if out != t:
            for mode in range(3):
                P[w, mode, out] = P[w, mode, t]
        out += 1
    for t in range(out, rank[w]):
        for mode in range(3):
            P[w, mode, t] = 0
    rank[w] = out


@njit(cache=True, _nrt=False)
def _reduce(P, rank, w, t):
    """Merge every live term sharing two factors with term ``t`` into it (``t`` may vanish:
    two equal terms cancel modulo 2); True if anything merged. Removed terms get
    ``P[w, 0, s] = 0``; the caller compacts and rebuilds the index."""
    merged = False
    again = True
    while again and P[w, 0, t] != _ZERO:
        again = False
        for s in range(rank[w]):
            if s == t or P[w, 0, s] == _ZERO:
                continue
            other = -1
            equal = 0
            for mode in range(3):
                if P[w, mode, s] == P[w, mode, t]:
                    equal += 1
                else:
                    other = mode
            if equal < 2:
                continue
            if other < 0:  # identical terms: they cancel
                P[w, 0, s] = 0
                P[w, 0, t] = 0
                return True
            P[w, other, t] ^= P[w, other, s]  # non-zero: `other` differed
            P[w, 0, s] = 0
            merged = True
            again = True
            break
    return merged


@njit(cache=True, _nrt=False)
def _shares_two(P, HH, NX, w, m, t, h):
    """Does another holder of term ``t``'s factor in mode ``m`` (slot ``h``, whose list ``t``
    heads: it was just inserted) share a second factor with it?"""
    s = NX[w, m, t]
    while s >= 0:
        for other in range(3):
            if other != m and P[w, other, s] == P[w, other, t]:
                return True
        s = NX[w, m, s]
    return False


@njit(cache=True, _nrt=False)
def _member(HH, NX, w, m, h, position):
    """The holder at ``position`` of the list of slot ``h`` in mode ``m``."""
    t = HH[w, m, h]
    for _ in range(position):
        t = NX[w, m, t]
    return t


@njit(cache=True, _nrt=False)
def _dependency(P, HH, NX, w, m, h, mode):
    """Among the first :data:`GROUP_LIMIT` terms holding one value in mode ``m`` (slot
    ``h``), a set whose factors in ``mode`` sum to 0 (mod 2): its positions in the holder list
    as the bits of the result, 0 when there is none. The subsets are visited in Gray-code
    order, one XOR each (groups are small: 3-4 terms in a typical scheme)."""
    count = 0
    t = HH[w, m, h]
    while t >= 0 and count < GROUP_LIMIT:
        count += 1
        t = NX[w, m, t]
    total = _ZERO
    members = 0
    for g in range(1, 1 << count):
        bit = 0
        while not (g >> bit) & 1:
            bit += 1
        total ^= P[w, mode, _member(HH, NX, w, m, h, bit)]
        members ^= 1 << bit
        if total == _ZERO:
            return members
    return 0


@njit(cache=True, _nrt=False)
def _reduce_dependent(P, HH, NX, w, m, h, B, r):
    """The reduction of Kauers and Moosbauer for the terms holding one value in mode ``m``
    (slot ``h``; three or more): when their factors in another mode ``y`` are linearly dependent,
    ``b_k = sum of b_i (i in S)``, then ``sum a(x)b_i(x)c_i + a(x)b_k(x)c_k`` equals
    ``sum a(x)b_i(x)(c_i + c_k)``: term ``k`` goes, every ``c_i`` gains ``c_k`` (a term whose
    factor becomes 0 goes too). True when it reduced, after saving the walk's first ``r``
    terms to ``B`` (:func:`flip` may undo the reduction); removed terms are marked as in
    :func:`_reduce` and the caller cleans up."""
    for y in range(3):
        if y == m:
            continue
        z = 3 - m - y
        members = _dependency(P, HH, NX, w, m, h, y)
        if members == 0:
            continue
        last = 0  # term k: the member of highest position
        while members >> (last + 1):
            last += 1
        k = _member(HH, NX, w, m, h, last)
        _save(P, B, w, r)
        position = 0
        t = HH[w, m, h]
        while position < last:
            if (members >> position) & 1:
                P[w, z, t] ^= P[w, z, k]
                if P[w, z, t] == _ZERO:
                    P[w, 0, t] = 0
            position += 1
            t = NX[w, m, t]
        P[w, 0, k] = 0
        return True
    return False


@njit(cache=True, _nrt=False)
def _reduce_all(P, rank, w):
    """Merge every pair of live terms sharing two factors (after a reduction of three or more
    terms), then compact."""
    for t in range(rank[w]):
        if P[w, 0, t] != _ZERO:
            _reduce(P, rank, w, t)
    _compact(P, rank, w)


@njit(cache=True, _nrt=False)
def _group_reduces(P, HC, HH, NX, w, m, h, B, r):
    """Does the group of slot ``h`` in mode ``m`` reduce (:func:`_reduce_dependent`; a pair
    reduces only when it shares two factors, which the caller checks)? Reduces it when it
    does (``B``, ``r``: as there)."""
    return HC[w, m, h] >= 3 and _reduce_dependent(P, HH, NX, w, m, h, B, r)


@njit(cache=True, _nrt=False)
def _save(P, B, w, r):
    """Copy walk ``w``'s first ``r`` terms to the scratch scheme ``B``."""
    for mode in range(3):
        for t in range(r):
            B[w, mode, t] = P[w, mode, t]


@njit(cache=True, _nrt=False)
def _thin(rank, nd, w, floor, thin):
    """Is walk ``w``'s reduced scheme one to refuse: fewer than ``thin`` flippable values (0:
    a dead end) at a rank no lower than ``floor``?"""
    return nd[w] < thin and rank[w] >= floor


@njit(cache=True, _nrt=False)
def _undo(P, rank, B, HK, HC, HH, HD, NX, D, nd, w, r, y, i, old_y, z, j, old_z):
    """Walk ``w`` goes back to the scheme before the flip: ``B`` (saved after the flip, before
    the reduction) with the flip's two factors restored."""
    for mode in range(3):
        for t in range(P.shape[2]):
            P[w, mode, t] = B[w, mode, t] if t < r else _ZERO
    P[w, y, i] = old_y
    P[w, z, j] = old_z
    rank[w] = r
    rebuild(P, rank, HK, HC, HH, HD, NX, D, nd, w)


@njit(cache=True, _nrt=False)
def flip(P, rank, rng, HK, HC, HH, HD, NX, D, nd, w, B, floor, thin):
    """One flip on walk ``w``: 0 none possible, 1 flipped, 2 flipped and the rank went down,
    3 refused: the flip made a reduction to a scheme with fewer than ``thin`` flippable values
    at a rank no lower than ``floor`` (a dead end, or a trap, at a rank already reached), and
    the walk is back where it was (``B``: scratch, one scheme per walk)."""
    if nd[w] == 0:
        return 0
    r = rank[w]
    x, i, j = draw_pair(HC, HH, NX, D, nd, rng, w)
    y = (x + 1 + rand(rng, w, 2)) % 3
    z = 3 - x - y
    # a(x)b_i(x)c_i + a(x)b_j(x)c_j = a(x)(b_i+b_j)(x)c_i + a(x)b_j(x)(c_j+c_i)  (mod 2)
    old_y = P[w, y, i]
    new_y = old_y ^ P[w, y, j]
    old_z = P[w, z, j]
    new_z = old_z ^ P[w, z, i]
    if new_y == _ZERO or new_z == _ZERO:  # i, j share two factors (not from a reduced state)
        _reduce(P, rank, w, i)  # reduce them instead of flipping
        _compact(P, rank, w)
        rebuild(P, rank, HK, HC, HH, HD, NX, D, nd, w)
        return 2 if rank[w] < r else 1
    remove(HK, HC, HH, HD, NX, D, nd, w, y, i, old_y)
    P[w, y, i] = new_y
    slot_y = insert(HK, HC, HH, HD, NX, D, nd, w, y, i, new_y)
    remove(HK, HC, HH, HD, NX, D, nd, w, z, j, old_z)
    P[w, z, j] = new_z
    slot_z = insert(HK, HC, HH, HD, NX, D, nd, w, z, j, new_z)
    # a pair sharing two factors now must share the changed one
    if ((HC[w, y, slot_y] >= 2 and _shares_two(P, HH, NX, w, y, i, slot_y))
            or (HC[w, z, slot_z] >= 2 and _shares_two(P, HH, NX, w, z, j, slot_z))):
        _save(P, B, w, r)
        _reduce(P, rank, w, i)
        if P[w, 0, j] != _ZERO:
            _reduce(P, rank, w, j)
        _compact(P, rank, w)
        rebuild(P, rank, HK, HC, HH, HD, NX, D, nd, w)
        if _thin(rank, nd, w, floor, thin):
            _undo(P, rank, B, HK, HC, HH, HD, NX, D, nd, w, r, y, i, old_y, z, j, old_z)
            return 3
        return 2 if rank[w] < r else 1
    # three or more terms sharing a factor whose other factors became linearly dependent: the
    # groups a flip changed are i's new y-group and z-group, j's new z-group and y-group (the
    # flip's own group keeps the span of its factors)
    mask = HK.shape[2] - 1
    if (_group_reduces(P, HC, HH, NX, w, y, slot_y, B, r)
            or _group_reduces(P, HC, HH, NX, w, z, slot_z, B, r)
            or _group_reduces(P, HC, HH, NX, w, z, _slot(HK, w, z, P[w, z, i], mask), B, r)
            or _group_reduces(P, HC, HH, NX, w, y, _slot(HK, w, y, P[w, y, j], mask), B, r)):
        _reduce_all(P, rank, w)
        rebuild(P, rank, HK, HC, HH, HD, NX, D, nd, w)
        if _thin(rank, nd, w, floor, thin):
            _undo(P, rank, B, HK, HC, HH, HD, NX, D, nd, w, r, y, i, old_y, z, j, old_z)
            return 3
        return 2 if rank[w] < r else 1
    return 1


@njit(cache=True, _nrt=False)
def plus(P, rank, rng, HK, HC, HH, HD, NX, D, nd, w):
    """A plus transition on walk ``w`` (rank +1); False when no valid pair was drawn.

    Two terms that differ in every mode, ``a(x)b(x)c + a'(x)b'(x)c'``, become the three terms
    ``a(x)(b+b')(x)c + (a+a')(x)b'(x)c' + a(x)b'(x)(c+c')`` (mod 2; which mode plays ``a``,
    ``b``, ``c`` is drawn). No two of them share two factors, so no reduction undoes the
    transition at once (splitting one term in two, ``(a+a')(x)b(x)c + a'(x)b(x)c``, would
    leave such a pair: the next flip that draws it reduces the rank straight back)."""
    r = rank[w]
    if r < 2:
        return False
    for _attempt in range(16):
        i = rand(rng, w, r)
        j = rand(rng, w, r - 1)
        if j >= i:
            j += 1
        if P[w, 0, i] == P[w, 0, j] or P[w, 1, i] == P[w, 1, j] or P[w, 2, i] == P[w, 2, j]:
            continue
        x = rand(rng, w, 3)
        y = (x + 1 + rand(rng, w, 2)) % 3
        z = 3 - x - y
        P[w, x, r] = P[w, x, i]
        P[w, y, r] = P[w, y, j]
        P[w, z, r] = P[w, z, i] ^ P[w, z, j]
        P[w, y, i] ^= P[w, y, j]
        P[w, x, j] ^= P[w, x, i]
        rank[w] = r + 1
        rebuild(P, rank, HK, HC, HH, HD, NX, D, nd, w)
        return True
    return False


@njit(cache=True, _nrt=False)
def restore_best(P, rank, best_P, best_rank, HK, HC, HH, HD, NX, D, nd, w):
    """Walk ``w`` goes back to its best scheme (the end of a bounded path)."""
    for mode in range(3):
        for t in range(P.shape[2]):
            P[w, mode, t] = best_P[w, mode, t]
    rank[w] = best_rank[w]
    rebuild(P, rank, HK, HC, HH, HD, NX, D, nd, w)


@njit(cache=True, nogil=True, _nrt=False)
def walk_z2(P, rank, rng, HK, HC, HH, HD, NX, D, nd, stall, path, slack, best_P, best_rank,
            counts, n_flips, plateau, plus_slack, max_slack, path_limit, capacity, B, floor,
            thin, stop_below=0):
    """Every walk makes ``n_flips`` attempts; ``counts[w] = (flips, reductions, plus, useless,
    resets, refused)``; ``B``, ``floor``, ``thin``: :func:`flip` (refused reductions). A walk
    whose rank falls below ``stop_below`` stops there for this call (0: never; the pool
    descent of ``perf/flipgraph_pool_descent.py`` walks one reduction at a time).

    Per walk: ``stall`` counts attempts since the last reduction (a plus transition after
    ``plateau``), ``path`` attempts since the walk's best rank last fell, ``slack`` its plus
    limit (rank <= best + slack), raised by one (up to ``max_slack``) at the end of every path
    that found nothing and set back to ``plus_slack`` when the best rank falls. A path ends
    after ``path_limit`` attempts (0: never) or at a dead end (no flip possible and no plus
    allowed): the walk goes back to its best scheme. A useless attempt is one that changed
    nothing (no flip possible); a dead end never spins.
    """
    for w in range(P.shape[0]):
        flips = 0
        reductions = 0
        pluses = 0
        useless = 0
        resets = 0
        refused = 0
        for _step in range(n_flips):
            outcome = flip(P, rank, rng, HK, HC, HH, HD, NX, D, nd, w, B, floor, thin)
            stall[w] += 1
            path[w] += 1
            if outcome == 0:
                useless += 1
            elif outcome == 3:
                refused += 1
            else:
                flips += 1
            if outcome == 2:
                reductions += 1
                stall[w] = 0
                if rank[w] < best_rank[w]:
                    best_rank[w] = rank[w]
                    path[w] = 0
                    slack[w] = plus_slack
                    for mode in range(3):
                        for t in range(P.shape[2]):
                            best_P[w, mode, t] = P[w, mode, t]
                if rank[w] < stop_below:
                    break
                continue
            if path_limit > 0 and path[w] > path_limit:
                restore_best(P, rank, best_P, best_rank, HK, HC, HH, HD, NX, D, nd, w)
                slack[w] = min(slack[w] + 1, max_slack)
                path[w] = 0
                stall[w] = 0
                resets += 1
                continue
            if stall[w] <= plateau and nd[w] > 0:
                continue
            stall[w] = 0
            if rank[w] + 1 <= min(capacity, best_rank[w] + slack[w]):
                if plus(P, rank, rng, HK, HC, HH, HD, NX, D, nd, w):
                    pluses += 1
            elif nd[w] == 0:  # a dead end at the limit: back to the best scheme
                restore_best(P, rank, best_P, best_rank, HK, HC, HH, HD, NX, D, nd, w)
                slack[w] = min(slack[w] + 1, max_slack)
                path[w] = 0
                resets += 1
                isolated = nd[w] == 0 and rank[w] + 1 <= capacity  # no flip from the best
                if isolated and plus(P, rank, rng, HK, HC, HH, HD, NX, D, nd, w):
                    pluses += 1
        counts[w, 0] = flips
        counts[w, 1] = reductions
        counts[w, 2] = pluses
        counts[w, 3] = useless
        counts[w, 4] = resets
        counts[w, 5] = refused


def pack(factor: np.ndarray) -> np.ndarray:
    """Columns of a 0/1 factor matrix (rows <= 64) as uint64 bit sets."""
    bits = (np.asarray(factor, dtype=np.int64) % 2).astype(np.uint64)
    weights = np.left_shift(np.uint64(1), np.arange(bits.shape[0], dtype=np.uint64))
    return (bits * weights[:, None]).sum(axis=0, dtype=np.uint64)


def unpack(words: np.ndarray, rows: int) -> np.ndarray:
    """The inverse of :func:`pack`: ``(rows, len(words))`` int64 0/1."""
    shifts = np.arange(rows, dtype=np.uint64)
    return ((np.asarray(words, dtype=np.uint64)[None, :] >> shifts[:, None])
            & np.uint64(1)).astype(np.int64)


def warm_up() -> None:
    """A tiny walk on <1,1,2>: compiles (or loads from numba's cache) this kernel."""
    F = np.zeros((1, 3, 4), dtype=np.uint64)
    F[0, 0, :2] = 1  # u = a_11 twice; v = b_11, b_12; w = c_11, c_12
    F[0, 1, :2] = (1, 2)
    F[0, 2, :2] = (1, 2)
    rank = np.array([2])
    index = new_index(1, 4)
    rebuild(F, rank, *index, 0)
    walk_z2(F, rank, np.ones(1, dtype=np.uint64), *index, np.zeros(1, dtype=np.int64),
            np.zeros(1, dtype=np.int64), np.ones(1, dtype=np.int64), F.copy(), rank.copy(),
            np.zeros((1, 6), dtype=np.int64), 4, 1, 1, 2, 0, 4, F.copy(), 1, 1, 0)
