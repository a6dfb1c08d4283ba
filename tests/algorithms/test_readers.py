"""The format families, one by one: valid files (generated and hand-written) read exactly in
the convention each module states, and invalid ones fail with one line naming the place."""

from __future__ import annotations

import io
import json
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from mlo_exp.algorithms.algorithm import Algorithm, AlgorithmFileError
from mlo_exp.algorithms.alphaevolve import format_python_uvw
from mlo_exp.algorithms.benson import format_benson
from mlo_exp.algorithms.fliptext import format_matrices
from mlo_exp.algorithms.formats import read_algorithms
from mlo_exp.algorithms.library import alphatensor, strassen
from mlo_exp.algorithms.maple import format_triadset
from mlo_exp.algorithms.perminov import format_perminov, naive_additions


def read(tmp_path, name: str, content: str | bytes, **options) -> Algorithm:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    (algorithm,) = read_algorithms(path, **options)
    return algorithm


def refused(tmp_path, name: str, content: str | bytes, expected: str) -> str:
    path = tmp_path / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    with pytest.raises(AlgorithmFileError) as error:
        read_algorithms(path)
    message = str(error.value)
    assert "\n" not in message and message.startswith(str(path)), message
    assert expected in message, message
    return message


def halved(algorithm: Algorithm) -> Algorithm:
    """Strassen with u halved and w doubled: still exact, with fractions (ring Q)."""
    u = algorithm.u.astype(object) * Fraction(1, 2)
    return Algorithm(algorithm.shape, u, algorithm.v, algorithm.w * 2, "Q")


# --- Perminov JSON ---------------------------------------------------------------------------
PERMINOV_222 = Path(__file__).resolve().parents[2] / "src/mlo_exp/algorithms/data/schemes/" \
    "perminov/2x2x2_m7_ZT.json"


def terms(*indices: int) -> list[dict]:
    """``{"index": i, "value": c}`` terms (the real files' form) from signed 1-based indices."""
    return [{"index": abs(x) - 1, "value": 1 if x > 0 else -1} for x in indices]


def signed(rows: list[list[int]]) -> list[list[dict]]:
    return [terms(*[(i + 1) * x for i, x in enumerate(row) if x]) for row in rows]


def reduced_222() -> dict:
    """Perminov's <2,2,2> with a21 - a22 (used three times) as a fresh variable (index 4)."""
    plain = json.loads(PERMINOV_222.read_text())
    assert plain["u"][:3] == [[0, 0, 1, -1], [1, 0, 1, -1], [1, -1, 1, -1]]
    w_by_entry = [list(column) for column in zip(*plain["w"], strict=True)]
    return {"n": [2, 2, 2], "m": 7, "z2": False, "complexity": {"naive": 22, "reduced": 20},
            "u_fresh": [terms(3, -4)], "v_fresh": [], "w_fresh": [],
            "u": [terms(*row) for row in ([5], [1, 5], [1, -2, 5], [2], [1, 3], [1], [4])],
            "v": signed(plain["v"]), "w": signed(w_by_entry)}


STRASSEN_REDUCED = reduced_222()


def test_perminov_reduced_file_expands_to_the_scheme_and_keeps_its_plan(tmp_path):
    algorithm = read(tmp_path, "s.json", json.dumps(STRASSEN_REDUCED))
    (plain,) = read_algorithms(PERMINOV_222)
    assert algorithm.verify().ok and algorithm.ring == "Z"
    assert algorithm.digest() == plain.digest()
    assert algorithm.plan.additions() == 20 < naive_additions(algorithm) == 22
    u, v, w = algorithm.plan.expand()
    assert np.array_equal(u, algorithm.u) and np.array_equal(w, algorithm.w)
    assert algorithm.plan.to_dict()["additions"] == 20


@pytest.mark.parametrize(("change", "expected"), [
    ({"u_fresh": [terms(1, 2)], "u": [terms(6)] * 7}, "u[0]: variable 5 is not defined here"),
    ({"u_fresh": [terms(1, 2), terms(6, 1)], "u": [terms(6)] * 7},
     "u_fresh[1]: variable 5 is not defined"),
    ({"u_fresh": [terms(1, 5)]}, "u_fresh[0]: variable 4 is not defined here"),
    ({"v_fresh": [[1, 2]]}, 'v_fresh[0]: a term 1; accepted: a list of {"index": i'),
    ({"v_fresh": [[{"index": 0, "value": 0}]]}, "v_fresh[0]: a term an object; accepted"),
    ({"w": [terms(1)] * 3}, "w: a list of 3 items; accepted: 4 lists"),
    ({"w_fresh": None}, "w_fresh: null; accepted"),
    ({"u": [[True]] * 7}, "u[0]: a term true; accepted"),
    ({"complexity": {"naive": 22, "reduced": 19}},
     "complexity.reduced is 19 but the plan (u_fresh, v_fresh, w_fresh, u, v, w) performs 20"),
])
def test_perminov_reduced_refusals(tmp_path, change, expected):
    refused(tmp_path, "r.json", json.dumps({**STRASSEN_REDUCED, **change}), expected)


def test_perminov_reduced_plans_that_grow_without_bound_are_refused(tmp_path):
    fresh = [terms(1, 2)] + [terms(4 + j, 5 + j) if j else terms(1, 5) for j in range(60)]
    data = {**STRASSEN_REDUCED, "u_fresh": fresh, "u": [terms(65)] * 7}
    refused(tmp_path, "grow.json", json.dumps(data), "exceeds 2147483647")


def test_perminov_fractions_as_strings_and_decimals_are_exact(tmp_path):
    algorithm = halved(strassen())
    text = format_perminov(algorithm)
    assert '"1/2"' in text
    assert read(tmp_path, "q.json", text).digest() == algorithm.digest()
    decimals = text.replace('"1/2"', "0.5").replace('"-1/2"', "-0.5")
    again = read(tmp_path, "d.json", decimals)
    assert again.ring == "Q" and again.verify().ok and again.digest() == algorithm.digest()


def test_perminov_convention_is_c_transposed(tmp_path):
    algorithm = alphatensor(2, 3, 4)
    data = json.loads(format_perminov(algorithm))
    n, m, p = algorithm.shape
    assert data["n"] == [2, 3, 4] and len(data["w"][0]) == p * n
    k, i = 3, 1  # C transposed: w entry k*n+i is c[i,k]
    assert [row[k * n + i] for row in data["w"]] == list(algorithm.w[i * p + k])


@pytest.mark.parametrize(("text", "expected"), [
    ('{"n": [2, 2], "m": 7, "u": []}', "n: a list of 2 items; accepted: [n, m, p]"),
    ('{"n": [2, 2, 2], "m": "7", "u": []}', 'm: "7"; accepted: the rank'),
    ('{"n": [2, 2, 2], "m": 1, "u": [[1, 0, 0, 0]], "v": [[1, 0, 0, 0]], "w": [[1, 0, 0]]}',
     "w[0]: a list of 3 items; accepted: a list of 4 numbers"),
    ('{"n": [2, 2, 2], "m": 1, "z2": true, "u": [["1/2", 0, 0, 0]], "v": [[1, 0, 0, 0]], '
     '"w": [[1, 0, 0, 0]]}', "z2 is true but the coefficients include fractions"),
    ('{"n": [2, 2, 2], "m": 1, "u": [[0.3333333333333333333333333333333333333333333, 0, 0, 0]]'
     ', "v": [[1, 0, 0, 0]], "w": [[1, 0, 0, 0]]}', "number of 45 characters"),
    ('{"n": [2, 2, 2], "m": 1, "u": [[1e5, 0, 0, 0]]}', "has an exponent"),
    ('{"n": [2, 2, 2], "m": 1, "u": [[null, 0, 0, 0]], "v": [[1, 0, 0, 0]], '
     '"w": [[1, 0, 0, 0]]}', "u[0][0]: null is not a number"),
    ('{"shape": [2, 2, 2]}', "neither 'format' nor Perminov's keys n, m, u"),
])
def test_perminov_refusals(tmp_path, text, expected):
    refused(tmp_path, "p.json", text, expected)


# --- Maple TriadSet ------------------------------------------------------------------------
def test_triadset_reads_rationals_exactly_and_states_c_transposed(tmp_path):
    algorithm = halved(alphatensor(2, 3, 4))
    text = format_triadset(algorithm)
    assert "C is 4x2 (C transposed" in text and "1/2" in text
    assert text.splitlines()[2:5] == ["A:=Matrix(2, 3, [[A_1_1,A_1_2,A_1_3],[A_2_1,A_2_2,A_2_3]]):",
                                      "B:=Matrix(3, 4, [[B_1_1,B_1_2,B_1_3,B_1_4],[B_2_1,B_2_2,"
                                      "B_2_3,B_2_4],[B_3_1,B_3_2,B_3_3,B_3_4]]):",
                                      "C:=Matrix(4, 2, [[C_1_1,C_1_2],[C_2_1,C_2_2],[C_3_1,C_3_2],"
                                      "[C_4_1,C_4_2]]):"]
    assert text.splitlines()[5].startswith("Tensor:=TriadSet([Triad([Matrix(2, 3, [[")
    again = read(tmp_path, "s.mpl", text)
    assert again.ring == "Q" and again.verify().ok and again.digest() == algorithm.digest()


def test_triadset_hand_written_variants(tmp_path):
    text = ("# Strassen in the trace form\nstrassen := TriadSet([\n"
            "  Triad(Matrix(2, 2, [[1, 0], [0, 1]]), [[1, 0], [0, 1]], [[1, 0], [0, 1]]),\n"
            "  Triad([[0, 0], [1, 1]], [[1, 0], [0, 0]], [[0, 1], [0, -1]]),\n"
            "  Triad([[1, 0], [0, 0]], [[0, 1], [0, -1]], [[0, 0], [1, 1]]),\n"
            "  Triad([[0, 0], [0, 1]], [[-1, 0], [1, 0]], [[1, 1], [0, 0]]),\n"
            "  Triad([[1, 1], [0, 0]], [[0, 0], [0, 1]], [[-1, 0], [1, 0]]),\n"
            "  Triad([[-1, 0], [1, 0]], [[1, 1], [0, 0]], [[0, 0], [0, 1]]),\n"
            "  Triad([[0, 1], [0, -1]], [[0, 0], [1, 1]], [[1, 0], [0, 0]])\n]):\n")
    algorithm = read(tmp_path, "strassen.txt", text)
    assert (algorithm.shape, algorithm.rank, algorithm.ring) == ((2, 2, 2), 7, "Z")
    assert algorithm.verify().ok


@pytest.mark.parametrize(("text", "expected"), [
    ("TriadSet([Triad([[1]], [[1]])])", ":1: expected ',' between the matrices of a Triad"),
    ("TriadSet([Triad([[1, 0]], [[1], [0]], [[1, 1]])])", "matrix C of a Triad is 1x2; "
     "accepted: 1x1"),
    ("TriadSet([Triad([[1,0]],[[1],[0]],[[1]]), Triad([[1]],[[1]],[[1]])])", "matrix A of a "
     "Triad is 1x1; accepted: 1x2"),
    ("TriadSet([Triad([[1]], [[1]], [[x]])])", "expected a number, found 'x'"),
    ("TriadSet([Triad([[1]], [[1]], [[1e3]])])", "expected ',' or ']' in a row, found 'e3'"),
    ("TriadSet([Triad([[1]], [[1]], [[1]])]) extra", "expected the end of the file"),
    ("TriadSet([Triad(Matrix(2, 2, [[1]]), [[1]], [[1]])])", "Matrix sizes [2, 2] do not"),
    ("TriadSet([Triad(Matrix(" + "1, " * 10**5 + "[[1]]), [[1]], [[1]])])",
     "expected the rows after two Matrix sizes"),
    ("TriadSet([" + "[" * 50, "expected Triad("),
    ("TriadSet([Triad([[1]], [[1]], [[1]])", "expected ',' or ']' after a Triad"),
    ("TriadSet([Triad([[1]], [[1]], [[1]])]", "expected ')' closing TriadSet"),
])
def test_triadset_refusals(tmp_path, text, expected):
    refused(tmp_path, "t.mpl", text, expected)


# --- AlphaEvolve ---------------------------------------------------------------------------
def uvw_npz(u, v, w) -> bytes:
    buffer = io.BytesIO()
    np.savez(buffer, U=u, V=v, W=w)
    return buffer.getvalue()


def test_alphaevolve_npz_and_python_read_with_w_over_c_transposed(tmp_path):
    algorithm = alphatensor(3, 4, 5)
    n, m, p = algorithm.shape
    order = [i * p + k for k in range(p) for i in range(n)]
    blob = uvw_npz(algorithm.u, algorithm.v, algorithm.w[order])
    assert read(tmp_path, "ae.npz", blob).digest() == algorithm.digest()
    text = format_python_uvw(algorithm)
    assert read(tmp_path, "ae.py", text).digest() == algorithm.digest()
    floats = uvw_npz(algorithm.u * 0.5, algorithm.v, algorithm.w[order] * 2.0)
    halved_again = read(tmp_path, "f.npz", floats)
    assert halved_again.ring == "Q" and halved_again.verify().ok


def test_alphaevolve_python_tuple_form(tmp_path):
    a = strassen()
    order = [0, 2, 1, 3]
    rows = [json.dumps(x.tolist()) for x in (a.u, a.v, a.w[order])]
    text = (f"decomposition_222 = (np.array({rows[0]}), np.array({rows[1]}, dtype=np.int8),\n"
            f"    np.array({rows[2]}))  # rank 7\n")
    assert read(tmp_path, "d.py", text).digest() == a.digest()


@pytest.mark.parametrize(("content", "expected"), [
    ("U = np.array([[1, 0]])\nV = np.array([[1]])\nW = np.array([[1j]])", "cannot read '1j]])'"),
    ("U = [[1]]\nV = [[1]]\n", "no W; accepted: AlphaEvolve factors"),
    ("U = [[1]]\nV = [[1, 1]]\nW = [[1]]\n", "U, V, W have 1, 2, 1 columns"),
    ("U = [[1], [1]]\nV = [[1]]\nW = [[1]]\n", "rows fit no <n,m,p>"),
    ("import numpy as np\nU = [[1]]", "expected only assignments of U, V, W"),
    ("X = np.array([[1]])", "'X' is not U, V or W"),
    ("d = " + "(" * 10**5, "a tuple inside a tuple"),
    ("d = ([[1]], [[1]], [[1]], [[1]])", "more than three items (U, V, W)"),
    ("U = " + "[" * 10**5, "lists nested deeper than 2"),
    ("U = np.array([[1, 2], [3]])\nV = [[1]]\nW = [[1]]", "U is not a matrix"),
])
def test_alphaevolve_python_refusals(tmp_path, content, expected):
    refused(tmp_path, "ae.py", content, expected)


def test_alphaevolve_npz_refusals(tmp_path):
    refused(tmp_path, "two.npz", uvw_npz(np.ones((1, 1)), np.ones((1, 1)), np.ones((1, 2))),
            "have 1, 1, 2 columns")
    refused(tmp_path, "third.npz", uvw_npz(np.ones((1, 1)) / 3, np.ones((1, 1)),
                                           np.ones((1, 1))), "is not exact")
    buffer = io.BytesIO()
    np.savez(buffer, U=np.ones((1, 1)), V=np.ones((1, 1)))
    refused(tmp_path, "uv.npz", buffer.getvalue(), "members ['U', 'V']")
    buffer = io.BytesIO()
    np.savez(buffer, U=np.ones((1, 1)), V=np.ones((1, 1)), W=np.ones((1, 1), dtype=complex))
    refused(tmp_path, "c.npz", buffer.getvalue(), "dtype 'complex128'")


# --- fast-matmul -----------------------------------------------------------------------------
GREY322 = """# (0, 0, 0) permutation of grey322-11-50
-1 1 0 -1 1 0 0 0 0 0 0
0 0 0 1 0 0 1 0 0 0 0
0 0 0 0 0 0 0 1 0 0 -1
0 0 1 0 0 -1 0 0 0 0 0
0 1 0 0 0 0 0 0 0 -1 0
0 0 0 0 1 0 1 0 1 1 0
#
0 1 0 0 -1 0 0 0 1 1 -1
1 1 0 0 0 0 0 1 0 0 0
0 0 1 0 0 -1 1 0 1 0 0
1 0 1 1 1 0 1 0 0 0 0
#
0 0 0 -1 -1 0 1 0 -1 0 0
-1 0 0 1 0 0 0 0 0 0 0
0 0 0 0 0 1 0 0 0 0 1
0 0 1 0 0 -1 0 1 0 0 0
0 0 0 0 0 0 0 0 1 -1 0
1 1 0 0 1 0 0 0 0 1 0
"""


def test_fast_matmul_file_reads_with_w_over_c_not_transposed(tmp_path):
    algorithm = read(tmp_path, "grey322-11-50", GREY322)
    assert (algorithm.shape, algorithm.rank, algorithm.ring) == ((3, 2, 2), 11, "Z")
    assert algorithm.verify().ok
    rational = halved(alphatensor(2, 3, 4))
    again = read(tmp_path, "q.txt", format_benson(rational).replace("1/2", "0.5"))
    assert again.digest() == rational.digest() and again.verify().ok


@pytest.mark.parametrize(("content", "expected"), [
    (GREY322.replace("1 1 0 0 1 0 0 0 0 1 0", "1 1 0 0 1 0 0 0 0 1"), ":19: 10 coefficients"),
    (GREY322 + "#\n1 0\n", "a fourth block of rows"),
    (GREY322.split("#\n0 0 0 -1")[0], "2 blocks of rows"),
    ("1\n#\n1 1\n#\n1\n", "U, V, W rows hold [1, 2, 1] coefficients"),
    ("1\n1\n#\n1\n#\n1\n", "fit no <n,m,p>"),
    (GREY322.replace("-1 0 0 1 0", "-1 0 0 1/0 0"), "coefficient '1/0'"),
])
def test_fast_matmul_refusals(tmp_path, content, expected):
    refused(tmp_path, "f.txt", content, expected)


# --- the .m lists ----------------------------------------------------------------------------
def test_matrices_writer_reads_back_with_fractions(tmp_path):
    algorithm = halved(alphatensor(2, 2, 3))
    text = format_matrices(algorithm)
    assert text.startswith("{\n  {{{") and text.endswith("}\n")
    assert read(tmp_path, "a.m", text).digest() == algorithm.digest()


# --- the FMM catalogue's *_tensor.mpl layout ------------------------------------------------
CATALOGUE_MPL = ("A:=Matrix(1, 1, [[A_1_1]]):\nB:=Matrix(1, 1, [[B_1_1]]):\n"
                 "C:=Matrix(1, 1, [[C_1_1]]):\n"
                 "Tensor:=TriadSet([Triad([Matrix(1, 1, [[{a}]]), Matrix(1, 1, [[1]]), "
                 "Matrix(1, 1, [[1]])]), Triad([Matrix(1, 1, [[{b}]]), Matrix(1, 1, [[1]]), "
                 "Matrix(1, 1, [[1]])])]):\n"
                 "map(expand,A.B-add(LinearAlgebra:-Trace(op([1,i,1,1],Tensor)).A),i=1..2));\n")


def test_catalogue_mpl_arithmetic_entries_and_its_check_line(tmp_path):
    algorithm = read(tmp_path, "t.mpl", CATALOGUE_MPL.format(a="(1+1)*(1/2)", b="(0-1*0)/3"))
    assert algorithm.shape == (1, 1, 1) and algorithm.u.tolist() == [[1, 0]]
    assert algorithm.verify().ok


@pytest.mark.parametrize(("text", "expected"), [
    (CATALOGUE_MPL.replace("A:=Matrix(1, 1", "A:=Matrix(2, 1", 1),
     "Matrix(2, 1, ...) with 1 rows"),
    (CATALOGUE_MPL.format(a="1", b="0").replace("B:=Matrix(1, 1, [[B_1_1]])",
                                                "B:=Matrix(1, 2, [[B_1_1,B_1_2]])"),
     "B is declared 1x2 but the triads make it 1x1"),
    (CATALOGUE_MPL.replace("C:=", "D:="), "D := ...: expected the declarations A, B, C"),
    (CATALOGUE_MPL.format(a="1/(1-1)", b="0"), "division by zero"),
    (CATALOGUE_MPL.format(a="(" * 9 + "1" + ")" * 9, b="0"), "brackets nested deeper than 8"),
    (CATALOGUE_MPL.format(a="1", b="0").replace("map(expand", "evalm(expand"),
     "expected the end of the file (or Maple's check map(expand, ...))"),
])
def test_catalogue_mpl_refusals(tmp_path, text, expected):
    refused(tmp_path, "t.mpl", text, expected)


# --- Perminov's .txt ------------------------------------------------------------------------
def perminov_txt(algorithm: Algorithm) -> str:
    """``n m p R`` then u, v, w product after product, w over C transposed (his layout)."""
    n, m, p = algorithm.shape
    w = algorithm.w[[i * p + k for k in range(p) for i in range(n)]]
    lines = [" ".join(str(x) for x in factor.T.ravel()) for factor in (algorithm.u,
                                                                       algorithm.v, w)]
    return f"{n} {m} {p} {algorithm.rank}\n" + "\n".join(lines) + "\n"


def test_perminov_txt_reads_c_transposed(tmp_path):
    original = alphatensor(2, 3, 4)
    again = read(tmp_path, "s.txt", perminov_txt(original))
    assert again.digest() == original.digest() and again.verify().ok and again.ring == "Z"


def test_perminov_txt_refusals(tmp_path):
    text = perminov_txt(strassen())
    refused(tmp_path, "s.txt", text.replace("2 2 2 7", "2 2 2 6"),
            "coefficients after 'n m p R'; accepted: R*(n*m + m*p + p*n) = 72")
    refused(tmp_path, "s.txt", text.replace(" 1 ", " x ", 1), "coefficient 'x'; accepted")
