"""When are two schemes the same? Easy invariants, a canonical key, and the shape symmetries.

Two decompositions of ``T<n,m,p>`` are *equivalent* when one becomes the other by the
symmetries of the tensor: permuting the terms; scaling a term's three factors by
``a, b, c`` with ``a*b*c = 1``; a change of basis ``(A, B, C) -> (X A Y^-1, Y B Z^-1,
Z C X^-1)`` (trace form); and, between shapes, rotating ``<n,m,p> -> <m,p,n>`` or transposing
``<n,m,p> -> <p,m,n>`` (:func:`permute_shape`). Deciding equivalence is hard; this module
decides what is cheap:

* invariants that every symmetry keeps (:func:`invariants`): the shape up to permutation,
  the rank, the ring's field, and the *factor-rank profile*, the multiset of the matrix
  ranks ``(rank A_r, rank B_r, rank C_r)`` of the terms (each triple sorted, since rotation and
  transposition permute it). When one differs the schemes are **different**.
* the *coefficient multiset after normalisation* (each term scaled so its first nonzero
  ``A`` and ``B`` coefficients are 1) and the :func:`canonical_key`, a hash of
  the normalised terms in sorted order, in the shape's sorted orientation. Equal keys mean
  the same scheme up to term order, term scaling and rotation/transposition; different
  coefficients prove nothing (a change of basis changes them): **maybe equivalent**.

The catalogue stores the key so a scheme met twice is counted once.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm


# --- shape symmetries ------------------------------------------------------------------------
def rotate(algorithm: Algorithm) -> Algorithm:
    """``<n,m,p> -> <m,p,n>``: ``(A, B, C^T)`` becomes ``(B, C^T, A)`` (trace form)."""
    n, m, p = algorithm.shape
    u = algorithm.v
    v = algorithm.w[[i * p + k for k in range(p) for i in range(n)]]      # v'[k*n+i] = w[i*p+k]
    w = algorithm.u[[i * m + j for j in range(m) for i in range(n)]]      # w'[j*n+i] = u[i*m+j]
    return Algorithm((m, p, n), u, v, w, algorithm.ring, dict(algorithm.provenance))


def transpose(algorithm: Algorithm) -> Algorithm:
    """``<n,m,p> -> <p,m,n>`` from ``C^T = B^T A^T``."""
    n, m, p = algorithm.shape
    u = algorithm.v[[j * p + k for k in range(p) for j in range(m)]]      # u'[k*m+j] = v[j*p+k]
    v = algorithm.u[[i * m + j for j in range(m) for i in range(n)]]      # v'[j*n+i] = u[i*m+j]
    w = algorithm.w[[i * p + k for k in range(p) for i in range(n)]]      # w'[k*n+i] = w[i*p+k]
    return Algorithm((p, m, n), u, v, w, algorithm.ring, dict(algorithm.provenance))


def permute_shape(algorithm: Algorithm, shape: tuple[int, int, int]) -> Algorithm:
    """The same scheme for ``shape``, a permutation of its own (rotations and transposes)."""
    shape = tuple(int(x) for x in shape)  # type: ignore[assignment]
    if sorted(shape) != sorted(algorithm.shape):
        raise ValueError(f"<{','.join(map(str, shape))}> is not a permutation of "
                         f"<{','.join(map(str, algorithm.shape))}>")
    seen = [algorithm]
    for candidate in seen:  # at most six orientations
        if candidate.shape == shape:
            result = candidate
            break
        for step in (rotate, transpose):
            moved = step(candidate)
            if all(moved.shape != other.shape for other in seen):
                seen.append(moved)
    else:  # pragma: no cover - every permutation is reached
        raise AssertionError(shape)
    result.plan = algorithm.plan if result is algorithm else None
    return result


def sorted_orientation(algorithm: Algorithm) -> Algorithm:
    """The scheme for its shape sorted ``n <= m <= p``."""
    return permute_shape(algorithm, tuple(sorted(algorithm.shape)))  # type: ignore[arg-type]


# --- invariants ------------------------------------------------------------------------------
def matrix_rank(rows: list[list[Fraction]] | np.ndarray, modulus: int | None = None) -> int:
    """Exact rank of a small matrix over Q (``modulus=None``) or GF(modulus)."""
    values = [list(row) for row in rows]
    if modulus is None and all(isinstance(x, (int, np.integer)) for row in values for x in row):
        return _integer_rank([[int(x) for x in row] for row in values])
    grid = [[Fraction(x) if modulus is None else int(x) % modulus for x in row] for row in values]
    rank, columns = 0, len(grid[0]) if grid else 0
    for column in range(columns):
        pivot = next((r for r in range(rank, len(grid)) if grid[r][column]), None)
        if pivot is None:
            continue
        grid[rank], grid[pivot] = grid[pivot], grid[rank]
        head = grid[rank][column]
        for r in range(len(grid)):
            if r != rank and grid[r][column]:
                if modulus is None:
                    factor = grid[r][column] / head
                    grid[r] = [a - factor * b for a, b in zip(grid[r], grid[rank], strict=True)]
                else:
                    factor = grid[r][column] * pow(head, -1, modulus)
                    grid[r] = [(a - factor * b) % modulus
                               for a, b in zip(grid[r], grid[rank], strict=True)]
        rank += 1
    return rank


def _integer_rank(grid: list[list[int]]) -> int:
    """Rank over Q of an integer matrix by fraction-free elimination (rows kept primitive)."""
    grid = [row for row in grid if any(row)]
    rank = 0
    columns = len(grid[0]) if grid else 0
    for column in range(columns):
        pivot = next((r for r in range(rank, len(grid)) if grid[r][column]), None)
        if pivot is None:
            continue
        grid[rank], grid[pivot] = grid[pivot], grid[rank]
        head = grid[rank]
        for r in range(rank + 1, len(grid)):
            if grid[r][column]:
                factor = grid[r][column]
                row = [head[column] * a - factor * b for a, b in zip(grid[r], head, strict=True)]
                divisor = math.gcd(*row)
                grid[r] = [x // divisor for x in row] if divisor > 1 else row
        rank += 1
    return rank


def factor_rank_profile(algorithm: Algorithm) -> list[tuple[int, int, int]]:
    """Sorted multiset of the terms' sorted ``(rank A_r, rank B_r, rank C_r)``."""
    n, m, p = algorithm.shape
    modulus = 2 if algorithm.ring == "Z2" else None
    profile = []
    for r in range(algorithm.rank):
        ranks = (matrix_rank(np.asarray(algorithm.u[:, r]).reshape(n, m), modulus),
                 matrix_rank(np.asarray(algorithm.v[:, r]).reshape(m, p), modulus),
                 matrix_rank(np.asarray(algorithm.w[:, r]).reshape(n, p), modulus))
        profile.append(tuple(sorted(ranks)))
    return sorted(profile)  # type: ignore[return-value]


def normalised_terms(algorithm: Algorithm) -> list[tuple[tuple, ...]]:
    """Each term scaled so the first nonzero of its A and B factors is 1 (the scale moves to
    the C factor; nothing moves modulo 2), as sorted tuples of exact numbers."""
    factors = [np.asarray(x) for x in (algorithm.u, algorithm.v, algorithm.w)]
    if algorithm.ring == "Z2" or all(f.dtype.kind in "iu" for f in factors):
        fast = _normalised_integer_terms(factors, algorithm.ring == "Z2")
        if fast is not None:
            return fast
    terms = []
    for r in range(algorithm.rank):
        columns = [[Fraction(int(x)) if isinstance(x, (int, np.integer)) else Fraction(x)
                    for x in factor[:, r]] for factor in factors]
        if algorithm.ring != "Z2":
            for index in (0, 1):
                lead = next((x for x in columns[index] if x != 0), Fraction(1))
                columns[index] = [x / lead for x in columns[index]]
                columns[2] = [x * lead for x in columns[2]]
        terms.append(tuple(tuple(column) for column in columns))
    return sorted(terms)


def _normalised_integer_terms(factors: list[np.ndarray], modulo_2: bool) -> list | None:
    """The same for integer factors whose leading coefficients are all +-1 (vectorised);
    ``None`` when a lead is another number (then fractions appear: the exact path)."""
    u, v, w = (f.astype(np.int64) for f in factors)
    if not modulo_2:
        signs = []
        for factor in (u, v):
            nonzero = factor != 0
            first = np.argmax(nonzero, axis=0)
            lead = factor[first, np.arange(factor.shape[1])]
            lead = np.where(nonzero.any(axis=0), lead, 1)
            if np.any(np.abs(lead) != 1):
                return None
            signs.append(lead)
        u, v, w = u * signs[0], v * signs[1], w * signs[0] * signs[1]
    stacked = np.concatenate([u, v, w]).T
    sizes = (u.shape[0], v.shape[0])
    terms = [(tuple(row[:sizes[0]]), tuple(row[sizes[0]:sum(sizes)]),
              tuple(row[sum(sizes):])) for row in stacked.tolist()]
    return sorted(terms)


def coefficient_multiset(algorithm: Algorithm) -> Counter:
    """How often each coefficient occurs once every term is normalised."""
    return Counter(x for term in normalised_terms(algorithm) for factor in term for x in factor)


def orientations(algorithm: Algorithm) -> list[Algorithm]:
    """The scheme in each of its shape's orientations (up to six; rotations, transposes)."""
    seen = [algorithm]
    for candidate in seen:
        for step in (rotate, transpose):
            moved = step(candidate)
            if all(not _same_factors(moved, other) for other in seen):
                seen.append(moved)
        if len(seen) > 6:  # pragma: no cover - the group has six elements
            break
    return seen


def _same_factors(a: Algorithm, b: Algorithm) -> bool:
    return a.shape == b.shape and all(np.array_equal(x, y) for x, y in
                                      ((a.u, b.u), (a.v, b.v), (a.w, b.w)))


def canonical_key(algorithm: Algorithm) -> str:
    """A hash equal for schemes equal up to term order, term scaling and rotation/transpose:
    the smallest hash of the normalised terms over the orientations of the sorted shape."""
    target = tuple(sorted(algorithm.shape))
    field = "Z2" if algorithm.ring == "Z2" else "Q"
    keys = []
    for oriented in orientations(algorithm):
        if oriented.shape != target:
            continue
        payload = json.dumps({"shape": list(target), "field": field,
                              "terms": [[[str(x) for x in f] for f in term]
                                        for term in normalised_terms(oriented)]})
        keys.append(hashlib.sha256(payload.encode()).hexdigest())
    return min(keys)


@dataclass(frozen=True)
class Invariants:
    """What every symmetry keeps (see module docstring)."""

    shape: tuple[int, int, int]  # sorted
    rank: int
    field: str  # "Q" (Z or Q schemes) or "Z2"
    profile: tuple[tuple[int, int, int], ...]


def invariants(algorithm: Algorithm) -> Invariants:
    return Invariants(tuple(sorted(algorithm.shape)), algorithm.rank,  # type: ignore[arg-type]
                      "Z2" if algorithm.ring == "Z2" else "Q",
                      tuple(factor_rank_profile(algorithm)))


@dataclass(frozen=True)
class Comparison:
    verdict: str  # "different", "same", "maybe equivalent"
    lines: tuple[str, ...]


def compare(first: Algorithm, second: Algorithm) -> Comparison:
    """The easy invariants of two schemes, side by side, and a verdict."""
    lines = []
    a_shape, b_shape = first.shape, second.shape
    shape_ok = sorted(a_shape) == sorted(b_shape)
    lines.append(f"shape: <{','.join(map(str, a_shape))}> vs <{','.join(map(str, b_shape))}>"
                 f" ({'same up to permutation' if shape_ok else 'different'})")
    rank_ok = first.rank == second.rank
    lines.append(f"rank: {first.rank} vs {second.rank} ({'same' if rank_ok else 'different'})")
    fields = ("Z2" if first.ring == "Z2" else "Q", "Z2" if second.ring == "Z2" else "Q")
    field_ok = fields[0] == fields[1]
    lines.append(f"ring: {first.ring} vs {second.ring} ("
                 + ("compared over the same field" if field_ok else
                    "one holds only modulo 2: not comparable") + ")")
    if not (shape_ok and rank_ok and field_ok):
        return Comparison("different", tuple(lines))
    a_profile, b_profile = factor_rank_profile(first), factor_rank_profile(second)
    profile_ok = a_profile == b_profile
    lines.append("factor-rank profile: " + ("same " + _profile_text(a_profile) if profile_ok
                 else f"{_profile_text(a_profile)} vs {_profile_text(b_profile)}"))
    if not profile_ok:
        return Comparison("different", tuple(lines))
    oriented = permute_shape(second, first.shape)
    same_coefficients = coefficient_multiset(first) == coefficient_multiset(oriented)
    lines.append("coefficient multiset (terms normalised): "
                 + ("same" if same_coefficients else "differs (a change of basis can do that)"))
    if canonical_key(first) == canonical_key(second):
        lines.append("the same terms up to order, scaling and rotation/transposition")
        return Comparison("same", tuple(lines))
    return Comparison("maybe equivalent", tuple(lines))


def _profile_text(profile: list[tuple[int, int, int]]) -> str:
    counts = Counter(profile)
    return ", ".join(f"{count}x{'/'.join(map(str, key))}" for key, count in sorted(counts.items()))
