"""Evaluation plans: an algorithm with its additions shared through intermediate variables.

An addition-reduced scheme (Perminov's ``*_reduced.json``, with ``u_fresh``/``v_fresh``/
``w_fresh``) computes sums once and reuses them: ``t1 = a11 + a22`` then
``m1 = (t1 - a12) * (...)``. :class:`AdditionPlan` keeps that plan in our convention
(:mod:`mlo_exp.algorithms.tensor`: A and B row-major, C entries ``i*p+k``, not transposed)
so a benchmark can run it; :meth:`AdditionPlan.expand` gives the plain factor matrices.

Variables are numbered from 0: for the A side ``0..n*m-1`` are A's entries and ``n*m + j`` is
fresh variable ``j`` (likewise B with ``m*p``); for the C side ``0..R-1`` are the products and
``R + j`` is fresh product sum ``j``. A fresh variable may use only variables before it (no
cycles), so expansion is one pass; every expanded coefficient stays within the bounds of
:mod:`mlo_exp.algorithms.parsing`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mlo_exp.algorithms.parsing import MAX_COEFFICIENT, AlgorithmFileError

Combination = list[tuple[int, int]]  # (variable, coefficient) pairs
MAX_FRESH = 2**16
MAX_EXPAND_WORK = 2**25  # variable references times the variables each spans


@dataclass
class AdditionPlan:
    """Intermediate sums of an algorithm (see module docstring for the numbering)."""

    shape: tuple[int, int, int]
    rank: int
    a_fresh: list[Combination]
    b_fresh: list[Combination]
    u: list[Combination]  # per product: the combination of A-side variables
    v: list[Combination]  # per product: the combination of B-side variables
    m_fresh: list[Combination]
    c: list[Combination]  # per C entry i*p+k: the combination of product-side variables

    def additions(self) -> int:
        """Additions and subtractions the plan performs (a sum of k terms costs k - 1)."""
        groups = (self.a_fresh, self.b_fresh, self.u, self.v, self.m_fresh, self.c)
        return sum(max(len(item) - 1, 0) for group in groups for item in group)

    def expand(self, where: str = "<plan>") -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The plain factor matrices ``u (n*m, R)``, ``v (m*p, R)``, ``w (n*p, R)`` (int64)."""
        n, m, p = self.shape
        rank = self.rank
        a = _expand_side(self.a_fresh, self.u, n * m, f"{where}: u")
        b = _expand_side(self.b_fresh, self.v, m * p, f"{where}: v")
        products = _expand_side(self.m_fresh, self.c, rank, f"{where}: w")  # (R, n*p) rows
        return a, b, products.T.copy()

    def to_dict(self) -> dict:
        """A JSON-ready description (lists of ``[variable, coefficient]`` pairs)."""
        def lists(group: list[Combination]) -> list[list[list[int]]]:
            return [[[index, coefficient] for index, coefficient in item] for item in group]

        return {"shape": list(self.shape), "rank": self.rank, "additions": self.additions(),
                "a_fresh": lists(self.a_fresh), "b_fresh": lists(self.b_fresh),
                "u": lists(self.u), "v": lists(self.v), "m_fresh": lists(self.m_fresh),
                "c": lists(self.c)}


def _expand_side(fresh: list[Combination], outputs: list[Combination], real: int,
                 where: str) -> np.ndarray:
    """Dense coefficients over the ``real`` variables: ``(real, len(outputs))``, one column
    per output. Rows are kept sparse while the fresh variables are expanded."""
    if len(fresh) > MAX_FRESH:
        raise AlgorithmFileError(f"{where}: {len(fresh)} fresh variables; accepted: at most "
                                 f"{MAX_FRESH}")
    work = real * sum(len(item) for group in (fresh, outputs) for item in group)
    if work > MAX_EXPAND_WORK:
        raise AlgorithmFileError(f"{where}: expanding the plan takes {work} steps; accepted: "
                                 f"at most {MAX_EXPAND_WORK}")
    rows: list[dict[int, int]] = []
    for j, combination in enumerate(fresh):
        rows.append(_combine(rows, combination, real, real + j,
                             f"{where}: fresh variable {j + 1}"))
    dense = np.zeros((real, len(outputs)), dtype=np.int64)
    for t, combination in enumerate(outputs):
        for index, value in _combine(rows, combination, real, real + len(rows),
                                     f"{where}: term {t + 1}").items():
            dense[index, t] = value
    return dense


def _combine(rows: list[dict[int, int]], combination: Combination, real: int, limit: int,
             where: str) -> dict[int, int]:
    """``sum coefficient * variable`` as a sparse row over the real variables."""
    total: dict[int, int] = {}
    for index, coefficient in combination:
        if not 0 <= index < limit:
            raise AlgorithmFileError(f"{where}: variable {index + 1} is not defined before it; "
                                     f"accepted: variables 1 to {limit}")
        row = {index: 1} if index < real else rows[index - real]
        for variable, value in row.items():
            total[variable] = total.get(variable, 0) + coefficient * value
    if any(abs(x) > MAX_COEFFICIENT for x in total.values()):
        raise AlgorithmFileError(f"{where}: an expanded coefficient exceeds {MAX_COEFFICIENT}; "
                                 "accepted: at most that")
    return {variable: value for variable, value in total.items() if value}
