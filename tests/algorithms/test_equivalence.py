"""Equivalence: the shape symmetries keep schemes exact; the easy invariants and the key."""

from __future__ import annotations

import itertools
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.equivalence import (
    canonical_key,
    compare,
    factor_rank_profile,
    invariants,
    matrix_rank,
    permute_shape,
)
from mlo_exp.algorithms.library import alphatensor, school, strassen

CLI = str(Path(sys.executable).with_name("mlo-algorithms"))


@pytest.mark.parametrize("shape", [(2, 3, 4), (3, 3, 4), (2, 2, 2)])
def test_every_orientation_is_exact_and_has_the_same_key(shape):
    algorithm = alphatensor(*shape) if shape != (2, 2, 2) else strassen()
    key = canonical_key(algorithm)
    for order in set(itertools.permutations(shape)):
        turned = permute_shape(algorithm, order)
        assert turned.shape == order and turned.verify().ok
        assert canonical_key(turned) == key
        assert invariants(turned) == invariants(algorithm)


def test_key_ignores_term_order_and_scaling_but_not_content():
    a = strassen()
    order = [3, 1, 6, 0, 2, 5, 4]
    u, v, w = (x[:, order].astype(object) for x in (a.u, a.v, a.w))
    u[:, 0], w[:, 0] = -u[:, 0], -w[:, 0]
    shuffled = Algorithm(a.shape, u, v, w, "Z")
    assert shuffled.verify().ok and canonical_key(shuffled) == canonical_key(a)
    scaled = Algorithm(a.shape, u * Fraction(1, 2), v, w * 2, "Q")
    assert canonical_key(scaled) == canonical_key(a)
    assert canonical_key(alphatensor(2, 2, 2)) != canonical_key(a)


def test_matrix_rank_over_q_and_gf2():
    assert matrix_rank([[1, 2], [2, 4]]) == 1
    assert matrix_rank([[1, 1], [1, -1]]) == 2
    assert matrix_rank([[1, 1], [1, -1]], modulus=2) == 1
    assert factor_rank_profile(school(2, 2, 2)) == [(1, 1, 1)] * 8


def test_compare_verdicts():
    same = compare(alphatensor(3, 4, 5), permute_shape(alphatensor(3, 4, 5), (5, 4, 3)))
    assert same.verdict == "same"
    maybe = compare(strassen(), alphatensor(2, 2, 2))
    assert maybe.verdict == "maybe equivalent"
    assert any("factor-rank profile: same" in line for line in maybe.lines)
    assert compare(strassen(), school(2, 2, 2)).verdict == "different"
    assert compare(strassen(), alphatensor(2, 2, 2, "Z2")).verdict == "different"
    assert compare(alphatensor(2, 2, 3), alphatensor(2, 2, 4)).verdict == "different"


def test_a_different_profile_is_different():
    a = strassen()
    u = a.u.copy()
    u[:, 0] = [1, 0, 0, 0]  # a rank-1 A factor where Strassen's first term has rank 2
    other = Algorithm(a.shape, u, a.v, a.w, "Z")
    result = compare(a, other)
    assert result.verdict == "different" and "vs" in result.lines[-1]


def test_cli_same(tmp_path):
    path = tmp_path / "s.json"
    strassen().save(path)
    done = subprocess.run([CLI, "same", str(path), "alphatensor-2x2x2"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0 and done.stdout.splitlines()[-1] == "maybe equivalent"
    done = subprocess.run([CLI, "same", str(path), "school-2x2x2"], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 1 and done.stdout.splitlines()[-1] == "different"
    assert np.array_equal(Algorithm.load(path).u, strassen().u)
