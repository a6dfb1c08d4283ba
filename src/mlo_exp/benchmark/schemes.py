"""Schemes for the product at hand: library names for any order of a shape's sides.

AlphaTensor's file holds one algorithm per shape up to the order of its sides (``<2,4,4>``,
not ``<4,2,4>`` or ``<4,4,2>``). The symmetries of the matrix-multiplication tensor give the
others exactly, with the same rank: the transpose ``(AB)^T = B^T A^T`` turns ``<n,m,p>``
into ``<p,m,n>``, and the cyclic symmetry of ``trace(ABC)`` turns it into ``<m,p,n>``.
:func:`resolve_scheme` accepts ``alphatensor-NxMxP`` for any order (and every name
``lookup`` knows); each derived scheme is verified exactly before it is returned.
:func:`fitting_schemes` lists the library schemes whose block shape fits a product
``N1 x N2`` times ``N2 x N3`` (the sides divide, or nearly: at most a few percent of padding).
"""

from __future__ import annotations

import itertools

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.library import lookup


def transpose(algorithm: Algorithm) -> Algorithm:
    """``<n,m,p>`` -> ``<p,m,n>`` (from ``C^T = B^T A^T``)."""
    n, m, p = algorithm.shape
    u, v, w = (np.asarray(x, dtype=object) for x in (algorithm.u, algorithm.v, algorithm.w))
    new_u = _reindex(v, (m, p), lambda j, k: (k, j), (p, m))
    new_v = _reindex(u, (n, m), lambda i, j: (j, i), (m, n))
    new_w = _reindex(w, (n, p), lambda i, k: (k, i), (p, n))
    return _checked(algorithm, (p, m, n), new_u, new_v, new_w)


def rotate(algorithm: Algorithm) -> Algorithm:
    """``<n,m,p>`` -> ``<m,p,n>`` (the cyclic symmetry of ``trace(A B C^T)``)."""
    n, m, p = algorithm.shape
    u, v, w = (np.asarray(x, dtype=object) for x in (algorithm.u, algorithm.v, algorithm.w))
    new_v = _reindex(w, (n, p), lambda i, k: (k, i), (p, n))
    new_w = _reindex(u, (n, m), lambda i, j: (j, i), (m, n))
    return _checked(algorithm, (m, p, n), v.copy(), new_v, new_w)


def reshape_to(algorithm: Algorithm, shape: tuple[int, int, int]) -> Algorithm:
    """The scheme for ``shape``, a reordering of the algorithm's sides; ValueError if not."""
    shape = tuple(int(x) for x in shape)  # type: ignore[assignment]
    candidate = algorithm
    for flip in (False, True):
        candidate = transpose(algorithm) if flip else algorithm
        for _ in range(3):
            if candidate.shape == shape:
                return candidate
            candidate = rotate(candidate)
    raise ValueError(f"{algorithm.name} is for <{','.join(map(str, algorithm.shape))}>, "
                     f"which no reordering turns into <{','.join(map(str, shape))}>")


def resolve_scheme(name: str) -> Algorithm:
    """A library name, ``alphatensor-NxMxP`` in any order of its sides included (module
    docstring). KeyError (the library's message) when nothing fits."""
    try:
        return lookup(name)
    except KeyError as error:
        parts = name.lower().split("-")
        if parts[0] != "alphatensor" or len(parts) != 2:
            raise
        try:
            shape = tuple(int(x) for x in parts[1].split("x"))
        except ValueError:
            raise error from None
        if len(shape) != 3:
            raise
        for order in sorted(set(itertools.permutations(shape))):
            if order == shape:
                continue
            try:
                base = lookup(f"alphatensor-{'x'.join(map(str, order))}")
            except KeyError:
                continue
            scheme = reshape_to(base, shape)  # type: ignore[arg-type]
            scheme.provenance["name"] = f"alphatensor-{parts[1]}"
            return scheme
        raise


def fitting_schemes(dims: tuple[int, int, int], names: list[str],
                    padding: float = 0.05) -> list[str]:
    """Those of ``names`` whose block shape divides ``dims`` (or pads each side by at most
    ``padding``), in the order given."""
    fitting = []
    for name in names:
        shape = resolve_scheme(name).shape
        waste = max((-(-d // s) * s - d) / d for d, s in zip(dims, shape, strict=True))
        if waste <= padding:
            fitting.append(name)
    return fitting


def _reindex(factor: np.ndarray, old: tuple[int, int], move, new: tuple[int, int]) -> np.ndarray:  # noqa: ANN001
    """Rows of ``factor`` (entries of an ``old`` matrix, row-major) moved to the entries of a
    ``new`` matrix: row ``(r, s)`` goes to ``move(r, s)``."""
    result = np.empty((new[0] * new[1], factor.shape[1]), dtype=object)
    for r in range(old[0]):
        for s in range(old[1]):
            x, y = move(r, s)
            result[x * new[1] + y] = factor[r * old[1] + s]
    return result


def _checked(algorithm: Algorithm, shape: tuple[int, int, int], u: np.ndarray, v: np.ndarray,
             w: np.ndarray) -> Algorithm:
    derived = Algorithm(shape, u, v, w, algorithm.ring,
                        {**algorithm.provenance,
                         "name": f"{algorithm.name} as <{','.join(map(str, shape))}>",
                         "derived_from": list(algorithm.shape)})
    check = derived.verify()
    if not check.ok:  # a bug here, never a result
        raise AssertionError(f"reordering {algorithm.name}: {check.describe()}")
    return derived
