"""The matrix-multiplication tensor and exact verification of its decompositions.

Convention (used everywhere in mlo_exp; importers convert to it):

* ``A`` is ``n x m``, ``B`` is ``m x p`` and ``C = A @ B`` is ``n x p``.
* Matrices are flattened row-major: ``a[i*m + j] = A[i, j]``, ``b[j*p + k] = B[j, k]``,
  ``c[i*p + k] = C[i, k]`` (C is **not** transposed).
* ``T<n,m,p>`` has shape ``(n*m, m*p, n*p)`` and ``T[i*m+j, j*p+k, i*p+k] = 1``, zero elsewhere.
* A rank-``R`` decomposition is three factor matrices ``U (n*m, R)``, ``V (m*p, R)``,
  ``W (n*p, R)`` with ``T = sum_r U[:, r] (x) V[:, r] (x) W[:, r]``. Column ``r`` is one
  multiplication: ``m_r = (U[:, r] . a) * (V[:, r] . b)`` and ``c = W @ m``.

AlphaTensor's published files use ``T[i*m+j, j*p+k, k*n+i]`` (C transposed); see
:func:`w_from_alphatensor`.

Exactness: correctness is decided on integers only. Rational factors are scaled to integers
by a common denominator per factor matrix; floats never decide. ``Z2`` checks modulo 2.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

RINGS = ("Z", "Q", "Z2")
_INT64_SAFE = 2**62


def matmul_tensor(n: int, m: int, p: int) -> np.ndarray:
    """Return ``T<n,m,p>`` as an int64 array of shape ``(n*m, m*p, n*p)``."""
    for name, value in (("n", n), ("m", m), ("p", p)):
        if int(value) != value or value < 1:
            raise ValueError(f"matmul_tensor: {name}={value!r} must be an integer >= 1")
    tensor = np.zeros((n * m, m * p, n * p), dtype=np.int64)
    i, j, k = np.meshgrid(np.arange(n), np.arange(m), np.arange(p), indexing="ij")
    tensor[(i * m + j).ravel(), (j * p + k).ravel(), (i * p + k).ravel()] = 1
    return tensor


@functools.lru_cache(maxsize=256)
def kept_rows(shape: tuple[int, int, int], axis: int, dropped: tuple[int, ...]
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The rows of ``U``, ``V``, ``W`` of a ``<shape>`` decomposition that remain when the
    indices ``dropped`` of dimension ``axis`` (0: ``n``, 1: ``m``, 2: ``p``) are removed, in
    the row-major order of the smaller shape: indexing the factors with them restricts the
    decomposition to that shape (the removed rows/columns of ``A``/``B`` are 0, those of ``C``
    unused). Cached; the arrays are read-only."""
    keep = [[x for x in range(size) if d != axis or x not in dropped]
            for d, size in enumerate(shape)]
    _, m, p = shape
    rows = []
    for first, second, width in ((0, 1, m), (1, 2, p), (0, 2, p)):
        r, c = np.meshgrid(keep[first], keep[second], indexing="ij")
        index = (r * width + c).ravel()
        index.setflags(write=False)
        rows.append(index)
    return rows[0], rows[1], rows[2]


def w_from_alphatensor(w: np.ndarray, n: int, p: int) -> np.ndarray:
    """Permute the rows of an AlphaTensor ``W`` (indexed ``k*n+i``) to ours (``i*p+k``)."""
    w = np.asarray(w)
    if w.shape[0] != n * p:
        raise ValueError(f"w has {w.shape[0]} rows; expected n*p = {n * p}")
    i, k = np.meshgrid(np.arange(n), np.arange(p), indexing="ij")
    order = (k * n + i).ravel()  # our row i*p+k takes their row k*n+i
    return w[order]


def to_exact(values: np.ndarray | list) -> np.ndarray:
    """Convert numbers to an exact array: int64 when all are integers, else Fractions.

    Floats are converted with :class:`fractions.Fraction` exactly (0.125 -> 1/8), so binary
    fractions such as those in AlphaTensor's files survive unchanged. Strings ``"p/q"`` are
    accepted. Non-finite values raise :class:`ValueError`.
    """
    array = np.asarray(values)
    if array.dtype.kind in "iub":
        return array.astype(np.int64)
    if array.dtype.kind == "f":
        if not np.all(np.isfinite(array)):
            raise ValueError("non-finite coefficient in factor matrix")
        if np.all(array == np.round(array)) and np.all(np.abs(array) < 2**53):
            return array.astype(np.int64)
    if array.size == 0:
        return np.zeros(array.shape, dtype=np.int64)
    if array.dtype.kind == "f":  # vectorised: a few distinct values among many entries
        values, positions = np.unique(array.ravel(), return_inverse=True)
        unique, inverse = [float(x) for x in values], positions.ravel()
    else:
        unique, inverse = _unique(array.ravel().tolist())
    exact = []
    for value in unique:
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"non-finite coefficient {value!r}")
        exact.append(Fraction(value))
    if all(value.denominator == 1 for value in exact):
        return np.array([int(v) for v in exact], dtype=np.int64)[inverse].reshape(array.shape)
    table = np.empty(len(exact), dtype=object)
    table[:] = exact
    return table[inverse].reshape(array.shape)


def _unique(values: list) -> tuple[list, np.ndarray]:
    """Distinct values (by hash, so Fractions need no sorting) and each value's index."""
    index: dict = {}
    inverse = np.fromiter((index.setdefault(v, len(index)) for v in values), np.int64, len(values))
    return list(index), inverse


def is_integral(array: np.ndarray) -> bool:
    """True when an exact array (see :func:`to_exact`) holds only integers."""
    return array.dtype.kind in "iu"


def scale_to_integers(array: np.ndarray) -> tuple[np.ndarray, int]:
    """Return ``(numerators, d)`` with ``array == numerators / d``, ``d >= 1`` the lcm."""
    if is_integral(array):
        return array.astype(np.int64), 1
    unique, inverse = _unique(array.ravel().tolist())
    fractions = [Fraction(value) for value in unique]
    denominator = math.lcm(*(f.denominator for f in fractions))
    scaled = [int(f * denominator) for f in fractions]
    return _int_array(scaled, (len(scaled),))[inverse].reshape(array.shape), denominator


def _int_array(values: list[int], shape: tuple[int, ...]) -> np.ndarray:
    if all(abs(v) < _INT64_SAFE for v in values):
        return np.array(values, dtype=np.int64).reshape(shape)
    out = np.empty(len(values), dtype=object)
    out[:] = values
    return out.reshape(shape)


def reconstruct(u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    """``sum_r u[:, r] (x) v[:, r] (x) w[:, r]`` on integer arrays, exactly.

    Uses int64 when the result provably fits, Python integers otherwise.
    """
    rank = u.shape[1]
    rows = (u.shape[0], v.shape[0], w.shape[0])
    if rank == 0:
        return np.zeros(rows, dtype=np.int64)
    bound = _max_abs(u) * _max_abs(v) * _max_abs(w) * rank
    native = all(x.dtype != object for x in (u, v, w))
    # float64 holds every integer below 2**53 exactly, and every partial sum here is bounded
    # by `bound`, so BLAS gives the exact answer; beyond that, int64 or Python integers.
    if native and bound < 2**53:
        dtype = np.float64
    elif native and bound < _INT64_SAFE:
        dtype = np.int64
    else:
        dtype = object
    u, v, w = (x.astype(dtype) for x in (u, v, w))
    # Khatri-Rao product of u and v (one column per term), then one matrix product with w.
    uv = (u[:, None, :] * v[None, :, :]).reshape(rows[0] * rows[1], rank)
    result = (uv @ w.T).reshape(rows)
    return result.astype(np.int64) if dtype == np.float64 else result


def _max_abs(array: np.ndarray) -> int:
    if array.size == 0:
        return 0
    if array.dtype == object:
        return int(max(abs(int(x)) for x in array.ravel()))
    return int(np.abs(array).max())


@dataclass(frozen=True)
class Verification:
    """Outcome of an exact check of ``T == sum_r u (x) v (x) w`` over a ring.

    ``residual`` is ``T - reconstruction`` scaled by the common denominator ``scale``
    (reduced modulo 2 for ``Z2``), so it is an exact integer tensor.
    """

    ok: bool
    ring: str
    shape: tuple[int, int, int]
    rank: int
    residual: np.ndarray
    scale: int = 1

    @property
    def nonzero(self) -> int:
        """Number of tensor entries where the decomposition is wrong."""
        return int(np.count_nonzero(self.residual))

    @property
    def residual_norm(self) -> float:
        """Frobenius norm of the (unscaled) residual."""
        return float(np.sqrt(float((self.residual.astype(object) ** 2).sum()))) / self.scale

    def describe(self, limit: int = 5) -> str:
        """A one-paragraph human summary, listing a few wrong entries on failure."""
        n, m, p = self.shape
        head = f"<{n},{m},{p}> rank {self.rank} over {self.ring}"
        if self.ok:
            return f"{head}: exact decomposition (residual is zero)"
        wrong = np.argwhere(self.residual != 0)[:limit]
        cells = ", ".join(
            f"T[{a},{b},{c}] off by {Fraction(int(self.residual[a, b, c]), self.scale)}"
            for a, b, c in wrong
        )
        return (
            f"{head}: NOT a decomposition; {self.nonzero} wrong entries, residual norm "
            f"{self.residual_norm:.4g}; first: {cells}"
        )


def verify(
    u: np.ndarray,
    v: np.ndarray,
    w: np.ndarray,
    shape: tuple[int, int, int],
    ring: str = "Z",
) -> Verification:
    """Exactly check that ``(u, v, w)`` decomposes ``T<shape>`` over ``ring``.

    ``u, v, w`` may be integer arrays, Fraction object arrays (see :func:`to_exact`) or
    floats that are exact binary fractions. ``Z`` requires integer coefficients; ``Q``
    accepts rationals; ``Z2`` requires integers and compares modulo 2.
    """
    if ring not in RINGS:
        raise ValueError(f"ring={ring!r} is not one of {RINGS}")
    n, m, p = shape
    u, v, w = (to_exact(x) for x in (u, v, w))
    expected_rows = (n * m, m * p, n * p)
    for name, factor, rows in zip("uvw", (u, v, w), expected_rows, strict=True):
        if factor.ndim != 2 or factor.shape[0] != rows:
            raise ValueError(
                f"factor {name} has shape {factor.shape}; expected ({rows}, R) for <{n},{m},{p}>"
            )
    if not u.shape[1] == v.shape[1] == w.shape[1]:
        raise ValueError(f"factor ranks differ: u {u.shape[1]}, v {v.shape[1]}, w {w.shape[1]}")
    if ring in ("Z", "Z2") and not all(is_integral(x) for x in (u, v, w)):
        raise ValueError(f"ring {ring} needs integer coefficients; use ring Q for fractions")
    (u, du), (v, dv), (w, dw) = (scale_to_integers(x) for x in (u, v, w))
    scale = du * dv * dw
    tensor = matmul_tensor(n, m, p)
    if scale >= _INT64_SAFE:  # large common denominators: Python integers, still exact
        tensor = tensor.astype(object)
    residual = tensor * scale - reconstruct(u, v, w)
    if ring == "Z2":
        residual = residual % 2
    if residual.dtype == object and _fits(residual):
        residual = residual.astype(np.int64)
    ok = not np.any(residual != 0)
    return Verification(ok, ring, (n, m, p), int(u.shape[1]), residual, scale)


def _fits(array: np.ndarray) -> bool:
    return all(abs(int(x)) < _INT64_SAFE for x in array.ravel())
