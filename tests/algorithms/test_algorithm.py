import json
import math
import re
from fractions import Fraction

import numpy as np
import pytest

from mlo_exp.algorithms.algorithm import Algorithm, AlgorithmFileError
from mlo_exp.algorithms.library import school, strassen

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
        (lambda d: d.update(format="other"), "format: 'other'; accepted: 'mlo-exp/algorithm'"),
        (lambda d: d.update(version=99), "version: '99'; accepted: 1"),
        (lambda d: d.update(version=True), "version: 'true'; accepted: 1"),
        (lambda d: d.update(shape=[2, 0, 2]), "shape[1]=0; accepted: an integer from 1 to 16"),
        (lambda d: d.update(shape=[2, True, 2]), "shape[1]=True; accepted"),
        (lambda d: d.update(shape=[30, 30, 30]), "shape[0]=30; accepted"),
        (lambda d: d.update(ring="R"), "ring: 'R'; accepted: Z, Q, Z2"),
        (lambda d: d.update(extra=1), "key 'extra': unknown; accepted keys: format"),
        (lambda d: d["factors"].pop("w"), "exactly the keys u, v, w"),
        (lambda d: d["factors"]["u"][0].pop(), "factors.u[0]: a list of 3 items; accepted: a "
                                               "list of 4 numbers for <2,2,2>"),
        (lambda d: d["factors"]["v"].pop(), "different numbers of terms [7, 6, 7]"),
        (lambda d: d.update(rank=8), "rank: '8' but the factors hold 7 terms"),
        (lambda d: d.update(rank=True), "rank: 'true' but"),
        (lambda d: d["factors"]["u"][0].__setitem__(0, 0.5), "factors.u[0][0]: '0.5' is a float"),
        (lambda d: d["factors"]["u"][0].__setitem__(0, "1/2"), "fractions with ring Z"),
        (lambda d: d["factors"]["u"][0].__setitem__(0, "x"), "factors.u[0][0]: coefficient 'x'"),
        (lambda d: d["factors"]["w"][6].__setitem__(3, True), "factors.w[6][3]: 'true' is not"),
        (lambda d: d["factors"]["u"][0].__setitem__(0, 2**63), "'9223372036854775808' is too "
                                                               "large"),
        (lambda d: d["factors"]["u"][0].__setitem__(0, "1e999999999"), "'1e999999999'; accepted"),
        (lambda d: d["factors"]["u"][0].__setitem__(0, "\u0661"), "coefficient '\u0661'"),
        (lambda d: d["factors"]["u"][0].__setitem__(0, "1/0"), "'1/0' divides by zero"),
        (lambda d: [d.pop("rank"), d["factors"].update(u=[], v=[], w=[])],
         "0 terms; accepted: 1 to 4096 terms"),
        (lambda d: d.update(provenance={"name": "x" * 300}), "provenance.name: 'xxx"),
        (lambda d: d.update(provenance={"note": ["a"]}), "provenance.note: a list of 1 items"),
        (lambda d: d.update(provenance=[]), "provenance: a list of 0 items"),
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
    with pytest.raises(AlgorithmFileError, match="x.json:1: not valid JSON"):
        Algorithm.load(tmp_path / "x.json")
    with pytest.raises(AlgorithmFileError, match="is a directory"):
        Algorithm.load(tmp_path)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ('{"format": NaN}', ":1: NaN is not a JSON number"),
        ('{"format": 1,\n "format": 2}', ":1: key 'format' appears twice"),
        ('{"rank": ' + "9" * 5000 + "}", ":1: integer of 5000 digits"),
        ("[" * 100_000 + "]" * 100_000, "nested too deeply"),
        ("[1, 2]", "the file holds a list of 2 items; accepted: a JSON object"),
    ],
)
def test_json_syntax_that_python_accepts_but_the_format_does_not(tmp_path, text, message):
    path = tmp_path / "odd.json"
    path.write_text(text)
    with pytest.raises(AlgorithmFileError, match=re.escape(message)):
        Algorithm.load(path)


def test_bom_spaces_and_integral_floats_are_read(tmp_path):
    text = json.dumps(strassen().to_dict()).replace('"rank": 7', '"rank": 7.0')
    path = tmp_path / "a.json"
    path.write_bytes(b"\xef\xbb\xbf" + ("{ " + text[1:]).encode())
    with pytest.raises(AlgorithmFileError, match="rank: '7.0'"):
        Algorithm.load(path)  # the rank is a count: an integer
    data = strassen().to_dict()
    data["factors"]["u"][0][0] = 1.0
    path.write_bytes(b"\xef\xbb\xbf{ \t" + json.dumps(data)[1:].encode())
    assert Algorithm.load(path).digest() == strassen().digest()


def test_save_is_atomic_and_leaves_no_temporary_files(tmp_path):
    strassen().save(tmp_path / "a.json")
    strassen().save(tmp_path / "a.json")
    assert [p.name for p in tmp_path.iterdir()] == ["a.json"]


def test_inputs_whose_exact_check_would_be_too_costly_are_refused(tmp_path):
    rng = np.random.default_rng(0)
    rank = 300  # <8,8,8>: 64*64*64*300 steps, beyond the big-integer budget
    data = {"format": "mlo-exp/algorithm", "version": 1, "shape": [8, 8, 8], "ring": "Z",
            "factors": {name: rng.integers(-2**31 + 1, 2**31, (rank, 64)).tolist()
                        for name in "uvw"}}
    path = tmp_path / "big.json"
    path.write_text(json.dumps(data))
    with pytest.raises(AlgorithmFileError, match="need big-integer arithmetic for the exact "
                                                 "check, and <8,8,8> with 300 terms is"):
        Algorithm.load(path)
    primes = [q for q in range(1009, 1400) if all(q % d for d in range(2, 38))][:27]
    assert math.prod(primes) > 2**256  # beyond the bound on a common denominator
    data = {"format": "mlo-exp/algorithm", "version": 1, "shape": [1, 1, 1], "ring": "Q",
            "factors": {"u": [[f"1/{q}"] for q in primes], "v": [[1]] * 27, "w": [[1]] * 27}}
    path.write_text(json.dumps(data))
    with pytest.raises(AlgorithmFileError, match="factor u: the common denominator"):
        Algorithm.load(path)
    data["factors"]["u"] = [[1]] * 27
    data["factors"]["v"] = [[1]] * 4096 + [[1]] * 1
    with pytest.raises(AlgorithmFileError, match=r"different numbers of terms \[27, 4097, 27\]"):
        Algorithm.from_dict(data)
