"""Walks one size larger, reported one size smaller: a move between formats inside a search.

With ``agent.project_from=p`` (or ``n``, ``m``) the walks of a run on ``<n,m,p>`` move over
schemes of ``<n,m,p+1>``, and every episode each walk's current and best schemes are
**restricted** to ``<n,m,p>`` in every way: one slice of that axis (each of the ``p+1`` in
turn) set to zero (its entries of ``A`` or ``B`` are 0, those of ``C`` unused) and removed,
terms that vanish dropped. A scheme of the larger shape whose terms concentrate on one slice
projects to fewer terms than its rank; the meta flip graph of Kauers and Wood moves between
formats this way. The best restriction so far is what the episode reports (the trainer
verifies it exactly).

Factors: ``(U, V, W)`` int64, columns = terms, layout of :mod:`mlo_exp.algorithms.tensor`
(``U[i*m + j]``, ``V[j*p + k]``, ``W[i*p + k]``).
"""

from __future__ import annotations

import numpy as np

from mlo_exp.agents.flipgraph.start import Factors
from mlo_exp.algorithms.tensor import kept_rows

AXES = ("n", "m", "p")


def larger_shape(shape: tuple[int, int, int], axis: str) -> tuple[int, int, int]:
    """``shape`` one larger along ``axis`` (``n``, ``m`` or ``p``)."""
    grown = list(shape)
    grown[AXES.index(axis)] += 1
    return tuple(grown)


def restrict(factors: Factors, shape: tuple[int, int, int], axis: str,
             dropped: int | None = None) -> Factors:
    """The scheme ``factors`` of ``larger_shape(shape, axis)`` restricted to ``shape``: slice
    ``dropped`` of ``axis`` removed (``None``: the last one)."""
    u, v, w = (np.asarray(f)[rows] for f, rows in zip(factors, _rows(shape, axis, dropped),
                                                      strict=True))
    alive = (u != 0).any(axis=0) & (v != 0).any(axis=0) & (w != 0).any(axis=0)
    return u[:, alive], v[:, alive], w[:, alive]


def best_restriction(factors: Factors, shape: tuple[int, int, int], axis: str) -> Factors:
    """The lowest-rank restriction of ``factors`` to ``shape`` over every dropped slice (the
    first on ties); only the chosen one is built."""
    nonzero = [np.asarray(f) != 0 for f in factors]
    slices = larger_shape(shape, axis)[AXES.index(axis)]
    ranks = [int((nonzero[0][u].any(axis=0) & nonzero[1][v].any(axis=0)
                  & nonzero[2][w].any(axis=0)).sum())
             for u, v, w in (_rows(shape, axis, dropped) for dropped in range(slices))]
    return restrict(factors, shape, axis, int(np.argmin(ranks)))


def _rows(shape: tuple[int, int, int], axis: str, dropped: int | None):
    big = larger_shape(shape, axis)
    a = AXES.index(axis)
    return kept_rows(big, a, (big[a] - 1 if dropped is None else dropped,))
