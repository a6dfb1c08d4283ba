"""A check shared by the flip-graph kernel tests: a walk's hash index says exactly what its
terms hold (mlo_exp.agents.flipgraph.index)."""

from __future__ import annotations

import numpy as np


def assert_index_describes(index: tuple[np.ndarray, ...], walk: int,
                           values_by_mode: list[np.ndarray]) -> None:
    """``values_by_mode[m][t]``: the value term ``t`` of ``walk`` holds in mode ``m`` (a word, a
    key); the index must list every value with exactly its holders and count, and the
    flippable list exactly the values held by two or more terms."""
    HK, HC, HH, HD, NX, D, nd = index
    listed = {(int(e) & 3, int(HK[walk, int(e) & 3, int(e) >> 2])) for e in D[walk, :nd[walk]]}
    assert len(listed) == nd[walk]
    expected = set()
    for mode, values in enumerate(values_by_mode):
        assert (values != 0).all()
        unique, counts = np.unique(values, return_counts=True)
        expected |= {(mode, int(v)) for v in unique[counts >= 2]}
        assert (HK[walk, mode] != 0).sum() == len(unique)
        for value, count in zip(unique, counts, strict=True):
            slot = int(np.flatnonzero(HK[walk, mode] == value)[0])
            holders, term = [], HH[walk, mode, slot]
            while term >= 0:
                holders.append(int(term))
                term = NX[walk, mode, term]
            assert sorted(holders) == np.flatnonzero(values == value).tolist()
            assert HC[walk, mode, slot] == count and (HD[walk, mode, slot] >= 0) == (count >= 2)
    assert listed == expected
