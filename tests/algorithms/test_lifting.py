"""Z2 -> Z lifting: results are exactly verified over Z, failures say what was tried."""

from __future__ import annotations

import pytest

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.library import alphatensor, strassen
from mlo_exp.algorithms.lifting import LiftError, lift_z2


def modulo_2(algorithm: Algorithm) -> Algorithm:
    return Algorithm(algorithm.shape, algorithm.u, algorithm.v, algorithm.w, "Z2")


@pytest.mark.parametrize("algorithm", [modulo_2(strassen()), alphatensor(3, 3, 3, "Z2"),
                                       alphatensor(2, 3, 4, "Z2")], ids=lambda a: a.name)
def test_lifts_are_exact_over_the_integers(algorithm):
    lifted = lift_z2(algorithm)
    assert lifted.ring == "Z" and lifted.rank == algorithm.rank
    assert lifted.verify().ok
    assert ((lifted.u - algorithm.u) % 2 == 0).all()  # the same algorithm modulo 2
    assert lifted.provenance["verified"] == "exact over Z"


def test_a_modulo_2_only_algorithm_is_refused_with_a_reason():
    with pytest.raises(LiftError, match="no solution modulo 4"):
        lift_z2(alphatensor(4, 4, 4, "Z2"))


def test_bad_inputs():
    with pytest.raises(LiftError, match="only Z2"):
        lift_z2(strassen())
    broken = modulo_2(strassen())
    broken.u[0, 0] = 0
    with pytest.raises(LiftError, match="not a valid decomposition"):
        lift_z2(broken)


@pytest.mark.parametrize("algorithm", [modulo_2(strassen()), alphatensor(3, 3, 3, "Z2"),
                                       alphatensor(2, 3, 5, "Z2")], ids=lambda a: a.name)
def test_hensel_lifting_is_exact_and_congruent_modulo_2(algorithm):
    lifted = lift_z2(algorithm, method="hensel")
    assert lifted.ring == "Z" and lifted.rank == algorithm.rank and lifted.verify().ok
    for ours, theirs in zip((lifted.u, lifted.v, lifted.w),
                            (algorithm.u, algorithm.v, algorithm.w), strict=True):
        assert ((ours - theirs) % 2 == 0).all()
    assert "Hensel" in lifted.provenance["lifting"]


def test_auto_tries_the_sign_solve_first():
    # Hensel's first path for <2,3,5> (AlphaTensor, modulo 2) has a 2 in it; the sign solve
    # finds one with +-1 only, and "auto" asks it first.
    auto = lift_z2(alphatensor(2, 3, 5, "Z2"), method="auto")
    assert max(int(abs(x).max()) for x in (auto.u, auto.v, auto.w)) == 1


def test_hensel_lifting_says_where_it_stopped():
    with pytest.raises(LiftError, match="no solution modulo 2\\^2"):
        lift_z2(alphatensor(4, 4, 4, "Z2"), method="hensel", restarts=2)
    with pytest.raises(ValueError, match="accepted: sign, hensel, auto"):
        lift_z2(modulo_2(strassen()), method="newton")
