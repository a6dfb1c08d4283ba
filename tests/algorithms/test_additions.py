"""Addition-reduced plans: they compute exactly the scheme's maps, with fewer additions."""

from __future__ import annotations

import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from mlo_exp.algorithms.additions import (
    LinearPlan,
    addition_counts,
    equivalent,
    file_plan,
    greedy_plan,
    naive_additions,
    naive_plan,
    plan_scheme,
    search_basis_change,
)
from mlo_exp.algorithms.formats import read_algorithms
from mlo_exp.algorithms.library import lookup


def _scaled(plan: LinearPlan, matrix: np.ndarray) -> bool:
    """Each output of the plan is its row of ``matrix`` up to a non-zero scale."""
    computed = plan.matrix()
    for got, want in zip(computed, matrix, strict=True):
        nonzero = [i for i, x in enumerate(want) if x != 0]
        if not nonzero:
            if any(x != 0 for x in got):
                return False
            continue
        scale = Fraction(got[nonzero[0]]) / Fraction(want[nonzero[0]])
        if scale == 0 or any(Fraction(g) != scale * Fraction(w)
                             for g, w in zip(got, want, strict=True)):
            return False
    return True


@pytest.mark.parametrize(("name", "naive", "at_most"), [
    ("strassen", 18, 15),              # Winograd's form, found by a basis change
    ("alphatensor-2x2x2", 22, 15),
    ("alphatensor-3x3x3", 110, 71),    # the public best, 58, is another scheme
    ("alphatensor-4x4x4", 468, 170),
])
def test_additions_before_and_after(name, naive, at_most):
    algorithm = lookup(name)
    counts = addition_counts(algorithm)
    assert counts["naive"] == naive_additions(algorithm) == naive
    assert counts["reduced"] <= at_most


@pytest.mark.parametrize("name", ["strassen", "alphatensor-3x3x3", "alphatensor-3x4x11"])
def test_plans_compute_the_scheme_they_execute(name):
    plan = plan_scheme(lookup(name))
    scheme = plan.algorithm
    assert scheme.verify().ok
    u, v, w = (np.asarray(x, dtype=object) for x in (scheme.u, scheme.v, scheme.w))
    assert _scaled(plan.a, u.T) and _scaled(plan.b, v.T)
    # the output plan is W with the operands' scales folded in: still W up to column scales
    assert plan.c.matrix().shape == w.shape
    assert plan.additions == plan.a.additions + plan.b.additions + plan.c.additions


def test_greedy_shares_a_common_pair():
    matrix = np.array([[1, 1, 1], [1, 1, 0], [1, 1, -1]], dtype=object)
    assert naive_plan(matrix).additions == 5
    plan = greedy_plan(matrix)
    assert plan.additions == 3  # t = x0 + x1; t + x2; t - x2
    assert (plan.matrix() == matrix).all()


def test_basis_change_keeps_the_product_and_search_never_gets_worse():
    strassen = lookup("strassen")
    changed = equivalent(strassen, [[1, 1], [0, 1]], [[1, 0], [1, 1]], [[0, 1], [1, 0]])
    assert changed.verify().ok and changed.shape == (2, 2, 2)
    with pytest.raises(ValueError, match="do not fit"):
        equivalent(strassen, [[1]], [[1]], [[1]])
    found, additions = search_basis_change(lookup("school-2x2x2"), steps=5, seed=1)
    assert additions <= naive_additions(lookup("school-2x2x2"))


def test_naive_plan_is_term_by_term():
    plan = plan_scheme(lookup("alphatensor-4x4x4"), plan="naive")
    assert plan.additions == plan.naive_additions == 468 and plan.basis_change is None


def test_single_use_sums_are_merged_without_changing_the_map():
    from mlo_exp.algorithms.additions import inline_single_use

    matrix = np.array([[1, 1, 1, 0], [1, 1, 0, 1], [0, 0, 1, 1]], dtype=object)
    plan = greedy_plan(matrix)
    merged = inline_single_use(plan)
    assert (merged.matrix() == plan.matrix()).all()
    assert merged.additions <= plan.additions and len(merged.ops) <= len(plan.ops)
    chain = LinearPlan(3, (((0, Fraction(1)), (1, Fraction(1))),
                           ((3, Fraction(1)), (2, Fraction(-1)))), ((4, Fraction(1)),))
    merged = inline_single_use(chain)  # t = x0 + x1 (used once); s = t - x2
    assert merged.ops == (((0, Fraction(1)), (1, Fraction(1)), (2, Fraction(-1))),)
    assert merged.additions == chain.additions == 2


def test_best_3x3x3_reaches_the_issue_target():
    assert addition_counts(lookup("best-3x3x3"))["reduced"] <= 62  # Perminov's 23 terms


def test_an_addition_reduced_file_brings_its_own_plan(tmp_path):
    from tests.algorithms.test_readers import STRASSEN_REDUCED

    path = tmp_path / "reduced.json"
    path.write_text(json.dumps(STRASSEN_REDUCED))
    (algorithm,) = read_algorithms(path)
    own = file_plan(algorithm)
    assert own is not None and own.from_file and own.additions == 20 < own.naive_additions
    u, v, w = (np.asarray(x, dtype=object) for x in (algorithm.u, algorithm.v, algorithm.w))
    assert _scaled(own.a, u.T) and _scaled(own.b, v.T)
    assert plan_scheme(algorithm, plan="file") == own
    assert plan_scheme(algorithm).additions <= 20  # reduced: the file's plan or fewer
    assert file_plan(lookup("strassen")) is None
    assert plan_scheme(lookup("strassen"), plan="file").additions == 15  # none: as reduced
    with pytest.raises(ValueError, match="accepted: reduced, file, naive"):
        plan_scheme(algorithm, plan="cse")


REDUCED = Path(__file__).parent / "fixtures" / "perminov" / "results" / "addition_reduced_ZT"


def _run_plan(plan, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """The published plan evaluated step by step on integer matrices (Python integers)."""
    n, m, p = plan.shape

    def side(inputs: list[int], fresh, outputs) -> list[int]:
        values = list(inputs)
        for combination in fresh:
            values.append(sum(c * values[i] for i, c in combination))
        return [sum(c * values[i] for i, c in combination) for combination in outputs]

    left = side([int(x) for x in a.ravel()], plan.a_fresh, plan.u)
    right = side([int(x) for x in b.ravel()], plan.b_fresh, plan.v)
    products = [x * y for x, y in zip(left, right, strict=True)]
    return np.array(side(products, plan.m_fresh, plan.c), dtype=object).reshape(n, p)


@pytest.mark.parametrize(("name", "additions"), [
    ("2x2x2_m7_cr15_cn24_ZT_reduced.json", 15),
    ("3x3x3_m23_cr58_cn119_ZT_reduced.json", 58),
    ("4x4x4_m49_cr159_fv100_cn474_ZT_reduced.json", 159),
])
def test_published_reduced_plans_run_as_written(name, additions):
    """The collection's addition-reduced files (fixtures, MIT): the plan the benchmark runs
    with plan=file has the file's count and computes the exact product."""
    (algorithm,) = read_algorithms(REDUCED / name)
    assert algorithm.plan.additions() == additions
    own = plan_scheme(algorithm, plan="file")
    assert own.from_file and own.additions == additions
    rng = np.random.default_rng(0)
    n, m, p = algorithm.shape
    for _ in range(3):
        a = rng.integers(-9, 10, (n, m)).astype(object)
        b = rng.integers(-9, 10, (m, p)).astype(object)
        assert (_run_plan(algorithm.plan, a, b) == a.dot(b)).all()
