"""Perminov's scheme JSON (dronperminov/FastMatrixMultiplication), read and written.

Convention (**C transposed**, as AlphaTensor's files): ``"n": [n, m, p]`` (A is ``n x m``, B is
``m x p``), ``"m"``: the rank R; ``"u"``: R rows of ``n*m`` coefficients over A row-major
(``a11, a12, ...``); ``"v"``: R rows of ``m*p`` over B; ``"w"``: R rows of ``p*n`` over
**C transposed**, entry ``k*n+i`` is ``c[i,k]``: the tensor is ``T[i*m+j, j*p+k, k*n+i]``.
``"z2": true`` marks a scheme valid only modulo 2. Coefficients are JSON integers, decimals
(read exactly: ``0.5`` is 1/2) or strings ``"p/q"``. The other keys (``multiplications``,
``elements``: the same scheme as formulas; ``complexity``, ``invariant_*``, ``type``, ``weight``,
``*_ones``) are informational; the matrices are what is read. The ring is ``Z2`` when ``z2`` is
true, ``Q`` when a coefficient is a fraction, else ``Z``.

Addition-reduced files (``*_reduced.json``: ``u_fresh``, ``v_fresh``, ``w_fresh`` present) share
sums through intermediate variables. Every entry is a list of terms ``{"index": i, "value": c}``
(``c`` a nonzero integer) over **0-based** variables: ``u``/``v`` hold R lists over A's (B's)
entries ``0..n*m-1`` and fresh variables ``n*m+j`` (``u_fresh[j]``, using only variables before
it); ``w`` holds ``p*n`` lists, one per entry of C transposed (``k*n+i``), over the products
``0..R-1`` and fresh sums ``R+j`` (``w_fresh``). ``"complexity": {"naive": .., "reduced": ..}``
states the additions; the plan's own count must equal ``reduced``. They are expanded to the
scheme, and the plan is kept as :attr:`Algorithm.plan`
(:class:`mlo_exp.algorithms.plan.AdditionPlan`, in our convention, C not transposed).

Bounds: those of :mod:`mlo_exp.algorithms.parsing`; a list of indices holds at most
``MAX_COMBINATION`` entries and a file at most ``MAX_FRESH`` fresh variables per side.
"""

from __future__ import annotations

import json
from fractions import Fraction
from typing import Any

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm, load_json
from mlo_exp.algorithms.parsing import (
    MAX_COEFFICIENT,
    AlgorithmFileError,
    Number,
    check_dim,
    check_exact_cost,
    check_size,
    exact_matrix,
    exact_value,
)
from mlo_exp.algorithms.plan import MAX_FRESH, AdditionPlan, Combination
from mlo_exp.algorithms.tensor import is_integral

ACCEPTED = ('accepted: a Perminov scheme: {"n": [n, m, p], "m": R, "u": [R rows of n*m], '
            '"v": [R rows of m*p], "w": [R rows of p*n, C transposed]}, optionally '
            '"z2" and the addition-reduced "u_fresh", "v_fresh", "w_fresh" (lists of '
            '{"index": i, "value": c}, 0-based)')
MAX_COMBINATION = 4096 + MAX_FRESH


def looks_like_perminov(data: Any) -> bool:
    """A parsed JSON object in this format (``n``, ``m`` and ``u``; not our ``format``)."""
    return isinstance(data, dict) and "format" not in data and {"n", "m", "u"} <= set(data)


def read_perminov(text: str, source: str, name: str | None = None) -> Algorithm:
    """Parse the JSON text of one scheme (see module docstring); not verified here."""
    return perminov_from_dict(load_json(text, source, decimals=True), source, name)


def perminov_from_dict(data: Any, source: str, name: str | None = None) -> Algorithm:
    """Build an :class:`Algorithm` from a parsed Perminov JSON object."""
    if not looks_like_perminov(data):
        raise AlgorithmFileError(f"{source}: not a Perminov scheme (no keys n, m, u); "
                                 f"{ACCEPTED}")
    dims = data["n"]
    if not isinstance(dims, list) or len(dims) != 3:
        raise AlgorithmFileError(f"{source}: n: {_brief(dims)}; accepted: [n, m, p]")
    n, m, p = (check_dim(x, f"n[{i}]", source) for i, x in enumerate(dims))
    rank = data["m"]
    if type(rank) is not int:
        raise AlgorithmFileError(f"{source}: m: {_brief(rank)}; accepted: the rank, an integer")
    check_size((n, m, p), rank, source)
    z2 = data.get("z2", False)
    if not isinstance(z2, bool):
        raise AlgorithmFileError(f"{source}: z2: {_brief(z2)}; accepted: true or false")
    fresh_keys = [key for key in ("u_fresh", "v_fresh", "w_fresh") if key in data]
    if fresh_keys:
        if len(fresh_keys) != 3:
            raise AlgorithmFileError(f"{source}: {', '.join(fresh_keys)} without the others; "
                                     "accepted: all of u_fresh, v_fresh, w_fresh or none")
        plan = _plan(data, (n, m, p), rank, source)
        u, v, w = plan.expand(source)
        _check_stated_additions(data, plan, source)
    else:
        plan = None
        u, v, w_theirs = (_matrix(data, key, rank, rows, source)
                          for key, rows in (("u", n * m), ("v", m * p), ("w", p * n)))
        w = _from_c_transposed(w_theirs, n, p)
    check_exact_cost((n, m, p), (u, v, w), source)
    integral = all(is_integral(x) for x in (u, v, w))
    if z2 and not integral:
        raise AlgorithmFileError(f"{source}: z2 is true but the coefficients include fractions; "
                                 "accepted: integers modulo 2")
    ring = "Z2" if z2 else "Z" if integral else "Q"
    provenance = {"name": name or f"perminov-{n}x{m}x{p}-{rank}",
                  "source": f"Perminov JSON {source}"}
    return Algorithm((n, m, p), u, v, w, ring, provenance, plan=plan)


def _brief(value: Any) -> str:
    text = json.dumps(value, default=str) if not isinstance(value, (list, dict)) else (
        f"a list of {len(value)} items" if isinstance(value, list) else "an object")
    return text if len(text) <= 40 else text[:40] + "..."


def _matrix(data: dict, key: str, rank: int, rows: int, source: str) -> np.ndarray:
    """``data[key]``: R rows of ``rows`` numbers -> an exact ``(rows, R)`` array."""
    value = data.get(key)
    if not isinstance(value, list) or len(value) != rank:
        raise AlgorithmFileError(f"{source}: {key}: {_brief(value)}; accepted: {rank} rows (m) "
                                 f"of {rows} numbers")
    numbers: list[Number] = []
    for r, row in enumerate(value):
        if not isinstance(row, list) or len(row) != rows:
            raise AlgorithmFileError(f"{source}: {key}[{r}]: {_brief(row)}; accepted: a list of "
                                     f"{rows} numbers")
        numbers += [exact_value(x, f"{source}: {key}[{r}][{i}]") for i, x in enumerate(row)]
    return exact_matrix(numbers, rank, rows).T


def _from_c_transposed(w: np.ndarray, n: int, p: int) -> np.ndarray:
    """Rows indexed ``k*n+i`` (C transposed) -> ours, ``i*p+k``."""
    order = [k * n + i for i in range(n) for k in range(p)]
    return w[order]


def _to_c_transposed(w: np.ndarray, n: int, p: int) -> np.ndarray:
    order = [i * p + k for k in range(p) for i in range(n)]
    return w[order]


def _plan(data: dict, shape: tuple[int, int, int], rank: int, source: str) -> AdditionPlan:
    n, m, p = shape
    a_fresh = _combinations(data, "u_fresh", None, source)
    b_fresh = _combinations(data, "v_fresh", None, source)
    m_fresh = _combinations(data, "w_fresh", None, source)
    u = _combinations(data, "u", rank, source)
    v = _combinations(data, "v", rank, source)
    w = _combinations(data, "w", p * n, source)
    c = [w[k * n + i] for i in range(n) for k in range(p)]
    for key, group, real in (("u_fresh", a_fresh, n * m), ("v_fresh", b_fresh, m * p),
                             ("w_fresh", m_fresh, rank)):
        for j, combination in enumerate(group):
            _check_indices(combination, real + j, f"{source}: {key}[{j}]")
    for key, group, real, fresh in (("u", u, n * m, a_fresh), ("v", v, m * p, b_fresh),
                                    ("w", w, rank, m_fresh)):
        for t, combination in enumerate(group):
            _check_indices(combination, real + len(fresh), f"{source}: {key}[{t}]")
    return AdditionPlan(shape, rank, a_fresh, b_fresh, u, v, m_fresh, c)


def _combinations(data: dict, key: str, count: int | None, source: str) -> list[Combination]:
    value = data.get(key)
    limit = MAX_FRESH if count is None else count
    if not isinstance(value, list) or len(value) > limit or (
            count is not None and len(value) != count):
        wanted = f"{count} lists" if count is not None else f"at most {MAX_FRESH} lists"
        raise AlgorithmFileError(f"{source}: {key}: {_brief(value)}; accepted: {wanted} of "
                                 '{"index": i, "value": c} terms (0-based variables)')
    return [_combination(item, f"{source}: {key}[{t}]") for t, item in enumerate(value)]


def _combination(item: Any, where: str) -> Combination:
    """One list of ``{"index": i, "value": c}`` terms."""
    accepted = ('accepted: a list of {"index": i, "value": c} terms, i a 0-based variable, '
                "c a nonzero integer")
    if not isinstance(item, list) or len(item) > MAX_COMBINATION:
        raise AlgorithmFileError(f"{where}: {_brief(item)}; {accepted}")
    result: Combination = []
    for term in item:
        if not (isinstance(term, dict) and set(term) == {"index", "value"}
                and type(term["index"]) is int and 0 <= term["index"] < MAX_COMBINATION
                and type(term["value"]) is int and term["value"] != 0
                and abs(term["value"]) <= MAX_COEFFICIENT):
            raise AlgorithmFileError(f"{where}: a term {_brief(term)}; {accepted}")
        result.append((term["index"], term["value"]))
    return result


def _check_stated_additions(data: dict, plan: AdditionPlan, source: str) -> None:
    """``complexity.reduced``, when the file states it, is the plan's count of additions."""
    stated = data.get("complexity")
    if isinstance(stated, dict) and "reduced" in stated and (
            type(stated["reduced"]) is not int or stated["reduced"] != plan.additions()):
        raise AlgorithmFileError(
            f"{source}: complexity.reduced is {_brief(stated['reduced'])} but the plan "
            f"(u_fresh, v_fresh, w_fresh, u, v, w) performs {plan.additions()} additions; "
            "accepted: the count of the plan as written")


def _check_indices(combination: Combination, limit: int, where: str) -> None:
    for index, _ in combination:
        if index >= limit:
            raise AlgorithmFileError(f"{where}: variable {index} is not defined here; "
                                     f"accepted: indices 0 to {limit - 1}")


# --- writing ---------------------------------------------------------------------------------
def naive_additions(algorithm: Algorithm) -> int:
    """Additions of the plain evaluation: each product's two sums and each C entry's sum
    (``k`` nonzero terms cost ``k - 1``). Perminov's ``complexity``."""
    total = 0
    for factor, axis in ((algorithm.u, 0), (algorithm.v, 0), (algorithm.w, 1)):
        counts = np.count_nonzero(np.asarray(factor != 0), axis=axis)
        total += int(np.maximum(counts - 1, 0).sum())
    return total


def _json_number(value: Any) -> int | str:
    fraction = Fraction(value)
    return int(fraction) if fraction.denominator == 1 else str(fraction)


def format_perminov(algorithm: Algorithm) -> str:
    """The algorithm as Perminov JSON (plain matrices; fractions as ``"p/q"`` strings)."""
    n, m, p = algorithm.shape
    w = _to_c_transposed(algorithm.w, n, p)
    formulas = algorithm.formulas().splitlines()
    if algorithm.ring == "Z2":
        formulas = formulas[:-1]

    def rows(factor: np.ndarray) -> str:
        lines = ["[" + ", ".join(json.dumps(_json_number(x)) for x in column) + "]"
                 for column in factor.T]
        return "[\n        " + ",\n        ".join(lines) + "\n    ]"

    head = {"n": [n, m, p], "m": algorithm.rank, "z2": algorithm.ring == "Z2",
            "complexity": naive_additions(algorithm)}
    parts = [f"    {json.dumps(key)}: {json.dumps(value)}" for key, value in head.items()]
    parts.append('    "multiplications": ' + json.dumps(formulas[:algorithm.rank], indent=8)
                 .replace("\n]", "\n    ]"))
    parts.append('    "elements": ' + json.dumps(formulas[algorithm.rank:], indent=8)
                 .replace("\n]", "\n    ]"))
    parts += [f'    "u": {rows(algorithm.u)}', f'    "v": {rows(algorithm.v)}',
              f'    "w": {rows(w)}']
    return "{\n" + ",\n".join(parts) + "\n}\n"
