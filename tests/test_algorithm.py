import json
from fractions import Fraction

import numpy as np
import pytest

from mlo_exp.algorithm import Algorithm, AlgorithmFileError
from mlo_exp.library import school, strassen

STRASSEN_FORMULAS = """\
m1 = (a11 + a22) * (b11 + b22)
m2 = (a21 + a22) * (b11)
m3 = (a11) * (b12 - b22)
m4 = (a22) * (-b11 + b21)
m5 = (a11 + a12) * (b22)
m6 = (-a11 + a21) * (b11 + b12)
m7 = (a12 - a22) * (b21 + b22)
c11 = m1 + m4 - m5 + m7
c12 = m3 + m5
c21 = m2 + m4
c22 = m1 - m2 + m3 + m6"""


def test_strassen_formulas_read_like_the_textbook():
    assert strassen().formulas() == STRASSEN_FORMULAS


def test_formulas_show_fractions_and_wide_indices():
    s = strassen()
    halved = Algorithm((2, 2, 2), s.u * Fraction(1, 2), s.v, s.w * 2, "Q")
    assert "m1 = (1/2*a11 + 1/2*a22) * (b11 + b22)" in halved.formulas()
    assert "c11 = 2*m1" in halved.formulas()
    wide = school(1, 10, 1).formulas()
    assert "m10 = (a[1,10]) * (b[10,1])" in wide


@pytest.mark.parametrize("ring", ["Z", "Q", "Z2"])
def test_json_round_trip(tmp_path, ring):
    s = strassen()
    if ring == "Q":
        algorithm = Algorithm((2, 2, 2), s.u * Fraction(1, 8), s.v, s.w * 8, "Q", {"note": "x"})
    else:
        algorithm = Algorithm((2, 2, 2), s.u, s.v, s.w, ring, {"run_id": "abc"})
    path = algorithm.save(tmp_path / "a.json")
    loaded = Algorithm.load(path)
    assert loaded.shape == (2, 2, 2) and loaded.ring == ring and loaded.rank == 7
    assert loaded.provenance == algorithm.provenance
    for mine, theirs in zip((algorithm.u, algorithm.v, algorithm.w),
                            (loaded.u, loaded.v, loaded.w), strict=True):
        assert np.array_equal(mine, theirs)
    assert loaded.digest() == algorithm.digest()
    assert loaded.verify().ok
    assert json.loads(path.read_text())["format"] == "mlo-exp/algorithm"


def test_digest_distinguishes_algorithms():
    assert strassen().digest() != school(2, 2, 2).digest()


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda d: d.update(format="other"), "format='other'"),
        (lambda d: d.update(version=99), "version=99"),
        (lambda d: d.update(shape=[2, 0, 2]), "shape=[2, 0, 2]"),
        (lambda d: d.update(ring="R"), "ring='R'"),
        (lambda d: d["factors"].pop("w"), "exactly the keys u, v, w"),
        (lambda d: d["factors"]["u"][0].pop(), "factors.u must be a list of terms"),
        (lambda d: d["factors"]["v"].pop(), "different numbers of terms"),
        (lambda d: d.update(rank=8), "rank=8"),
        (lambda d: d["factors"]["u"][0].__setitem__(0, 0.5), "float"),
        (lambda d: d["factors"]["u"][0].__setitem__(0, "1/2"), "ring Z needs integer"),
        (lambda d: d["factors"]["u"][0].__setitem__(0, "x"), "factors.u"),
    ],
)
def test_invalid_files_name_what_is_wrong(tmp_path, mutate, message):
    data = strassen().to_dict()
    mutate(data)
    path = tmp_path / "bad.json"
    path.write_text(json.dumps(data))
    with pytest.raises(AlgorithmFileError) as error:
        Algorithm.load(path)
    assert message in str(error.value) and str(path) in str(error.value)


def test_unreadable_and_non_json_files(tmp_path):
    with pytest.raises(AlgorithmFileError, match="cannot read"):
        Algorithm.load(tmp_path / "missing.json")
    (tmp_path / "x.json").write_text("{not json")
    with pytest.raises(AlgorithmFileError, match="not valid JSON"):
        Algorithm.load(tmp_path / "x.json")


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    strassen().save(tmp_path / "a.json")
    strassen().save(tmp_path / "a.json")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]
