"""Addition-reduced evaluation plans: the block sums of an algorithm with shared subexpressions.

A rank-``R`` algorithm for ``<n,m,p>`` needs three linear maps per level: the operand sums
``S_r = sum_a U[a,r] A_a`` (``R`` outputs from ``nm`` inputs), ``T_r = sum_b V[b,r] B_b`` and
the output sums ``C_c = sum_r W[c,r] M_r``. Done term by term they cost ``nnz - outputs``
block additions each ("naive": AlphaTensor's ``<4,4,4>`` rank 49 needs 468). A
:class:`LinearPlan` is a straight-line program for one map: ``ops`` define new values as
small linear combinations of inputs and earlier values, and each output is
``scale * value``. Plans come from greedy pair elimination (the most frequent pair
``x_i + r x_j`` across the outputs becomes a new value, repeatedly; ties broken at random
over a few seeded tries, the best try kept). Operand scales are folded into ``W``, so the
products' operands are used as they are.

An addition-reduced file (Perminov's, with fresh variables: ``Algorithm.plan``, an
:class:`~mlo_exp.algorithms.plan.AdditionPlan`) brings its own plan: :func:`file_plan` runs
it as it is (checked exactly against the scheme's maps first). ``plan="reduced"`` keeps the
file's plan unless the shared-subexpression search finds fewer additions; ``plan="file"``
always uses the file's plan where there is one.

Equivalent schemes: for invertible ``X, Y, Z`` the terms of ``(X^T (x) Y) U``,
``(Y^-T (x) Z) V``, ``(X^-1 (x) Z^-T) W`` are again an algorithm for the same product (the
tensor is invariant under this basis change). The number of additions is not: Strassen's
18 become Winograd's 15. :func:`reduce_additions` tries the exact basis changes of
:data:`KNOWN_BASIS_CHANGES` (found offline by :func:`search_basis_change`) and, for 2x2
schemes, searches all unimodular 2x2 matrices with entries in ``{-1, 0, 1}``; the result is
verified exactly before it is used. Counts: :func:`addition_counts` (before and after), for
``mlo-algorithms show`` and the benchmark report.

This module depends on NumPy, the algorithm type and the config's plan names only
(``mlo-algorithms show`` reports its counts; the benchmark runs its plans).
"""

from __future__ import annotations

import functools
import itertools
import random
from collections import Counter
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.config import BENCHMARK_PLANS

Term = tuple[int, Fraction]  # (value index, coefficient)


@dataclass(frozen=True)
class LinearPlan:
    """``outputs[o] = scale * value``; values ``0..inputs-1`` are the inputs, value
    ``inputs + k`` is ``sum(c * value for value, c in ops[k])``. ``None``: a zero output."""

    inputs: int
    ops: tuple[tuple[Term, ...], ...]
    outputs: tuple[tuple[int, Fraction] | None, ...]

    @property
    def additions(self) -> int:
        return sum(len(op) - 1 for op in self.ops)

    def matrix(self) -> np.ndarray:
        """The map the plan computes, ``(outputs, inputs)`` exact (a check of the plan)."""
        rows: list[dict[int, Fraction]] = [{i: Fraction(1)} for i in range(self.inputs)]
        for op in self.ops:
            row: dict[int, Fraction] = {}
            for value, coefficient in op:
                for i, c in rows[value].items():
                    row[i] = row.get(i, Fraction(0)) + coefficient * c
            rows.append(row)
        result = np.zeros((len(self.outputs), self.inputs), dtype=object)
        result[...] = Fraction(0)
        for o, output in enumerate(self.outputs):
            if output is not None:
                for i, c in rows[output[0]].items():
                    result[o, i] += output[1] * c
        return result


def naive_plan(matrix: np.ndarray) -> LinearPlan:
    """Every output summed on its own (``nnz - 1`` additions per output)."""
    return _finish(_rows(matrix), matrix.shape[1], [])


def greedy_plan(matrix: np.ndarray, tries: int = 1, seed: int = 0) -> LinearPlan:
    """Greedy pair elimination (module docstring); ``tries`` seeded tie-breaks, best kept.
    ``matrix``: ``(outputs, inputs)`` exact coefficients."""
    best = None
    for attempt in range(max(1, tries)):
        rng = random.Random(seed * 1000003 + attempt) if attempt else None
        plan = _greedy(_rows(matrix), matrix.shape[1], rng)
        if best is None or plan.additions < best.additions:
            best = plan
    assert best is not None
    return best


@dataclass(frozen=True)
class SchemePlan:
    """How one level of an algorithm is evaluated: the scheme actually executed (the
    algorithm, or an exactly verified equivalent after a basis change), its three plans,
    and the additions before (term by term, the original scheme) and after."""

    algorithm: Algorithm  # the scheme executed
    a: LinearPlan  # S_r from the A blocks; scales folded into c
    b: LinearPlan
    c: LinearPlan  # C blocks from the products M_r
    naive_additions: int  # of the original algorithm, term by term
    basis_change: tuple[Any, Any, Any] | None  # (X, Y, Z) as nested lists, or None
    from_file: bool = False  # the algorithm file's own plan, run as it is

    @property
    def additions(self) -> int:
        return self.a.additions + self.b.additions + self.c.additions

    def describe(self) -> str:
        change = ", after a basis change" if self.basis_change is not None else ""
        change += ", the file's own plan" if self.from_file else ""
        return (f"{self.additions} block additions per level (term by term: "
                f"{self.naive_additions}; A {self.a.additions}, B {self.b.additions}, "
                f"C {self.c.additions}{change})")


def naive_additions(algorithm: Algorithm) -> int:
    """Block additions of the term-by-term evaluation: ``nnz - outputs`` for each map."""
    u, v, w = (np.asarray(x, dtype=object) for x in (algorithm.u, algorithm.v, algorithm.w))
    total = 0
    for matrix in (u.T, v.T, w):
        for row in matrix:
            total += max(0, int(sum(1 for x in row if x != 0)) - 1)
    return total


def plan_scheme(algorithm: Algorithm, plan: str = "reduced", tries: int | None = None,
                seed: int = 0) -> SchemePlan:
    """The evaluation plan of ``algorithm`` (cached by digest). ``plan="reduced"`` (the
    default): the fewest additions of the file's own plan (if any) and of
    shared subexpressions with the best known basis change; ``"file"``: the file's own plan
    where the algorithm has one, else as ``reduced``; ``"naive"``: term by term."""
    if plan not in BENCHMARK_PLANS:
        raise ValueError(f"plan={plan!r}; accepted: {', '.join(BENCHMARK_PLANS)}")
    own = file_plan(algorithm) if plan != "naive" else None
    if plan == "file" and own is not None:
        return own
    chosen = _plan_cached(algorithm.digest(), plan != "naive", tries, seed,
                          _Holder(algorithm))
    if own is not None and own.additions <= chosen.additions:
        return own
    return chosen


def file_plan(algorithm: Algorithm) -> SchemePlan | None:
    """The algorithm file's own plan (``algorithm.plan``) as it is, the operands' scales
    folded into the output side; None when the algorithm has none, when the plan does not
    compute the scheme's three maps exactly, or when it uses a zero operand."""
    source = algorithm.plan
    if source is None:
        return None
    n, m, p = algorithm.shape
    a = _linear(source.a_fresh, source.u, n * m)
    b = _linear(source.b_fresh, source.v, m * p)
    c = _linear(source.m_fresh, source.c, algorithm.rank)
    u, v, w = (np.asarray(x, dtype=object) for x in (algorithm.u, algorithm.v, algorithm.w))
    if not all(_same(plan.matrix(), want) for plan, want in ((a, u.T), (b, v.T), (c, w))):
        return None
    if any(o is None for o in a.outputs + b.outputs):
        return None
    scales = [a.outputs[r][1] * b.outputs[r][1] for r in range(algorithm.rank)]
    return SchemePlan(algorithm, _unit_scales(a), _unit_scales(b), _scale_inputs(c, scales),
                      naive_additions(algorithm), None, from_file=True)


def _linear(fresh: list, outputs: list, inputs: int) -> LinearPlan:
    """An :class:`~mlo_exp.algorithms.plan.AdditionPlan` side as a :class:`LinearPlan` (same
    numbering: fresh variable ``j`` is value ``inputs + j``); an output of several terms
    becomes one more op."""
    ops = [tuple((i, Fraction(c)) for i, c in combination) for combination in fresh]
    results: list[tuple[int, Fraction] | None] = []
    for combination in outputs:
        if not combination:
            results.append(None)
        elif len(combination) == 1:
            ((index, coefficient),) = combination
            results.append((index, Fraction(coefficient)))
        else:
            ops.append(tuple((i, Fraction(c)) for i, c in combination))
            results.append((inputs + len(ops) - 1, Fraction(1)))
    return LinearPlan(inputs, tuple(ops), tuple(results))


def _scale_inputs(plan: LinearPlan, scales: list[Fraction]) -> LinearPlan:
    """The same map reading input ``i`` divided by ``scales[i]`` (each reference to it is
    multiplied by ``scales[i]``)."""
    def scaled(value: int, coefficient: Fraction) -> Fraction:
        return coefficient * scales[value] if value < plan.inputs else coefficient

    ops = tuple(tuple((value, scaled(value, c)) for value, c in op) for op in plan.ops)
    outputs = tuple(None if o is None else (o[0], scaled(*o)) for o in plan.outputs)
    return LinearPlan(plan.inputs, ops, outputs)


def _same(got: np.ndarray, want: np.ndarray) -> bool:
    return got.shape == want.shape and all(
        Fraction(x) == Fraction(y) for x, y in zip(got.ravel(), want.ravel(), strict=True))


def addition_counts(algorithm: Algorithm) -> dict[str, int]:
    """``{"naive": ..., "reduced": ...}`` block additions per level (for ``show``)."""
    plan = plan_scheme(algorithm)
    return {"naive": plan.naive_additions, "reduced": plan.additions}


class _Holder:
    """Carries the algorithm into the cache without taking part in its key."""

    def __init__(self, algorithm: Algorithm) -> None:
        self.algorithm = algorithm

    def __hash__(self) -> int:
        return 0

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Holder)


@functools.lru_cache(maxsize=64)
def _plan_cached(digest: str, reduce: bool, tries: int | None, seed: int,
                 holder: _Holder) -> SchemePlan:
    algorithm = holder.algorithm
    naive = naive_additions(algorithm)
    if not reduce:
        return _build(algorithm, algorithm, naive, None, tries=0, seed=seed)
    if tries is None:  # seeded tie-breaks: many for mid-sized schemes, where they pay
        tries = 1 if algorithm.rank <= 8 else 48 if 30 < algorithm.rank <= 64 else 4
    candidates: list[tuple[Algorithm, Any]] = [(algorithm, None)]
    known = KNOWN_BASIS_CHANGES.get(digest)
    if known is not None:
        candidates.append((equivalent(algorithm, *known), known))
    elif algorithm.shape == (2, 2, 2) and algorithm.ring != "Z2":
        found = search_basis_change_2x2(algorithm)
        if found is not None:
            candidates.append((equivalent(algorithm, *found), found))
    best = None
    for scheme, change in candidates:
        if change is not None and not scheme.verify().ok:  # never trust a basis change
            continue
        plan = _build(algorithm, scheme, naive, change, tries=tries, seed=seed)
        if best is None or plan.additions < best.additions:
            best = plan
    assert best is not None
    return best


def _build(original: Algorithm, scheme: Algorithm, naive: int, change: Any, tries: int,
           seed: int) -> SchemePlan:
    u, v, w = (np.asarray(x, dtype=object) for x in (scheme.u, scheme.v, scheme.w))
    make = (lambda m: greedy_plan(m, tries, seed)) if tries else naive_plan
    a, b = make(u.T), make(v.T)
    w = w.copy()
    for r in range(scheme.rank):  # fold the operands' scales into W
        scale = (a.outputs[r][1] if a.outputs[r] else Fraction(0)) * \
                (b.outputs[r][1] if b.outputs[r] else Fraction(0))
        w[:, r] = [Fraction(x) * scale for x in w[:, r]]
    a, b = _unit_scales(inline_single_use(a)), _unit_scales(inline_single_use(b))
    c = inline_single_use(make(w))
    return SchemePlan(scheme, a, b, c, naive, change)


def inline_single_use(plan: LinearPlan) -> LinearPlan:
    """The same map with every intermediate sum used only once merged into its user
    (``t = x + y; s = t + z`` becomes ``s = x + y + z``): as many additions, fewer block
    passes (a fused sum of ``k`` terms reads ``k`` blocks and writes one) and fewer
    temporaries."""
    uses: Counter = Counter()
    for op in plan.ops:
        for value, _ in op:
            uses[value] += 1
    outputs = {o[0] for o in plan.outputs if o is not None}
    mapping: dict[int, int] = {i: i for i in range(plan.inputs)}
    expanded: dict[int, list[Term]] = {}
    ops: list[tuple[Term, ...]] = []
    for k, op in enumerate(plan.ops):
        value = plan.inputs + k
        terms: dict[int, Fraction] = {}
        for source, coefficient in op:
            parts = expanded.get(source, [(mapping.get(source, source), Fraction(1))])
            for target, c in parts:
                terms[target] = terms.get(target, Fraction(0)) + coefficient * c
        merged = [(t, c) for t, c in terms.items() if c != 0]
        if uses[value] == 1 and value not in outputs:
            expanded[value] = merged
            continue
        ops.append(tuple(merged))
        mapping[value] = plan.inputs + len(ops) - 1
    new_outputs = tuple(None if o is None else (mapping[o[0]], o[1]) for o in plan.outputs)
    return LinearPlan(plan.inputs, tuple(ops), new_outputs)


def _unit_scales(plan: LinearPlan) -> LinearPlan:
    outputs = tuple(None if o is None else (o[0], Fraction(1)) for o in plan.outputs)
    return LinearPlan(plan.inputs, plan.ops, outputs)


def _fraction(x: Any) -> Fraction:
    x = Fraction(x)
    return Fraction(int(x.numerator), int(x.denominator))


def _rows(matrix: np.ndarray) -> list[dict[int, Fraction]]:
    return [{j: _fraction(x) for j, x in enumerate(row) if x != 0} for row in matrix]


def _key(ci: Fraction, cj: Fraction) -> tuple[int, int]:
    """The ratio ``cj / ci`` as a reduced integer pair (fast to hash)."""
    num, den = cj.numerator * ci.denominator, cj.denominator * ci.numerator
    if den < 0:
        num, den = -num, -den
    from math import gcd
    g = gcd(num, den)
    return num // g, den // g


def _greedy(rows: list[dict[int, Fraction]], inputs: int, rng: random.Random | None) -> LinearPlan:
    rows = [dict(row) for row in rows]
    ops: list[tuple[Term, ...]] = []
    while True:
        counts: Counter = Counter()
        for row in rows:
            items = sorted(row.items())
            for x, (i, ci) in enumerate(items):
                for j, cj in items[x + 1:]:
                    counts[(i, j, _key(ci, cj))] += 1
        if not counts:
            break
        most = max(counts.values())
        if most < 2:
            break
        candidates = [key for key, count in counts.items() if count == most]
        i, j, (num, den) = rng.choice(candidates) if rng else min(candidates)
        ratio = Fraction(num, den)
        value = inputs + len(ops)
        ops.append(((i, Fraction(1)), (j, ratio)))
        for row in rows:
            if i in row and j in row and row[j] == row[i] * ratio:
                coefficient = row.pop(i)
                del row[j]
                row[value] = coefficient
    return _finish(rows, inputs, ops)


def _finish(rows: list[dict[int, Fraction]], inputs: int,
            ops: list[tuple[Term, ...]]) -> LinearPlan:
    """Each remaining row with several terms becomes one op (led by its most common
    coefficient, so most terms are +-1); a single term is the output itself."""
    ops = list(ops)
    outputs: list[tuple[int, Fraction] | None] = []
    for row in rows:
        if not row:
            outputs.append(None)
        elif len(row) == 1:
            ((value, coefficient),) = row.items()
            outputs.append((value, coefficient))
        else:
            magnitudes = Counter(abs(c) for c in row.values())
            lead = max(magnitudes, key=lambda c: (magnitudes[c], c == 1))
            terms = sorted(row.items(), key=lambda t: (t[1] != lead, t[0]))
            scale = terms[0][1]
            ops.append(tuple((value, c / scale) for value, c in terms))
            outputs.append((inputs + len(ops) - 1, scale))
    return LinearPlan(inputs, tuple(ops), tuple(outputs))


# --- equivalent schemes --------------------------------------------------------------------
def equivalent(algorithm: Algorithm, x: Any, y: Any, z: Any) -> Algorithm:
    """The scheme after the basis change ``(X, Y, Z)`` (module docstring); same product."""
    n, m, p = algorithm.shape
    xm, ym, zm = (_exact_matrix(t) for t in (x, y, z))
    if xm.shape != (n, n) or ym.shape != (m, m) or zm.shape != (p, p):
        raise ValueError(f"basis change shapes {xm.shape}, {ym.shape}, {zm.shape} do not fit "
                         f"<{n},{m},{p}>")
    xi, yi, zi = (_inverse(t) for t in (xm, ym, zm))
    u = _kron(xm.T, ym) @ np.asarray(algorithm.u, dtype=object)
    v = _kron(yi.T, zm) @ np.asarray(algorithm.v, dtype=object)
    w = _kron(xi, zi.T) @ np.asarray(algorithm.w, dtype=object)
    provenance = {**algorithm.provenance, "name": algorithm.name,
                  "basis_change": [np.asarray(t, dtype=object).tolist() for t in (x, y, z)]}
    return Algorithm(algorithm.shape, u, v, w, algorithm.ring, _jsonable(provenance))


def search_basis_change_2x2(algorithm: Algorithm) -> tuple[Any, Any, Any] | None:
    """The basis change with the fewest additions over all unimodular 2x2 ``X, Y, Z`` with
    entries in ``{-1, 0, 1}`` (exhaustive; each map's count depends on two of the three),
    or None when none beats the scheme as it is."""
    mats = [np.array(e, dtype=object).reshape(2, 2) for e in itertools.product((-1, 0, 1),
                                                                              repeat=4)]
    # -X changes no count (a sign per block), so one of each +-pair is enough.
    mats = [t for t in mats if abs(t[0, 0] * t[1, 1] - t[0, 1] * t[1, 0]) == 1
            and next(x for x in t.ravel() if x != 0) > 0]
    return _search_tables(algorithm, mats)


def _search_tables(algorithm: Algorithm, mats: list[np.ndarray]) -> tuple[Any, Any, Any] | None:
    u, v, w = (np.asarray(x, dtype=object) for x in (algorithm.u, algorithm.v, algorithm.w))
    inverses = [_inverse(_exact_matrix(t)) for t in mats]
    k = len(mats)
    fa, fb, fc = (np.zeros((k, k)) for _ in range(3))
    for i in range(k):
        for j in range(k):
            fa[i, j] = greedy_plan((_kron(mats[i].T, mats[j]) @ u).T).additions
            fb[i, j] = greedy_plan((_kron(inverses[i].T, mats[j]) @ v).T).additions
            fc[i, j] = greedy_plan(_kron(inverses[i], inverses[j].T) @ w).additions
    total = fa[:, :, None] + fb[None, :, :] + fc[:, None, :]
    x, y, z = np.unravel_index(int(np.argmin(total)), total.shape)
    identity = next(i for i, t in enumerate(mats) if (t == np.eye(2, dtype=int)).all())
    if total[x, y, z] >= total[identity, identity, identity]:
        return None
    return tuple(np.asarray(mats[t], dtype=int).tolist() for t in (x, y, z))


def search_basis_change(algorithm: Algorithm, steps: int = 200, seed: int = 0,
                        tries: int = 1) -> tuple[tuple[Any, Any, Any] | None, int]:
    """A local search over basis changes by elementary row operations (``X <- X (I + s
    E_ij)``, ``s = +-1``, entries kept within ``[-2, 2]``), accepting equal or fewer
    additions. Returns the best ``(X, Y, Z)`` (None: the identity) and its additions. Slow
    (seconds to minutes): run it offline and add the result to
    :data:`KNOWN_BASIS_CHANGES`."""
    rng = random.Random(seed)
    dims = algorithm.shape
    current = [np.eye(d, dtype=int) for d in dims]

    def cost(mats: list[np.ndarray]) -> int:
        scheme = equivalent(algorithm, *mats)
        u, v, w = (np.asarray(x, dtype=object) for x in (scheme.u, scheme.v, scheme.w))
        return sum(greedy_plan(t, tries).additions for t in (u.T, v.T, w))

    score = best_score = cost(current)
    best = None
    for _ in range(steps):
        which = rng.randrange(3)
        d = dims[which]
        if d < 2:
            continue
        i, j = rng.sample(range(d), 2)
        move = np.eye(d, dtype=int)
        move[i, j] = rng.choice((-1, 1))
        trial = list(current)
        trial[which] = current[which] @ move
        if np.abs(trial[which]).max() > 2:
            continue
        trial_score = cost(trial)
        if trial_score <= score:
            current, score = trial, trial_score
            if score < best_score:
                best_score, best = score, tuple(t.tolist() for t in current)
    return best, best_score


def _exact_matrix(t: Any) -> np.ndarray:
    array = np.asarray(t, dtype=object)
    return np.vectorize(_fraction, otypes=[object])(array)


def _inverse(t: np.ndarray) -> np.ndarray:
    """Exact inverse (Gauss-Jordan over the rationals)."""
    size = t.shape[0]
    work = [[_fraction(x) for x in row] + [Fraction(int(i == j)) for j in range(size)]
            for i, row in enumerate(t)]
    for col in range(size):
        pivot = next((r for r in range(col, size) if work[r][col] != 0), None)
        if pivot is None:
            raise ValueError("basis change matrix is singular")
        work[col], work[pivot] = work[pivot], work[col]
        lead = work[col][col]
        work[col] = [x / lead for x in work[col]]
        for r in range(size):
            if r != col and work[r][col] != 0:
                factor = work[r][col]
                work[r] = [a - factor * b for a, b in zip(work[r], work[col], strict=True)]
    return np.array([row[size:] for row in work], dtype=object)


def _kron(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    return np.array(np.kron(np.asarray(x, dtype=object), np.asarray(y, dtype=object)),
                    dtype=object)


def _jsonable(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, Fraction):
        return int(value) if value.denominator == 1 else str(value)
    if isinstance(value, np.integer):
        return int(value)
    return value


# Basis changes found offline (search_basis_change / search_basis_change_2x2) for the
# library's schemes, keyed by the algorithm's digest; each is verified again before use.
KNOWN_BASIS_CHANGES: dict[str, tuple[Any, Any, Any]] = {
    # Strassen 1969 -> Winograd's form: 18 -> 15 additions.
    "74021ade308b62b99bebf9550a3593768d9b806fc39e09d25805881161e3a33e":
        ([[-1, -1], [-1, 0]], [[-1, 0], [-1, 1]], [[-1, 0], [0, -1]]),
    # AlphaTensor's <3,3,3> rank 23: 72 -> 71 (search_basis_change, seed 0; B side 21 -> 20).
    "ba5f34f33a824a440d04a544551d80194b521edbf801bf32b24e851e8e737c20":
        ([[1, 0, 0], [0, 1, 0], [0, 0, 1]], [[1, 0, 0], [0, 1, 0], [0, 0, 1]],
         [[1, 0, 1], [0, 1, 0], [0, 0, 1]]),
}
