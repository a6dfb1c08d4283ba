"""The FMM catalogue's Maple ``TriadSet`` files, read and written.

Convention (**C transposed**, the trace form ``T = sum a_ij * b_jk * c_ki``): a scheme is
``TriadSet([Triad(A, B, C), ...])``; each ``Triad`` is one rank-one term with ``A`` the
``n x m`` coefficient matrix over A's entries, ``B`` the ``m x p`` one over B's, and ``C`` the
``p x n`` one over C's entries *transposed* (``C[k,i]`` multiplies ``c_ik``). A matrix is written
``Matrix([[1, 0], [0, 1]])``, ``Matrix(2, 2, [[1, 0], [0, 1]])`` or a bare list of rows
``[[1, 0], [0, 1]]``. An assignment ``name := TriadSet(...)`` and a final ``;`` or ``:`` are
allowed, ``#`` starts a comment to the end of the line, and white space (line breaks included)
may stand between any two tokens. Coefficients are integers, fractions ``p/q`` (``-1/8``) or
decimals (read exactly); the ring is ``Q`` when one is a fraction, else ``Z``; ``ring="Z2"``
reads a modulo-2 scheme.

Bounds: those of :mod:`mlo_exp.algorithms.parsing`; at most ``MAX_TOKENS`` tokens are read
(the scan stops there, before anything of that size is built).
"""

from __future__ import annotations

import re
from fractions import Fraction

import numpy as np

from mlo_exp.algorithms.algorithm import Algorithm
from mlo_exp.algorithms.parsing import (
    MAX_DIM,
    MAX_RANK,
    AlgorithmFileError,
    Number,
    TokenStream,
    check_coefficient,
    check_size,
    exact_matrix,
    parse_decimal,
)

ACCEPTED = ("accepted: TriadSet([Triad(A, B, C), ...]) with A (n x m), B (m x p), C (p x n, "
            "transposed) written Matrix([[..], ..]) or [[..], ..], entries integers, p/q or "
            "decimals")
_TOKEN = re.compile(r"(?P<space>[ \t\r\n]+)|(?P<comment>#[^\n]*)"
                    r"|(?P<num>[0-9]+(?:\.[0-9]+)?(?:/[0-9]+)?)"
                    r"|(?P<name>[A-Za-z_][A-Za-z0-9_]*)|(?P<op>:=|[()\[\],;:\-+])", re.ASCII)


def looks_like_triadset(text: str) -> bool:
    """Text that holds a ``TriadSet(`` (outside comments)."""
    return re.search(r"^[^#\n]*\bTriadSet\s*\(", text, re.MULTILINE | re.ASCII) is not None


class _Scanner(TokenStream):
    pattern = _TOKEN
    accepted = ACCEPTED
    keyword_kinds = ("op", "name")


def read_triadset(text: str, source: str, ring: str | None = None,
                  name: str | None = None) -> Algorithm:
    """Parse a ``TriadSet`` file (see module docstring); not verified here."""
    scanner = _Scanner(text.lstrip("\ufeff"), source)
    if scanner.current[0] == "name" and scanner.current[1] != "TriadSet":
        scanner.current = scanner.advance()
        scanner.expect(":=", "':=' after a name")
    scanner.expect("TriadSet", "TriadSet(")
    scanner.expect("(", "'(' after TriadSet")
    scanner.expect("[", "'[' opening the list of triads")
    terms: list[tuple[int, list[list[list[Number]]]]] = []
    if not scanner.take("]"):
        while True:
            line = scanner.current[2]
            if len(terms) >= MAX_RANK:
                raise scanner.error(f"more than {MAX_RANK} triads")
            scanner.expect("Triad", "Triad(")
            scanner.expect("(", "'(' after Triad")
            matrices = [_matrix(scanner)]
            for _ in range(2):
                scanner.expect(",", "',' between the matrices of a Triad")
                matrices.append(_matrix(scanner))
            scanner.expect(")", "')' closing the Triad (three matrices)")
            terms.append((line, matrices))
            if scanner.take("]"):
                break
            scanner.expect(",", "',' or ']' after a Triad")
    scanner.expect(")", "')' closing TriadSet")
    _ = scanner.take(";") or scanner.take(":")
    if scanner.current[0] != "end":
        raise scanner.error("expected the end of the file after TriadSet(...)")
    if not terms:
        raise AlgorithmFileError(f"{source}: no triads; {ACCEPTED}")
    a, b, c = terms[0][1]
    n, m, p = len(a), len(a[0]), len(b[0])
    check_size((n, m, p), len(terms), source)
    for line, matrices in terms:
        for letter, matrix, size in zip("ABC", matrices, ((n, m), (m, p), (p, n)), strict=True):
            if (len(matrix), len(matrix[0])) != size:
                raise AlgorithmFileError(
                    f"{source}:{line}: matrix {letter} of a Triad is {len(matrix)}x"
                    f"{len(matrix[0])}; accepted: {size[0]}x{size[1]} for <{n},{m},{p}> "
                    "(C is p x n, transposed)")
    rank = len(terms)
    columns: dict[str, list[Number]] = {"a": [], "b": [], "c": []}
    for _, (a, b, c) in terms:
        columns["a"] += [x for row in a for x in row]
        columns["b"] += [x for row in b for x in row]
        columns["c"] += [c[k][i] for i in range(n) for k in range(p)]
    u, v, w = (exact_matrix(columns[key], rank, rows).T
               for key, rows in (("a", n * m), ("b", m * p), ("c", n * p)))
    return Algorithm.from_read_factors(
        (n, m, p), (u, v, w), ring, source,
        {"name": name or f"triadset-{n}x{m}x{p}-{rank}", "source": f"Maple TriadSet {source}"})


def _matrix(scanner: _Scanner) -> list[list[Number]]:
    if scanner.take("Matrix"):
        scanner.expect("(", "'(' after Matrix")
        sizes = []
        while scanner.current[0] == "num":
            if len(sizes) == 2:
                raise scanner.error("expected the rows after two Matrix sizes")
            sizes.append(_number(scanner))
            scanner.expect(",", "',' after a Matrix size")
        rows = _rows(scanner)
        scanner.expect(")", "')' closing Matrix")
        if sizes and (len(sizes) != 2 or sizes != [len(rows), len(rows[0])]):
            raise scanner.error(f"Matrix sizes {sizes} do not match its {len(rows)}x"
                                f"{len(rows[0])} entries")
        return rows
    return _rows(scanner)


def _rows(scanner: _Scanner) -> list[list[Number]]:
    scanner.expect("[", "a matrix: Matrix([[..], ..]) or [[..], ..]")
    rows: list[list[Number]] = []
    while True:
        if len(rows) >= MAX_DIM:
            raise scanner.error(f"a matrix with more than {MAX_DIM} rows")
        scanner.expect("[", "'[' opening a row")
        row = [_number(scanner)]
        while scanner.take(","):
            if len(row) >= MAX_DIM:
                raise scanner.error(f"a row with more than {MAX_DIM} entries")
            row.append(_number(scanner))
        scanner.expect("]", "',' or ']' in a row")
        if rows and len(row) != len(rows[0]):
            raise scanner.error("rows of different lengths")
        rows.append(row)
        if scanner.take("]"):
            return rows
        scanner.expect(",", "',' or ']' after a row")


def _number(scanner: _Scanner) -> Number:
    sign = -1 if scanner.take("-") else 1
    if sign == 1:
        scanner.take("+")
    kind, value, line = scanner.current
    if kind != "num":
        raise scanner.error("expected a number")
    scanner.current = scanner.advance()
    number = parse_decimal(value, f"{scanner.source}:{line}")
    return check_coefficient(sign * number, f"{scanner.source}:{line}")


# --- writing ---------------------------------------------------------------------------------
def _entry(value: object) -> str:
    return str(Fraction(value))  # type: ignore[arg-type]


def format_triadset(algorithm: Algorithm) -> str:
    """The algorithm as a Maple ``TriadSet`` (C transposed; fractions ``p/q``)."""
    n, m, p = algorithm.shape

    def matrix(column: np.ndarray, rows: int, cols: int, transpose: bool = False) -> str:
        grid = [[_entry(column[i * cols + k]) for k in range(cols)] for i in range(rows)]
        if transpose:
            grid = [list(row) for row in zip(*grid, strict=True)]
        return "Matrix([" + ", ".join("[" + ", ".join(row) + "]" for row in grid) + "])"

    triads = [f"Triad({matrix(algorithm.u[:, r], n, m)}, {matrix(algorithm.v[:, r], m, p)}, "
              f"{matrix(algorithm.w[:, r], n, p, transpose=True)})"
              for r in range(algorithm.rank)]
    head = (f"# <{n},{m},{p}> rank {algorithm.rank} over {algorithm.ring}: {algorithm.name}\n"
            f"# Triad(A, B, C): A is {n}x{m}, B is {m}x{p}, C is {p}x{n} (C transposed: "
            "sum a_ij*b_jk*c_ki)\n")
    return head + "TriadSet([\n  " + ",\n  ".join(triads) + "\n]);\n"
