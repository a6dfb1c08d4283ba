"""Schemes from schemes: every result exactly verified, ranks as the constructions promise."""

from __future__ import annotations

import numpy as np
import pytest

from mlo_exp.algorithms import operations as op
from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.library import alphatensor, school, strassen


def test_strassen_times_strassen_is_4x4x4_rank_49():
    result = op.product(strassen(), strassen())
    assert result.shape == (4, 4, 4) and result.rank == 49 and result.ring == "Z"
    assert result.verify().ok


def test_product_of_different_shapes_and_rings():
    first = alphatensor(2, 2, 3)  # rank 11
    second = alphatensor(4, 4, 4, ring="Z2")  # rank 47
    result = op.product(first, second)
    assert result.shape == (8, 8, 12) and result.rank == 11 * 47 and result.ring == "Z2"
    assert result.verify().ok
    rational = alphatensor(3, 3, 3)
    assert op.product(rational, school(1, 2, 1)).shape == (3, 6, 3)


def test_every_permutation_of_a_shape_is_exact():
    scheme = alphatensor(3, 4, 5)
    found = op.permutations(scheme)
    assert set(found) == {(3, 4, 5), (3, 5, 4), (4, 3, 5), (4, 5, 3), (5, 3, 4), (5, 4, 3)}
    assert all(a.rank == scheme.rank and a.verify().ok for a in found.values())
    assert op.cyclic(scheme).shape == (4, 5, 3)
    assert op.transpose(scheme).shape == (5, 4, 3)
    # three cyclic shifts are the identity
    back = op.cyclic(op.cyclic(op.cyclic(scheme)))
    assert all(np.array_equal(x, y) for x, y in zip((back.u, back.v, back.w),
                                                     (scheme.u, scheme.v, scheme.w), strict=True))
    with pytest.raises(op.OperationError, match="not an order"):
        op.permute(scheme, (3, 4, 6))


def test_extension_and_restriction():
    scheme = alphatensor(3, 4, 5, ring="Z")
    for axis, added in (("n", 4 * 5), ("m", 3 * 5), ("p", 3 * 4)):
        bigger = op.extend(scheme, axis)
        assert bigger.rank == scheme.rank + added and bigger.verify().ok
        back = op.restrict(bigger, axis)
        assert back.shape == (3, 4, 5) and back.rank == scheme.rank and back.verify().ok
    smaller = op.restrict(scheme, "n")
    assert smaller.shape == (2, 4, 5) and smaller.rank <= scheme.rank and smaller.verify().ok
    with pytest.raises(op.OperationError, match="accepted: 1 to 2"):
        op.restrict(scheme, "n", by=3)


def test_restriction_drops_any_slice():
    scheme = alphatensor(3, 4, 5, ring="Z")
    for axis, size in (("n", 3), ("m", 4), ("p", 5)):
        for index in range(size):
            small = op.restrict(scheme, axis, drop=[index])
            assert small.verify().ok and small.rank <= scheme.rank
            assert small.name.endswith("" if index == size - 1 else f"-at-{index}")
        assert op.restrict(scheme, axis, drop=[size - 1]).name == op.restrict(scheme, axis).name
    two = op.restrict(scheme, "p", by=2, drop=[0, 3])
    assert two.shape == (3, 4, 3) and two.verify().ok
    with pytest.raises(op.OperationError, match="distinct indices below 5"):
        op.restrict(scheme, "p", drop=[5])
    with pytest.raises(op.OperationError, match="1 distinct indices"):
        op.restrict(scheme, "p", drop=[1, 1, 2])


def test_direct_sum_for_split_shapes():
    result = op.direct_sum(strassen(), alphatensor(2, 2, 3), "p")
    assert result.shape == (2, 2, 5) and result.rank == 7 + 11 and result.verify().ok
    with pytest.raises(op.OperationError, match="differ"):
        op.direct_sum(strassen(), alphatensor(2, 2, 3), "n")


def test_fractions_survive_and_do_not_mix_with_modulo_2():
    half = Algorithm((1, 1, 1), [["1/2"]], [[2]], [[1]], "Q")
    result = op.product(half, strassen())
    assert result.ring == "Q" and result.verify().ok
    assert op.direct_sum(half, half, "m").verify().ok
    with pytest.raises(op.OperationError, match="Q"):
        op.product(half, alphatensor(4, 4, 4, ring="Z2"))


def test_cli_verbs_write_verified_schemes(tmp_path, capsys):
    from mlo_exp.algorithms.cli import main

    out = tmp_path / "ss.json"
    assert main(["product", "strassen", "strassen", "--out", str(out)]) == 0
    assert "<4,4,4> rank 49 over Z, verified exactly" in capsys.readouterr().out
    assert Algorithm.load(out).rank == 49
    assert main(["permute", "alphatensor-3x4x5", "--to", "5x3x4"]) == 0
    assert "<5,3,4> rank 47" in capsys.readouterr().out
    assert main(["extend", str(out), "--axis", "p", "--out", str(tmp_path / "e.json")]) == 0
    assert main(["restrict", str(tmp_path / "e.json"), "--axis", "p"]) == 0
    assert "<4,4,4> rank 49" in capsys.readouterr().out.splitlines()[-1]
    assert main(["restrict", "best-3x6x5", "--axis", "m", "--drop", "0"]) == 0
    assert "<3,5,5> rank 60" in capsys.readouterr().out
    assert main(["restrict", "best-3x6x5", "--axis", "m", "--drop", "9"]) == 2
    assert "accepted: 1 distinct indices below 6" in capsys.readouterr().err
    assert main(["sum", "strassen", "school-2x2x1", "--axis", "p"]) == 0
    assert "<2,2,3> rank 11" in capsys.readouterr().out
    assert main(["product", "strassen", "strassen", "--out", str(out)]) == 2  # exists
    assert main(["sum", "strassen", "school-3x2x1", "--axis", "p"]) == 2
    assert "differ" in capsys.readouterr().err
    assert main(["lift", "alphatensor-3x3x3-z2", "--method", "hensel"]) == 0
    assert "<3,3,3> rank 23 over Z" in capsys.readouterr().out
    assert main(["lift", "alphatensor-4x4x4-z2", "--method", "sign"]) == 1
