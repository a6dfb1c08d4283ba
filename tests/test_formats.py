"""The flip-graph text formats: round trips, both layouts, clear errors."""

from __future__ import annotations

import numpy as np
import pytest

from mlo_exp.formats import FormatError, format_products, parse_text, read_algorithm_file
from mlo_exp.library import alphatensor, school, strassen


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
