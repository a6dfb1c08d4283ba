"""The hash index of the Z2 and C3 kernels: per walk and mode, factor value -> its holders.

``HK[w, m, h]``: the value in slot ``h`` (0 = empty; a live factor is never 0), ``HC`` its
holder count, ``HH`` its first holder (a term), ``HD`` its position in the flippable list
(-1: not there); ``NX[w, m, t]``: the next holder after term ``t`` of the same value (-1 ends
the list); ``D[w, :nd[w]]``: the **flippable list**, entries ``4 * h + m``, of the values held
by two or more terms. Linear probing; a slot emptied is closed by backward shifting (no
tombstones). Terms are any integer ids below ``NX.shape[2]`` (the Z2 kernel's terms, the C3
kernel's expanded terms).

Numba caches each compiled caller with its own file's stamp only: after changing this file,
delete the callers' caches (``find src -name '*.nbi' -delete``) on a machine that has them.
"""

from __future__ import annotations

import numpy as np
from numba import njit

_MULT = np.uint64(0x2545F4914F6CDD1D)
_ZERO = np.uint64(0)  # compare uint64 with uint64: numba turns uint64 vs int64 into floats


@njit(cache=True, _nrt=False)
def rand(rng, w, n):
    """Uniform integer in ``[0, n)`` from walk ``w``'s xorshift64* stream."""
    x = rng[w]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    rng[w] = x
    high = (x * _MULT) >> np.uint64(32)  # 32 random bits; multiply-shift maps them to [0, n)
    return np.int64((high * np.uint64(n)) >> np.uint64(32))


@njit(cache=True, _nrt=False)
def draw_pair(HC, HH, NX, D, nd, rng, w):
    """A flip's pair, in O(1): an entry of walk ``w``'s flippable list (needs ``nd[w] > 0``)
    and two distinct holders of its value; returns ``(mode, first term, second term)``."""
    entry = D[w, rand(rng, w, nd[w])]
    x = entry & 3
    h = entry >> 2
    count = HC[w, x, h]
    a = rand(rng, w, count)
    b = rand(rng, w, count - 1)
    if b >= a:
        b += 1
    i = -1
    j = -1
    s = HH[w, x, h]
    k = 0
    while s >= 0:
        if k == a:
            i = s
        if k == b:
            j = s
        k += 1
        s = NX[w, x, s]
    return x, i, j


@njit(cache=True, _nrt=False)
def home(value, mask):
    return np.int64((value * _MULT) >> np.uint64(40)) & mask


@njit(cache=True, _nrt=False)
def slot(HK, w, m, value, mask):
    """The slot holding ``value`` in mode ``m``, or the empty slot where it would go."""
    h = home(value, mask)
    while HK[w, m, h] != _ZERO and HK[w, m, h] != value:
        h = (h + 1) & mask
    return h


@njit(cache=True, _nrt=False)
def insert(HK, HC, HH, HD, NX, D, nd, w, m, t, value):
    """Term ``t`` now holds ``value`` in mode ``m`` (it becomes the first holder of the slot's
    list); returns the slot."""
    H = HK.shape[2]
    h = slot(HK, w, m, value, H - 1)
    if HK[w, m, h] == _ZERO:
        HK[w, m, h] = value
        HC[w, m, h] = 0
        HH[w, m, h] = -1
        HD[w, m, h] = -1
    NX[w, m, t] = HH[w, m, h]
    HH[w, m, h] = t
    HC[w, m, h] += 1
    if HC[w, m, h] == 2:
        HD[w, m, h] = nd[w]
        D[w, nd[w]] = 4 * h + m
        nd[w] += 1
    return h


@njit(cache=True, _nrt=False)
def remove(HK, HC, HH, HD, NX, D, nd, w, m, t, value):
    """Term ``t`` no longer holds ``value`` in mode ``m``."""
    H = HK.shape[2]
    mask = H - 1
    h = slot(HK, w, m, value, mask)
    if HH[w, m, h] == t:
        HH[w, m, h] = NX[w, m, t]
    else:
        s = HH[w, m, h]
        while NX[w, m, s] != t:
            s = NX[w, m, s]
        NX[w, m, s] = NX[w, m, t]
    HC[w, m, h] -= 1
    if HC[w, m, h] == 1:  # no longer flippable: swap-remove from the list
        position = HD[w, m, h]
        last = nd[w] - 1
        moved = D[w, last]
        D[w, position] = moved
        HD[w, moved & 3, moved >> 2] = position
        HD[w, m, h] = -1
        nd[w] = last
    if HC[w, m, h] > 0:
        return
    # empty the slot; shift later entries of the probe run back (no tombstones)
    i = h
    j = h
    while True:
        j = (j + 1) & mask
        if HK[w, m, j] == _ZERO:
            break
        k = home(HK[w, m, j], mask)
        if (i <= j and i < k <= j) or (i > j and (i < k or k <= j)):
            continue  # j's home lies in (i, j]: it stays
        HK[w, m, i] = HK[w, m, j]
        HC[w, m, i] = HC[w, m, j]
        HH[w, m, i] = HH[w, m, j]
        HD[w, m, i] = HD[w, m, j]
        if HD[w, m, i] >= 0:
            D[w, HD[w, m, i]] = 4 * i + m
        i = j
    HK[w, m, i] = 0


def new_index(walks: int, capacity: int) -> tuple[np.ndarray, ...]:
    """Empty index arrays ``(HK, HC, HH, HD, NX, D, nd)`` for ``walks`` walks of up to
    ``capacity`` terms (hash tables with 4x the slots: short probe runs; int32 counts and a
    table half the size measured slower)."""
    size = 1 << max(4, int(4 * capacity - 1).bit_length())
    return (np.zeros((walks, 3, size), dtype=np.uint64),
            np.zeros((walks, 3, size), dtype=np.int64),
            np.zeros((walks, 3, size), dtype=np.int64),
            np.zeros((walks, 3, size), dtype=np.int64),
            np.zeros((walks, 3, capacity), dtype=np.int64),
            np.zeros((walks, 3 * capacity), dtype=np.int64),
            np.zeros(walks, dtype=np.int64))
