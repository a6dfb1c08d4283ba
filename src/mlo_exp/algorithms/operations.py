"""Schemes from schemes: product, permutations, extension, restriction, direct sum.

Every function returns an :class:`~mlo_exp.algorithms.algorithm.Algorithm` that has passed
exact verification over its ring (:class:`OperationError` otherwise, which would be a bug).
Layout: :mod:`mlo_exp.algorithms.tensor` (``A`` n x m, ``B`` m x p, ``C = A @ B`` n x p,
row-major, ``T<n,m,p>[i*m+j, j*p+k, i*p+k] = 1``). With it, a decomposition says
``sum_r (u_r . A)(v_r . B)(w_r . C) = trace(A B C^T)`` for all ``A, B, C``.

* :func:`product` — ``<n,m,p> x <n',m',p'> -> <nn',mm',pp'>``, rank ``R R'``: a matrix of the
  product is a matrix of blocks, the outer (block) index from the first scheme, the inner
  from the second: ``A[i*n' + i', j*m' + j'] = A_first[i, j]`` block entry ``[i', j']``.
  Strassen x Strassen is ``<4,4,4>`` rank 49.
* :func:`cyclic` — ``<n,m,p> -> <m,p,n>``, from ``trace(A B C^T) = trace(B C^T A)``:
  ``(u', v', w') = (v, w read as C^T, u read as A^T)``.
  :func:`transpose` — ``<n,m,p> -> <p,m,n>``, from ``trace(A B C^T) = trace(B^T A^T C)``:
  ``(u', v', w') = (v read as B^T, u read as A^T, w read as C^T)``.
  :func:`permute` reaches any of the six orders of ``(n, m, p)`` with those two; same rank.
* :func:`extend` — ``<n,m,p> -> <n,m,p+1>`` (or along ``n``/``m``) by adding the school
  method's terms for the new slice (rank ``+ n*m``, ``+ m*p``, ``+ n*p``).
  :func:`restrict` — back, by zeroing the last row/column of the dimension (``B[:, p] = 0``
  and ``C[:, p]`` unused, for ``p``); terms that vanish are dropped.
* :func:`direct_sum` — ``<n1,m,p> (+) <n2,m,p> -> <n1+n2,m,p>`` (or along ``m``, ``p``): the
  two schemes on disjoint blocks, rank ``R1 + R2``.

Rings: the result is over ``Z2`` when an input is (the others read modulo 2; a rational
input is refused then), else ``Q`` when an input is, else ``Z``.
"""

from __future__ import annotations

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.tensor import kept_rows

AXES = ("n", "m", "p")


class OperationError(ValueError):
    """The operation does not apply (shapes, rings), or its result failed verification."""


def _ring(*algorithms: Algorithm) -> str:
    rings = {a.ring for a in algorithms}
    if "Z2" in rings:
        if "Q" in rings:
            raise OperationError("a Z2 scheme cannot be combined with a rational (Q) one")
        return "Z2"
    return "Q" if "Q" in rings else "Z"


def _finish(shape, u, v, w, ring: str, name: str, how: str, *sources: Algorithm) -> Algorithm:
    keep = [r for r in range(u.shape[1])
            if np.any(u[:, r] != 0) and np.any(v[:, r] != 0) and np.any(w[:, r] != 0)]
    result = Algorithm(tuple(shape), u[:, keep], v[:, keep], w[:, keep], ring,
                       {"name": name, "source": how,
                        "derived_from": " ; ".join(s.name for s in sources)})
    check = result.verify()
    if not check.ok:  # pragma: no cover - the constructions are exact
        raise OperationError(f"{name}: the derived scheme failed verification: "
                             f"{check.describe()}")
    result.provenance["verified"] = f"exact over {ring}"
    return result


def _empty(rows: int, cols: int, *like: np.ndarray) -> np.ndarray:
    """Zeros, as Python numbers when a factor holds fractions (object arrays), else int64."""
    if any(x.dtype == object for x in like):
        return np.full((rows, cols), 0, dtype=object)
    return np.zeros((rows, cols), dtype=np.int64)


def _shape_name(shape) -> str:
    return "x".join(map(str, shape))


# --- product ---------------------------------------------------------------------------------
def product(first: Algorithm, second: Algorithm) -> Algorithm:
    """``<n,m,p> x <n',m',p'> -> <nn',mm',pp'>``, rank ``R R'`` (see the module docstring)."""
    ring = _ring(first, second)
    (n, m, p), (n2, m2, p2) = first.shape, second.shape

    def factor(a: np.ndarray, b: np.ndarray, rows: int, cols: int, rows2: int, cols2: int):
        # a: (rows*cols, R) over (i, j); b: (rows2*cols2, R') over (i', j');
        # result row (i*rows2 + i') * (cols*cols2) + j*cols2 + j', column r*R' + s.
        a4 = a.reshape(rows, cols, a.shape[1])
        b4 = b.reshape(rows2, cols2, b.shape[1])
        out = np.einsum("ijr,kls->ikjlrs", a4, b4) if a.dtype != object and b.dtype != object \
            else np.multiply.outer(a4, b4).transpose(0, 3, 1, 4, 2, 5)
        return out.reshape(rows * rows2 * cols * cols2, a.shape[1] * b.shape[1])

    u = factor(first.u, second.u, n, m, n2, m2)
    v = factor(first.v, second.v, m, p, m2, p2)
    w = factor(first.w, second.w, n, p, n2, p2)
    shape = (n * n2, m * m2, p * p2)
    return _finish(shape, u, v, w, ring, f"product({first.name}, {second.name})", "product",
                   first, second)


# --- permutations ----------------------------------------------------------------------------
def _reindex(factor: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """Rows of a factor over a ``rows x cols`` matrix ``X`` (``x[i*cols + j]``), re-read over
    ``X^T`` (``cols x rows``, ``x'[j*rows + i]``)."""
    rank = factor.shape[1]
    return factor.reshape(rows, cols, rank).transpose(1, 0, 2).reshape(rows * cols, rank)


def cyclic(algorithm: Algorithm) -> Algorithm:
    """``<n,m,p> -> <m,p,n>``: ``u' = v``, ``v'`` = ``w`` over ``C^T``, ``w'`` = ``u`` over
    ``A^T``."""
    n, m, p = algorithm.shape
    u = algorithm.v.copy()
    v = _reindex(algorithm.w, n, p)  # C (n x p) -> Y = C^T (p x n)
    w = _reindex(algorithm.u, n, m)  # A (n x m) -> Z = A^T (m x n)
    return _finish((m, p, n), u, v, w, algorithm.ring,
                   f"{algorithm.name}-cyclic", "cyclic permutation", algorithm)


def transpose(algorithm: Algorithm) -> Algorithm:
    """``<n,m,p> -> <p,m,n>`` (``C^T = B^T A^T``): ``u'`` = ``v`` over ``B^T``, ``v'`` = ``u``
    over ``A^T``, ``w'`` = ``w`` over ``C^T``."""
    n, m, p = algorithm.shape
    u = _reindex(algorithm.v, m, p)
    v = _reindex(algorithm.u, n, m)
    w = _reindex(algorithm.w, n, p)
    return _finish((p, m, n), u, v, w, algorithm.ring,
                   f"{algorithm.name}-transposed", "transpose", algorithm)


def permutations(algorithm: Algorithm) -> dict[tuple[int, int, int], Algorithm]:
    """The scheme for every order of its shape (the six, fewer when dimensions repeat)."""
    found: dict[tuple[int, int, int], Algorithm] = {}
    current = algorithm
    for _ in range(3):
        for candidate in (current, transpose(current)):
            found.setdefault(tuple(candidate.shape), candidate)  # type: ignore[arg-type]
        current = cyclic(current)
    return found


def permute(algorithm: Algorithm, shape: tuple[int, int, int]) -> Algorithm:
    """The scheme re-read for ``shape``, an order of its own shape."""
    shape = tuple(int(x) for x in shape)  # type: ignore[assignment]
    if sorted(shape) != sorted(algorithm.shape):
        raise OperationError(f"<{_shape_name(shape)}> is not an order of "
                             f"<{_shape_name(algorithm.shape)}>")
    result = permutations(algorithm)[shape]
    result.provenance["name"] = f"{algorithm.name}-as-{_shape_name(shape)}"
    return result


# --- embedding: extension, restriction, direct sum -------------------------------------------
def _axis(axis: str | int) -> int:
    if axis in AXES:
        return AXES.index(axis)  # type: ignore[arg-type]
    if axis in (0, 1, 2):
        return int(axis)
    raise OperationError(f"axis={axis!r}; accepted: n, m or p")


def _embed(algorithm: Algorithm, big: tuple[int, int, int], offset: tuple[int, int, int],
           dtype_like: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The factors of ``algorithm`` with its index ``(i, j, k)`` placed at ``offset + (i, j, k)``
    of ``<big>``."""
    n, m, p = algorithm.shape
    N, M, P = big
    oi, oj, ok = offset
    out = []
    for factor, (rows, cols, big_rows, big_cols, o_r, o_c) in zip(
            (algorithm.u, algorithm.v, algorithm.w),
            ((n, m, N, M, oi, oj), (m, p, M, P, oj, ok), (n, p, N, P, oi, ok)), strict=True):
        target = _empty(big_rows * big_cols, factor.shape[1], *dtype_like)
        r, c = np.meshgrid(np.arange(rows), np.arange(cols), indexing="ij")
        target[((r + o_r) * big_cols + (c + o_c)).ravel()] = factor[(r * cols + c).ravel()]
        out.append(target)
    return out[0], out[1], out[2]


def direct_sum(first: Algorithm, second: Algorithm, axis: str | int) -> Algorithm:
    """``first`` on the leading block and ``second`` on the trailing block of ``axis``; the
    other two dimensions must agree. Rank ``R1 + R2``."""
    a = _axis(axis)
    others = [d for d in range(3) if d != a]
    if any(first.shape[d] != second.shape[d] for d in others):
        raise OperationError(f"direct sum along {AXES[a]}: <{_shape_name(first.shape)}> and "
                             f"<{_shape_name(second.shape)}> differ in another dimension")
    ring = _ring(first, second)
    big = list(first.shape)
    big[a] += second.shape[a]
    offset = [0, 0, 0]
    offset[a] = first.shape[a]
    like = [first.u, second.u]
    parts = [_embed(first, tuple(big), (0, 0, 0), like),  # type: ignore[arg-type]
             _embed(second, tuple(big), tuple(offset), like)]  # type: ignore[arg-type]
    u, v, w = (np.concatenate([parts[0][x], parts[1][x]], axis=1) for x in range(3))
    return _finish(big, u, v, w, ring, f"sum({first.name}, {second.name})",
                   f"direct sum along {AXES[a]}", first, second)


def _school(shape: tuple[int, int, int], ring: str) -> Algorithm:
    n, m, p = shape
    rank = n * m * p
    u = np.zeros((n * m, rank), dtype=np.int64)
    v = np.zeros((m * p, rank), dtype=np.int64)
    w = np.zeros((n * p, rank), dtype=np.int64)
    i, j, k = (x.ravel() for x in np.meshgrid(np.arange(n), np.arange(m), np.arange(p),
                                               indexing="ij"))
    terms = np.arange(rank)
    u[i * m + j, terms] = v[j * p + k, terms] = w[i * p + k, terms] = 1
    return Algorithm(shape, u, v, w, "Z2" if ring == "Z2" else "Z",
                     {"name": f"school-{_shape_name(shape)}"})


def extend(algorithm: Algorithm, axis: str | int, by: int = 1) -> Algorithm:
    """``<n,m,p> -> <n,m,p+by>`` (or along ``n``/``m``): the school method's terms for the new
    slice added (a direct sum with the school method of the slice)."""
    a = _axis(axis)
    if by < 1:
        raise OperationError(f"extend by {by}; accepted: an integer >= 1")
    slab = list(algorithm.shape)
    slab[a] = by
    result = direct_sum(algorithm, _school(tuple(slab), algorithm.ring), a)  # type: ignore[arg-type]
    result.provenance.update(name=f"{algorithm.name}-extended-{AXES[a]}+{by}",
                             source=f"extension along {AXES[a]} (school terms added)")
    return result


def restrict(algorithm: Algorithm, axis: str | int, by: int = 1,
             drop: list[int] | None = None) -> Algorithm:
    """``<n,m,p+by> -> <n,m,p>`` (or along ``n``/``m``): ``by`` rows/columns of that dimension
    (the last ones, or the indices ``drop``) set to zero and removed (their entries of
    ``A``/``B`` are 0, those of ``C`` unused); terms that vanish are dropped."""
    a = _axis(axis)
    shape = list(algorithm.shape)
    if not 1 <= by < shape[a]:
        raise OperationError(f"restrict <{_shape_name(shape)}> along {AXES[a]} by {by}; "
                             f"accepted: 1 to {shape[a] - 1}")
    gone = list(range(shape[a] - by, shape[a])) if drop is None else sorted(set(drop))
    if len(gone) != by or not all(0 <= i < shape[a] for i in gone):
        raise OperationError(f"restrict <{_shape_name(shape)}> along {AXES[a]}: drop {drop}; "
                             f"accepted: {by} distinct indices below {shape[a]}")
    small = [size - by if d == a else size for d, size in enumerate(shape)]
    factors = [factor[rows] for factor, rows in zip(
        (algorithm.u, algorithm.v, algorithm.w), kept_rows(tuple(shape), a, tuple(gone)),
        strict=True)]
    last = gone == list(range(shape[a] - by, shape[a]))
    where = "" if last else f"-at-{'-'.join(map(str, gone))}"
    return _finish(small, *factors, algorithm.ring,
                   f"{algorithm.name}-restricted-{AXES[a]}-{by}{where}",
                   f"restriction along {AXES[a]}{where.replace('-at-', ' at ')}", algorithm)
