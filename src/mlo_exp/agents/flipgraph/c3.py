"""Flip-graph walks over C3-symmetric schemes of ``<n,n,n>`` modulo 2 (``agent.symmetry=c3``).

**The symmetry.** With the layout of :mod:`mlo_exp.algorithms.tensor` a decomposition says
``sum_r (u_r . A)(v_r . B)(w_r . C) = trace(A B C^T)``, and ``trace(A B C^T) =
trace(B C^T A)``; so for square shapes the map on terms

    ``sigma(a, b, c) = (b, c^T, a^T)``     (``x^T``: the n x n factor matrix transposed)

sends a decomposition of ``T<n,n,n>`` to another one (it is
:func:`mlo_exp.algorithms.operations.cyclic`), and ``sigma^3 = id``. A scheme is
**C3-invariant** when ``sigma`` permutes its terms. Its terms then fall into **orbits**
``{t, sigma t, sigma^2 t}`` of three distinct terms, and **fixed terms** ``t = sigma t``, which
are exactly the terms ``(a, a, a^T)``. Rank = 3 x orbits + fixed terms. The school method is
invariant (``(i, j, k) -> (j, k, i)``; the ``n`` terms ``i = j = k`` are fixed).

**State.** Per walk: one representative ``R[w, :, o]`` per orbit (packed words as in
:mod:`mlo_exp.agents.flipgraph_kernel`), the expansion ``X[w, :, 3o + k] = sigma^k(R[o])``
(kept in step, for partner search), and the fixed terms' ``a`` in ``FX[w, :s]``.

**Moves** (each keeps the invariance, so every state is an exact C3-invariant decomposition):

* flip: an expanded term and a partner sharing the factor in a mode, from **another orbit**;
  the flip is done on the pair and on its two images under ``sigma`` (three disjoint pairs).
* reduction: a term sharing two factors with a term of another orbit merges with it, with
  both images (rank -3; -6 when they cancel); an orbit whose representative became fixed is
  three copies of one term, which is that term modulo 2 (rank -2); two equal fixed terms
  cancel; a term ``e`` sharing two factors with a fixed term ``f`` is ``f + e'`` (``e'``:
  ``e`` with ``f``'s factor added in the third mode), so ``orbit(e) + f = orbit(e')`` modulo
  2 (rank -1).
* plus transition: between two orbits, with both images (rank +3).

**Start** (without ``start_from``; ``agent.c3_start``). ``"school"``: the school method, ``n``
fixed terms ``(E_ii, E_ii, E_ii)``. ``"pairs"`` (the default; the start of Moosbauer and
Poole, "Flip graphs with symmetry", 2025): the diagonal indices are grouped into parts
``{0,1}, {2,3}, ...`` and each part ``P`` gives one fixed term ``(D_P, D_P, D_P)``,
``D_P = sum_{i in P} E_ii``; its expansion holds the ``n`` diagonal school terms plus the
cross terms ``(E_ii, E_jj, E_kk)`` (``i, j, k`` in ``P``, not all equal), which are added as
orbits (modulo 2, adding a term twice removes it). Rank ``3 x orbits + ceil(n/2)``: record
ranks such as ``<4,4,4>`` 47 = 3 x 15 + 2 and ``<5,5,5>`` 93 = 3 x 30 + 3 need that many
fixed terms, which the school start (rank ``3 x orbits + n``) cannot reach by flips.

Fixed terms are not flipped (a flip of a fixed term with an orbit term has no symmetric
counterpart of three disjoint pairs); they change only when an orbit becomes fixed.

Length: about 570 lines: numba compiles the kernel's functions together and they share the
state layout above; the starting scheme and the orbit helpers at the end are its only
non-kernel parts.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from mlo_exp.agents.flipgraph.index import draw_pair, insert, rand, remove, slot
from mlo_exp.agents.flipgraph.kernel_z2 import pack, unpack
from mlo_exp.agents.flipgraph.start import school

_ZERO = np.uint64(0)


# --- the kernel ---------------------------------------------------------------------------------
# The index (mlo_exp.agents.flipgraph.index) holds the expanded terms of the live orbits, by
# factor value per mode: ``ix = (HK, HC, HH, HD, NX, D, nd)``, term ids ``3o + k``. Fixed terms
# are not in it (they are never flipped). Every change of an orbit goes through _unindex /
# _expand / _index, so the index always describes X exactly.


def _transpose_table() -> np.ndarray:
    """``T[n, c, byte]``: the bits of ``byte`` at bits ``8c .. 8c+7`` of a packed ``n x n``
    matrix, transposed (a transpose is ``ceil(n^2/8)`` lookups instead of ``n^2`` tests)."""
    table = np.zeros((9, 8, 256), dtype=np.uint64)
    for n in range(1, 9):
        for chunk in range(8):
            for byte in range(256):
                bits = [chunk * 8 + b for b in range(8) if byte >> b & 1 and chunk * 8 + b < n * n]
                table[n, chunk, byte] = sum(1 << (i % n * n + i // n) for i in bits)
    return table


_TRANSPOSE = _transpose_table()


@njit(cache=True, _nrt=False)
def transpose_bits(x, n):
    """The packed ``n x n`` matrix ``x`` (bit ``i*n + j``) transposed (``n <= 8``)."""
    y = _ZERO
    for chunk in range((n * n + 7) // 8):
        y |= _TRANSPOSE[n, chunk, (x >> np.uint64(8 * chunk)) & np.uint64(255)]
    return y


@njit(cache=True, _nrt=False)
def _expand(R, X, w, o, n):
    """``X[w, :, 3o + k] = sigma^k(R[w, :, o])``: ``(a,b,c)``, ``(b,c^T,a^T)``, ``(c^T,a,b^T)``."""
    a = R[w, 0, o]
    b = R[w, 1, o]
    c = R[w, 2, o]
    t = 3 * o
    X[w, 0, t] = a
    X[w, 1, t] = b
    X[w, 2, t] = c
    X[w, 0, t + 1] = b
    X[w, 1, t + 1] = transpose_bits(c, n)
    X[w, 2, t + 1] = transpose_bits(a, n)
    X[w, 0, t + 2] = X[w, 1, t + 1]
    X[w, 1, t + 2] = a
    X[w, 2, t + 2] = transpose_bits(b, n)


@njit(cache=True, _nrt=False)
def _index(X, ix, w, o):
    """Enter orbit ``o``'s three expanded terms in the index."""
    HK, HC, HH, HD, NX, D, nd = ix
    for t in range(3 * o, 3 * o + 3):
        for m in range(3):
            insert(HK, HC, HH, HD, NX, D, nd, w, m, t, X[w, m, t])


@njit(cache=True, _nrt=False)
def _unindex(X, ix, w, o):
    """Take orbit ``o``'s three expanded terms out of the index."""
    HK, HC, HH, HD, NX, D, nd = ix
    for t in range(3 * o, 3 * o + 3):
        for m in range(3):
            remove(HK, HC, HH, HD, NX, D, nd, w, m, t, X[w, m, t])


@njit(cache=True, _nrt=False)
def rebuild_c3(R, X, q, ix, w, n):
    """The expansion and the index of walk ``w`` from its orbit representatives."""
    HK, HC, HH, HD, NX, D, nd = ix
    nd[w] = 0
    for m in range(3):
        for h in range(HK.shape[2]):
            HK[w, m, h] = 0
    for o in range(q[w]):
        _expand(R, X, w, o, n)
        _index(X, ix, w, o)


@njit(cache=True, _nrt=False)
def _reindex(R, X, ix, w, o, n):
    """Orbit ``o``'s representative changed: its expansion and the index follow, touching only
    the entries whose value changed (a change of one mode of the representative changes
    three of the nine)."""
    HK, HC, HH, HD, NX, D, nd = ix
    a = R[w, 0, o]
    b = R[w, 1, o]
    c = R[w, 2, o]
    at = transpose_bits(a, n)
    bt = transpose_bits(b, n)
    ct = transpose_bits(c, n)
    t = 3 * o
    for k in range(3):
        for m in range(3):
            if k == 0:
                value = a if m == 0 else (b if m == 1 else c)
            elif k == 1:
                value = b if m == 0 else (ct if m == 1 else at)
            else:
                value = ct if m == 0 else (a if m == 1 else bt)
            if X[w, m, t + k] != value:
                remove(HK, HC, HH, HD, NX, D, nd, w, m, t + k, X[w, m, t + k])
                X[w, m, t + k] = value
                insert(HK, HC, HH, HD, NX, D, nd, w, m, t + k, value)


@njit(cache=True, _nrt=False)
def _set_from_image(R, X, ix, w, o, k, e0, e1, e2, n):
    """Orbit ``o`` becomes the orbit of ``e = sigma^k(rep)``: ``rep = sigma^(3-k)(e)``."""
    if k == 0:
        R[w, 0, o] = e0
        R[w, 1, o] = e1
        R[w, 2, o] = e2
    elif k == 1:  # rep = sigma^2(e) = (e2^T, e0, e1^T)
        R[w, 0, o] = transpose_bits(e2, n)
        R[w, 1, o] = e0
        R[w, 2, o] = transpose_bits(e1, n)
    else:  # rep = sigma(e) = (e1, e2^T, e0^T)
        R[w, 0, o] = e1
        R[w, 1, o] = transpose_bits(e2, n)
        R[w, 2, o] = transpose_bits(e0, n)
    _reindex(R, X, ix, w, o, n)


@njit(cache=True, _nrt=False)
def _toggle_mode(R, X, ix, w, o, mode, value, n):
    """Add ``value`` to mode ``mode`` of orbit ``o``'s representative (mod 2)."""
    R[w, mode, o] ^= value
    _reindex(R, X, ix, w, o, n)


@njit(cache=True, _nrt=False)
def _drop_orbit(R, X, q, ix, w, o, n):
    """Remove orbit ``o`` (the last orbit moves into its place); returns the moved index."""
    last = q[w] - 1
    _unindex(X, ix, w, o)
    if o != last:
        _unindex(X, ix, w, last)
        for mode in range(3):
            R[w, mode, o] = R[w, mode, last]
        _expand(R, X, w, o, n)
        _index(X, ix, w, o)
    q[w] = last
    return last


@njit(cache=True, _nrt=False)
def _toggle_fixed(FX, s, w, a):
    """Add the fixed term ``(a, a, a^T)``; an equal one already there cancels it (mod 2)."""
    for f in range(s[w]):
        if FX[w, f] == a:
            s[w] -= 1
            FX[w, f] = FX[w, s[w]]
            return
    FX[w, s[w]] = a
    s[w] += 1


@njit(cache=True, _nrt=False)
def _partner(X, ix, w, o, a, b, c):
    """An expanded term of another orbit sharing two factors with ``(a, b, c)`` (orbit
    ``o``'s representative), or -1. Two equal factors include the first or the second, so
    only the holders of ``a`` (mode 0) and of ``b`` (mode 1) are looked at."""
    HK, HC, HH, HD, NX, D, nd = ix
    mask = HK.shape[2] - 1
    for m in range(2):
        value = a if m == 0 else b
        t = HH[w, m, slot(HK, w, m, value, mask)]
        while t >= 0:
            if t // 3 != o:
                equal = (X[w, 0, t] == a) + (X[w, 1, t] == b) + (X[w, 2, t] == c)
                if equal >= 2:
                    return t
            t = NX[w, m, t]
    return -1


@njit(cache=True, _nrt=False)
def _settle(R, X, FX, q, s, ix, w, o, other, n):
    """Reduce around orbit ``o`` until nothing applies; returns ``other``'s index afterwards
    (-1 when that orbit is gone). Orbit indices move when an orbit is dropped."""
    while o >= 0:
        a = R[w, 0, o]
        b = R[w, 1, o]
        c = R[w, 2, o]
        if a == b and c == transpose_bits(a, n):  # fixed: three equal terms = one (mod 2)
            last = _drop_orbit(R, X, q, ix, w, o, n)
            if other == o:
                other = -1
            elif other == last:
                other = o
            _toggle_fixed(FX, s, w, a)
            return other
        # sharing two factors with a fixed term f: e = f + e' (linear in the third mode), so
        # orbit(e) + f = 4f + orbit(e') = orbit(e') modulo 2 (rank -1)
        merged = False
        for f in range(s[w]):
            d = FX[w, f]
            if a != d and b != d:
                continue  # two equal factors need one of the first two
            dt = transpose_bits(d, n)
            if (a == d) + (b == d) + (c == dt) < 2:
                continue
            if a != d:
                _toggle_mode(R, X, ix, w, o, 0, d, n)
            elif b != d:
                _toggle_mode(R, X, ix, w, o, 1, d, n)
            else:
                _toggle_mode(R, X, ix, w, o, 2, dt, n)
            s[w] -= 1
            FX[w, f] = FX[w, s[w]]
            merged = True
            break
        if merged:
            continue
        t = _partner(X, ix, w, o, a, b, c)
        if t < 0:
            return other
        o3 = t // 3
        equal0 = X[w, 0, t] == a
        equal1 = X[w, 1, t] == b
        equal2 = X[w, 2, t] == c
        if equal0 and equal1 and equal2:  # equal terms: both orbits cancel
            keep = o
            last = _drop_orbit(R, X, q, ix, w, o3, n)
            if keep == last:
                keep = o3
            if other == o3:
                other = -1
            elif other == last:
                other = o3
            last = _drop_orbit(R, X, q, ix, w, keep, n)
            if other == keep:
                other = -1
            elif other == last:
                other = keep
            return other
        diff = 0 if not equal0 else (1 if not equal1 else 2)
        _toggle_mode(R, X, ix, w, o, diff, X[w, diff, t], n)
        last = _drop_orbit(R, X, q, ix, w, o3, n)
        if o == last:
            o = o3
        if other == o3:
            other = -1
        elif other == last:
            other = o3
    return other


@njit(cache=True, _nrt=False)
def _draw_pair_by_term(X, q, ix, rng, w):
    """A flip's pair drawn term first: a uniform expanded term and mode, then a uniform other
    holder of that value, so a value held by ``k`` terms is drawn with weight ``k`` (with
    :func:`~mlo_exp.agents.flipgraph.index.draw_pair`, every flippable value weighs the
    same). A term whose value no other term holds is redrawn, up to 64 times, then the
    flippable list decides. Returns ``(mode, first term, second term, terms drawn)``."""
    HK, HC, HH, HD, NX, D, nd = ix
    mask = HK.shape[2] - 1
    for attempt in range(64):
        t1 = rand(rng, w, 3 * q[w])
        x = rand(rng, w, 3)
        h = slot(HK, w, x, X[w, x, t1], mask)
        count = HC[w, x, h]
        if count < 2:
            continue
        k = rand(rng, w, count - 1)
        t = HH[w, x, h]
        while t >= 0:
            if t != t1:
                if k == 0:
                    return x, t1, t, attempt + 1
                k -= 1
            t = NX[w, x, t]
    x, t1, t2 = draw_pair(HC, HH, NX, D, nd, rng, w)
    return x, t1, t2, 65


# agent.pair_draw -> the kernel's ``by_term`` (config.FlipGraphAgentConfig.pair_draw).
PAIR_DRAWS = {"value": 0, "term": 1, "term-draws": 2}


@njit(cache=True, _nrt=False)
def flip_c3(R, X, FX, q, s, ix, rng, stall, w, by_term, n):
    """One flip attempt: 0 nothing changed, 1 flipped, 2 flipped and the rank went down. The
    pair is drawn in O(1) from the flippable list (``by_term``: :data:`PAIR_DRAWS`; 1 and 2
    draw term first, :func:`_draw_pair_by_term`, and 2 adds the terms redrawn to ``stall``);
    it is refused (0) only when both terms are images in one orbit."""
    HK, HC, HH, HD, NX, D, nd = ix
    if nd[w] == 0:
        return 0
    rank = 3 * q[w] + s[w]
    if by_term:
        x, t1, t2, drawn = _draw_pair_by_term(X, q, ix, rng, w)
        if by_term == 2:
            stall[w] += drawn - 1
    else:
        x, t1, t2 = draw_pair(HC, HH, NX, D, nd, rng, w)
    o1 = t1 // 3
    o2 = t2 // 3
    if o1 == o2:
        return 0
    y = (x + 1 + rand(rng, w, 2)) % 3
    z = 3 - x - y
    if X[w, y, t1] == X[w, y, t2] or X[w, z, t1] == X[w, z, t2]:
        return 0  # they share two factors: a reduction, left to _settle
    # (a, b1, c1) + (a, b2, c2) = (a, b1 + b2, c1) + (a, b2, c2 + c1)   (mod 2)
    add_y = X[w, y, t2]
    add_z = X[w, z, t1]
    i0 = X[w, 0, t1] ^ (add_y if y == 0 else _ZERO)
    i1 = X[w, 1, t1] ^ (add_y if y == 1 else _ZERO)
    i2 = X[w, 2, t1] ^ (add_y if y == 2 else _ZERO)
    j0 = X[w, 0, t2] ^ (add_z if z == 0 else _ZERO)
    j1 = X[w, 1, t2] ^ (add_z if z == 1 else _ZERO)
    j2 = X[w, 2, t2] ^ (add_z if z == 2 else _ZERO)
    _set_from_image(R, X, ix, w, o1, t1 - 3 * o1, i0, i1, i2, n)
    _set_from_image(R, X, ix, w, o2, t2 - 3 * o2, j0, j1, j2, n)
    o2 = _settle(R, X, FX, q, s, ix, w, o1, o2, n)
    if o2 >= 0:
        _settle(R, X, FX, q, s, ix, w, o2, -1, n)
    return 2 if 3 * q[w] + s[w] < rank else 1


@njit(cache=True, _nrt=False)
def plus_c3(R, X, q, ix, rng, w, n):
    """A plus transition between two orbits, with both images (rank +3): a representative
    ``(a, b, c)`` and an image ``(a', b', c')`` of another orbit that differ in every mode
    become ``(a, b+b', c)``, ``(a+a', b', c')`` and a new orbit ``(a, b', c+c')`` (the modes'
    roles drawn), no two of which share two factors (the plus transition of
    :func:`~mlo_exp.agents.flipgraph.kernel_z2.plus`, applied to the orbits)."""
    Q = q[w]
    if Q < 2:
        return False
    for _attempt in range(16):
        o1 = rand(rng, w, Q)
        o2 = rand(rng, w, Q - 1)
        if o2 >= o1:
            o2 += 1
        t2 = 3 * o2 + rand(rng, w, 3)
        if (R[w, 0, o1] == X[w, 0, t2] or R[w, 1, o1] == X[w, 1, t2]
                or R[w, 2, o1] == X[w, 2, t2]):
            continue
        x = rand(rng, w, 3)
        y = (x + 1 + rand(rng, w, 2)) % 3
        z = 3 - x - y
        a1 = R[w, x, o1]
        b2 = X[w, y, t2]
        R[w, x, Q] = a1
        R[w, y, Q] = b2
        R[w, z, Q] = R[w, z, o1] ^ X[w, z, t2]
        q[w] = Q + 1
        _expand(R, X, w, Q, n)
        _index(X, ix, w, Q)
        e0 = X[w, 0, t2] ^ (a1 if x == 0 else _ZERO)
        e1 = X[w, 1, t2] ^ (a1 if x == 1 else _ZERO)
        e2 = X[w, 2, t2] ^ (a1 if x == 2 else _ZERO)
        _set_from_image(R, X, ix, w, o2, t2 - 3 * o2, e0, e1, e2, n)
        _toggle_mode(R, X, ix, w, o1, y, b2, n)
        return True
    return False


@njit(cache=True, _nrt=False)
def restore_best_c3(R, X, FX, q, s, ix, best_R, best_FX, best_q, best_s, rank, best_rank, w,
                    n):
    """Walk ``w`` goes back to its best scheme (the end of a bounded path)."""
    for mode in range(3):
        for o in range(R.shape[2]):
            R[w, mode, o] = best_R[w, mode, o]
    for f in range(FX.shape[1]):
        FX[w, f] = best_FX[w, f]
    q[w] = best_q[w]
    s[w] = best_s[w]
    rank[w] = best_rank[w]
    rebuild_c3(R, X, q, ix, w, n)


@njit(cache=True, nogil=True, _nrt=False)
def walk_c3(R, X, FX, q, s, ix, rng, stall, path, slack, best_R, best_FX, best_q, best_s, rank,
            best_rank, counts, n_flips, plateau, plus_slack, max_slack, path_limit,
            orbit_capacity, by_term, n):
    """Every walk makes ``n_flips`` attempts; ``counts[w] = (flips, reductions, plus, useless,
    resets)``; ``stall``, ``path``, ``slack`` as in
    :func:`mlo_exp.agents.flipgraph.kernel_z2.walk_z2` (a plus transition adds 3 to the rank;
    a dead end: no flip possible and no plus transition allowed)."""
    nd = ix[6]
    for w in range(R.shape[0]):
        flips = 0
        reductions = 0
        pluses = 0
        useless = 0
        resets = 0
        for _step in range(n_flips):
            outcome = flip_c3(R, X, FX, q, s, ix, rng, stall, w, by_term, n)
            rank[w] = 3 * q[w] + s[w]
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
                    best_q[w] = q[w]
                    best_s[w] = s[w]
                    for mode in range(3):
                        for o in range(R.shape[2]):
                            best_R[w, mode, o] = R[w, mode, o]
                    for f in range(FX.shape[1]):
                        best_FX[w, f] = FX[w, f]
                continue
            if path_limit > 0 and path[w] > path_limit:
                restore_best_c3(R, X, FX, q, s, ix, best_R, best_FX, best_q, best_s, rank,
                                best_rank, w, n)
                slack[w] = min(slack[w] + 3, max_slack)
                path[w] = 0
                stall[w] = 0
                resets += 1
                continue
            if stall[w] <= plateau and nd[w] > 0:
                continue
            stall[w] = 0
            allowed = q[w] + 1 <= orbit_capacity and rank[w] + 3 <= best_rank[w] + slack[w]
            if allowed and plus_c3(R, X, q, ix, rng, w, n):
                pluses += 1
                rank[w] = 3 * q[w] + s[w]
            elif not allowed and nd[w] == 0:  # a dead end at the limit: back to the best
                restore_best_c3(R, X, FX, q, s, ix, best_R, best_FX, best_q, best_s, rank,
                                best_rank, w, n)
                slack[w] = min(slack[w] + 3, max_slack)
                path[w] = 0
                resets += 1
        counts[w, 0] = flips
        counts[w, 1] = reductions
        counts[w, 2] = pluses
        counts[w, 3] = useless
        counts[w, 4] = resets


# --- the starting scheme ------------------------------------------------------------------------
def diagonal_pairs_start(n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``"pairs"`` start (module docstring): a C3-invariant 0/1 decomposition of
    ``<n,n,n>`` modulo 2 with one fixed term per diagonal part ``{0,1}, {2,3}, ...``; factors
    in the layout of :func:`mlo_exp.agents.flipgraph._school` (``u = E_ij``, ``v = E_jk``,
    ``w = E_ik`` for the term ``a_ij b_jk -> c_ik``)."""
    parts = [list(range(start, min(start + 2, n))) for start in range(0, n, 2)]
    terms = [(i * n + j, j * n + k, i * n + k) for i in range(n) for j in range(n)
             for k in range(n) if not i == j == k]  # school terms, diagonal ones dropped
    for part in parts:
        terms += [(i * n + i, j * n + j, k * n + k) for i in part for j in part for k in part
                  if not i == j == k]
    rank = len(terms) + len(parts)
    u, v, w = (np.zeros((n * n, rank), dtype=np.int64) for _ in range(3))
    for r, (a, b, c) in enumerate(terms):
        u[a, r] = v[b, r] = w[c, r] = 1
    for r, part in enumerate(parts, start=len(terms)):
        for i in part:
            u[i * n + i, r] = v[i * n + i, r] = w[i * n + i, r] = 1
    return u, v, w


# --- orbits of a given scheme ------------------------------------------------------------------
def _sigma(term: tuple[int, int, int], n: int) -> tuple[int, int, int]:
    a, b, c = (np.uint64(x) for x in term)
    return (int(b), int(transpose_bits(c, n)), int(transpose_bits(a, n)))


def orbits(u: np.ndarray, v: np.ndarray, w: np.ndarray, n: int) -> tuple[list, list]:
    """``(orbit representatives, fixed a's)`` of a C3-invariant 0/1 scheme of ``<n,n,n>``;
    ValueError when ``sigma`` does not permute its terms."""
    packed = [pack(f) for f in (u, v, w)]
    remaining: dict[tuple[int, int, int], int] = {}
    for r in range(u.shape[1]):
        term = (int(packed[0][r]), int(packed[1][r]), int(packed[2][r]))
        remaining[term] = remaining.get(term, 0) + 1
    reps, fixed = [], []
    for term in list(remaining):
        while remaining.get(term, 0):
            one = _sigma(term, n)
            if one == term:
                remaining[term] -= 1
                fixed.append(term[0])
                continue
            two = _sigma(one, n)
            if remaining.get(one, 0) < 1 or remaining.get(two, 0) < 1:
                raise ValueError("the scheme is not C3-invariant (sigma(a,b,c) = (b,c^T,a^T) "
                                 "does not permute its terms)")
            for image in (term, one, two):
                remaining[image] -= 1
            reps.append(term)
    return reps, fixed


def expand_to_factors(R: np.ndarray, FX: np.ndarray, q: int, s: int,
                      n: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The full scheme of ``q`` orbit representatives ``R[:, :q]`` and ``s`` fixed terms
    ``FX[:s]``: ``(U, V, W)`` int64 0/1, columns = terms (each orbit as three terms, the
    representative first: ``(a, b, c), (b, c^T, a^T), (c^T, a, b^T)``; then the fixed terms
    ``(a, a, a^T)``)."""
    a, b, c = (unpack(R[mode, :q], n * n) for mode in range(3))
    flipped = np.arange(n * n).reshape(n, n).T.ravel()  # row i*n+j of x^T is row j*n+i of x
    at, bt, ct = a[flipped], b[flipped], c[flipped]
    fixed = unpack(FX[:s], n * n)

    def orbit_terms(first: np.ndarray, second: np.ndarray, third: np.ndarray) -> np.ndarray:
        return np.stack([first, second, third], axis=2).reshape(n * n, 3 * q)

    return (np.concatenate([orbit_terms(a, b, ct), fixed], axis=1),
            np.concatenate([orbit_terms(b, ct, a), fixed], axis=1),
            np.concatenate([orbit_terms(c, at, bt), fixed[flipped]], axis=1))


def warm_up() -> None:
    """Compile (or load) the kernel on the school method of <2,2,2>."""
    from mlo_exp.agents.flipgraph.index import new_index

    reps, fixed = orbits(*school(2, 2, 2), 2)
    R = np.zeros((1, 3, len(reps) + 1), dtype=np.uint64)
    R[0, :, : len(reps)] = np.array(reps, dtype=np.uint64).T
    FX = np.zeros((1, len(reps) + len(fixed) + 1), dtype=np.uint64)
    FX[0, : len(fixed)] = fixed
    q, s = np.array([len(reps)]), np.array([len(fixed)])
    X = np.zeros((1, 3, 3 * R.shape[2]), dtype=np.uint64)
    ix = new_index(1, 3 * R.shape[2])
    rebuild_c3(R, X, q, ix, 0, 2)
    rank = 3 * q + s
    zero = np.zeros(1, dtype=np.int64)
    walk_c3(R, X, FX, q, s, ix, np.ones(1, dtype=np.uint64), zero, zero.copy(), zero + 3,
            R.copy(), FX.copy(), q.copy(), s.copy(), rank, rank.copy(),
            np.zeros((1, 5), dtype=np.int64), 4, 1, 3, 6, 0, R.shape[2], True, 2)
