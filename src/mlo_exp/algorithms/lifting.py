"""Lift a modulo-2 algorithm to the integers (an exact solve for signs), then verify exactly.

A ``Z2`` decomposition has 0/1 factors. We look for an integer decomposition with the same
support and coefficients ``+-1``: every 1 becomes ``1 - 2*d`` with ``d`` in ``{0, 1}``.

1. **Gauge.** ``(-u)(x)(-v)(x)w = u(x)v(x)w``: per term, the first non-zero entry of ``u`` and
   of ``v`` is fixed to ``+1`` (those ``d`` are 0).
2. **Hensel step to modulo 4.** With ``R0 = sum u(x)v(x)w`` over the integers (all signs +),
   ``R0 == T (mod 2)``, and the signed decomposition is ``== T (mod 4)`` exactly when
   ``L(d) == (R0 - T)/2 (mod 2)``, where ``L`` is linear over GF(2): unknown ``d`` at entry
   ``u[a, r]`` contributes ``e_a (x) v_r (x) w_r`` (likewise for ``v`` and ``w``). Gaussian
   elimination over GF(2) gives all solutions: a particular one plus the null space.
3. **Exact search.** Candidates from that affine space are checked over the integers: all of
   them when the null space has at most ``exhaustive_dim`` dimensions, else ``restarts``
   random walks over null-space directions on the exact L1 residual (a heuristic: a lift it
   misses may exist).
4. **Exact verification** over ``Z`` of the result (:meth:`Algorithm.verify`); nothing is
   returned that has not passed it.

When that fails, the same steps run again with the zero entries free as well (a zero may
become 2, which is 0 modulo 2). A Z2 solution with no lift of either kind found is not
lifted: :class:`LiftError` says what was tried.
"""

from __future__ import annotations

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.tensor import matmul_tensor


class LiftError(ValueError):
    """No integer lift was found (the message says what was tried)."""


def lift_z2(algorithm: Algorithm, exhaustive_dim: int = 12, restarts: int = 40,
            seed: int = 0) -> Algorithm:
    """An exactly verified ``Z`` algorithm with the support of the ``Z2`` ``algorithm``."""
    if algorithm.ring != "Z2":
        raise LiftError(f"{algorithm.name}: ring is {algorithm.ring}; only Z2 algorithms "
                        "are lifted")
    if not algorithm.verify().ok:
        raise LiftError(f"{algorithm.name}: not a valid decomposition modulo 2; nothing to lift")
    n, m, p = algorithm.shape
    factors = [np.asarray(x, dtype=np.int64) % 2 for x in (algorithm.u, algorithm.v, algorithm.w)]
    target = matmul_tensor(n, m, p)
    rhs = ((_reconstruct(*factors) - target) // 2 % 2).ravel().astype(np.uint8)
    tried = []
    found = None
    for with_twos in (False, True):
        unknowns = _unknowns(factors, with_twos)
        solved = _solve_gf2(_linear_system(factors, unknowns), rhs)
        if solved is None:
            tried.append(f"{'+-1 and 2' if with_twos else '+-1'}: no solution modulo 4")
            continue
        particular, null_space = solved
        found = _search(factors, unknowns, particular, null_space, target, exhaustive_dim,
                        restarts, np.random.default_rng(seed))
        if found is not None:
            break
        tried.append(f"{'+-1 and 2' if with_twos else '+-1'}: correct modulo 4, no exact choice "
                     f"found (null space dimension {len(null_space)})")
    if found is None:
        raise LiftError(f"{algorithm.name}: no integer lift found; tried " + "; ".join(tried))
    lifted = Algorithm(algorithm.shape, *found, "Z",
                       {**algorithm.provenance, "name": f"{algorithm.name}-lifted",
                        "lifted_from": "Z2", "lifting": "sign solve modulo 4 + exact search"})
    check = lifted.verify()
    if not check.ok:  # pragma: no cover - the search only returns exact candidates
        raise LiftError(f"{algorithm.name}: lifted candidate failed verification: "
                        f"{check.describe()}")
    lifted.provenance["verified"] = "exact over Z"
    return lifted


def _unknowns(factors: list[np.ndarray], with_twos: bool) -> list[tuple[int, int, int]]:
    """``(mode, row, term)`` of every free entry: support entries after the gauge (their sign),
    and with ``with_twos`` also the zero entries (which may become 2)."""
    unknowns = []
    rank = factors[0].shape[1]
    for mode, factor in enumerate(factors):
        for term in range(rank):
            rows = np.flatnonzero(factor[:, term])
            start = 1 if mode < 2 and len(rows) else 0
            free = set(rows[start:].tolist())
            if with_twos:
                free |= set(np.flatnonzero(factor[:, term] == 0).tolist())
            unknowns.extend((mode, int(row), term) for row in sorted(free))
    return unknowns


def _linear_system(factors: list[np.ndarray], unknowns: list[tuple[int, int, int]]) -> np.ndarray:
    """GF(2) matrix ``(entries of T, unknowns)``: column = the tensor a sign flip changes by /2."""
    u, v, w = factors
    shape = (u.shape[0], v.shape[0], w.shape[0])
    columns = np.zeros((len(unknowns), *shape), dtype=np.uint8)
    for index, (mode, row, term) in enumerate(unknowns):
        vectors = [u[:, term], v[:, term], w[:, term]]
        vectors[mode] = np.zeros_like(vectors[mode])
        vectors[mode][row] = 1
        columns[index] = np.einsum("i,j,k->ijk", *vectors) % 2
    return columns.reshape(len(unknowns), -1).T.copy()


def _solve_gf2(matrix: np.ndarray, rhs: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]] | None:
    """All solutions of ``matrix @ x == rhs`` over GF(2): ``(particular, null-space basis)``."""
    rows, cols = matrix.shape
    augmented = np.concatenate([matrix, rhs[:, None]], axis=1).astype(bool)
    keep = augmented.any(axis=1)
    augmented = augmented[keep]
    packed = np.packbits(augmented, axis=1)
    pivots: list[int] = []
    row = 0
    for col in range(cols):
        byte, bit = divmod(col, 8)
        mask = np.uint8(0x80 >> bit)
        candidates = np.flatnonzero(packed[row:, byte] & mask) + row
        if len(candidates) == 0:
            continue
        pivot = candidates[0]
        if pivot != row:
            packed[[row, pivot]] = packed[[pivot, row]]
        hits = np.flatnonzero(packed[:, byte] & mask)
        hits = hits[hits != row]
        packed[hits] ^= packed[row]
        pivots.append(col)
        row += 1
        if row == len(packed):
            break
    reduced = np.unpackbits(packed, axis=1)[:, : cols + 1].astype(np.uint8)
    if np.any(reduced[row:, cols]):
        return None
    particular = np.zeros(cols, dtype=np.uint8)
    for r, col in enumerate(pivots):
        particular[col] = reduced[r, cols]
    pivot_set = set(pivots)
    basis = []
    for free in range(cols):
        if free in pivot_set:
            continue
        vector = np.zeros(cols, dtype=np.uint8)
        vector[free] = 1
        for r, col in enumerate(pivots):
            vector[col] = reduced[r, free]
        basis.append(vector)
    return particular, basis


def _signed(factors: list[np.ndarray], unknowns: list[tuple[int, int, int]],
            flips: np.ndarray) -> list[np.ndarray]:
    signed = [f.copy() for f in factors]
    for (mode, row, term), flip in zip(unknowns, flips, strict=True):
        if flip:
            signed[mode][row, term] = -1 if factors[mode][row, term] else 2
    return signed


def _reconstruct(u: np.ndarray, v: np.ndarray, w: np.ndarray) -> np.ndarray:
    return np.einsum("ir,jr,kr->ijk", u, v, w)


def _error(factors: list[np.ndarray], unknowns, flips: np.ndarray, target: np.ndarray) -> int:
    return int(np.abs(_reconstruct(*_signed(factors, unknowns, flips)) - target).sum())


def _search(factors, unknowns, particular, null_space, target, exhaustive_dim, restarts, rng,
            steps: int = 300, uphill: float = 0.02):
    """Exhaustive over a small null space; else a random walk on the exact L1 residual
    (null-space directions, sideways moves accepted, uphill with probability ``uphill``)."""
    basis = np.array(null_space, dtype=np.uint8).reshape(len(null_space), len(unknowns))
    if len(null_space) <= exhaustive_dim:
        for code in range(2 ** len(null_space)):
            bits = np.array([(code >> b) & 1 for b in range(len(null_space))], dtype=np.uint8)
            flips = (particular + bits @ basis) % 2
            if _error(factors, unknowns, flips, target) == 0:
                return _signed(factors, unknowns, flips)
        return None
    for attempt in range(restarts):
        flips = particular.copy()
        if attempt:
            flips = (flips + rng.integers(0, 2, len(basis)) @ basis) % 2
        error = _error(factors, unknowns, flips, target)
        for _step in range(steps):
            if error == 0:
                return _signed(factors, unknowns, flips)
            trial = (flips + basis[rng.integers(len(basis))]) % 2
            trial_error = _error(factors, unknowns, trial, target)
            if trial_error <= error or rng.random() < uphill:
                flips, error = trial, trial_error
        if error == 0:
            return _signed(factors, unknowns, flips)
    return None
