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
