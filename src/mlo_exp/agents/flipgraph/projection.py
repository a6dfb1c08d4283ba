"""Walks one size larger, reported one size smaller: a move between formats inside a search.

With ``agent.project_from=p`` (or ``n``, ``m``) the walks of a run on ``<n,m,p>`` move over
schemes of ``<n,m,p+1>``, and every episode each walk's current and best schemes are
**restricted** to ``<n,m,p>``: the last slice of that axis set to zero (its entries of ``A`` or
``B`` are 0, those of ``C`` unused), terms that vanish dropped. A scheme of the larger shape
whose terms concentrate on the last slice projects to fewer terms than its rank; the meta flip
graph of Kauers and Wood moves between formats this way. The best restriction so far is what
the episode reports (the trainer verifies it exactly).

Factors: ``(U, V, W)`` int64, columns = terms, layout of :mod:`mlo_exp.algorithms.tensor`
(``U[i*m + j]``, ``V[j*p + k]``, ``W[i*p + k]``).
"""

from __future__ import annotations

import numpy as np

from mlo_exp.agents.flipgraph.start import Factors

AXES = ("n", "m", "p")


def larger_shape(shape: tuple[int, int, int], axis: str) -> tuple[int, int, int]:
    """``shape`` one larger along ``axis`` (``n``, ``m`` or ``p``)."""
    grown = list(shape)
    grown[AXES.index(axis)] += 1
    return tuple(grown)


def restrict(factors: Factors, shape: tuple[int, int, int], axis: str) -> Factors:
    """The scheme ``factors`` of ``larger_shape(shape, axis)`` restricted to ``shape``."""
    n, m, p = shape
    big_n, big_m, big_p = larger_shape(shape, axis)
    i, j = np.meshgrid(np.arange(n), np.arange(m), indexing="ij")
    u_rows = (i * big_m + j).ravel()
    j, k = np.meshgrid(np.arange(m), np.arange(p), indexing="ij")
    v_rows = (j * big_p + k).ravel()
    i, k = np.meshgrid(np.arange(n), np.arange(p), indexing="ij")
    w_rows = (i * big_p + k).ravel()
    u, v, w = (np.asarray(f)[rows] for f, rows in zip(factors, (u_rows, v_rows, w_rows),
                                                      strict=True))
    alive = (u != 0).any(axis=0) & (v != 0).any(axis=0) & (w != 0).any(axis=0)
    return u[:, alive], v[:, alive], w[:, alive]
