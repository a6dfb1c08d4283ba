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

**Hensel lifting** (:func:`hensel_lift`, ``method="hensel"``; ``"auto"`` tries the sign solve
first, then this): solve modulo 2, 4, 8, ... ``2^levels`` and reconstruct. With factors ``X``
correct modulo ``2^k`` (entries kept as the symmetric residues, so a small integer stays
itself), ``X + 2^k D`` is correct modulo ``2^(k+1)`` exactly when ``J D == (T - R(X)) / 2^k
(mod 2)``, where ``J`` is the Jacobian of ``X -> sum u(x)v(x)w`` modulo 2: it depends only on
``X mod 2``, so every level solves the same GF(2) system with a new right-hand side (the
quadratic terms carry ``4^k``, zero modulo ``2^(k+1)`` for ``k >= 1``). Every entry is free.
``D = 0`` keeps an entry's value; ``D = 1`` moves it by ``2^k`` towards zero's side
(``x - 2^k`` when ``x > 0``, else ``x + 2^k``). A lift with small coefficients is a sequence of
mostly-zero ``D``: each level takes a solution of small weight (the reduced echelon solution,
then steepest descent over null-space vectors) and stops as soon as ``R(X) == T`` over the
integers; ``restarts`` attempts start from random points of the first level's solution space.
Coefficients beyond ``+-1`` and ``2`` appear only through this method. Nothing is returned
before :meth:`Algorithm.verify` passes over ``Z``.
"""

from __future__ import annotations

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.tensor import matmul_tensor


class LiftError(ValueError):
    """No integer lift was found (the message says what was tried)."""


def lift_z2(algorithm: Algorithm, exhaustive_dim: int = 12, restarts: int = 40,
            seed: int = 0, method: str = "sign") -> Algorithm:
    """An exactly verified ``Z`` algorithm congruent to the ``Z2`` ``algorithm`` modulo 2.

    ``method``: ``"sign"`` (the support kept, coefficients +-1, zeros possibly 2), ``"hensel"``
    (:func:`hensel_lift`), ``"auto"`` (sign, then Hensel)."""
    if method not in ("sign", "hensel", "auto"):
        raise ValueError(f"method={method!r}; accepted: sign, hensel, auto")
    if method == "hensel":
        return hensel_lift(algorithm, restarts=restarts, seed=seed)
    if method == "auto":
        try:
            return lift_z2(algorithm, exhaustive_dim, restarts, seed, "sign")
        except LiftError as sign_error:
            try:
                return hensel_lift(algorithm, restarts=restarts, seed=seed)
            except LiftError as hensel_error:
                raise LiftError(f"{sign_error}; {hensel_error}") from None
    _check_liftable(algorithm)
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


# --- Hensel lifting ------------------------------------------------------------------------------
def hensel_lift(algorithm: Algorithm, levels: int = 8, restarts: int = 40,
                seed: int = 0) -> Algorithm:
    """An exactly verified ``Z`` algorithm congruent to the ``Z2`` ``algorithm`` modulo 2, by
    Hensel lifting modulo ``2^levels`` (see the module docstring); :class:`LiftError` when no
    attempt reaches an exact decomposition."""
    _check_liftable(algorithm)
    n, m, p = algorithm.shape
    base = [np.asarray(x, dtype=np.int64) % 2 for x in (algorithm.u, algorithm.v, algorithm.w)]
    target = matmul_tensor(n, m, p)
    unknowns = [(mode, row, term) for mode, factor in enumerate(base)
                for term in range(factor.shape[1]) for row in range(factor.shape[0])]
    system = _GF2System(_linear_system(base, unknowns))  # eliminated once, solved per level
    rng = np.random.default_rng(seed)
    failures: dict[str, int] = {}
    for attempt in range(restarts):
        found, why = _hensel_attempt(base, unknowns, system, target, levels, rng,
                                     randomise=attempt > 0)
        if found is not None:
            lifted = Algorithm(algorithm.shape, *found, "Z",
                               {**algorithm.provenance, "name": f"{algorithm.name}-lifted",
                                "lifted_from": "Z2",
                                "lifting": f"Hensel lifting modulo 2^k (attempt {attempt + 1})"})
            check = lifted.verify()
            if check.ok:
                lifted.provenance["verified"] = "exact over Z"
                return lifted
            why = "candidate failed verification"  # pragma: no cover - exact by construction
        failures[why] = failures.get(why, 0) + 1
    summary = ", ".join(f"{count} x {why}" for why, count in failures.items())
    raise LiftError(f"{algorithm.name}: no integer lift found by Hensel lifting modulo "
                    f"2^{levels} ({restarts} attempts: {summary})")


def _hensel_attempt(base, unknowns, system, target, levels, rng, randomise):
    """One lifting path; ``(factors, "")`` when exact, else ``(None, reason)``."""
    factors = [f.copy() for f in base]
    for k in range(1, levels + 1):
        error = target - _reconstruct(*factors)
        if not error.any():
            return factors, ""
        rhs = ((error // 2**k) % 2).ravel().astype(np.uint8)
        particular = system.solve(rhs)
        if particular is None:
            return None, f"no solution modulo 2^{k + 1}"
        step = _light_solution(particular, system.null_space, rng, randomise and k == 1)
        for index in np.flatnonzero(step):
            mode, row, term = unknowns[index]
            value = factors[mode][row, term]
            factors[mode][row, term] = value - 2**k if value > 0 else value + 2**k
    if not (target - _reconstruct(*factors)).any():
        return factors, ""
    return None, f"not exact after 2^{levels}"


class _GF2System:
    """``matrix @ x == rhs`` over GF(2) for many right-hand sides: the elimination (to reduced
    row echelon form) is done once and its row operations are replayed on each ``rhs``."""

    def __init__(self, matrix: np.ndarray) -> None:
        rows, cols = matrix.shape
        self.keep = np.flatnonzero(matrix.any(axis=1))  # an rhs bit on a zero row: no solution
        self.drop = np.setdiff1d(np.arange(rows), self.keep)
        packed = np.packbits(matrix[self.keep].astype(bool), axis=1)
        self.ops: list[tuple[int, int, np.ndarray]] = []  # (row, swapped with, rows hit: bits)
        pivots: list[int] = []
        row = 0
        for col in range(cols):
            if row == len(packed):
                break
            byte, bit = divmod(col, 8)
            mask = np.uint8(0x80 >> bit)
            candidates = np.flatnonzero(packed[row:, byte] & mask) + row
            if len(candidates) == 0:
                continue
            pivot = int(candidates[0])
            if pivot != row:
                packed[[row, pivot]] = packed[[pivot, row]]
            hit = (packed[:, byte] & mask).astype(bool)
            hit[row] = False
            packed[hit] ^= packed[row]
            self.ops.append((row, pivot, np.packbits(hit)))
            pivots.append(col)
            row += 1
        self.rank, self.pivots, self.cols = row, pivots, cols
        reduced = np.unpackbits(packed[:row], axis=1)[:, :cols]
        pivot_set = set(pivots)
        basis = []
        for free in range(cols):
            if free in pivot_set:
                continue
            vector = np.zeros(cols, dtype=np.uint8)
            vector[free] = 1
            vector[pivots] = reduced[:, free]
            basis.append(vector)
        self.null_space = basis

    def solve(self, rhs: np.ndarray) -> np.ndarray | None:
        """A particular solution (free variables 0), or None when there is none."""
        if rhs[self.drop].any():
            return None
        b = rhs[self.keep].astype(np.uint8).copy()
        size = len(b)
        for row, pivot, hit in self.ops:
            if pivot != row:
                b[row], b[pivot] = b[pivot], b[row]
            if b[row]:
                b ^= np.unpackbits(hit)[:size]
        if b[self.rank:].any():
            return None
        particular = np.zeros(self.cols, dtype=np.uint8)
        particular[self.pivots] = b[: self.rank]
        return particular


def _light_solution(particular: np.ndarray, null_space: list[np.ndarray],
                    rng: np.random.Generator, randomise: bool) -> np.ndarray:
    """A solution of small Hamming weight: from ``particular`` (optionally moved to a random
    point of the solution space), steepest descent over the null-space basis vectors."""
    solution = particular.astype(np.uint8).copy()
    if not null_space:
        return solution
    basis = np.array(null_space, dtype=np.uint8)
    if randomise:
        pick = rng.random(len(basis)) < 0.5 * rng.random()
        if pick.any():
            solution ^= np.bitwise_xor.reduce(basis[pick], axis=0)
    weight = int(solution.sum())
    for _ in range(4 * len(particular)):
        weights = (basis ^ solution[None, :]).sum(axis=1)
        best = int(np.argmin(weights))
        if weights[best] >= weight:
            break
        solution ^= basis[best]
        weight = int(weights[best])
    return solution


def _check_liftable(algorithm: Algorithm) -> None:
    """A :class:`LiftError` unless ``algorithm`` is a valid decomposition modulo 2."""
    if algorithm.ring != "Z2":
        raise LiftError(f"{algorithm.name}: ring is {algorithm.ring}; only Z2 algorithms "
                        "are lifted")
    if not algorithm.verify().ok:
        raise LiftError(f"{algorithm.name}: not a valid decomposition modulo 2; nothing to lift")
