"""The flip-graph text formats: round trips, both layouts, clear errors."""

from __future__ import annotations

import json
import re
from fractions import Fraction

import numpy as np
import pytest

from mlo_exp.algorithms.algorithm import Algorithm, AlgorithmFileError
from mlo_exp.algorithms.fliptext import FormatError, format_products, parse_text
from mlo_exp.algorithms.formats import read_algorithm_file, read_algorithms
from mlo_exp.algorithms.library import alphatensor, school, strassen


@pytest.mark.parametrize("algorithm", [strassen(), school(2, 3, 4), alphatensor(3, 3, 3, "Z2")],
                         ids=lambda a: a.name)
@pytest.mark.parametrize("c_transposed", [True, False])
def test_round_trip(algorithm, c_transposed):
    text = format_products(algorithm, c_transposed)
    back = parse_text(text, c_transposed=c_transposed)
    assert back.shape == algorithm.shape and back.ring == algorithm.ring
    for ours, theirs in zip((back.u, back.v, back.w), (algorithm.u, algorithm.v, algorithm.w),
                            strict=True):
        assert np.array_equal(ours, theirs)


def test_published_conventions():
    # Strassen's first product in the cyclic convention: c is indexed c[k, i].
    text = format_products(strassen())
    assert text.splitlines()[1] == "(a21+a22)*(b11)*(c12-c22)"  # m2 -> C[2,1] (c12), C[2,2]
    scaled = parse_text("# comment\n-(a11)*2*b11*(c11)\n", shape=(1, 1, 1), ring="Z")
    assert int(scaled.u[0, 0] * scaled.v[0, 0] * scaled.w[0, 0]) == -2
    matrices = parse_text("{{{1,0},{0,1}},{{1,0},{0,1}},{{1,1},{0,0}}}\n", ring="Z")
    assert matrices.shape == (2, 2, 2)
    assert matrices.w[:, 0].tolist() == [1, 0, 1, 0]  # c[k,i] rows -> our i*p+k
    assert parse_text("a[1,1]*b_1_1*c(1,1)\n").verify().ok  # <1,1,1>, detected as Z


def test_errors_name_the_line_and_what_is_accepted(tmp_path):
    with pytest.raises(FormatError, match=r":2: the term needs one factor each"):
        parse_text("(a11)*(b11)*(c11)\n(a11)*(b11)\n", source="x.txt")
    with pytest.raises(FormatError, match="cannot read"):
        parse_text("(a11+q7)*(b11)*(c11)\n")
    with pytest.raises(FormatError, match="no terms"):
        parse_text("# only a comment\n")
    path = tmp_path / "s.json"
    strassen().save(path)
    assert read_algorithm_file(path).verify().ok


STRASSEN_MATRICES = """\
{
  {{{1, 0}, {0, 1}}, {{1, 0}, {0, 1}}, {{1, 0}, {0, 1}}},
  {{{0, 0}, {1, 1}}, {{1, 0}, {0, 0}}, {{0, 1}, {0, -1}}},
  {{{1, 0}, {0, 0}}, {{0, 1}, {0, -1}}, {{0, 0}, {1, 1}}},
  {{{0, 0}, {0, 1}}, {{-1, 0}, {1, 0}}, {{1, 1}, {0, 0}}},
  {{{1, 1}, {0, 0}}, {{0, 0}, {0, 1}}, {{-1, 0}, {1, 0}}},
  {{{-1, 0}, {1, 0}}, {{1, 1}, {0, 0}}, {{0, 0}, {0, 1}}},
  {{{0, 1}, {0, -1}}, {{0, 0}, {1, 1}}, {{1, 0}, {0, 0}}}
}
"""


def test_matrices_one_term_per_line_inside_outer_braces(tmp_path):
    # The layout of public .m scheme collections: it starts with "{\n", like JSON.
    path = tmp_path / "strassen.m"
    path.write_text(STRASSEN_MATRICES)
    algorithm = read_algorithm_file(path)
    assert algorithm.shape == (2, 2, 2) and algorithm.ring == "Z"
    assert algorithm.digest() == strassen().digest()
    # Mathematica wraps long lists anywhere; fractions are p/q.
    wrapped = STRASSEN_MATRICES.replace(", ", ",\n   ").replace("{{{1, 0}", "{{{2/2, 0}")
    assert parse_text(wrapped).digest() == strassen().digest()


def test_products_in_the_exp_layout():
    # Scaled factors, a trailing divisor, tabs and spaces between tokens, a final ';'.
    lines = format_products(strassen()).splitlines()
    lines[0] = "(3*(a11 +\ta22))\t*\t(b11+b22)*(c11+c22)/3"
    lines[1] = "-(-a21 - a22) * b11 * (c12 - c22);"
    back = parse_text("\n".join(lines))
    assert back.ring == "Q" and back.verify().ok
    assert back.u[:, 0].tolist() == [3, 0, 0, 3] and back.u[:, 1].tolist() == [0, 0, -1, -1]
    assert back.w[:, 0].tolist() == [Fraction(1, 3), 0, 0, Fraction(1, 3)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("(a00+a22)*(b11)*(c11)", "column 2: index 0 in a00: indices run from 1 to 16"),
        ("(a[0,1])*(b11)*(c11)", "index 0 in a[0,1]"),
        ("(a11)*(b11)*(c[17,1])", "index 17 in c[17,1]"),
        ("(a21a22)*(b11)*(c11)", "column 5: 'a22)*(b11)' right after a21: names need an "
                                 "operator"),
        ("(a21 a22)*(b11)*(c11)", "column 6: expected ')' or an operator"),
        ("(a1\t1)*(b11)*(c11)", "column 2: cannot read 'a1\\t1)*(b11)*(c11)'"),
        ("(a11)*(b11)*(c11) 2", "column 19: expected '*' between factors"),
        ("(a11)*(b11)*(c11)(a12)", "two factors in a"),
        ("(a11+b11)*(b11)*(c11)", "a factor mixes variables a, b"),
        ("(a11)*(a12)*(c11)", "two factors in a"),
        ("(a11+1e9*a22)*(b11)*(c11)", "cannot read 'e9*a22)*(b11)*(c11)'"),
        ("(a11)*(b11)*(c11)/0", "division by zero"),
        ("(a11)*(b11)*" + "(" * 9 + "c11" + ")" * 9, "column 21: brackets nested deeper than 8"),
        ("(\u0661*a11)*(b11)*(c11)", "cannot read"),
        ("(3000000000*a11)*(b11)*(c11)", "coefficient '3000000000' is too large"),
        ("(a11+2*a11)*(b11)*(c11)", "column 6: a[1,1] appears twice in one factor"),
        ("(" + "a11+" * 8000 + "a11)*(b11)*(c11)", "column 1: a line of 32017 characters; at "
                                                    "most 30000"),
    ],
)
def test_products_errors_name_the_place(text, message):
    with pytest.raises(AlgorithmFileError) as error:
        parse_text(text + "\n", source="t.txt")
    assert str(error.value).startswith("t.txt:1: ") and message in str(error.value)
    assert "\n" not in str(error.value)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("{{{1}},{{1}} {{1}}}", "t.m:1: missing ',' between values"),
        ("{{{1}},{{1}},{{1}},}", "t.m:1: a comma before '}'"),
        ("{{{1}},{{1}},{{1e9}}}", "t.m:1: cannot read 'e9}}}"),
        ("{{{1}},{{1}},{{1}}}\n{{{1}},{{1}}}", "term 2 (line 2): not three matrices"),
        ("{{{1}},{{1}},{{1}}}\n{{{1,0}},{{1}},{{1}}}", "term 2 (line 2): matrix a is 1x2; "
                                                     "accepted: 1x1 for <1,1,1>"),
        ("{{{1}},{{1}},{{1/0}}}", "divides by zero"),
        ("{{{{{1}}}}}", "lists nested deeper than 4"),
        ("{{{1}},{{1}},{{1}}", "'{' is never closed"),
        ("{{{true}},{{1}},{{1}}}", "t.m:1: cannot read 'true}},{{1}},{{1}}}"),
    ],
)
def test_matrices_errors_name_the_place(text, message):
    with pytest.raises(AlgorithmFileError, match=re.escape(message)):
        parse_text(text + "\n", source="t.m")


def test_json_is_recognised_with_spaces_and_a_bom(tmp_path):
    path = tmp_path / "s.json"
    path.write_bytes(b"\xef\xbb\xbf \n{ \t\n" + json.dumps(strassen().to_dict())[1:].encode())
    assert read_algorithm_file(path).digest() == strassen().digest()
    assert read_algorithms(path, kind="json")[0].digest() == strassen().digest()


def test_rational_products_round_trip():
    s = strassen()
    halved = Algorithm((2, 2, 2), s.u * Fraction(1, 2), s.v, s.w * 2, "Q")
    text = format_products(halved)
    assert text.startswith("(1/2*a11+1/2*a22)*(b11+b22)*(2*c11+2*c22)")
    assert parse_text(text).digest() == halved.digest()


def test_ring_asked_for_must_suit_the_coefficients():
    with pytest.raises(FormatError, match="ring Z asked for, but the coefficients include "
                                          "fractions; accepted: ring Q"):
        parse_text("(1/2*a11)*(b11)*(2*c11)\n", ring="Z")
