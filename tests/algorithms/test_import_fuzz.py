"""The importers under fuzzing: every input reads exactly, or fails with one line.

Property tests (hypothesis) write generated algorithms in every accepted format (our JSON,
the products text, the Mathematica matrices text in its three layouts, AlphaTensor ``.npz``,
Perminov's JSON plain and addition-reduced, Maple ``TriadSet``, AlphaEvolve's arrays as
Python and ``.npz``, fast-matmul's coefficient blocks) with random styling, and check that
reading gives back exactly the same algorithm; correct algorithms (school / Strassen,
relabelled) must also verify. Mutated and arbitrary inputs must raise
:class:`AlgorithmFileError` (one line, naming the file) or read consistently; any other
exception, or a slow example (the deadline), fails. The fixed corpus in
``tests/data/import_corpus`` pins each case of the issue-12 fuzzing campaign.
"""

from __future__ import annotations

import io
import json
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from datetime import timedelta
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mlo_exp.algorithms.algorithm import Algorithm, AlgorithmFileError
from mlo_exp.algorithms.alphaevolve import format_python_uvw
from mlo_exp.algorithms.benson import format_benson
from mlo_exp.algorithms.fliptext import format_matrices, format_products, parse_text
from mlo_exp.algorithms.formats import read_algorithms
from mlo_exp.algorithms.library import school, strassen
from mlo_exp.algorithms.maple import format_triadset
from mlo_exp.algorithms.perminov import format_perminov

CORPUS = Path(__file__).parent / "data" / "import_corpus"
CLI = str(Path(sys.executable).with_name("mlo-algorithms"))
# 30 examples per property keeps the file at a few seconds; MLO_FUZZ_EXAMPLES=2000 for a campaign.
FUZZ = settings(max_examples=int(os.environ.get("MLO_FUZZ_EXAMPLES", "30")),
                deadline=timedelta(seconds=3), database=None,
                suppress_health_check=[HealthCheck.too_slow])


# --- generated algorithms --------------------------------------------------------------------
DIMS = st.integers(1, 3)
SCALES = {"Z": [1, -1], "Z2": [1], "Q": [1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 4)]}


def values(ring: str) -> st.SearchStrategy:
    if ring == "Z2":
        return st.integers(0, 1)
    if ring == "Z":
        return st.integers(-3, 3)
    # binary fractions, so the .npz (float64) writer is exact too
    return st.builds(Fraction, st.integers(-9, 9), st.sampled_from([1, 2, 4, 8]))


@st.composite
def random_algorithms(draw: st.DrawFn, ring: str) -> Algorithm:
    """Random factor matrices: well formed, almost never a decomposition."""
    n, m, p = draw(DIMS), draw(DIMS), draw(DIMS)
    rank = draw(st.integers(1, 6))

    def matrix(rows: int) -> np.ndarray:
        entries = draw(st.lists(values(ring), min_size=rows * rank, max_size=rows * rank))
        return np.array(entries, dtype=object).reshape(rows, rank)

    return Algorithm((n, m, p), matrix(n * m), matrix(m * p), matrix(n * p), ring,
                     {"name": "random"})


@st.composite
def correct_algorithms(draw: st.DrawFn, ring: str) -> Algorithm:
    """School or Strassen, relabelled: terms permuted, rescaled (s, t, 1/(s*t)), and pairs
    of terms that cancel (x, y, z) + (x, y, -z) added; still an exact decomposition."""
    base = strassen() if draw(st.booleans()) else school(draw(DIMS), draw(DIMS), draw(DIMS))
    u, v, w = (x.astype(object) for x in (base.u, base.v, base.w))
    for r in range(base.rank):
        s, t = draw(st.sampled_from(SCALES[ring])), draw(st.sampled_from(SCALES[ring]))
        u[:, r], v[:, r], w[:, r] = u[:, r] * s, v[:, r] * t, w[:, r] / Fraction(s * t)
    for _ in range(draw(st.integers(0, 2))):
        x, y, z = (np.array(draw(st.lists(st.integers(-2, 2).filter(bool), min_size=k,
                                          max_size=k)), dtype=object).reshape(k, 1)
                   for k in (u.shape[0], v.shape[0], w.shape[0]))
        u, v, w = np.hstack([u, x, x]), np.hstack([v, y, y]), np.hstack([w, z, -z])
    order = draw(st.permutations(range(u.shape[1])))
    return Algorithm(base.shape, u[:, order], v[:, order], w[:, order], ring,
                     {"name": "correct"})


# --- writers with random styling --------------------------------------------------------------
def json_text(algorithm: Algorithm, draw: st.DrawFn) -> str:
    indent = draw(st.sampled_from([None, 1, "\t"]))
    text = json.dumps(algorithm.to_dict(), indent=indent)
    return draw(st.sampled_from(["", "\ufeff", " \n"])) + "{" + draw(
        st.sampled_from(["", " ", "\t", "\n "])) + text[1:]


VARIABLE_STYLES = ["{}{}{}", "{}[{},{}]", "{}_{}_{}", "{}({},{})", "{}_{{{},{}}}", "{}[{}, {}]"]


def products_text(algorithm: Algorithm, draw: st.DrawFn, c_transposed: bool) -> str:
    text = format_products(algorithm, c_transposed)
    style = draw(st.sampled_from(VARIABLE_STYLES))
    text = re.sub(r"([abc])([1-9])([1-9])", lambda g: style.format(*g.groups()), text)
    pad = draw(st.sampled_from(["", " ", "\t", " \t "]))
    text = re.sub(r"[-+*]", lambda g: pad + g.group() + pad, text)
    end = draw(st.sampled_from(["", ";"]))
    lines = [line + end for line in text.splitlines()]
    if draw(st.booleans()):
        lines = ["# generated", "// by hypothesis", ""] + lines
    newline = draw(st.sampled_from(["\n", "\r\n"]))
    return newline.join(lines) + newline


def matrices_text(algorithm: Algorithm, layout: str, c_transposed: bool) -> str:
    """The writer's terms (``format_matrices``: one per line inside ``{ }``) laid out again."""
    terms = format_matrices(algorithm, c_transposed).strip()[1:-1].strip().split(",\n  ")
    if layout == "lines":
        return "\n".join(terms) + "\n"
    if layout == "outer":  # one term per line inside an outer { }
        return "{\n  " + ",\n  ".join(terms) + "\n}\n"
    body = "{" + ", ".join(terms) + "}"  # Mathematica's wrapping: breaks after commas
    return re.sub(r", ", lambda g: ",\n " if hash(g.start()) % 3 == 0 else ", ", body) + "\n"


def npz_bytes(algorithm: Algorithm) -> bytes:
    """AlphaTensor's layout: ``w`` indexed ``k*n+i``; one stacked array when the three factor
    shapes agree, else an object array (pickled)."""
    n, m, p = algorithm.shape
    order = [i * p + k for k in range(p) for i in range(n)]  # their row k*n+i is our i*p+k
    factors = [algorithm.u, algorithm.v, algorithm.w[order]]
    exact = all(x.dtype != object for x in factors)
    factors = [np.asarray(x, dtype=object).astype(np.int64 if exact else np.float64)
               for x in factors]
    if len({x.shape for x in factors}) == 1:
        value = np.stack(factors)
    else:
        value = np.empty(3, dtype=object)
        value[:] = factors
    buffer = io.BytesIO()
    np.savez(buffer, **{f"{n},{m},{p}": value})
    return buffer.getvalue()


def uvw_npz_bytes(algorithm: Algorithm) -> bytes:
    """AlphaEvolve's layout: U, V, W members, W indexed ``k*n+i`` (C transposed)."""
    n, m, p = algorithm.shape
    order = [i * p + k for k in range(p) for i in range(n)]
    exact = all(x.dtype != object for x in (algorithm.u, algorithm.v, algorithm.w))
    dtype = np.int64 if exact else np.float64
    buffer = io.BytesIO()
    np.savez(buffer, U=np.asarray(algorithm.u, dtype=object).astype(dtype),
             V=np.asarray(algorithm.v, dtype=object).astype(dtype),
             W=np.asarray(algorithm.w[order], dtype=object).astype(dtype))
    return buffer.getvalue()


def reduced_perminov(algorithm: Algorithm, draw: st.DrawFn) -> str:
    """Perminov's addition-reduced JSON for a +-1/0 algorithm: a few random pair sums become
    fresh variables (the plan); written as the real files are, ``{"index": i, "value": c}``
    terms over 0-based variables."""
    n, m, p = algorithm.shape
    data: dict = {"n": [n, m, p], "m": algorithm.rank, "z2": algorithm.ring == "Z2"}
    order = [i * p + k for k in range(p) for i in range(n)]
    sides = (("u", algorithm.u.T, n * m), ("v", algorithm.v.T, m * p),
             ("w", algorithm.w[order], algorithm.rank))
    for key, rows, real in sides:
        lists = [[(index + 1) * int(x) for index, x in enumerate(row) if x] for row in rows]
        fresh: list[list[int]] = []
        for _ in range(draw(st.integers(0, 3))):
            pairs = [(a, b) for item in lists for a in item for b in item if abs(a) < abs(b)]
            if not pairs:
                break
            a, b = draw(st.sampled_from(pairs))
            fresh.append([a, b])
            name = real + len(fresh)
            for item in lists:
                if a in item and b in item:
                    item.remove(a)
                    item.remove(b)
                    item.append(name)
                elif -a in item and -b in item:
                    item.remove(-a)
                    item.remove(-b)
                    item.append(-name)
        data[key], data[f"{key}_fresh"] = ([[{"index": abs(x) - 1, "value": 1 if x > 0 else -1}
                                              for x in item] for item in group]
                                            for group in (lists, fresh))
    return json.dumps(data)


NEW_KINDS = ["perminov", "reduced", "maple", "alphaevolve", "uvw-npz", "fast-matmul"]


def new_format_file(algorithm: Algorithm, kind: str, draw: st.DrawFn) -> tuple[str, bytes]:
    """(file name, content) of ``algorithm`` written in one of the new formats."""
    if kind == "perminov":
        text = format_perminov(algorithm)
        if draw(st.booleans()):
            text = json.dumps(json.loads(text))
        return "a.json", text.encode()
    if kind == "reduced":
        return "a_reduced.json", reduced_perminov(algorithm, draw).encode()
    if kind == "maple":
        text = format_triadset(algorithm)
        if draw(st.booleans()):
            body = text[text.index("TriadSet"):]  # hand-written: no declarations, bare lists
            body = re.sub(r"Matrix\([0-9]+, [0-9]+, (\[\[.*?\]\])\)", r"\1", body)
            text = "S := " + body.replace("Triad([", "Triad(").replace("]]])", "]])").replace(
                ", ", ",\n ")
        return "a.mpl", text.encode()
    if kind == "alphaevolve":
        text = format_python_uvw(algorithm)
        if draw(st.booleans()):
            text = text.replace("])\n", "], dtype=np.int32)\n").replace("np.array", "numpy.array")
        return "a.py", text.encode()
    if kind == "uvw-npz":
        return "a.npz", uvw_npz_bytes(algorithm)
    text = format_benson(algorithm)
    if draw(st.booleans()):
        text = text.replace(" ", "\t").replace("\n#\n", "\n\n# next block\n\n")
    return "a.txt", text.encode()


# --- round trips ---------------------------------------------------------------------------
@pytest.fixture(scope="module")
def folder() -> Iterator[Path]:
    with tempfile.TemporaryDirectory() as name:
        yield Path(name)


def read_file(folder: Path, name: str, content: str | bytes, **options) -> list[Algorithm]:
    path = folder / name
    path.write_bytes(content.encode() if isinstance(content, str) else content)
    return read_algorithms(path, **options)


@FUZZ
@given(data=st.data(), ring=st.sampled_from(["Z", "Q", "Z2"]), correct=st.booleans(),
       kind=st.sampled_from(["json", "products", "lines", "outer", "wrapped", "npz"]),
       c_transposed=st.booleans())
def test_valid_files_read_back_exactly(folder, data, ring, correct, kind, c_transposed):
    strategy = correct_algorithms(ring) if correct else random_algorithms(ring)
    algorithm = data.draw(strategy)
    options: dict = {"ring": ring}
    if kind == "json":
        found = read_file(folder, "a.json", json_text(algorithm, data.draw))
    elif kind == "npz":
        expected_ring = "Z" if ring == "Q" and all(
            x.dtype != object for x in (algorithm.u, algorithm.v, algorithm.w)) else ring
        found = read_file(folder, "a.npz", npz_bytes(algorithm), ring=ring)
        algorithm = Algorithm(algorithm.shape, algorithm.u, algorithm.v, algorithm.w,
                              expected_ring)
    else:
        if kind == "products":
            text = products_text(algorithm, data.draw, c_transposed)
            if not correct:  # unused last rows/columns cannot be inferred from the text
                options["shape"] = algorithm.shape
        else:
            text = matrices_text(algorithm, kind, c_transposed)
        found = read_file(folder, f"a.{'txt' if kind == 'products' else 'm'}", text,
                          c_transposed=c_transposed, **options)
    assert len(found) == 1
    assert found[0].shape == algorithm.shape and found[0].ring == algorithm.ring
    assert found[0].digest() == algorithm.digest()
    assert found[0].verify().ok == algorithm.verify().ok
    if correct:
        assert found[0].verify().ok


@FUZZ
@given(data=st.data(), ring=st.sampled_from(["Z", "Q", "Z2"]), correct=st.booleans(),
       kind=st.sampled_from(NEW_KINDS))
def test_new_formats_read_back_exactly(folder, data, ring, correct, kind):
    """Perminov, Maple, AlphaEvolve and fast-matmul files, valid ones, read back exactly."""
    if kind == "reduced":
        ring = "Z" if ring == "Q" else ring  # signed indices: coefficients +-1 only
        algorithm = data.draw(correct_algorithms(ring) if correct else random_algorithms(ring))
        if any(np.abs(np.asarray(x, dtype=object)).max(initial=0) > 1
               for x in (algorithm.u, algorithm.v, algorithm.w)):
            algorithm = school(*algorithm.shape) if not correct else strassen()
            algorithm = Algorithm(algorithm.shape, algorithm.u, algorithm.v, algorithm.w, ring)
    else:
        algorithm = data.draw(correct_algorithms(ring) if correct else random_algorithms(ring))
    name, content = new_format_file(algorithm, kind, data.draw)
    found = read_file(folder, name, content, ring=ring)
    assert len(found) == 1
    expected = Algorithm(algorithm.shape, algorithm.u, algorithm.v, algorithm.w, ring)
    assert found[0].shape == algorithm.shape and found[0].ring == ring
    assert found[0].digest() == expected.digest()
    assert found[0].verify().ok == expected.verify().ok
    if kind == "reduced":
        assert found[0].plan is not None
        assert np.array_equal(np.asarray(found[0].plan.expand()[0], dtype=object) % 2,
                              np.asarray(expected.u, dtype=object) % 2)


@FUZZ
@given(algorithm=correct_algorithms("Z"), data=st.data())
def test_ring_and_shape_are_inferred_from_text(algorithm, data):
    """Without --shape/--ring: a correct integer scheme is read as Z at its own shape."""
    text = products_text(algorithm, data.draw, True)
    found = parse_text(text)
    assert (found.shape, found.ring, found.digest()) == (algorithm.shape, "Z", algorithm.digest())
    lines = matrices_text(algorithm, data.draw(st.sampled_from(["lines", "outer", "wrapped"])),
                          True)
    assert parse_text(lines).digest() == algorithm.digest()


# --- invalid inputs -------------------------------------------------------------------------
def assert_clean(error: AlgorithmFileError, path: Path) -> None:
    message = str(error)
    assert "\n" not in message and message.startswith(str(path)), message


def read_or_refuse(path: Path) -> None:
    """Either an exact reading (consistent with its own JSON) or one AlgorithmFileError."""
    try:
        found = read_algorithms(path)
    except AlgorithmFileError as error:
        assert_clean(error, path)
        return
    for algorithm in found:
        algorithm.verify()
        again = Algorithm.from_json(json.dumps(algorithm.to_dict()))
        assert again.digest() == algorithm.digest()


ALPHABET = list("{}()[],;+-*/ \t\n\r0123456789abcxe._\"':") + [
    "\u0661", "\ufeff", "\x00", "\u00e9", "1e999999999", "a00", "true", "NaN", "9" * 30]


@st.composite
def mutated(draw: st.DrawFn, text: str) -> str:
    for _ in range(draw(st.integers(1, 3))):
        at = draw(st.integers(0, len(text)))
        end = draw(st.integers(at, min(len(text), at + 8)))
        action = draw(st.sampled_from(["delete", "insert", "replace", "repeat", "cut"]))
        piece = draw(st.sampled_from(ALPHABET))
        text = {"delete": text[:at] + text[end:], "insert": text[:at] + piece + text[at:],
                "replace": text[:at] + piece + text[end:],
                "repeat": text[:end] + text[at:end] * 2 + text[end:], "cut": text[:at]}[action]
    return text


@FUZZ
@given(data=st.data(), kind=st.sampled_from(["json", "products", "lines", "outer", "wrapped"]))
def test_mutated_text_files_fail_cleanly(folder, data, kind):
    algorithm = data.draw(correct_algorithms(data.draw(st.sampled_from(["Z", "Q"]))))
    if kind == "json":
        text = json_text(algorithm, data.draw)
    elif kind == "products":
        text = products_text(algorithm, data.draw, True)
    else:
        text = matrices_text(algorithm, kind, True)
    path = folder / "mutated"
    path.write_bytes(data.draw(mutated(text)).encode("utf-8", "surrogatepass"))
    read_or_refuse(path)


@FUZZ
@given(data=st.data(), kind=st.sampled_from([k for k in NEW_KINDS if k != "uvw-npz"]))
def test_mutated_new_format_files_fail_cleanly(folder, data, kind):
    ring = data.draw(st.sampled_from(["Z", "Q"])) if kind != "reduced" else "Z"
    algorithm = data.draw(correct_algorithms(ring))
    if kind == "reduced" and any(np.abs(np.asarray(x, dtype=object)).max(initial=0) > 1
                                 for x in (algorithm.u, algorithm.v, algorithm.w)):
        algorithm = strassen()
    _, content = new_format_file(algorithm, kind, data.draw)
    path = folder / "mutated"
    path.write_bytes(data.draw(mutated(content.decode())).encode("utf-8", "surrogatepass"))
    read_or_refuse(path)


@FUZZ
@given(data=st.data())
def test_mutated_uvw_npz_files_fail_cleanly(folder, data):
    algorithm = data.draw(random_algorithms(data.draw(st.sampled_from(["Z", "Q"]))))
    blob = bytearray(uvw_npz_bytes(algorithm))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    path = folder / "mutated.npz"
    path.write_bytes(bytes(blob))
    read_or_refuse(path)


@FUZZ
@given(data=st.data())
def test_mutated_npz_files_fail_cleanly(folder, data):
    algorithm = data.draw(random_algorithms(data.draw(st.sampled_from(["Z", "Q"]))))
    blob = bytearray(npz_bytes(algorithm))
    for _ in range(data.draw(st.integers(1, 4))):
        at = data.draw(st.integers(0, len(blob) - 1))
        blob[at] = data.draw(st.integers(0, 255))
    if data.draw(st.booleans()):
        blob = blob[: data.draw(st.integers(0, len(blob)))]
    path = folder / "mutated.npz"
    path.write_bytes(bytes(blob))
    read_or_refuse(path)


@FUZZ
@given(prefix=st.sampled_from([b"", b"{", b"{ \"", b"{{{", b"(", b"PK\x03\x04", b"\xef\xbb\xbf",
                               b'{"n": [2, 2, 2], "m": 7, "u": ', b"TriadSet([Triad(",
                               b"U = np.array([[", b"1 0\n#\n", b"# c\n1 -1\n0 1\n#\n"]),
       body=st.binary(max_size=200))
def test_arbitrary_bytes_fail_cleanly(folder, prefix, body):
    path = folder / "bytes"
    path.write_bytes(prefix + body)
    read_or_refuse(path)


# The three wrong acceptances of the old reader, as properties over generated schemes.
@FUZZ
@given(algorithm=correct_algorithms("Z"), data=st.data(),
       damage=st.sampled_from(["index zero", "operator dropped", "blank in a name"]))
def test_damaged_names_are_refused_never_read_as_something_else(algorithm, data, damage):
    text = format_products(algorithm)
    if damage == "index zero":
        spots = [g.start() + d for g in re.finditer(r"[abc][1-9][1-9]", text) for d in (1, 2)]
        at = data.draw(st.sampled_from(spots))
        text = text[:at] + "0" + text[at + 1:]
    elif damage == "operator dropped":  # a binary + or - between two terms of a sum
        spots = [g.start() for g in re.finditer(r"(?<=[1-9])[-+](?=[0-9/]*\*?[abc])", text)]
        if not spots:
            return
        at = data.draw(st.sampled_from(spots))
        text = text[:at] + data.draw(st.sampled_from(["", " ", "\t"])) + text[at + 1:]
    else:
        spots = [g.start() + d for g in re.finditer(r"[abc][1-9][1-9]", text) for d in (1, 2)]
        at = data.draw(st.sampled_from(spots))
        text = text[:at] + data.draw(st.sampled_from([" ", "\t"])) + text[at:]
    with pytest.raises(AlgorithmFileError):
        parse_text(text)


# --- the fixed corpus -----------------------------------------------------------------------
OK = "ok"
CASES: dict[str, tuple] = {
    # valid files the old reader refused: (OK, shape, rank, ring, verified)
    "strassen.txt": (OK, (2, 2, 2), 7, "Z", True),
    "strassen_tabs.txt": (OK, (2, 2, 2), 7, "Z", True),
    "strassen_bom.txt": (OK, (2, 2, 2), 7, "Z", True),
    "strassen_space.json": (OK, (2, 2, 2), 7, "Z", True),
    "strassen_bom.json": (OK, (2, 2, 2), 7, "Z", True),
    "strassen_outer_braces.m": (OK, (2, 2, 2), 7, "Z", True),
    "strassen_thirds_wrapped.m": (OK, (2, 2, 2), 7, "Q", True),
    "strassen.exp": (OK, (2, 2, 2), 7, "Q", True),
    "strassen_alphatensor.npz": (OK, (2, 2, 2), 7, "Z", True),
    "school_1x2x3_object.npz": (OK, (1, 2, 3), 6, "Z", True),
    "name_250.json": (OK, (2, 2, 2), 7, "Z", True),
    "wrong_sign.txt": (OK, (2, 2, 2), 7, "Z", False),
    # wrong acceptances of the old reader: now one-line errors
    "strassen_a00.txt": ":5: column 6: index 0 in a00: indices run from 1 to 16",
    "strassen_a_bracket_0_0.txt": ":5: column 9: index 0 in a[0,0]",
    "strassen_c00.txt": ":5: column 23: index 0 in c00",
    "strassen_a21a22.txt": ":2: column 5: 'a22)*(b11)' right after a21: names need an operator",
    "strassen_tab_between_names.txt": ":2: column 6: expected ')' or an operator",
    "strassen_tab_inside_name.txt": ":2: column 2: cannot read 'a2\\t1+a22)*(b11)*(c12'",
    "strassen_arabic_digits.txt": ":1: column 2: cannot read 'a\u0661\u0661+a",
    "strassen_arabic_digit.json": ": factors.u[0][0]: coefficient '\u0661'; accepted: an integer",
    "strassen_bool.json": ": factors.u[0][0]: 'true' is not a number",
    "version_true.json": ": version: 'true'; accepted: 1",
    "empty.npz": ": 0 members; accepted: an AlphaTensor .npz",
    # tracebacks of the old reader
    "latin1_comment.txt": ":1: byte 0xe9 is not UTF-8; accepted: UTF-8 text",
    "coefficient_2pow63.json": ": factors.u[0][0]: coefficient '9223372036854775808' is too large",
    "coefficient_2pow64.txt": ":1: column 2: coefficient '18446744073709551616' is too large",
    "deep_nesting.json": ": not valid JSON (nested too deeply)",
    "deep_nesting.m": ":1: lists nested deeper than 4",
    "huge_integer.json": ":9: integer of 5000 digits",
    "huge_integer.txt": ":1: column 2: coefficient '99999",
    "shape_30.json": ": shape[0]=30; accepted: an integer from 1 to 16",
    "odd_member_name.npz": ": member 'foo.npy': unexpected name",
    "odd_member_text.npz": ": member '2,2,2.txt': unexpected name",
    "odd_member_not_npy.npz": ": member '2,2,2.npy': not a .npy array",
    "long_name.json": ": provenance.name: 'xxxx",
    "name_300.json": ": provenance.name: 'yyyy",
    # hangs of the old reader
    "exponent_string.json": ": factors.u[0][0]: coefficient '1e999999999'; accepted",
    "exponent_number.json": ": factors.u[0][0]: 'Infinity' is a float",
    "exponent.m": ":2: cannot read 'e999999999, 0}",
    "exponent.txt": ":1: column 3: cannot read 'e999999999*a11",
}


def test_every_corpus_file_has_an_expected_outcome():
    files = {p.name for p in CORPUS.iterdir() if p.name != "README.md"}
    assert files == set(CASES)


@pytest.mark.parametrize("name", sorted(CASES))
def test_corpus_case(name):
    path = CORPUS / name
    expected = CASES[name]
    if isinstance(expected, str):
        with pytest.raises(AlgorithmFileError) as error:
            read_algorithms(path)
        assert_clean(error.value, path)
        assert str(error.value).startswith(f"{path}{expected}"), str(error.value)
        return
    (algorithm,) = read_algorithms(path)
    assert (algorithm.shape, algorithm.rank, algorithm.ring) == expected[1:4]
    assert algorithm.verify().ok is expected[4]


def test_a_fifo_is_refused_without_blocking(tmp_path):
    fifo = tmp_path / "fifo.json"
    os.mkfifo(fifo)
    with pytest.raises(AlgorithmFileError, match="fifo.json: is a FIFO; accepted: a regular"):
        read_algorithms(fifo)


@pytest.mark.parametrize(
    ("args", "code", "out"),
    [
        (("verify", "strassen_a00.txt"), 2, "index 0 in a00"),
        (("verify", "wrong_sign.txt"), 1, "NOT a decomposition"),
        (("verify", "strassen_outer_braces.m"), 0, "exact decomposition"),
        (("verify", "exponent_string.json"), 2, "'1e999999999'"),
        (("import", "name_250.json", "--out", "{tmp}"), 0, "wrote {tmp}/" + "z" * 100 + ".json"),
    ],
)
def test_the_cli_on_corpus_files(tmp_path, args, code, out):
    args = [a.format(tmp=tmp_path) for a in args]
    done = subprocess.run([CLI, *args], capture_output=True, text=True, timeout=60, cwd=CORPUS)
    assert done.returncode == code, done.stderr
    assert "Traceback" not in done.stderr
    assert out.format(tmp=tmp_path) in (done.stdout if code != 2 else done.stderr)
    if code == 2:
        assert done.stderr.count("\n") == 1 and done.stdout == ""
